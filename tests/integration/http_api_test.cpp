// The admin API against an in-process host: real store, engine, config admin,
// plugin manager and HttpServer on 127.0.0.1, talked to over real sockets.
#include <spdlog/sinks/ostream_sink.h>

#include <catch2/catch.hpp>
#include <set>
#include <sstream>

#include "base/log.hpp"
#include "integration/http_test_support.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using wharf::JobState;
using wharf::test::ApiHost;
using wharf::test::kAdminToken;
using wharf::test::kDisabledToken;
using wharf::test::kOperatorToken;
using wharf::test::kViewerToken;
using wharf::test::parse_json;

namespace {

// A concrete path for an OpenAPI template.
std::string concrete(const std::string& path, wharf::JobId id) {
    auto out = path;
    for (auto [from, to] : {std::pair<std::string, std::string>{"{id}", std::to_string(id)},
                            {"{operation}", "delete"}}) {
        auto at = out.find(from);
        if (at != std::string::npos) out.replace(at, from.size(), to);
    }
    return out;
}

std::string token_for(wharf::host::Role role) {
    switch (role) {
        case wharf::host::Role::viewer:
            return kViewerToken;
        case wharf::host::Role::operator_:
            return kOperatorToken;
        default:
            return kAdminToken;
    }
}

void check_error(const wharf::host::HttpResponse& r, int status, const std::string& code,
                 const std::string& field = "") {
    INFO(r.status << " " << r.body);
    CHECK(r.status == status);
    auto body = parse_json(r.body);
    REQUIRE(body.is_object());
    REQUIRE(body.contains("error"));
    CHECK(body["error"]["code"] == code);
    CHECK(body["error"]["message"].is_string());
    CHECK(!body["error"]["message"].get<std::string>().empty());
    if (!field.empty()) CHECK(body["error"]["field"] == field);
}

std::size_t job_count(ApiHost& host) {
    wharf::JobFilter f;
    f.limit = 1000;
    return host.store->list(f).jobs.size();
}

}  // namespace

TEST_CASE(
    "every protected route says 401 without a valid token and 403 naming the role for a "
    "weaker one, and changes nothing",
    "[http]") {
    ApiHost host;
    auto done = host.job_in_state("test/a", R"({"n":"1"})", JobState::succeeded);
    auto before = host.store->find(done.id);
    auto count = job_count(host);

    for (const auto& route : wharf::host::HttpServer::routes()) {
        auto path = concrete(route.path, done.id);
        std::string body = route.method == "POST" ? R"({"topic":"test/x"})" : "";
        INFO(route.method << " " << path);
        if (route.role == wharf::host::Role::none) {
            auto r = host.client().request(route.method, path);
            CHECK(r.status == 200);
            continue;
        }
        auto anonymous = host.client().request(route.method, path, body, "application/json");
        check_error(anonymous, 401, "unauthorized");
        CHECK(anonymous.header("WWW-Authenticate").find("Bearer") == 0);
        for (const auto& bad : {std::string("nonsense"), kDisabledToken, kViewerToken + "x"}) {
            auto r = host.client(bad).request(route.method, path, body, "application/json");
            check_error(r, 401, "unauthorized");
        }
        for (auto weaker : {wharf::host::Role::viewer, wharf::host::Role::operator_}) {
            if (weaker >= route.role) continue;
            auto r = host.client(token_for(weaker))
                         .request(route.method, path, body, "application/json");
            check_error(r, 403, "forbidden");
            auto j = parse_json(r.body);
            CHECK(j["error"]["required_role"] == to_string(route.role));
            CHECK(j["error"]["message"].get<std::string>().find(to_string(route.role)) !=
                  std::string::npos);
        }
    }
    CHECK(job_count(host) == count);
    auto after = host.store->find(done.id);
    REQUIRE(after);
    CHECK(after->state == before->state);
}

TEST_CASE("a viewer lists jobs newest first, filters them and pages with a keyset cursor",
          "[http]") {
    ApiHost host;
    std::vector<wharf::JobId> ids;
    for (int i = 0; i < 7; ++i)
        ids.push_back(host.job_in_state(i % 2 ? "test/odd" : "test/even",
                                        R"({"name":"item-)" + std::to_string(i) + R"("})",
                                        JobState::succeeded)
                          .id);
    auto viewer = host.client(kViewerToken);

    auto all = parse_json(viewer.get("/api/jobs").body);
    REQUIRE(all["jobs"].size() == 7);
    CHECK(all["jobs"][0]["id"] == ids.back());
    CHECK(all["next_cursor"].is_null());

    std::vector<wharf::JobId> paged;
    std::string next = "/api/jobs?limit=3";
    while (!next.empty()) {
        auto r = viewer.get(next);
        REQUIRE(r.status == 200);
        auto page = parse_json(r.body);
        CHECK(page["jobs"].size() <= 3);
        for (const auto& j : page["jobs"]) paged.push_back(j["id"].get<wharf::JobId>());
        next = page["next"].is_null() ? "" : page["next"].get<std::string>();
    }
    CHECK(paged == std::vector<wharf::JobId>(ids.rbegin(), ids.rend()));

    auto odd = parse_json(viewer.get("/api/jobs?topic=test/odd").body);
    CHECK(odd["jobs"].size() == 3);
    auto text = parse_json(viewer.get("/api/jobs?text=item-4").body);
    REQUIRE(text["jobs"].size() == 1);
    CHECK(text["jobs"][0]["id"] == ids[4]);
    auto by_label = parse_json(viewer.get("/api/jobs?state=Success").body);
    CHECK(by_label["jobs"].size() == 7);
    auto none = parse_json(viewer.get("/api/jobs?state=active,queued").body);
    CHECK(none["jobs"].empty());
    auto by_user = parse_json(viewer.get("/api/jobs?user=seed&queue=test").body);
    CHECK(by_user["jobs"].size() == 7);
    auto future = parse_json(viewer.get("/api/jobs?from=2100-01-01T00:00:00Z").body);
    CHECK(future["jobs"].empty());
    auto past = parse_json(viewer.get("/api/jobs?to=2000-01-01").body);
    CHECK(past["jobs"].empty());

    check_error(viewer.get("/api/jobs?limit=0"), 400, "invalid_argument", "limit");
    check_error(viewer.get("/api/jobs?limit=1001"), 400, "invalid_argument", "limit");
    check_error(viewer.get("/api/jobs?limit=ten"), 400, "invalid_argument", "limit");
    check_error(viewer.get("/api/jobs?state=happy"), 400, "invalid_argument", "state");
    check_error(viewer.get("/api/jobs?from=yesterday"), 400, "invalid_argument", "from");
    check_error(viewer.get("/api/jobs?cursor=-3"), 400, "invalid_argument", "cursor");
    check_error(viewer.get("/api/jobs?stat=active"), 400, "invalid_argument", "stat");
}

TEST_CASE("job details carry state, AEM label, progress, times and links for every state",
          "[http]") {
    ApiHost host;
    auto viewer = host.client(kViewerToken);
    struct Case {
        std::string topic;
        std::string payload;
        JobState state;
        std::string label;
    };
    std::vector<Case> cases = {
        {"test/a", R"({"outcome":"succeeded"})", JobState::succeeded, "Success"},
        {"test/a", R"({"outcome":"error"})", JobState::error, "Error"},
        {"test/noretry/a", R"({"outcome":"failed"})", JobState::given_up, "Fail"},
        {"test/retry/a", R"({"outcome":"failed"})", JobState::failed, "Fail"},
        {"test/a", R"({"block":"true"})", JobState::active, "Active"},
    };
    for (const auto& c : cases) {
        auto job = host.job_in_state(c.topic, c.payload, c.state);
        auto r = viewer.get("/api/jobs/" + std::to_string(job.id));
        INFO(r.body);
        REQUIRE(r.status == 200);
        auto j = parse_json(r.body);
        CHECK(j["id"] == job.id);
        CHECK(j["state"] == to_string(c.state));
        CHECK(j["status"] == c.label);
        CHECK(j["topic"] == c.topic);
        CHECK(j["queue"].get<std::string>().rfind("test", 0) == 0);
        CHECK(j["submitted_by"] == "seed");
        CHECK(j["created"].get<std::string>().back() == 'Z');
        CHECK(j["links"]["log"] == "/api/jobs/" + std::to_string(job.id) + "/log");
        if (c.state == JobState::active) {
            CHECK(j["deletable"] == false);
            CHECK(!j["started"].is_null());
            CHECK(wharf::test::eventually([&] {
                auto p = parse_json(viewer.get("/api/jobs/" + std::to_string(job.id)).body);
                return p["progress"]["done"] == 3 && p["progress"]["total"] == 10;
            }));
        }
    }
    // Queued (no consumer for the topic), scheduled and stopped.
    wharf::EnqueueOptions at;
    at.at = std::chrono::system_clock::now() + 1h;
    auto scheduled = host.engine->enqueue("test/a", {}, at);
    auto queued = host.engine->enqueue("nobody/consumes", {});
    auto stopped = host.engine->enqueue("nobody/consumes/either", {});
    REQUIRE(host.engine->stop_job(stopped.id));
    for (auto [id, label] : {std::pair{scheduled.id, "Scheduled"}, std::pair{queued.id, "Queued"},
                             std::pair{stopped.id, "Stopped"}}) {
        auto j = parse_json(viewer.get("/api/jobs/" + std::to_string(id)).body);
        CHECK(j["status"] == label);
    }
}

TEST_CASE("an operator enqueues a job: 201 with its id and Location, stored before the answer",
          "[http]") {
    ApiHost host;
    auto op = host.client(kOperatorToken);
    auto r = op.post_json("/api/jobs",
                          R"({"topic":"test/enqueued","payload":{"path":"/content/dam/a",
                              "count":3,"deep":true,"tags":["x","y"],"nested":{"k":"v"}}})");
    INFO(r.body);
    REQUIRE(r.status == 201);
    auto j = parse_json(r.body);
    auto id = j["id"].get<wharf::JobId>();
    CHECK(r.header("Location") == "/api/jobs/" + std::to_string(id));
    CHECK(j["submitted_by"] == "otto");
    // Durable before the 201: the store has it, with the payload as sent.
    auto stored = host.store->find(id);
    REQUIRE(stored);
    CHECK(stored->topic == "test/enqueued");
    CHECK(stored->submitted_by == "otto");
    CHECK(stored->payload.get<std::string>("path") == "/content/dam/a");
    CHECK(stored->payload.get<std::string>("count") == "3");
    CHECK(stored->payload.get<std::string>("nested.k") == "v");
    CHECK(wharf::test::eventually(
        [&] { return host.store->find(id)->state == JobState::succeeded; }));

    auto at = op.post_json("/api/jobs", R"({"topic":"test/later","at":"2100-01-01T00:00:00Z"})");
    REQUIRE(at.status == 201);
    CHECK(parse_json(at.body)["status"] == "Scheduled");
    auto cron = op.post_json(
        "/api/jobs", R"({"topic":"test/nightly","cron":"0 0 3 * * ?","schedule_name":"n"})");
    REQUIRE(cron.status == 201);
    CHECK(parse_json(cron.body)["cron"] == "0 0 3 * * ?");
}

TEST_CASE(
    "malformed JSON, wrong types, unknown fields and bad values are refused naming the "
    "field, and nothing is stored",
    "[http]") {
    ApiHost host;
    auto op = host.client(kOperatorToken);
    auto count = job_count(host);
    struct Bad {
        std::string body;
        std::string code;
        std::string field;
    };
    std::vector<Bad> cases = {
        {"", "invalid_argument", ""},
        {"{", "malformed_json", ""},
        {"{\"topic\": \"test/a\",}", "malformed_json", ""},
        {"[1,2]", "invalid_argument", ""},
        {"\"topic\"", "invalid_argument", ""},
        {R"({"payload":{}})", "invalid_argument", "topic"},
        {R"({"topic":42})", "invalid_argument", "topic"},
        {R"({"topic":""})", "invalid_argument", "topic"},
        {R"({"topic":"test/a","payload":"x"})", "invalid_argument", "payload"},
        {R"({"topic":"test/a","payload":[1]})", "invalid_argument", "payload"},
        {R"({"topic":"test/a","priority":1})", "invalid_argument", "priority"},
        {R"({"topic":"../../etc/passwd"})", "invalid_argument", "topic"},
        {R"({"topic":"test//a"})", "invalid_argument", "topic"},
        {R"({"topic":"test/a","at":"tomorrow"})", "invalid_argument", "at"},
        {R"({"topic":"test/a","at":"2001-01-01T00:00:00Z"})", "invalid_argument", "at"},
        {R"({"topic":"test/a","cron":"61 * * * * ?"})", "invalid_argument", "cron"},
        {R"({"topic":"test/a","cron":"0 0 1 * * ?","at":"2100-01-01T00:00:00Z"})",
         "invalid_argument", "cron"},
        {R"({"topic":"test/a","schedule_name":"x"})", "invalid_argument", "schedule_name"},
        {std::string(100, '[') + std::string(100, ']'), "malformed_json", ""},
    };
    for (const auto& c : cases) {
        INFO(c.body);
        check_error(op.post_json("/api/jobs", c.body), 400, c.code, c.field);
    }
    check_error(op.request("POST", "/api/jobs", R"({"topic":"test/a"})", "text/plain"), 415,
                "unsupported_media_type");
    CHECK(job_count(host) == count);
}

TEST_CASE("a body over the size limit is refused with 413 and nothing is stored", "[http]") {
    ApiHost::Options o;
    o.max_body_bytes = 4096;
    o.with_plugins = false;
    ApiHost host(o);
    auto op = host.client(kOperatorToken);
    std::string big = R"({"topic":"test/a","payload":{"blob":")" + std::string(10000, 'x') + "\"}}";
    auto r = op.post_json("/api/jobs", big);
    check_error(r, 413, "payload_too_large");
    // A claimed length far beyond the limit is refused before the body is read.
    auto raw = wharf::test::raw_exchange(
        host.server->port(),
        "POST /api/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kOperatorToken +
            "\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n{");
    INFO(raw);
    CHECK(raw.rfind("HTTP/1.1 413", 0) == 0);
    CHECK(job_count(host) == 0);
    CHECK(host.client().get("/healthz").status == 200);
}

TEST_CASE("unknown ids, malformed ids and traversal attempts get 4xx and change nothing",
          "[http]") {
    ApiHost host;
    auto done = host.job_in_state("test/a", "{}", JobState::succeeded);
    auto op = host.client(kOperatorToken);
    auto admin = host.client(kAdminToken);
    for (const auto& path : {"/api/jobs/999999", "/api/jobs/0", "/api/jobs/abc",
                             "/api/jobs/99999999999999999999999", "/api/jobs/-1"}) {
        INFO(path);
        check_error(op.get(path), 404, "not_found");
        check_error(op.request("DELETE", path), 404, "not_found");
    }
    check_error(op.get("/api/jobs/999999/log"), 404, "not_found", "id");
    check_error(op.get("/api/jobs/999999/report.csv"), 404, "not_found", "id");
    check_error(op.post_json("/api/jobs/999999/stop", ""), 404, "not_found", "id");
    for (const auto& path :
         {"/api/jobs/../../etc/passwd", "/api/jobs/%2e%2e/%2e%2e/etc/passwd",
          "/api/jobs/..%2f..%2fetc%2fpasswd", "/../../etc/passwd", "/api/%2e%2e/metrics",
          "/api/jobs/1%00", "/api/repo/..%2f..%2fetc", "/api/plugins/../config"}) {
        INFO(path);
        auto r = admin.get(path);
        CHECK(r.status >= 400);
        CHECK(r.status < 500);
        CHECK(r.body.find("root:") == std::string::npos);
        auto d = admin.request("DELETE", path);
        CHECK(d.status >= 400);
        CHECK(d.status < 500);
    }
    CHECK(host.store->find(done.id));
    CHECK(job_count(host) == 1);
}

TEST_CASE(
    "stop and delete: Active and Queued jobs cannot be deleted (409 with the reason), a "
    "stopped one can",
    "[http]") {
    ApiHost host;
    auto op = host.client(kOperatorToken);
    auto active = host.job_in_state("test/a", R"({"block":"true"})", JobState::active);
    auto queued = host.engine->enqueue("nobody/consumes", {});
    auto done = host.job_in_state("test/a", "{}", JobState::succeeded);

    auto refused = op.del("/api/jobs/" + std::to_string(active.id));
    check_error(refused, 409, "conflict", "id");
    CHECK(parse_json(refused.body)["error"]["message"].get<std::string>().rfind("Active", 0) == 0);
    auto refused_queued = op.del("/api/jobs/" + std::to_string(queued.id));
    check_error(refused_queued, 409, "conflict", "id");
    CHECK(parse_json(refused_queued.body)["error"]["message"].get<std::string>().rfind("Queued",
                                                                                       0) == 0);
    CHECK(host.store->find(active.id));
    CHECK(host.store->find(queued.id));

    auto stop = op.post_json("/api/jobs/" + std::to_string(active.id) + "/stop", "");
    REQUIRE(stop.status == 200);
    CHECK(parse_json(stop.body)["stop_requested"] == true);
    CHECK(wharf::test::eventually(
        [&] { return host.store->find(active.id)->state == JobState::stopped; }));
    check_error(op.post_json("/api/jobs/" + std::to_string(done.id) + "/stop", ""), 409,
                "conflict");

    auto stop_queued = op.post_json("/api/jobs/" + std::to_string(queued.id) + "/stop", "");
    REQUIRE(stop_queued.status == 200);
    CHECK(parse_json(stop_queued.body)["status"] == "Stopped");

    for (auto id : {active.id, queued.id, done.id}) {
        auto r = op.del("/api/jobs/" + std::to_string(id));
        CHECK(r.status == 204);
        CHECK(!host.store->find(id));
        check_error(op.get("/api/jobs/" + std::to_string(id)), 404, "not_found");
    }
}

TEST_CASE("a job's log pages by sequence number and its report downloads as CSV", "[http]") {
    ApiHost host;
    auto viewer = host.client(kViewerToken);
    auto job = host.job_in_state("test/a", R"({"rows":"2500"})", JobState::succeeded);
    auto id = std::to_string(job.id);

    auto log = parse_json(viewer.get("/api/jobs/" + id + "/log").body);
    REQUIRE(log["lines"].size() == 2);
    CHECK(log["lines"][0]["line"] == "started test/a");
    CHECK(log["lines"][1]["seq"] == 2);
    CHECK(log["complete"] == true);
    auto first = parse_json(viewer.get("/api/jobs/" + id + "/log?limit=1").body);
    REQUIRE(first["lines"].size() == 1);
    auto rest =
        parse_json(viewer.get("/api/jobs/" + id + "/log?after=" + first["next_after"].dump()).body);
    REQUIRE(rest["lines"].size() == 1);
    CHECK(rest["lines"][0]["line"] == "done");
    auto text = viewer.get("/api/jobs/" + id + "/log?format=text");
    CHECK(text.header("Content-Type").find("text/plain") == 0);
    CHECK(text.body.find(" started test/a\n") != std::string::npos);
    check_error(viewer.get("/api/jobs/" + id + "/log?after=x"), 400, "invalid_argument", "after");

    auto report = viewer.get("/api/jobs/" + id + "/report.csv");
    REQUIRE(report.status == 200);
    CHECK(report.header("Content-Type").find("text/csv") == 0);
    CHECK(report.header("Content-Disposition").find("job-" + id + "-report.csv") !=
          std::string::npos);
    std::size_t lines = 0;
    for (char c : report.body) lines += c == '\n';
    CHECK(lines == 2501);
    CHECK(report.body.rfind("path,outcome\r\n\"/content/dam/a0,\"\"x\"\"\",ok\r\n", 0) == 0);
}

TEST_CASE("jobs.csv is the job list as CSV, every match streamed", "[http]") {
    ApiHost host;
    for (int i = 0; i < 5; ++i) host.job_in_state("test/csv", "{}", JobState::succeeded);
    host.job_in_state("test/other", R"({"wharf:description":"Move 3 assets, \"quoted\""})",
                      JobState::succeeded);
    auto viewer = host.client(kViewerToken);
    auto all = viewer.get("/api/jobs.csv");
    REQUIRE(all.status == 200);
    CHECK(all.body.rfind("id,status,state,topic,description,", 0) == 0);
    std::size_t lines = 0;
    for (char c : all.body) lines += c == '\n';
    CHECK(lines == 7);
    CHECK(all.body.find("\"Move 3 assets, \"\"quoted\"\"\"") != std::string::npos);
    auto filtered = viewer.get("/api/jobs.csv?topic=test/csv&limit=2");
    lines = 0;
    for (char c : filtered.body) lines += c == '\n';
    CHECK(lines == 3);
    check_error(viewer.get("/api/jobs.csv?state=nope"), 400, "invalid_argument", "state");
}

TEST_CASE("queues, plugins and config show what the host runs", "[http]") {
    ApiHost host;
    host.job_in_state("test/noretry/x", R"({"outcome":"failed"})", JobState::given_up);
    auto viewer = host.client(kViewerToken);

    auto queues = parse_json(viewer.get("/api/queues").body)["queues"];
    std::map<std::string, json> by_name;
    for (const auto& q : queues) by_name[q["name"]] = q;
    REQUIRE(by_name.count("default"));
    REQUIRE(by_name.count("test-noretry"));
    CHECK(by_name["default"]["title"] == "Async Operation Default Queue Config");
    CHECK(by_name["test-noretry"]["max_parallel"] == 4);
    CHECK(by_name["test-noretry"]["retries"] == 0);
    CHECK(by_name["test-noretry"]["jobs"]["given_up"] == 1);
    CHECK(by_name["test-noretry"]["state"] == "live");
    CHECK(by_name["test-noretry"].contains("running"));

    REQUIRE(host.plugins->wait_until(
        [](const auto& all) {
            int settled = 0;
            for (const auto& p : all)
                settled += p.state == wharf::host::PluginState::active ||
                           p.state == wharf::host::PluginState::failed;
            return settled == 2;
        },
        10s));
    auto plugins = parse_json(viewer.get("/api/plugins").body)["plugins"];
    REQUIRE(plugins.size() == 2);
    std::map<std::string, json> by_file;
    for (const auto& p : plugins) by_file[p["file"]] = p;
    CHECK(by_file["greeter_v1.so"]["state"] == "active");
    CHECK(by_file["greeter_v1.so"]["abi"] == "1.2");
    CHECK(!by_file["greeter_v1.so"]["version"].get<std::string>().empty());
    CHECK(by_file["throws_in_start.so"]["state"] == "failed");
    CHECK(by_file["throws_in_start.so"]["reason"].get<std::string>().find("start failed") !=
          std::string::npos);

    auto config = parse_json(viewer.get("/api/config").body);
    std::map<std::string, json> files;
    for (const auto& f : config["files"]) files[f["file"]] = f;
    CHECK(files["wharf.yaml"]["state"] == "applied");
    CHECK(files["queues/test-retry.yaml"]["applied_version"] == 1);
    CHECK(!config["schemas"].empty());

    // A refused edit shows with file:line:col once an admin rescans.
    wharf::test::write_text(host.dir / "configs/queues/test-retry.yaml",
                            "topics: [test/retry/*]\nmax_parallel: 1.5\n");
    check_error(host.client(kOperatorToken).post_json("/api/config/rescan", ""), 403, "forbidden");
    auto rescanned = host.client(kAdminToken).post_json("/api/config/rescan", "");
    REQUIRE(rescanned.status == 200);
    bool refused = false;
    INFO(rescanned.body);
    auto rescanned_files = parse_json(rescanned.body)["files"];
    for (const auto& f : rescanned_files) {
        if (f["file"] != "queues/test-retry.yaml") continue;
        refused = f["state"] == "refused" && f["errors"][0]["text"].get<std::string>().find(
                                                 "test-retry.yaml:2:") != std::string::npos;
    }
    CHECK(refused);
}

TEST_CASE("POST /api/operations answers 404 unknown operation until operations land", "[http]") {
    ApiHost host;
    check_error(host.client(kOperatorToken).post_json("/api/operations/delete", "{}"), 404,
                "unknown_operation", "operation");
    check_error(host.client(kViewerToken).post_json("/api/operations/delete", "{}"), 403,
                "forbidden");
}

TEST_CASE("healthz and openapi.json need no token; the document describes every route", "[http]") {
    ApiHost host;
    auto anonymous = host.client();
    auto health = anonymous.get("/healthz");
    REQUIRE(health.status == 200);
    auto h = parse_json(health.body);
    CHECK(h["live"] == true);
    CHECK(h["ready"] == true);
    CHECK(h["checks"]["store"]["ok"] == true);

    auto doc = anonymous.get("/api/openapi.json");
    REQUIRE(doc.status == 200);
    auto api = parse_json(doc.body);
    REQUIRE(api.is_object());
    CHECK(api["openapi"].get<std::string>().rfind("3.", 0) == 0);
    for (const auto& route : wharf::host::HttpServer::routes()) {
        std::string method = route.method;
        for (auto& c : method) c = static_cast<char>(std::tolower(c));
        INFO(route.method << " " << route.path);
        REQUIRE(api["paths"].contains(route.path));
        REQUIRE(api["paths"][route.path].contains(method));
        auto role = api["paths"][route.path][method]["x-wharf-role"].get<std::string>();
        CHECK(role == to_string(route.role));
    }
}

TEST_CASE(
    "users.yaml: a bad edit is refused with file:line:col and the users in force stay; a "
    "good one applies",
    "[http]") {
    ApiHost host;
    auto users_file = host.dir / "configs/users.yaml";
    wharf::host::UserDirectory users(users_file, 0ms);
    REQUIRE(users.load().empty());
    CHECK(users.size() == 3);

    wharf::test::write_text(users_file, "users:\n  - name: x\n    role: root\n    token_sha256: " +
                                            std::string(64, 'a') + "\n");
    auto problems = users.load();
    REQUIRE(!problems.empty());
    CHECK(problems[0].to_string().find("users.yaml:3:") != std::string::npos);
    CHECK(users.authenticate(kViewerToken));

    wharf::test::write_text(users_file,
                            "users:\n  - name: x\n    role: viewer\n    token_sha256: abc\n");
    problems = users.load();
    REQUIRE(!problems.empty());
    CHECK(problems[0].to_string().find("64 hex digits") != std::string::npos);

    // The server re-reads the file when it changes: a new token works, old ones stop.
    wharf::test::write_text(users_file,
                            "users:\n  - name: neo\n    role: admin\n    token_sha256: " +
                                wharf::host::token_sha256("fresh-token") + "\n");
    CHECK(wharf::test::eventually(
        [&] { return host.client("fresh-token").get("/api/jobs").status == 200; }, 5s));
    CHECK(host.client(kViewerToken).get("/api/jobs").status == 401);
}

TEST_CASE("tokens never appear in the log, even at debug level", "[http]") {
    std::ostringstream captured;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
    auto log = wharf::host::logger("http");
    log->sinks().push_back(sink);
    auto old_level = log->level();
    log->set_level(spdlog::level::debug);
    {
        ApiHost host;
        host.client(kOperatorToken).post_json("/api/jobs", R"({"topic":"test/a"})");
        host.client(kViewerToken).get("/api/jobs");
        host.client("wrong-secret-token").get("/api/jobs");
        host.client(kViewerToken).request("DELETE", "/api/jobs/1");
    }
    log->sinks().pop_back();
    log->set_level(old_level);
    auto text = captured.str();
    CHECK(text.find("http request method=GET route=/api/jobs status=200 user=vera") !=
          std::string::npos);
    for (const auto& secret : {kOperatorToken, kViewerToken, std::string("wrong-secret-token")})
        CHECK(text.find(secret) == std::string::npos);
}
