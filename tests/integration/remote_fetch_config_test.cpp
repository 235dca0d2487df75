// operations/remote-fetch.yaml: the shipped file passes the offline check
// with the plugin's schema; bad values are refused with file:line:col; and a
// running wharfd refuses an edit whose token file cannot be read, keeping the
// remotes in force.
#include <catch2/catch.hpp>

#include "integration/remote_fetch_test_support.hpp"

using namespace std::chrono_literals;
using Json = nlohmann::json;
using wharf::test::ChildProcess;
using wharf::test::eventually;
using wharf::test::FetchPair;
using wharf::test::TempDir;

namespace {

// `wharf config validate DIR --plugins PLUGINS`: exit code and output.
std::pair<int, std::string> validate(const TempDir& dir, const std::filesystem::path& configs,
                                     const std::filesystem::path& plugins, const std::string& log) {
    ChildProcess cli({WHARF_CLI_EXECUTABLE, "config", "validate", configs.string(), "--plugins",
                      plugins.string()},
                     dir / log);
    auto status = cli.wait(60s);
    REQUIRE(status);
    return {WEXITSTATUS(*status), cli.output()};
}

}  // namespace

TEST_CASE(
    "operations/remote-fetch.yaml: the shipped file is valid and bad values are refused "
    "with file, line and reason",
    "[remote-fetch][config]") {
    TempDir dir("remote-fetch-config");
    namespace fs = std::filesystem;
    fs::create_directories(dir / "plugins");
    fs::copy_file(fs::path(WHARF_PLUGIN_DIR) / "remote-fetch.so", dir / "plugins/remote-fetch.so");
    wharf::test::write_text(dir / "configs/wharf.yaml", "data_dir: ../var\n");
    fs::create_directories(dir / "configs/operations");
    fs::copy_file(fs::path(WHARF_SOURCE_DIR) / "configs/operations/remote-fetch.yaml",
                  dir / "configs/operations/remote-fetch.yaml");
    auto [ok_code, ok_out] = validate(dir, dir / "configs", dir / "plugins", "shipped.log");
    INFO(ok_out);
    CHECK(ok_code == 0);

    wharf::test::write_text(dir / "configs/operations/remote-fetch.yaml",
                            "threshold: -1\n"
                            "parallel_transfers: 64\n"
                            "retry_backoff: 0.5\n"
                            "retries: many\n"
                            "remotes:\n"
                            "  dam-eu:\n"
                            "    url: ftp//nowhere\n"
                            "    token_file: t\n"
                            "    timeout_ms: 5\n"
                            "  dam-us:\n"
                            "    token_file: t\n");
    auto [code, out] = validate(dir, dir / "configs", dir / "plugins", "bad.log");
    INFO(out);
    CHECK(code == 1);
    const std::string file = (dir / "configs/operations/remote-fetch.yaml").string();
    CHECK_THAT(out,
               Catch::Contains(file + ":1:") && Catch::Contains("'threshold' is out of range"));
    CHECK_THAT(out, Catch::Contains(file + ":2:") &&
                        Catch::Contains("'parallel_transfers' is out of range (1 to 32)"));
    CHECK_THAT(out, Catch::Contains(file + ":3:") && Catch::Contains("'retry_backoff'"));
    CHECK_THAT(out, Catch::Contains(file + ":4:") && Catch::Contains("retries"));
    CHECK_THAT(out, Catch::Contains(file + ":7:") && Catch::Contains("remotes.dam-eu.url"));
    CHECK_THAT(out, Catch::Contains(file + ":9:") && Catch::Contains("unknown key 'timeout_ms'"));
    CHECK_THAT(out, Catch::Contains("missing required key 'remotes.dam-us.url'"));
}

TEST_CASE(
    "a running wharfd refuses a remote-fetch.yaml whose token file cannot be read and "
    "keeps the remotes in force",
    "[remote-fetch][config][wharfd]") {
    FetchPair pair;
    {
        auto repo = pair.remote.open_repository();
        wharf::test::seed_small_tree(*repo);
    }
    pair.start();
    pair.local.write_config(
        "operations/remote-fetch.yaml",
        "remotes:\n  src:\n    url: " + pair.remote.url() + "\n    token_file: missing.token\n");
    Json status;
    REQUIRE(eventually(
        [&] {
            status = Json::parse(pair.local_api->get("/api/config").body);
            for (const auto& f : status["files"])
                if (f["file"] == "operations/remote-fetch.yaml" &&
                    f.dump().find("missing.token") != std::string::npos)
                    return true;
            return false;
        },
        20s));
    std::string refusal;
    for (const auto& f : status["files"])
        if (f["file"] == "operations/remote-fetch.yaml") refusal = f.dump();
    INFO(refusal);
    CHECK_THAT(refusal, Catch::Contains("cannot read token file"));
    // The settings in force still name the remote and its readable token.
    auto response = pair.submit({{"remote", "src"},
                                 {"paths", {"/content/dam/solo.bin"}},
                                 {"destination", "/content/dam/still"}});
    INFO(response.body);
    CHECK(response.status == 200);
    CHECK(Json::parse(response.body)["outcome"] == "succeeded");
}
