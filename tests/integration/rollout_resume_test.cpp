// Rollouts that are stopped or SIGKILLed half-way and resumed end exactly as
// an uninterrupted rollout does (no page twice, none missing, the repository
// check passes); rollouts and live copy creation as jobs through the job
// engine, with the threshold deciding inline or job. The SIGKILL child is this
// test binary itself running the hidden case "[.rollout_crash_child]".
#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>

#include "config/config_admin.hpp"
#include "integration/rollout_test_support.hpp"
#include "jobs/job_engine.hpp"
#include "jobs/operation_submission.hpp"
#include "jobs/sqlite_job_store.hpp"
#include "repository/generator.hpp"
#include "support/child_process.hpp"
#include "support/job_host.hpp"
#include "support/temp_dir.hpp"
#include "wharf/queues.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace wharf;
using wharf::host::SqliteRepository;
using wharf::test::create_request;
using wharf::test::eventually;
using wharf::test::MemoryContext;
using wharf::test::mirror_differences;
using wharf::test::open_job_store;
using wharf::test::repository_errors;
using wharf::test::repository_fingerprint;
using wharf::test::rollout_request;
using wharf::test::RolloutPluginHost;
using wharf::test::start_job_engine;
using wharf::test::TempDir;
using wharf::test::wait_final;

namespace {

// A blueprint with 3 live copies (made by the generator), then blueprint
// edits a rollout must bring over: every page retitled, new pages, a
// deleted section.
host::ContentGeneratorOptions crash_content() {
    host::ContentGeneratorOptions o;
    o.assets = 50;
    o.assets_per_folder = 50;
    o.folders_per_group = 1;
    o.pages = 600;
    o.pages_per_section = 50;
    o.references_per_page = 4;
    o.live_copies = 3;
    o.min_binary_bytes = 16;
    o.max_binary_bytes = 32;
    return o;
}

void prepare(SqliteRepository& repo) {
    auto options = crash_content();
    host::generate_content(repo, options);
    auto s = repo.open_session();
    repo.walk(options.pages_root, WalkOptions{}, [&](const Node& n) {
        s->set_properties(n.path, {{"jcr:title", Property::string("v2 " + n.path)}});
        return true;
    });
    for (int i = 0; i < 30; ++i) {
        Node n;
        n.path = options.pages_root + "/s003/new-" + std::to_string(i);
        n.kind = NodeKind::page;
        n.text = "<a href=\"" + options.pages_root + "/s004.html\">s4</a>";
        s->create(n);
    }
    s->remove(options.pages_root + "/s011");
    s->commit();
}

// The operations/rollout.yaml tests use: small batches, so a kill lands between commits.
const std::string kSmallBatches = "threshold: 100\nbatch_size: 20\n";

struct Fixture {
    TempDir dir{"wharf-rollout-resume"};
    std::shared_ptr<SqliteRepository> repo = SqliteRepository::open(dir / "repo");
    std::unique_ptr<RolloutPluginHost> host;
    void load(const std::string& operation_yaml = kSmallBatches) {
        host = std::make_unique<RolloutPluginHost>(repo, dir / "host",
                                                   std::map<std::string, std::string>{},
                                                   operation_yaml);
        REQUIRE(host->rollout());
    }
};

}  // namespace

TEST_CASE("a stopped rollout resumes from its checkpoint to the same end state as an "
          "uninterrupted one",
          "[rollout]") {
    const auto request = rollout_request("/content/gen/en");
    Fixture reference;
    prepare(*reference.repo);
    reference.load();
    MemoryContext whole(request);
    auto whole_result = reference.host->rollout()->run(whole);
    REQUIRE(whole_result.outcome == JobResult::Outcome::succeeded);
    for (auto lc : {"/content/gen/lc1", "/content/gen/lc2", "/content/gen/lc3"})
        CHECK(mirror_differences(*reference.repo, "/content/gen/en", lc).empty());

    Fixture f;
    prepare(*f.repo);
    f.load();
    MemoryContext first(request);
    first.stop_after_increments(5);
    auto stopped = f.host->rollout()->run(first);
    CHECK(stopped.outcome == JobResult::Outcome::failed);
    CHECK(stopped.message.find("resumes from the checkpoint") != std::string::npos);
    CHECK(repository_fingerprint(*f.repo) != repository_fingerprint(*reference.repo));
    CHECK(repository_errors(*f.repo) == 0);

    // The same request again is accepted (a resumption) and finishes the work.
    f.host->rollout()->validate(request);
    MemoryContext second(request);
    auto resumed = f.host->rollout()->run(second);
    INFO(resumed.message);
    REQUIRE(resumed.outcome == JobResult::Outcome::succeeded);
    CHECK(std::any_of(second.lines().begin(), second.lines().end(),
                      [](const auto& l) { return l.find("resuming") != std::string::npos; }));
    CHECK(repository_fingerprint(*f.repo) == repository_fingerprint(*reference.repo));
    CHECK(resumed.message == whole_result.message);
    // The two partial reports together are the whole report.
    CHECK(first.rows().size() - 1 + second.rows().size() - 1 == whole.rows().size() - 1);
    CHECK(repository_errors(*f.repo) == 0);
}

// The child side of the SIGKILL test: a slowed-down rollout on the data
// directory named by WHARF_ROLLOUT_CRASH_DIR. Hidden: only the parent runs it.
TEST_CASE("rollout crash child", "[.rollout_crash_child]") {
    const char* dir = std::getenv("WHARF_ROLLOUT_CRASH_DIR");
    if (!dir) return;
    auto repo = SqliteRepository::open(fs::path(dir) / "repo");
    RolloutPluginHost host(repo, fs::path(dir) / "child-host", {}, kSmallBatches);
    MemoryContext ctx(rollout_request("/content/gen/en"));
    // Slow enough that the parent's kill lands between two batches' commits.
    ctx.on_progress = [] { std::this_thread::sleep_for(30ms); };
    auto result = host.rollout()->run(ctx);
    REQUIRE(result.outcome == JobResult::Outcome::succeeded);
}

TEST_CASE("a rollout SIGKILLed half-way resumes on the next run to the same end state as an "
          "uninterrupted one, with no page created twice",
          "[rollout][crash]") {
    Fixture reference;
    prepare(*reference.repo);
    reference.load();
    MemoryContext whole(rollout_request("/content/gen/en"));
    REQUIRE(reference.host->rollout()->run(whole).outcome == JobResult::Outcome::succeeded);

    Fixture f;
    prepare(*f.repo);
    const auto lc_title = [&](const std::string& path) {
        auto n = f.repo->get(path);
        if (!n || !n->properties.count("jcr:title")) return std::string();
        return std::get<std::string>(n->properties.at("jcr:title").values.front());
    };
    auto run_child = [&](bool kill) {
        ::setenv("WHARF_ROLLOUT_CRASH_DIR", f.dir.path().c_str(), 1);
        wharf::test::ChildProcess child(
            {fs::read_symlink("/proc/self/exe").string(), "[.rollout_crash_child]"},
            f.dir / (kill ? "child1.log" : "child2.log"));
        ::unsetenv("WHARF_ROLLOUT_CRASH_DIR");
        if (kill) {
            // Some live pages have the new titles, a later section not yet.
            REQUIRE(eventually(
                [&] { return lc_title("/content/gen/lc3/s001/page-000050").rfind("v2 ", 0) == 0; },
                60s));
            child.signal(SIGKILL);
        }
        auto status = child.wait(120s);
        REQUIRE(status);
        return *status;
    };
    auto killed = run_child(true);
    CHECK((WIFSIGNALED(killed) && WTERMSIG(killed) == SIGKILL));
    CHECK(lc_title("/content/gen/lc1/s009/page-000450").rfind("v2 ", 0) != 0);
    CHECK(repository_errors(*f.repo) == 0);

    auto finished = run_child(false);
    CHECK((WIFEXITED(finished) && WEXITSTATUS(finished) == 0));
    CHECK(repository_fingerprint(*f.repo) == repository_fingerprint(*reference.repo));
    for (auto lc : {"/content/gen/lc1", "/content/gen/lc2", "/content/gen/lc3"})
        CHECK(mirror_differences(*f.repo, "/content/gen/en", lc).empty());
    CHECK(repository_errors(*f.repo) == 0);
}

namespace {

// The job engine on a temp store, with the host's queues (the shipped
// page-move-and-rollout queue) and the submission service.
struct Jobs {
    std::unique_ptr<host::SqliteJobStore> store;
    std::unique_ptr<host::JobEngine> engine;
    std::unique_ptr<host::OperationSubmission> submission;

    explicit Jobs(Fixture& f)
        : store(open_job_store(f.dir / "jobs/jobs.db")),
          engine(start_job_engine(f.host->registry(), *store)) {
        auto* config = &f.host->config();
        submission = std::make_unique<host::OperationSubmission>(
            f.host->registry(), *engine->manager(),
            [config](std::string_view name) { return config->current(name); });
    }
    ~Jobs() { engine->stop(); }

    std::optional<host::JobView> finish(JobId id) const { return wait_final(*engine, id); }
};

}  // namespace

TEST_CASE("at or below the threshold (pages x live copies) a rollout runs at once, above it "
          "it becomes a job on the page move and rollout queue that brings the same result",
          "[rollout][jobs]") {
    Fixture f;
    prepare(*f.repo);
    // s000 holds 51 pages: 153 pages x live copies.
    f.load("threshold: 153\nbatch_size: 20\n");
    Jobs jobs(f);
    auto at = jobs.submission->submit("rollout", rollout_request("/content/gen/en/s000"), "alice");
    REQUIRE(at.mode == host::SubmissionResult::Mode::sync);
    CHECK(at.count == 153);
    CHECK(at.run.outcome == "succeeded");
    CHECK(at.run.report.size() == 1 + 153);

    auto above = jobs.submission->submit("rollout", rollout_request("/content/gen/en"), "alice");
    REQUIRE(above.mode == host::SubmissionResult::Mode::job);
    CHECK(above.count > 153);
    auto view = jobs.finish(above.job.id);
    REQUIRE(view);
    INFO(view->job.result_message);
    CHECK(view->job.state == JobState::succeeded);
    CHECK(view->job.queue == "page-move-and-rollout");
    CHECK(view->job.progress_done == view->job.progress_total);
    auto report = jobs.engine->report(above.job.id, 0, 100000);
    REQUIRE(report.size() > 1);
    CHECK(report[0][0] == "blueprint page");
    for (auto lc : {"/content/gen/lc1", "/content/gen/lc2", "/content/gen/lc3"})
        CHECK(mirror_differences(*f.repo, "/content/gen/en", lc).empty());

    // A live copy of the whole blueprint is a job too (over 153 pages).
    auto create = jobs.submission->submit(
        "live-copy-create", create_request("/content/gen/en", "/content/gen/lc4"), "alice");
    REQUIRE(create.mode == host::SubmissionResult::Mode::job);
    auto created = jobs.finish(create.job.id);
    REQUIRE(created);
    INFO(created->job.result_message);
    CHECK(created->job.state == JobState::succeeded);
    CHECK(mirror_differences(*f.repo, "/content/gen/en", "/content/gen/lc4").empty());

    // A refused request is refused before anything is enqueued.
    auto refused = jobs.submission->submit(
        "live-copy-create", create_request("/content/gen/en", "/content/gen/lc4"), "alice");
    CHECK(refused.mode == host::SubmissionResult::Mode::refused);
    CHECK(refused.refusal.field == "target");
    CHECK(repository_errors(*f.repo) == 0);
}

TEST_CASE("a rollout config with a repeated action is refused and the one in force stays",
          "[rollout]") {
    Fixture f;
    prepare(*f.repo);
    f.load();
    std::ofstream(f.host->config_dir() / "rollout/standard.yaml")
        << "actions: [contentCopy, contentCopy]\n";
    f.host->config().rescan();
    auto status = f.host->config().status("rollout/standard.yaml");
    REQUIRE(status);
    CHECK(status->state == host::ConfigFileState::refused);
    REQUIRE_FALSE(status->errors.empty());
    CHECK(status->errors.front().message.find("listed twice") != std::string::npos);
    // The standard config in force still has every action: the rollout deletes s11.
    MemoryContext ctx(rollout_request("/content/gen/en", {"/content/gen/lc1"}));
    REQUIRE(f.host->rollout()->run(ctx).outcome == JobResult::Outcome::succeeded);
    CHECK_FALSE(f.repo->get("/content/gen/lc1/s011"));
    CHECK(mirror_differences(*f.repo, "/content/gen/en", "/content/gen/lc1").empty());
}
