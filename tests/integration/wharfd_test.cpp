// wharfd as a real process: version, start on a config dir, plugins active,
// SIGTERM stops plugins in reverse order and exits 0.
#include <catch2/catch.hpp>

#include <fstream>

#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using wharf::test::ChildProcess;
using wharf::test::eventually;
using wharf::test::TempDir;

namespace {

void write_config(const TempDir& dir) {
    fs::create_directories(dir / "configs");
    fs::create_directories(dir / "plugins");
    std::ofstream(dir / "configs/wharf.yaml") << "data_dir: ../var\n"
                                                 "plugins_dir: ../plugins\n"
                                                 "listen: 127.0.0.1:0\n"
                                                 "log_level: info\n";
}

}  // namespace

TEST_CASE("wharfd --version prints the host version and the SDK ABI", "[wharfd]") {
    TempDir dir("wharfd");
    ChildProcess p({WHARF_WHARFD_EXECUTABLE, "--version"}, dir / "out.log");
    auto status = p.wait(10s);
    REQUIRE(status);
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
    CHECK_THAT(p.output(), Catch::StartsWith("wharfd ") && Catch::Contains("SDK ABI 1.0"));
}

TEST_CASE("wharfd starts plugins from its plugins dir and on SIGTERM stops them in reverse "
          "start order and exits 0",
          "[wharfd]") {
    TempDir dir("wharfd");
    write_config(dir);
    fs::copy_file(fs::path(WHARF_FIXTURE_DIR) / "provider.so", dir / "plugins/provider.so");
    fs::copy_file(fs::path(WHARF_FIXTURE_DIR) / "needs_service.so", dir / "plugins/needs.so");
    ChildProcess host({WHARF_WHARFD_EXECUTABLE, "--config", (dir / "configs").string()},
                      dir / "wharfd.log");
    REQUIRE(eventually([&] {
        auto out = host.output();
        return out.find("plugin active id=fixture.needs") != std::string::npos &&
               out.find("plugin active id=fixture.provider") != std::string::npos;
    }));
    // Hot deploy into the running host.
    fs::copy_file(fs::path(WHARF_FIXTURE_DIR) / "greeter_v1.so", dir / "plugins/greeter.so");
    REQUIRE(eventually(
        [&] { return host.output().find("plugin active id=fixture.greeter") != std::string::npos; }));

    host.signal(SIGTERM);
    auto status = host.wait(20s);
    REQUIRE(status);
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
    auto out = host.output();
    auto greeter = out.find("plugin stopping id=fixture.greeter");
    auto needs = out.find("plugin stopping id=fixture.needs");
    auto provider = out.find("plugin stopping id=fixture.provider");
    REQUIRE(greeter != std::string::npos);
    REQUIRE(needs != std::string::npos);
    REQUIRE(provider != std::string::npos);
    CHECK(greeter < needs);
    CHECK(needs < provider);
    CHECK_THAT(out, Catch::Contains("wharfd stopped"));
    CHECK(fs::exists(dir / "var"));
}

TEST_CASE("wharfd refuses a broken wharf.yaml naming file, line and column and exits 1",
          "[wharfd]") {
    TempDir dir("wharfd");
    write_config(dir);
    std::ofstream(dir / "configs/wharf.yaml") << "data_dir: ../var\nlisten: [unclosed\n";
    ChildProcess host({WHARF_WHARFD_EXECUTABLE, "--config", (dir / "configs").string()},
                      dir / "wharfd.log");
    auto status = host.wait(10s);
    REQUIRE(status);
    CHECK(WEXITSTATUS(*status) == 1);
    CHECK_THAT(host.output(), Catch::Contains("wharf.yaml:"));
}
