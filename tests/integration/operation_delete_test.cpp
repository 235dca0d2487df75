// Operation submission with the real delete plugin (plugins/delete, loaded by
// the PluginManager from the build's plugin directory) on a generated
// SQLite repository: threshold boundary, refusals, force, stop and resume,
// and the HTTP routes.
#include <catch2/catch.hpp>
#include <fstream>

#include "base/error.hpp"
#include "config/config_admin.hpp"
#include "http/http_client.hpp"
#include "http/http_server.hpp"
#include "http/json_codec.hpp"
#include "http/users.hpp"
#include "jobs/job_engine.hpp"
#include "jobs/operation_submission.hpp"
#include "jobs/sqlite_job_store.hpp"
#include "modules/plugin_manager.hpp"
#include "repository/generator.hpp"
#include "repository/repository_check.hpp"
#include "repository/sqlite_repository.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace wharf::host;
using Json = nlohmann::json;
using wharf::test::eventually;
using wharf::test::TempDir;

namespace {

const std::string kViewer = "viewer-token-0123456789";
const std::string kOperator = "operator-token-0123456789";

void write_file(const fs::path& file, const std::string& text) {
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::trunc) << text;
}

std::string parent_of(const std::string& path) { return path.substr(0, path.rfind('/')); }

// The generated free assets: folder `f` (10 assets each) and group `g` (2 folders each).
std::string free_folder(std::uint64_t f) {
    ContentGeneratorOptions o;
    o.assets_root = "/content/dam/free";
    o.assets_per_folder = 10;
    o.folders_per_group = 2;
    return parent_of(generated_asset_path(o, f * 10));
}
std::string free_group(std::uint64_t g) { return parent_of(free_folder(g * 2)); }

boost::property_tree::ptree request(const std::string& json) {
    return json_to_ptree(Json::parse(json));
}

struct OpHost {
    TempDir dir{"wharf-ops"};
    ServiceRegistryImpl registry;
    std::unique_ptr<ConfigAdmin> config;
    std::unique_ptr<SqliteJobStore> store;
    std::unique_ptr<JobEngine> engine;
    std::shared_ptr<SqliteRepository> repository;
    std::shared_ptr<wharf::ServiceRegistration> repository_registration;
    std::unique_ptr<PluginManager> plugins;
    std::unique_ptr<OperationSubmission> submission;
    std::unique_ptr<HttpServer> server;

    explicit OpHost(std::int64_t threshold, std::int64_t batch_size = 500) {
        write_file(dir / "configs/wharf.yaml", "log_level: warn\n");
        write_file(dir / "configs/queues/default.yaml", "topics: [wharf/*]\nmax_parallel: 2\n");
        write_file(dir / "configs/users.yaml",
                   "users:\n  - name: vera\n    role: viewer\n    token_sha256: " +
                       token_sha256(kViewer) + "\n  - name: otto\n    role: operator\n" +
                       "    token_sha256: " + token_sha256(kOperator) + "\n");
        set_config(threshold, batch_size, false);
        ConfigAdminOptions co;
        co.config_dir = dir / "configs";
        co.registry = &registry;
        co.watch = false;
        config = std::make_unique<ConfigAdmin>(co);
        config->start();

        SqliteJobStoreOptions so;
        so.path = dir / "data/jobs.db";
        store = std::make_unique<SqliteJobStore>(so);
        store->migrate();
        JobEngineOptions eo;
        eo.flush_interval = 20ms;
        eo.stop_grace = 5s;
        engine = std::make_unique<JobEngine>(registry, *store, eo);
        engine->start();

        repository = SqliteRepository::open(dir / "data/repository");
        repository_registration = registry.register_service(
            Owner{"host", 0}, nullptr, wharf::interfaces::kRepository, repository, {}, 0);

        fs::create_directories(dir / "plugins");
        PluginManagerOptions po;
        po.plugins_dir = dir / "plugins";
        po.cache_dir = dir / "data/plugin-cache";
        po.plugin_data_dir = dir / "data/plugins";
        po.probe_executable = WHARF_PROBE_EXECUTABLE;
        po.watch = false;
        po.config_source = config.get();
        plugins = std::make_unique<PluginManager>(registry, po);
        plugins->start();
        auto target = dir / "plugins/delete.so";
        fs::copy_file(fs::path(WHARF_PLUGIN_DIR) / "delete.so", target);
        plugins->deploy(target);
        bool active = false;
        for (const auto& p : plugins->plugins())
            if (p.file == target && p.state == PluginState::active) active = true;
        REQUIRE(active);

        submission = std::make_unique<OperationSubmission>(
            registry, *engine->manager(),
            [this](std::string_view name) { return config->current(name); });
    }

    ~OpHost() {
        if (server) server->stop();
        plugins->stop_all();
        repository_registration->unregister();
        engine->stop();
    }

    void set_config(std::int64_t threshold, std::int64_t batch_size, bool rescan = true) {
        write_file(dir / "configs/operations/delete.yaml",
                   "threshold: " + std::to_string(threshold) +
                       "\nemail_enabled: false\nbatch_size: " + std::to_string(batch_size) + "\n");
        if (rescan) config->rescan();
    }

    void start_http() {
        HttpServerOptions ho;
        ho.listen = "127.0.0.1:0";
        ho.users_file = dir / "configs/users.yaml";
        HttpBackends b;
        b.jobs = engine->manager().get();
        b.store = store.get();
        b.registry = &registry;
        b.operations = submission.get();
        server = std::make_unique<HttpServer>(ho, b);
        server->start();
    }

    HttpClient client(const std::string& token) const {
        HttpClientOptions o;
        o.bearer_token = token;
        return HttpClient("http://127.0.0.1:" + std::to_string(server->port()), o);
    }

    /// Assets under /content/dam/free that nothing refers to, and generated
    /// content under /content/dam/gen that pages refer to.
    void generate(std::uint64_t free_assets = 40) {
        ContentGeneratorOptions free;
        free.seed = 7;
        free.assets_root = "/content/dam/free";
        free.assets = free_assets;
        free.assets_per_folder = 10;
        free.folders_per_group = 2;
        free.pages_root = "/content/free-pages";
        free.pages = 0;
        generate_content(*repository, free);
        ContentGeneratorOptions gen;
        gen.assets = 200;
        gen.assets_per_folder = 50;
        gen.folders_per_group = 2;
        gen.pages = 20;
        gen.pages_per_section = 10;
        gen.references_per_page = 5;
        generate_content(*repository, gen);
    }

    std::uint64_t nodes(const std::string& root) const {
        return repository->count(root, wharf::WalkOptions{});
    }

    bool consistent() const {
        auto report = check_repository(*repository);
        for (const auto& p : report.problems)
            if (p.severity == RepositoryProblem::Severity::error) UNSCOPED_INFO(format(p));
        return report.ok();
    }

    wharf::JobState wait_final(wharf::JobId id) {
        REQUIRE(eventually(
            [&] {
                auto j = engine->find(id);
                return j && wharf::is_final(j->job.state);
            },
            30s));
        return engine->find(id)->job.state;
    }
};

}  // namespace

TEST_CASE("a delete of exactly the threshold runs at once; one node more becomes a job",
          "[operations][delete]") {
    OpHost host(100);
    host.generate();
    const auto d0 = free_group(0), d1 = free_group(1);
    auto total = host.nodes(d0);
    REQUIRE(total > 2);
    host.set_config(static_cast<std::int64_t>(total), 500);

    auto sync =
        host.submission->submit("asset-delete", request(Json{{"paths", {d0}}}.dump()), "otto");
    REQUIRE(sync.mode == SubmissionResult::Mode::sync);
    CHECK(sync.count == total);
    CHECK(sync.run.outcome == "succeeded");
    CHECK(sync.run.progress_done == static_cast<std::int64_t>(total));
    REQUIRE(sync.run.report.size() == total + 1);
    CHECK(sync.run.report.front() == std::vector<std::string>{"path", "outcome", "message"});
    CHECK(sync.run.report[1][1] == "deleted");
    CHECK_FALSE(host.repository->get(d0).has_value());
    CHECK(host.consistent());

    auto above = host.nodes(d1);
    REQUIRE(above == total);  // the same shape: threshold + 1 needs one node more
    host.set_config(static_cast<std::int64_t>(total) - 1, 500);
    auto job =
        host.submission->submit("asset-delete", request(Json{{"paths", {d1}}}.dump()), "otto");
    REQUIRE(job.mode == SubmissionResult::Mode::job);
    CHECK(job.count == total);
    CHECK(job.job.topic == "wharf/asset/delete");
    CHECK(job.job.submitted_by == "otto");
    CHECK(host.wait_final(job.job.id) == wharf::JobState::succeeded);
    CHECK_FALSE(host.repository->get(d1).has_value());
    auto rows = host.engine->report(job.job.id, 0, 1000);
    CHECK(rows.size() == total + 1);
    CHECK(host.consistent());
}

TEST_CASE("every bad delete request is refused naming field and value; nothing changes",
          "[operations][delete]") {
    OpHost host(1000);
    host.generate();
    auto before = host.nodes("/");
    struct Case {
        const char* json;
        const char* field;
        const char* value;
        const char* message;
    };
    const Case cases[] = {
        {R"({})", "paths", "", "'paths' is required"},
        {R"({"paths": ["/content/dam/free/nope"]})", "paths", "/content/dam/free/nope",
         "no asset or folder at '/content/dam/free/nope'"},
        {R"({"paths": ["/content/dam/free/../gen"]})", "paths", "/content/dam/free/../gen",
         "is not a valid path: segment '..' at byte"},
        {R"({"paths": ["/content/dam/free/d0", "/content/dam/free/d0"]})", "paths",
         "/content/dam/free/d0", "is listed twice"},
        {R"({"paths": ["/content/dam/free", "/content/dam/free/d0"]})", "paths",
         "/content/dam/free/d0", "is inside '/content/dam/free'"},
        {R"({"paths": ["/"]})", "paths", "/", "the root '/' cannot be deleted"},
        {R"({"paths": ["/content/dam/free/d0"], "force": "maybe"})", "force", "maybe",
         "must be true or false"},
        {R"({"paths": ["/content/dam/free/d0"], "colour": "red"})", "colour", "red",
         "unknown field 'colour'"},
    };
    for (const auto& c : cases) {
        INFO(c.json);
        auto r = host.submission->submit("asset-delete", request(c.json), "otto");
        REQUIRE(r.mode == SubmissionResult::Mode::refused);
        CHECK(r.refusal.field == c.field);
        CHECK(r.refusal.value == c.value);
        CHECK_THAT(r.refusal.message, Catch::Contains(c.message));
    }
    CHECK_THROWS_AS(host.submission->submit("no-such-op", request("{}"), "otto"), Error);
    CHECK(host.nodes("/") == before);
    CHECK(host.consistent());
}

TEST_CASE("a referenced folder is refused without force and deleted with it, references listed",
          "[operations][delete]") {
    OpHost host(1000);
    host.generate();
    auto before = host.nodes("/");
    std::uint64_t external = 0;
    host.repository->referrers_under("/content/dam/gen", true, [&](const wharf::Reference&) {
        ++external;
        return true;
    });
    REQUIRE(external > 0);

    auto refused = host.submission->submit("asset-delete",
                                           request(R"({"paths": ["/content/dam/gen"]})"), "otto");
    REQUIRE(refused.mode == SubmissionResult::Mode::refused);
    CHECK(refused.refusal.field == "paths");
    CHECK(refused.refusal.value == "/content/dam/gen");
    CHECK_THAT(refused.refusal.message,
               Catch::Contains(std::to_string(external) + " references from outside"));
    CHECK_THAT(refused.refusal.message, Catch::Contains("/content/gen/en/"));
    CHECK_THAT(refused.refusal.message, Catch::Contains("force"));
    CHECK(host.nodes("/") == before);
    CHECK(host.consistent());

    auto forced = host.submission->submit(
        "asset-delete", request(R"({"paths": ["/content/dam/gen"], "force": true})"), "otto");
    REQUIRE(forced.mode == SubmissionResult::Mode::sync);
    CHECK(forced.run.outcome == "succeeded");
    std::uint64_t dangling = 0;
    for (const auto& row : forced.run.report)
        if (row.size() == 3 && row[1] == "reference left dangling") ++dangling;
    CHECK(dangling == external);
    CHECK_THAT(forced.run.message, Catch::Contains("references left dangling"));
    CHECK_FALSE(host.repository->get("/content/dam/gen").has_value());
    CHECK(host.consistent());
}

TEST_CASE("a stopped delete job ends stopped, the repository stays consistent, a re-run finishes",
          "[operations][delete]") {
    OpHost host(0, 1);
    host.generate(3000);
    auto total = host.nodes("/content/dam/free");
    auto first = host.submission->submit("asset-delete",
                                         request(R"({"paths": ["/content/dam/free"]})"), "otto");
    REQUIRE(first.mode == SubmissionResult::Mode::job);
    auto id = first.job.id;
    // A committed batch is visible as the job's repository checkpoint.
    REQUIRE(eventually(
        [&] {
            return host.repository->checkpoint("wharf.delete/job/" + std::to_string(id))
                .has_value();
        },
        20s));
    REQUIRE(host.engine->stop_job(id).status == wharf::JobActionResult::Status::done);
    CHECK(host.wait_final(id) == wharf::JobState::stopped);
    auto left = host.nodes("/content/dam/free");
    CHECK(left > 0);
    CHECK(left < total);
    CHECK(host.consistent());

    host.set_config(0, 500);
    auto again = host.submission->submit("asset-delete",
                                         request(R"({"paths": ["/content/dam/free"]})"), "otto");
    REQUIRE(again.mode == SubmissionResult::Mode::job);
    CHECK(again.count == left);
    CHECK(host.wait_final(again.job.id) == wharf::JobState::succeeded);
    CHECK_FALSE(host.repository->get("/content/dam/free").has_value());
    CHECK(host.consistent());
}

TEST_CASE("POST /api/operations/asset-delete answers 200, 202, 400, 403 and 404",
          "[operations][delete][http]") {
    OpHost host(100);
    host.generate();
    host.start_http();
    auto op = host.client(kOperator);

    auto list = host.client(kViewer).get("/api/operations");
    INFO(list.body);
    REQUIRE(list.status == 200);
    auto ops = Json::parse(list.body)["operations"];
    REQUIRE(ops.size() == 1);
    CHECK(ops[0]["name"] == "asset-delete");
    CHECK(ops[0]["topic"] == "wharf/asset/delete");
    CHECK(ops[0]["threshold"] == 100);
    CHECK(ops[0]["request_schema"][0]["name"] == "paths");

    auto sync =
        op.post_json("/api/operations/asset-delete", Json{{"paths", {free_folder(0)}}}.dump());
    REQUIRE(sync.status == 200);
    auto body = Json::parse(sync.body);
    CHECK(body["mode"] == "sync");
    CHECK(body["outcome"] == "succeeded");
    CHECK(body["report"][0] == Json::array({"path", "outcome", "message"}));

    host.set_config(1, 500);
    auto job =
        op.post_json("/api/operations/asset-delete", Json{{"paths", {free_folder(1)}}}.dump());
    REQUIRE(job.status == 202);
    auto jb = Json::parse(job.body);
    CHECK(jb["mode"] == "job");
    CHECK(job.header("Location") == "/api/jobs/" + std::to_string(jb["id"].get<long long>()));
    CHECK(host.wait_final(jb["id"].get<wharf::JobId>()) == wharf::JobState::succeeded);

    auto refused = op.post_json("/api/operations/asset-delete", R"({"paths": ["/a/../b"]})");
    REQUIRE(refused.status == 400);
    auto err = Json::parse(refused.body)["error"];
    CHECK(err["code"] == "invalid_request");
    CHECK(err["field"] == "paths");
    CHECK(err["value"] == "/a/../b");

    CHECK(host.client(kViewer)
              .post_json("/api/operations/asset-delete", R"({"paths": ["/content/dam/free"]})")
              .status == 403);
    auto unknown = op.post_json("/api/operations/nope", "{}");
    CHECK(unknown.status == 404);
    CHECK(Json::parse(unknown.body)["error"]["code"] == "unknown_operation");
    CHECK(host.repository->get("/content/dam/free").has_value());
    CHECK(host.consistent());
}
