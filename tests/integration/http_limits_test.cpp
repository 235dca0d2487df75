// The `http:` section of wharf.yaml: the admin API's body and upload limits
// (and its timeouts and worker threads) validated by the host schema, read
// into HostSettings, and enforced by a real wharfd started with them.
#include <catch2/catch.hpp>
#include <httplib.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "base/error.hpp"
#include "config/config_admin.hpp"
#include "config/host_settings.hpp"
#include "http/http_client.hpp"
#include "http/http_server.hpp"
#include "http/users.hpp"
#include "modules/service_registry.hpp"
#include "repository/sqlite_repository.hpp"
#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Json = nlohmann::json;
using namespace wharf::host;
using wharf::test::ChildProcess;
using wharf::test::eventually;
using wharf::test::TempDir;

namespace {

const std::string kOperatorToken = "operator-token-0123456789";

void write_file(const fs::path& file, const std::string& text) {
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
}

std::string refusal(const fs::path& dir) {
    try {
        load_host_settings(dir);
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::invalid_argument);
        return e.what();
    }
    FAIL("a bad http section was accepted");
    return {};
}

}  // namespace

TEST_CASE("the shipped wharf.yaml holds the HTTP server's defaults in its http section",
          "[config][http]") {
    auto settings = load_host_settings(fs::path(WHARF_SOURCE_DIR) / "configs");
    const HttpServerOptions server;
    CHECK(settings.http.max_body_bytes == server.max_body_bytes);
    CHECK(settings.http.max_upload_bytes == server.max_upload_bytes);
    CHECK(settings.http.read_timeout == server.read_timeout);
    CHECK(settings.http.write_timeout == server.write_timeout);
    CHECK(settings.http.worker_threads == server.worker_threads);
    const HostHttpSettings defaults;
    CHECK(defaults.max_body_bytes == server.max_body_bytes);
    CHECK(defaults.max_upload_bytes == server.max_upload_bytes);
    CHECK(defaults.worker_threads == server.worker_threads);

    // Every key of the section is documented by a comment above it, and the
    // section comes before jobs: (whose keys jobs_settings_test counts).
    std::ifstream in(fs::path(WHARF_SOURCE_DIR) / "configs/wharf.yaml");
    std::string line, previous;
    bool in_http = false, seen_jobs = false;
    int keys = 0;
    while (std::getline(in, line)) {
        if (line == "jobs:") seen_jobs = true;
        if (!line.empty() && line[0] != ' ' && line[0] != '#') in_http = line == "http:";
        if (line == "http:") CHECK_FALSE(seen_jobs);
        if (in_http && line.rfind("  ", 0) == 0 && line[2] != '#' && line[2] != ' ') {
            INFO(line);
            CHECK(previous.rfind("  #", 0) == 0);
            ++keys;
        }
        previous = line;
    }
    CHECK(keys == 5);
}

TEST_CASE("an http section in wharf.yaml reaches HostSettings; absent keys keep their defaults",
          "[config][http]") {
    TempDir dir("wharf-http-settings");
    write_file(dir / "wharf.yaml",
               "http:\n"
               "  max_body_bytes: 2048\n"
               "  max_upload_bytes: 1099511627776\n"
               "  worker_threads: 2\n");
    auto settings = load_host_settings(dir.path());
    CHECK(settings.http.max_body_bytes == 2048);
    CHECK(settings.http.max_upload_bytes == 1099511627776ull);
    CHECK(settings.http.worker_threads == 2);
    CHECK(settings.http.read_timeout == 5000ms);
    CHECK(settings.http.write_timeout == 5000ms);
}

TEST_CASE("a bad http section is refused with file, line, column and reason", "[config][http]") {
    TempDir dir("wharf-http-settings");
    const std::string file = (dir / "wharf.yaml").string();
    write_file(dir / "wharf.yaml",
               "listen: 127.0.0.1:0\n"
               "http:\n"
               "  max_body_bytes: -1\n"
               "  max_upload_bytes: 1099511627777\n"
               "  read_timeout_ms: soon\n"
               "  write_timeout_ms: \"5000\"\n"
               "  worker_threads: 0\n"
               "  max_uplaod_bytes: 3\n");
    auto message = refusal(dir.path());
    CHECK_THAT(message, Catch::Contains(file + ":3:19: value -1 for 'http.max_body_bytes' is out "
                                               "of range (1024 to 268435456)"));
    CHECK_THAT(message, Catch::Contains(file + ":4:21: value 1099511627777 for "
                                               "'http.max_upload_bytes' is out of range"));
    CHECK_THAT(message, Catch::Contains(file + ":5:20:"));
    CHECK_THAT(message, Catch::Contains("http.read_timeout_ms"));
    CHECK_THAT(message, Catch::Contains(file + ":6:21:"));
    CHECK_THAT(message, Catch::Contains(file + ":7:19: value 0 for 'http.worker_threads' is out "
                                               "of range (1 to 1024)"));
    CHECK_THAT(message, Catch::Contains(file + ":8:3: unknown key 'max_uplaod_bytes' in 'http' "
                                               "(did you mean 'max_upload_bytes'?)"));

    // Far too big for an integer, and a section that is not a map.
    write_file(dir / "wharf.yaml", "http:\n  max_upload_bytes: 99999999999999999999999\n");
    CHECK_THAT(refusal(dir.path()), Catch::Contains(file + ":2:21:"));
    write_file(dir / "wharf.yaml", "http: 1048576\n");
    CHECK_THAT(refusal(dir.path()), Catch::Contains(file + ":1:"));
}

TEST_CASE("a running host refuses a bad http edit and keeps the values in force",
          "[config][http]") {
    TempDir dir("wharf-http-settings");
    write_file(dir / "configs/wharf.yaml", "http:\n  max_body_bytes: 4096\n");
    ServiceRegistryImpl registry;
    ConfigAdminOptions options;
    options.config_dir = dir / "configs";
    options.registry = &registry;
    options.watch = false;
    ConfigAdmin config(options);
    config.start();
    REQUIRE(config.current("wharf").get<std::size_t>("http.max_body_bytes") == 4096);

    write_file(dir / "configs/wharf.yaml", "http:\n  max_body_bytes: -4096\n");
    config.rescan();
    CHECK(config.current("wharf").get<std::size_t>("http.max_body_bytes") == 4096);
    bool refused = false;
    for (const auto& status : config.status()) {
        if (status.file != "wharf.yaml") continue;
        CHECK(status.applied_version == 1);
        REQUIRE(status.errors.size() == 1);
        INFO(status.errors.front().to_string());
        CHECK_THAT(status.errors.front().to_string(),
                   Catch::Contains("wharf.yaml:2:19: value -4096 for 'http.max_body_bytes' is "
                                   "out of range"));
        refused = true;
    }
    CHECK(refused);
    config.stop();
}

TEST_CASE("wharfd enforces max_body_bytes and max_upload_bytes from wharf.yaml",
          "[http][wharfd]") {
    TempDir dir("wharfd-http-limits");
    write_file(dir / "configs/wharf.yaml",
               "data_dir: ../var\nplugins_dir: ../plugins\nlisten: 127.0.0.1:0\nlog_level: info\n"
               "http:\n  max_body_bytes: 2048\n  max_upload_bytes: 4096\n  worker_threads: 2\n");
    write_file(dir / "configs/users.yaml",
               "users:\n  - name: otto\n    role: operator\n    token_sha256: " +
                   token_sha256(kOperatorToken) + "\n");
    fs::create_directories(dir / "plugins");
    fs::copy_file(fs::path(WHARF_PLUGIN_DIR) / "metadata.so", dir / "plugins/metadata.so");

    ChildProcess host({WHARF_WHARFD_EXECUTABLE, "--config", (dir / "configs").string()},
                      dir / "wharfd.log");
    REQUIRE(eventually(
        [&] {
            auto out = host.output();
            return out.find("plugin active id=metadata") != std::string::npos &&
                   out.find("wharfd ready") != std::string::npos;
        },
        20s));
    auto out = host.output();
    INFO(out);
    CHECK(out.find("workers=2 max_body_bytes=2048 max_upload_bytes=4096") != std::string::npos);
    auto at = out.find("http listening address=");
    REQUIRE(at != std::string::npos);
    auto address = out.substr(at + 23, out.find_first_of(" \n", at + 23) - (at + 23));
    HttpClientOptions o;
    o.bearer_token = kOperatorToken;
    HttpClient client("http://" + address, o);
    auto job_count = [&] {
        auto list = client.get("/api/jobs");
        REQUIRE(list.status == 200);
        return Json::parse(list.body)["jobs"].size();
    };
    // The host schedules its own purge job: count from what is there.
    const auto jobs_before = job_count();

    SECTION("a JSON body over max_body_bytes gets 413 and creates no job") {
        const Json big = {{"topic", "wharf/limits"},
                          {"payload", {{"filler", std::string(3000, 'x')}}}};
        auto refused = client.post_json("/api/jobs", big.dump());
        INFO(refused.body);
        CHECK(refused.status == 413);
        auto error = Json::parse(refused.body)["error"];
        CHECK(error["code"] == "payload_too_large");
        CHECK_THAT(error["message"].get<std::string>(), Catch::Contains("at most 2048 bytes"));
        CHECK(job_count() == jobs_before);

        // Under the limit the same route takes it.
        const Json small = {{"topic", "wharf/limits"}, {"payload", {{"filler", "x"}}}};
        auto created = client.post_json("/api/jobs", small.dump());
        INFO(created.body);
        CHECK(created.status == 201);
        CHECK(job_count() == jobs_before + 1);
    }

    SECTION("a CSV upload over max_upload_bytes gets 413 and leaves no job and no file") {
        std::string csv = "assetPath,n{{Long}}\n";
        for (int i = 0; csv.size() <= 8192; ++i)
            csv += "/content/dam/limits/a" + std::to_string(i) + "," + std::to_string(i) + "\n";
        // Declared length: refused before the body is read.
        auto declared =
            client.request("POST", "/api/operations/metadata-import", csv, "text/csv");
        INFO(declared.body);
        CHECK(declared.status == 413);
        CHECK(Json::parse(declared.body)["error"]["code"] == "payload_too_large");

        // Chunked (no length): refused while it streams to the spool file.
        {
            auto colon = address.rfind(':');
            httplib::Client raw(address.substr(0, colon), std::stoi(address.substr(colon + 1)));
            raw.set_bearer_token_auth(kOperatorToken.c_str());
            std::size_t sent = 0;
            auto chunked = raw.Post(
                "/api/operations/metadata-import",
                [&](std::size_t, httplib::DataSink& sink) {
                    auto n = std::min<std::size_t>(1024, csv.size() - sent);
                    sink.write(csv.data() + sent, n);
                    sent += n;
                    if (sent == csv.size()) sink.done();
                    return true;
                },
                "text/csv");
            REQUIRE(chunked);
            INFO(chunked->body);
            CHECK(chunked->status == 413);
            CHECK_THAT(chunked->body, Catch::Contains("at most 4096 bytes"));
        }
        CHECK(job_count() == jobs_before);
        const auto spool = dir / "var/repository/blobs/tmp";
        REQUIRE(fs::is_directory(spool));
        CHECK(fs::is_empty(spool));

        // A JSON body to the same route keeps max_body_bytes.
        auto json = client.post_json("/api/operations/metadata-import",
                                     Json{{"csv", std::string(3000, 'p')}}.dump());
        CHECK(json.status == 413);
    }

    host.signal(SIGTERM);
    auto status = host.wait(20s);
    REQUIRE(status);
    CHECK(WEXITSTATUS(*status) == 0);
    auto repository = SqliteRepository::open(dir / "var/repository");
    CHECK_FALSE(repository->get("/var/uploads/metadata-import").has_value());
    CHECK(fs::is_empty(dir / "var/repository/blobs/tmp"));
}
