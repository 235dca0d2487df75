// wharfd as a real process: version, start on a config dir, plugins active,
// SIGTERM stops plugins in reverse order and exits 0.
#include <catch2/catch.hpp>

#include <fstream>

#include "base/sha256.hpp"
#include "http/http_client.hpp"
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
    CHECK_THAT(p.output(), Catch::StartsWith("wharfd ") && Catch::Contains("SDK ABI 1.2"));
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

TEST_CASE("wharfd serves the API with users from users.yaml, and a job enqueued over HTTP "
          "survives a SIGKILL of the host",
          "[wharfd][http]") {
    TempDir dir("wharfd");
    write_config(dir);
    const std::string token = "0123456789abcdef0123456789abcdef";
    std::ofstream(dir / "configs/users.yaml")
        << "users:\n  - name: alice\n    role: operator\n    token_sha256: "
        << wharf::host::sha256_hex(token) << "\n";
    auto start_host = [&] {
        return std::make_unique<ChildProcess>(
            std::vector<std::string>{WHARF_WHARFD_EXECUTABLE, "--config",
                                     (dir / "configs").string()},
            dir / "wharfd.log");
    };
    auto port_of = [&](std::size_t from) -> std::string {
        std::ifstream in(dir / "wharfd.log");
        std::string all((std::istreambuf_iterator<char>(in)), {});
        auto at = all.find("http listening address=127.0.0.1:", from);
        if (at == std::string::npos) return "";
        auto begin = at + std::string("http listening address=127.0.0.1:").size();
        return all.substr(begin, all.find(' ', begin) - begin);
    };

    auto host = start_host();
    std::string port;
    REQUIRE(eventually([&] { return !(port = port_of(0)).empty(); }));
    wharf::host::HttpClientOptions auth;
    auth.bearer_token = token;
    wharf::host::HttpClient api("127.0.0.1:" + port, auth);
    CHECK(api.get("/healthz").status == 200);
    wharf::host::HttpClient anonymous("127.0.0.1:" + port);
    CHECK(anonymous.get("/api/jobs").status == 401);

    // A topic nobody consumes: the job stays queued, durable before the 201.
    auto created = api.post_json("/api/jobs", R"({"topic":"test/nobody","payload":{"n":"1"}})");
    REQUIRE(created.status == 201);
    auto location = created.header("Location");
    REQUIRE_THAT(location, Catch::StartsWith("/api/jobs/"));

    host->signal(SIGKILL);
    REQUIRE(host->wait(10s));
    auto log_size = fs::file_size(dir / "wharfd.log");
    host = start_host();
    REQUIRE(eventually([&] { return !(port = port_of(log_size)).empty(); }));
    wharf::host::HttpClient again("127.0.0.1:" + port, auth);
    auto job = again.get(location);
    CHECK(job.status == 200);
    CHECK_THAT(job.body, Catch::Contains("\"topic\":\"test/nobody\"") &&
                             Catch::Contains("\"status\":\"Queued\"") &&
                             Catch::Contains("\"submitted_by\":\"alice\""));
    host->signal(SIGTERM);
    auto status = host->wait(20s);
    REQUIRE(status);
    CHECK(WEXITSTATUS(*status) == 0);
}
