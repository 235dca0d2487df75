// The move plugin (plugins/move) loaded through a real PluginManager, on a
// SqliteRepository in a temp dir: inline runs with an in-memory JobContext,
// jobs through the JobEngine, refusals, stop and resume, and a SIGKILLed run
// that resumes. The SIGKILL child is this test binary itself, running the
// hidden case "[.move_crash_child]" (so no extra executable is needed).
#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>

#include "jobs/job_engine.hpp"
#include "jobs/sqlite_job_store.hpp"
#include "move_crash/move_harness.hpp"
#include "repository/generator.hpp"
#include "repository/repository_check.hpp"
#include "support/child_process.hpp"
#include "support/job_host.hpp"
#include "support/operation_checks.hpp"
#include "support/repository_seed.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace wharf;
using wharf::host::SqliteRepository;
using wharf::test::check_refused;
using wharf::test::eventually;
using wharf::test::MemoryContext;
using wharf::test::move_request;
using wharf::test::MovePluginHost;
using wharf::test::open_job_store;
using wharf::test::start_job_engine;
using wharf::test::TempDir;
using wharf::test::test_engine_options;
using wharf::test::wait_final;

namespace {

fs::path plugin_file() {
    auto path = fs::path(WHARF_PLUGIN_DIR) / "move.so";
    INFO("build the move plugin (plugins/move) first: " << path);
    REQUIRE(fs::exists(path));
    return path;
}

std::uint64_t check_errors(const SqliteRepository& repo) {
    auto report = host::check_repository(repo);
    for (const auto& p : report.problems)
        if (p.severity == host::RepositoryProblem::Severity::error) UNSCOPED_INFO(host::format(p));
    return report.errors();
}

std::uint64_t references_under(const Repository& repo, const std::string& root) {
    return repo.referrers_under(root, false, [](const Reference&) { return true; });
}

// Every node path and every reference row: two repositories with the same
// fingerprint hold the same tree and point at the same paths.
std::vector<std::string> fingerprint(const Repository& repo) {
    std::vector<std::string> out;
    repo.walk("/", WalkOptions{}, [&](const Node& n) {
        out.push_back("node " + n.path + " " + std::to_string(static_cast<int>(n.kind)) + " " +
                      n.text);
        return true;
    });
    repo.referrers_under("/content", false, [&](const Reference& r) {
        out.push_back("ref " + r.from_path + " " + r.property + " " + r.to_path);
        return true;
    });
    for (const auto& rel : repo.live_relationships(""))
        out.push_back("live " + rel.blueprint + " -> " + rel.live_copy);
    std::sort(out.begin(), out.end());
    return out;
}

// A repository of generated assets and pages that point at them.
host::ContentGeneratorOptions generated(std::uint64_t assets, std::uint64_t pages) {
    host::ContentGeneratorOptions o;
    o.assets = assets;
    o.assets_per_folder = 100;
    o.folders_per_group = 5;
    o.pages = pages;
    o.references_per_page = 10;
    o.min_binary_bytes = 16;
    o.max_binary_bytes = 32;
    return o;
}

struct Fixture {
    TempDir dir{"wharf-move"};
    std::shared_ptr<SqliteRepository> repo = SqliteRepository::open(dir / "repo");
    std::unique_ptr<MovePluginHost> host;

    void load() {
        host = std::make_unique<MovePluginHost>(repo, dir / "host", plugin_file(),
                                                WHARF_PROBE_EXECUTABLE);
        REQUIRE(host->operation("asset-move"));
        REQUIRE(host->operation("page-move"));
    }

    std::shared_ptr<Operation> asset_move() const { return host->operation("asset-move"); }
    std::shared_ptr<Operation> page_move() const { return host->operation("page-move"); }

    void folder(const std::string& path) { test::create_folder(*repo, path); }

    void page(const std::string& path, std::string text = {}, PropertyMap properties = {}) {
        test::create_page(*repo, path, std::move(text), std::move(properties));
    }

    void asset(const std::string& path, PropertyMap properties = {}) {
        auto w = repo->write_binary();
        w->write(path.data(), path.size());
        auto info = w->finish("application/octet-stream");
        auto s = repo->open_session();
        Node n;
        n.path = path;
        n.kind = NodeKind::asset;
        n.binary = info;
        n.properties = std::move(properties);
        s->create(n);
        s->commit();
    }
};

}  // namespace

TEST_CASE("an asset move of a folder with thousands of referrers rewrites every reference and "
          "the repository check passes",
          "[move]") {
    Fixture f;
    auto options = generated(1000, 800);
    host::generate_content(*f.repo, options);
    f.folder("/content/dam/target");
    f.load();
    const std::string source = "/content/dam/gen/d000";
    auto before_nodes = f.repo->count(source, WalkOptions{});
    auto before_refs = references_under(*f.repo, source);
    REQUIRE(before_refs > 1000);

    auto request = move_request({source}, "/content/dam/target");
    f.asset_move()->validate(request);
    MemoryContext ctx(request);
    auto result = f.asset_move()->run(ctx);
    INFO(result.message);
    REQUIRE(result.outcome == JobResult::Outcome::succeeded);

    CHECK_FALSE(f.repo->get(source));
    CHECK(f.repo->count("/content/dam/target/d000", WalkOptions{}) == before_nodes);
    CHECK(references_under(*f.repo, source) == 0);
    CHECK(references_under(*f.repo, "/content/dam/target/d000") == before_refs);
    CHECK(check_errors(*f.repo) == 0);
    CHECK(ctx.done() == ctx.total());
    REQUIRE(ctx.rows().size() == 2);
    CHECK(ctx.rows()[0] == std::vector<std::string>{"source", "destination", "moved nodes",
                                                     "references rewritten", "outcome",
                                                     "message"});
    CHECK(ctx.rows()[1][0] == source);
    CHECK(ctx.rows()[1][1] == "/content/dam/target/d000");
    CHECK(ctx.rows()[1][2] == std::to_string(before_nodes));
    CHECK(std::stoull(ctx.rows()[1][3]) >= before_refs);
    CHECK(ctx.rows()[1][4] == "moved");
}

TEST_CASE("a page move rewrites links in page text and Path properties and live "
          "relationships follow the moved pages",
          "[move]") {
    Fixture f;
    f.folder("/content/site");
    f.page("/content/site/en");
    f.page("/content/site/en/a");
    f.page("/content/site/en/a/x", R"(<a href="/content/site/en/b">b</a>)");
    f.page("/content/site/en/b");
    f.page("/content/site/en/c",
           R"(<p><a href="/content/site/en/a/x">x</a> <a href="/content/site/en/a">a</a></p>)",
           {{"related", Property::path("/content/site/en/a/x")}});
    f.page("/content/site/fr");
    f.page("/content/site/fr/a");
    {
        auto s = f.repo->open_session();
        // One relationship whose live copy moves, one whose blueprint moves.
        s->set_live_relationship({"/content/site/fr/a", "/content/site/en/a", {"standard"}, true,
                                  {}});
        s->set_live_relationship({"/content/site/en/a/x", "/content/site/fr/a/x", {"standard"},
                                  true, {}});
        s->commit();
    }
    f.load();
    auto request = move_request({"/content/site/en/a"}, "/content/site/en/b");
    f.page_move()->validate(request);
    CHECK(f.page_move()->count(request) == 3);
    MemoryContext ctx(request);
    auto result = f.page_move()->run(ctx);
    INFO(result.message);
    REQUIRE(result.outcome == JobResult::Outcome::succeeded);

    auto c = f.repo->get("/content/site/en/c");
    REQUIRE(c);
    CHECK(c->text ==
          R"(<p><a href="/content/site/en/b/a/x">x</a> <a href="/content/site/en/b/a">a</a></p>)");
    CHECK(c->properties.at("related") == Property::path("/content/site/en/b/a/x"));
    CHECK(f.repo->get("/content/site/en/b/a/x"));
    CHECK(references_under(*f.repo, "/content/site/en/a") == 0);
    auto live = f.repo->live_relationship_of("/content/site/en/b/a");
    REQUIRE(live);
    CHECK(live->blueprint == "/content/site/fr/a");
    auto followed = f.repo->live_relationships("/content/site/en/b/a/x");
    REQUIRE(followed.size() == 1);
    CHECK(followed[0].live_copy == "/content/site/fr/a/x");
    CHECK(f.repo->live_relationships("/content/site/en/a/x").empty());
    CHECK(check_errors(*f.repo) == 0);
    REQUIRE(ctx.rows().size() == 2);
    CHECK(ctx.rows()[1][5].find("2 live relationships") != std::string::npos);
}

TEST_CASE("a name conflict fails the request under fail and is renamed name-1, name-2 under "
          "rename",
          "[move]") {
    Fixture f;
    f.folder("/content/dam/a/photos");
    f.folder("/content/dam/b/photos");
    f.folder("/content/dam/dest/photos");
    f.folder("/content/dam/dest/photos-1");
    f.asset("/content/dam/a/photos/p.jpg");
    f.asset("/content/dam/b/photos/q.jpg");
    f.asset("/content/dam/a/logo.png");
    f.asset("/content/dam/dest/logo.png");
    f.load();
    auto op = f.asset_move();

    auto fail = move_request({"/content/dam/a/photos"}, "/content/dam/dest");
    try {
        op->validate(fail);
        FAIL("no refusal");
    } catch (const OperationRefused& e) {
        CHECK(e.field() == "sources[0]");
        CHECK(std::string(e.what()).find("'/content/dam/dest/photos' exists") !=
              std::string::npos);
    }

    auto rename = move_request({"/content/dam/a/photos", "/content/dam/b/photos",
                                "/content/dam/a/logo.png"},
                               "/content/dam/dest", {}, "rename");
    op->validate(rename);
    MemoryContext ctx(rename);
    auto result = op->run(ctx);
    INFO(result.message);
    REQUIRE(result.outcome == JobResult::Outcome::succeeded);
    CHECK(f.repo->get("/content/dam/dest/photos-2/p.jpg"));
    CHECK(f.repo->get("/content/dam/dest/photos-3/q.jpg"));
    CHECK(f.repo->get("/content/dam/dest/logo-1.png"));
    REQUIRE(ctx.rows().size() == 4);
    CHECK(ctx.rows()[1][1] == "/content/dam/dest/photos-2");
    CHECK(ctx.rows()[1][5] == "renamed to 'photos-2' (name taken)");
    CHECK(check_errors(*f.repo) == 0);
}

TEST_CASE("every invalid move request is refused naming the field and value and changes "
          "nothing",
          "[move]") {
    Fixture f;
    f.folder("/content/dam/a/sub");
    f.folder("/content/dam/dest");
    f.asset("/content/dam/a/x.bin");
    f.asset("/content/dam/dest/x.bin");
    f.folder("/content/site");
    f.page("/content/site/en");
    f.page("/content/site/en/p", R"(<a href="/content/dam/a/x.bin">x</a>)");
    f.load();
    auto before = fingerprint(*f.repo);

    struct Case {
        const char* what;
        bool page;
        boost::property_tree::ptree request;
        std::string field, value, message;
    };
    boost::property_tree::ptree no_sources;
    no_sources.put("destination", "/content/dam/dest");
    std::vector<Case> cases = {
        {"no sources", false, no_sources, "sources", "", "give at least one path"},
        {"missing source", false, move_request({"/content/dam/nope"}, "/content/dam/dest"),
         "sources[0]", "/content/dam/nope", "'/content/dam/nope' does not exist"},
        {"missing destination", false, move_request({"/content/dam/a"}, "/content/dam/nope"),
         "destination", "/content/dam/nope", "'/content/dam/nope' does not exist"},
        {"destination is an asset", false,
         move_request({"/content/dam/a/sub"}, "/content/dam/a/x.bin"), "destination",
         "/content/dam/a/x.bin", "is an asset, not a folder"},
        {"page destination not a page", true,
         move_request({"/content/site/en/p"}, "/content/dam/dest"), "destination",
         "/content/dam/dest", "is a folder, not a page"},
        {"into its own subtree", false, move_request({"/content/dam/a"}, "/content/dam/a/sub"),
         "sources[0]", "/content/dam/a", "into its own subtree"},
        {"onto itself", false, move_request({"/content/dam/a/sub"}, "/content/dam/a"),
         "sources[0]", "/content/dam/a/sub", "onto itself"},
        {"conflict under fail", false,
         move_request({"/content/dam/a/x.bin"}, "/content/dam/dest", {}, "fail"), "sources[0]",
         "x.bin", "exists (conflict: fail"},
        {"dot-dot in a path", false, move_request({"/content/dam/../a"}, "/content/dam/dest"),
         "sources[0]", "/content/dam/../a", "segment '..' at byte"},
        {"control character", false,
         move_request({"/content/dam/a"}, std::string("/content/dam/de\x01st")), "destination",
         "/content/dam/de\x01st", "control character"},
        {"bad character in a new name", false,
         move_request({"/content/dam/a/sub"}, "/content/dam/dest", {"a:b"}), "names[0]", "a:b",
         "the character ':'"},
        {"names of the wrong length", false,
         move_request({"/content/dam/a/sub"}, "/content/dam/dest", {"x", "y"}), "names",
         "2 names", "one name per source"},
        {"unknown conflict policy", false,
         move_request({"/content/dam/a/sub"}, "/content/dam/dest", {}, "merge"), "conflict",
         "merge", "not one of"},
        {"asset move of a page", false, move_request({"/content/site/en/p"}, "/content/dam/dest"),
         "sources[0]", "/content/site/en/p", "use page-move"},
        {"page move of a folder", true, move_request({"/content/dam/a"}, "/content/site/en"),
         "sources[0]", "/content/dam/a", "use asset-move"},
        {"overlapping sources", false,
         move_request({"/content/dam/a", "/content/dam/a/sub"}, "/content/dam/dest"),
         "sources[1]", "/content/dam/a/sub", "overlaps"},
        {"the root", false, move_request({"/"}, "/content/dam/dest"), "sources[0]", "/",
         "root cannot be moved"},
    };
    for (const auto& c : cases) {
        SECTION(c.what) {
            auto op = c.page ? f.page_move() : f.asset_move();
            check_refused(*op, c.request, c.field, c.value, c.message);
            // A job with the same request changed nothing either.
            CHECK(fingerprint(*f.repo) == before);
        }
    }
}

TEST_CASE("a stopped move resumes from its checkpoint to the same end state as an "
          "uninterrupted one",
          "[move]") {
    auto options = generated(600, 1000);
    Fixture reference;
    host::generate_content(*reference.repo, options);
    reference.folder("/content/dam/target");
    reference.load();
    auto request = move_request({"/content/dam/gen/d000"}, "/content/dam/target");
    MemoryContext whole(request);
    REQUIRE(reference.asset_move()->run(whole).outcome == JobResult::Outcome::succeeded);

    Fixture f;
    host::generate_content(*f.repo, options);
    f.folder("/content/dam/target");
    f.load();
    MemoryContext first(request);
    first.stop_after_increments(3);  // the move, then two referrer batches
    auto stopped = f.asset_move()->run(first);
    CHECK(stopped.outcome != JobResult::Outcome::succeeded);
    CHECK_FALSE(f.repo->get("/content/dam/gen/d000"));
    CHECK(references_under(*f.repo, "/content/dam/gen/d000") > 0);  // half-way, on purpose
    CHECK(check_errors(*f.repo) == 0);

    // Submitting the same request again is accepted (it resumes) and finishes.
    f.asset_move()->validate(request);
    MemoryContext second(request);
    auto resumed = f.asset_move()->run(second);
    INFO(resumed.message);
    REQUIRE(resumed.outcome == JobResult::Outcome::succeeded);
    CHECK(std::any_of(second.lines().begin(), second.lines().end(),
                      [](const auto& l) { return l.find("resuming") != std::string::npos; }));
    CHECK(fingerprint(*f.repo) == fingerprint(*reference.repo));
    CHECK(check_errors(*f.repo) == 0);
    CHECK(second.rows() == whole.rows());
}

namespace {

class MoveQueue final : public wharf::Queue {
public:
    MoveQueue() : settings_(std::make_shared<wharf::QueueSettings>()) {
        settings_->name = "moves";
        settings_->topics = {"wharf/asset/move", "wharf/page/move"};
        settings_->type = wharf::QueueType::parallel;
        settings_->max_parallel = 2;
        settings_->retries = 0;
    }
    const std::string& name() const override { return settings_->name; }
    std::shared_ptr<const wharf::QueueSettings> settings() const override { return settings_; }
    bool matches(std::string_view topic) const override {
        return topic == "wharf/asset/move" || topic == "wharf/page/move";
    }

private:
    std::shared_ptr<wharf::QueueSettings> settings_;
};

}  // namespace

namespace {

// The job engine on a temp store, with one queue for both move topics and the
// move plugin's consumers from `f`'s registry.
struct MoveEngine {
    std::unique_ptr<host::SqliteJobStore> store;
    std::unique_ptr<host::JobEngine> engine;
    std::shared_ptr<wharf::ServiceRegistration> queue;

    explicit MoveEngine(Fixture& f) : store(open_job_store(f.dir / "jobs/jobs.db")) {
        auto eo = test_engine_options();
        eo.shutdown_grace = 5s;
        engine = start_job_engine(f.host->registry(), *store, eo);
        wharf::Properties qp;
        qp.put("queue.name", "moves");
        queue = f.host->registry().register_service(host::Owner{"test", 0}, nullptr,
                                                    wharf::interfaces::kQueue,
                                                    std::make_shared<MoveQueue>(), qp, 0);
    }
    ~MoveEngine() {
        queue->unregister();
        engine->stop();
    }

    std::optional<host::JobView> finish(JobId id) const { return wait_final(*engine, id); }
};

}  // namespace

TEST_CASE("an asset move runs as a job through the job engine with progress and a report",
          "[move][jobs]") {
    Fixture f;
    host::generate_content(*f.repo, generated(300, 200));
    f.folder("/content/dam/target");
    f.load();
    MoveEngine jobs(f);
    auto job = jobs.engine->enqueue(
        "wharf/asset/move", move_request({"/content/dam/gen/d000"}, "/content/dam/target"), {});
    auto view = jobs.finish(job.id);
    REQUIRE(view);
    INFO(view->job.result_message);
    CHECK(view->job.state == JobState::succeeded);
    CHECK(view->job.queue == "moves");
    CHECK(view->job.progress_total > 0);
    CHECK(view->job.progress_done == view->job.progress_total);
    auto report = jobs.engine->report(job.id, 0, 100);
    REQUIRE(report.size() == 2);
    CHECK(report[0][0] == "source");
    CHECK(report[1][1] == "/content/dam/target/d000");
    CHECK(report[1][4] == "moved");
    CHECK(references_under(*f.repo, "/content/dam/gen/d000") == 0);
    CHECK(check_errors(*f.repo) == 0);
}

TEST_CASE("a stopped move job ends stopped with a consistent repository and the same request "
          "submitted again finishes it",
          "[move][jobs]") {
    Fixture f;
    host::generate_content(*f.repo, generated(600, 1000));
    f.folder("/content/dam/target");
    f.load();
    MoveEngine jobs(f);
    auto request = move_request({"/content/dam/gen/d000"}, "/content/dam/target");
    auto first = jobs.engine->enqueue("wharf/asset/move", request, {});
    // Stopped while queued or while running: either way it must end stopped.
    REQUIRE(eventually([&] { return static_cast<bool>(jobs.engine->stop_job(first.id)); }, 10s));
    auto stopped = jobs.finish(first.id);
    REQUIRE(stopped);
    CHECK(stopped->job.state == JobState::stopped);
    CHECK(check_errors(*f.repo) == 0);

    f.asset_move()->validate(request);
    auto second = jobs.engine->enqueue("wharf/asset/move", request, {});
    auto done = jobs.finish(second.id);
    REQUIRE(done);
    INFO(done->job.result_message);
    CHECK(done->job.state == JobState::succeeded);
    CHECK_FALSE(f.repo->get("/content/dam/gen/d000"));
    CHECK(references_under(*f.repo, "/content/dam/gen/d000") == 0);
    CHECK(check_errors(*f.repo) == 0);
}

// The child side of the SIGKILL test: runs a slowed-down move on the data
// directory named by WHARF_MOVE_CRASH_DIR. Hidden: only the parent runs it.
TEST_CASE("move crash child", "[.move_crash_child]") {
    const char* dir = std::getenv("WHARF_MOVE_CRASH_DIR");
    if (!dir) return;
    auto repo = SqliteRepository::open(fs::path(dir) / "repo");
    MovePluginHost host(repo, fs::path(dir) / "child-host", plugin_file(),
                        WHARF_PROBE_EXECUTABLE);
    auto request = move_request({"/content/dam/gen/d000"}, "/content/dam/target");
    MemoryContext ctx(request);
    // Slow enough that the parent's kill lands between two batches' commits.
    ctx.on_progress = [] { std::this_thread::sleep_for(40ms); };
    auto result = host.operation("asset-move")->run(ctx);
    std::ofstream(fs::path(dir) / "child-result.txt") << result.message << "\n";
    REQUIRE(result.outcome == JobResult::Outcome::succeeded);
}

TEST_CASE("a move SIGKILLed half-way resumes on the next run and the repository check passes",
          "[move][crash]") {
    Fixture f;
    auto options = generated(600, 1000);
    host::generate_content(*f.repo, options);
    f.folder("/content/dam/target");
    Fixture reference;
    host::generate_content(*reference.repo, options);
    reference.folder("/content/dam/target");
    reference.load();
    auto request = move_request({"/content/dam/gen/d000"}, "/content/dam/target");
    MemoryContext whole(request);
    REQUIRE(reference.asset_move()->run(whole).outcome == JobResult::Outcome::succeeded);

    auto run_child = [&](bool kill) {
        ::setenv("WHARF_MOVE_CRASH_DIR", f.dir.path().c_str(), 1);
        wharf::test::ChildProcess child({fs::read_symlink("/proc/self/exe").string(),
                                         "[.move_crash_child]"},
                                        f.dir / (kill ? "child1.log" : "child2.log"));
        ::unsetenv("WHARF_MOVE_CRASH_DIR");
        if (kill) {
            // Past the subtree move, inside the reference rewrite.
            REQUIRE(eventually(
                [&] {
                    return !f.repo->get("/content/dam/gen/d000") &&
                           references_under(*f.repo, "/content/dam/gen/d000") > 0;
                },
                60s));
            child.signal(SIGKILL);
        }
        auto status = child.wait(120s);
        REQUIRE(status);
        return *status;
    };
    auto killed = run_child(true);
    CHECK((WIFSIGNALED(killed) && WTERMSIG(killed) == SIGKILL));
    CHECK(references_under(*f.repo, "/content/dam/gen/d000") > 0);
    CHECK(check_errors(*f.repo) == 0);

    auto finished = run_child(false);
    CHECK((WIFEXITED(finished) && WEXITSTATUS(finished) == 0));
    CHECK(references_under(*f.repo, "/content/dam/gen/d000") == 0);
    CHECK(check_errors(*f.repo) == 0);
    CHECK(fingerprint(*f.repo) == fingerprint(*reference.repo));
}

TEST_CASE("asset move count is above the threshold exactly when assets and folders exceed "
          "threshold or references exceed threshold_references",
          "[move]") {
    Fixture f;
    f.folder("/content/dam/dest");
    f.folder("/content/dam/src");
    for (int i = 0; i < 99; ++i) f.asset("/content/dam/src/a" + std::to_string(i));
    f.folder("/content/site");
    f.page("/content/site/en");
    f.load();
    auto op = f.asset_move();
    auto request = move_request({"/content/dam/src"}, "/content/dam/dest");
    // Defaults: threshold 100 (assets and folders), threshold_references 100.
    CHECK(op->count(request) == 100);  // the folder and 99 assets: at the threshold, inline
    f.asset("/content/dam/src/a99");
    CHECK(op->count(request) == 101);  // one more: a job
    CHECK(op->describe(request, 101) ==
          "Move '/content/dam/src' to '/content/dam/dest' (101 assets and folders)");

    auto small = move_request({"/content/dam/src/a0"}, "/content/dam/dest");
    for (int i = 0; i < 100; ++i) {
        // Each page is one index row per link target: 100 rows, then 101.
        f.page("/content/site/en/p" + std::to_string(i),
               "<a href=\"/content/dam/src/a0\">a</a>");
    }
    CHECK(op->count(small) == 100);
    f.page("/content/site/en/p100", "<a href=\"/content/dam/src/a0\">a</a>");
    CHECK(op->count(small) == 101);
    CHECK(f.page_move()->count(move_request({"/content/site/en/p1"}, "/content/site/en")) == 0);
}
