// The `http:` section of wharf.yaml: the admin API's body and upload limits
// (and its timeouts and worker threads) validated by the host schema, read
// into HostSettings, and enforced by a real wharfd started with them.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
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
#include "support/wharfd_child.hpp"

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

struct RawResponse {
    int status = 0;
    std::string body;
};

// METHOD PATH with `body` sent chunked (no declared length) in 1 KiB chunks
// over a fresh connection to `address` (host:port); stops sending when the
// server answers (or closes) early, and returns its answer.
RawResponse chunked_request(const std::string& address, const std::string& method,
                            const std::string& path, const std::string& body) {
    auto colon = address.rfind(':');
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
    ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    RawResponse out;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return out;
    }
    std::string request =
        method + " " + path + " HTTP/1.1\r\nHost: " + address + "\r\nAuthorization: Bearer " +
        kOperatorToken + "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (std::size_t at = 0; at < body.size(); at += 1024) {
        auto piece = body.substr(at, 1024);
        char size[16];
        std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
        request += size + piece + "\r\n";
    }
    request += "0\r\n\r\n";
    for (std::size_t sent = 0; sent < request.size();) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 0) > 0) break;  // the server answered before the body ended
        auto n = ::send(fd, request.data() + sent,
                        std::min<std::size_t>(request.size() - sent, 16384), MSG_NOSIGNAL);
        if (n <= 0) break;  // the server closed
        sent += static_cast<std::size_t>(n);
    }
    std::string response;
    char buf[4096];
    for (;;) {
        auto end = response.find("\r\n\r\n");
        if (end != std::string::npos) {
            auto at = response.find("Content-Length: ");
            if (at != std::string::npos &&
                response.size() >= end + 4 + std::stoul(response.substr(at + 16)))
                break;
        }
        auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        response.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (response.size() > 12) out.status = std::stoi(response.substr(9, 3));
    auto end = response.find("\r\n\r\n");
    if (end != std::string::npos) out.body = response.substr(end + 4);
    return out;
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
    REQUIRE(eventually([&] { return wharf::test::wharfd_ready(host.output(), "metadata"); }, 20s));
    auto out = host.output();
    INFO(out);
    CHECK(out.find("workers=2 max_body_bytes=2048 max_upload_bytes=4096") != std::string::npos);
    auto address = wharf::test::listening_address(out);
    REQUIRE_FALSE(address.empty());
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

    SECTION("a chunked JSON body over max_body_bytes gets 413 on every route and changes nothing") {
        const Json big = {{"topic", "wharf/limits"},
                          {"payload", {{"filler", std::string(3000, 'x')}}}};
        auto refused = chunked_request(address, "POST", "/api/jobs", big.dump());
        INFO(refused.body);
        CHECK(refused.status == 413);
        auto error = Json::parse(refused.body, nullptr, false)["error"];
        CHECK(error["code"] == "payload_too_large");
        CHECK_THAT(error["message"].get<std::string>(), Catch::Contains("at most 2048 bytes"));
        CHECK(job_count() == jobs_before);

        // Far beyond the limit: refused all the same, the server alive after it.
        std::string huge = R"({"topic":"wharf/limits","payload":{"filler":")" +
                           std::string(8 * 1024 * 1024, 'x') + "\"}}";
        auto huge_refused = chunked_request(address, "POST", "/api/jobs", huge);
        CHECK(huge_refused.status == 413);
        CHECK(job_count() == jobs_before);

        // Under the limit a chunked body is taken like any other.
        const Json small = {{"topic", "wharf/limits"}, {"payload", {{"filler", "x"}}}};
        auto created = chunked_request(address, "POST", "/api/jobs", small.dump());
        INFO(created.body);
        REQUIRE(created.status == 201);
        CHECK(job_count() == jobs_before + 1);
        auto id = std::to_string(Json::parse(created.body)["id"].get<std::int64_t>());

        // Stop takes no body: one too big is refused all the same; a DELETE
        // gets none (400 before it is read). The job stays as it was.
        auto state = [&] { return Json::parse(client.get("/api/jobs/" + id).body)["state"]; };
        auto before = state();
        CHECK(chunked_request(address, "POST", "/api/jobs/" + id + "/stop", big.dump()).status ==
              413);
        auto deleted = chunked_request(address, "DELETE", "/api/jobs/" + id, big.dump());
        INFO(deleted.body);
        CHECK(deleted.status == 400);
        CHECK_THAT(deleted.body, Catch::Contains("takes no request body"));
        CHECK(state() == before);

        // A POST with neither a length nor chunks has no body: answered at
        // once, not after the read timeout (5 s; this waits 3 s at most).
        {
            auto colon = address.rfind(':');
            int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in addr{};
            addr.sin_family = AF_INET;
            addr.sin_port =
                htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
            ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
            timeval tv{3, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
            std::string request = "POST /api/jobs/" + id + "/stop HTTP/1.1\r\nHost: " + address +
                                  "\r\nAuthorization: Bearer " + kOperatorToken + "\r\n\r\n";
            ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
            char buf[4096];
            auto n = ::recv(fd, buf, sizeof buf, 0);
            ::close(fd);
            std::string response = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
            CHECK(response.rfind("HTTP/1.1 200", 0) == 0);
            CHECK(state() == "stopped");
        }

        // A path without a route is refused before its body is read.
        auto unrouted = chunked_request(address, "POST", "/api/nothing", huge);
        INFO(unrouted.body);
        CHECK(unrouted.status == 404);
        CHECK_THAT(unrouted.body, Catch::Contains("no route for POST /api/nothing"));
        CHECK(client.get("/healthz").status == 200);
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
