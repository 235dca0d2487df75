// `wharf repo ...` run as a user would: generate, import, check (also on a
// damaged repository), gc.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <sys/wait.h>

#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using wharf::test::TempDir;

namespace {

struct Output {
    int exit_code = -1;
    std::string text;
};

Output wharf_cli(const std::string& args) {
    std::string command = std::string(WHARF_CLI_EXECUTABLE) + " " + args + " 2>&1";
    Output out;
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    char buffer[4096];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.text.append(buffer, n);
    int status = ::pclose(pipe);
    out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return out;
}

}  // namespace

TEST_CASE("wharf repo generate, import and check work on a data dir, and check exits 1 naming "
          "a missing binary",
          "[repository][cli]") {
    TempDir dir("wharf-cli-repo");
    auto repo = (dir / "repository").string();
    auto generated = wharf_cli("repo generate --repository " + repo +
                               " --assets 120 --pages 12 --refs-per-page 3");
    REQUIRE(generated.exit_code == 0);
    CHECK_THAT(generated.text, Catch::Contains("assets=120") && Catch::Contains("references=36"));

    fs::create_directories(dir / "import/photos");
    std::ofstream(dir / "import/photos/readme.txt") << "hello\n";
    auto imported = wharf_cli("repo import " + (dir / "import").string() +
                              " /content/dam/imported --repository " + repo);
    REQUIRE(imported.exit_code == 0);
    CHECK_THAT(imported.text, Catch::Contains("assets=1"));

    auto ok = wharf_cli("repo check --repository " + repo);
    CHECK(ok.exit_code == 0);
    CHECK_THAT(ok.text, Catch::Contains("wharf repo check: ok") && Catch::Contains("errors=0"));

    // Damage it: remove one stored binary.
    fs::path victim;
    for (const auto& e : fs::recursive_directory_iterator(dir / "repository/blobs"))
        if (e.is_regular_file() && victim.empty()) victim = e.path();
    REQUIRE_FALSE(victim.empty());
    fs::remove(victim);
    auto broken = wharf_cli("repo check --repository " + repo);
    CHECK(broken.exit_code == 1);
    CHECK_THAT(broken.text, Catch::Contains("missing_binary") && Catch::Contains("FAILED"));

    auto gc = wharf_cli("repo gc --repository " + repo);
    CHECK(gc.exit_code == 0);
    auto usage = wharf_cli("repo import /definitely/not/here /content/dam/x --repository " + repo);
    CHECK(usage.exit_code != 0);
}
