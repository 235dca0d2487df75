// A bounded fuzz loop against the API: random methods, paths, headers and
// bodies, over real sockets, with and without valid tokens. Capped in count
// and time. Afterwards the server answers and every job is as it was.
#include <catch2/catch.hpp>
#include <random>

#include "integration/http_test_support.hpp"

using namespace std::chrono_literals;
using wharf::JobState;
using wharf::test::ApiHost;
using wharf::test::kAdminToken;
using wharf::test::kOperatorToken;
using wharf::test::kViewerToken;

TEST_CASE("a bounded fuzz loop leaves the server alive and every job intact", "[http][fuzz]") {
    ApiHost host;
    std::vector<wharf::Job> jobs;
    jobs.push_back(host.job_in_state("test/keep", R"({"rows":"3"})", JobState::succeeded));
    jobs.push_back(host.job_in_state("test/keep", R"({"block":"true"})", JobState::active));
    jobs.push_back(host.engine->enqueue("nobody/consumes", {}));
    auto snapshot = [&] {
        std::vector<std::string> out;
        for (const auto& j : jobs) {
            auto s = host.store->find(j.id);
            out.push_back(s ? std::to_string(s->id) + s->topic + to_string(s->state) +
                                  std::to_string(s->report_rows)
                            : "missing");
        }
        return out;
    };
    auto before = snapshot();

    std::mt19937 rng(20240501);
    auto pick = [&](const auto& list) { return list[rng() % list.size()]; };
    auto random_bytes = [&](std::size_t n) {
        std::string s;
        for (std::size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(rng() % 256));
        return s;
    };
    const std::vector<std::string> methods = {"GET",   "POST", "PUT",     "DELETE",
                                              "PATCH", "HEAD", "OPTIONS", "TRACE",
                                              "BREW",  "",     "G ET",    "CONNECT"};
    const std::vector<std::string> paths = {"/api/jobs",
                                            "/api/jobs.csv",
                                            "/api/jobs/900001",
                                            "/api/jobs/2/log?after=-1",
                                            "/api/jobs/1/report.csv",
                                            "/api/jobs/900003/stop",
                                            "/api/jobs/1/log",
                                            "/api/queues",
                                            "/api/plugins",
                                            "/api/config",
                                            "/api/config/rescan",
                                            "/metrics",
                                            "/healthz",
                                            "/api/openapi.json",
                                            "/api/operations/%00",
                                            "/api/jobs/%2e%2e%2f%2e%2e",
                                            "/api/jobs?limit=99999999999999999999",
                                            "/api/jobs?state=%ff%fe",
                                            "/api/jobs?from=9999-99-99T99:99:99Z",
                                            "//api//jobs",
                                            "/api/jobs/" + std::string(3000, '9'),
                                            "*",
                                            "http://evil/api/jobs",
                                            "/api/jobs#frag"};
    const std::vector<std::string> auths = {
        "",
        "Authorization: Bearer " + kViewerToken + "\r\n",
        "Authorization: Bearer " + kOperatorToken + "\r\n",
        "Authorization: Bearer " + kAdminToken + "\r\n",
        "Authorization: Bearer\r\n",
        "Authorization: Basic YWRtaW46YWRtaW4=\r\n",
        "Authorization: bearer  " + kViewerToken + " \r\n",
        "Authorization: Bearer " + std::string(9000, 'A') + "\r\n"};
    const std::vector<std::string> bodies = {
        "",
        "{}",
        "{\"topic\":\"test/keep\"}",
        "{\"topic\":null}",
        "[]",
        "null",
        "{\"topic\":",
        "{\"topic\":\"test/a\",\"payload\":{\"a\":" + std::string(50, '[') + "}}",
        std::string(70000, '{'),
        "\xff\xfe\x00\x01"};

    const int kMaxRequests = 1500;
    const auto deadline = std::chrono::steady_clock::now() + 40s;
    int sent = 0;
    int server_errors = 0;
    for (; sent < kMaxRequests && std::chrono::steady_clock::now() < deadline; ++sent) {
        std::string request;
        bool incomplete = false;
        switch (rng() % 10) {
            case 0:  // pure noise
                request = random_bytes(rng() % 600);
                incomplete = true;
                break;
            case 1:  // a valid shape with noise in the path and headers
                request = pick(methods) + " /" + random_bytes(rng() % 40) +
                          " HTTP/1.1\r\nHost: x\r\n" + random_bytes(rng() % 60) + "\r\n\r\n";
                incomplete = true;
                break;
            default: {
                auto body = pick(bodies);
                if (rng() % 4 == 0 && !body.empty()) body[rng() % body.size()] ^= 0x20;
                request = pick(methods) + " " + pick(paths) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                          pick(auths);
                if (rng() % 3) request += "Content-Type: application/json\r\n";
                switch (rng() % 10) {
                    case 0:
                        request += "Content-Length: " + std::to_string(rng() % 100000) + "\r\n";
                        incomplete = true;
                        break;
                    case 1:
                        request += "Transfer-Encoding: chunked\r\n";
                        body = "5\r\nabcde\r\nzz\r\n";
                        incomplete = true;
                        break;
                    default:
                        request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
                }
                if (rng() % 7 == 0)
                    request += "X-" + random_bytes(8) + ": " + random_bytes(20) + "\r\n";
                request += "Connection: close\r\n\r\n" + body;
            }
        }
        auto response = wharf::test::raw_exchange(host.server->port(), request, 2s, incomplete);
        if (response.rfind("HTTP/1.1 5", 0) == 0) {
            ++server_errors;
            UNSCOPED_INFO("5xx for: " << request.substr(0, 200) << "\n" << response.substr(0, 300));
        }
    }
    INFO("sent " << sent << " requests");
    CHECK(sent >= 200);
    CHECK(server_errors == 0);

    auto health = host.client().get("/healthz");
    CHECK(health.status == 200);
    CHECK(host.client(kViewerToken).get("/api/jobs").status == 200);
    // Fuzzed POSTs with a valid operator token may have enqueued test/keep jobs
    // (mutating routes only ever name ids that do not exist); the jobs that were
    // there must be untouched.
    CHECK(snapshot() == before);
}
