#include <SQLiteCpp/SQLiteCpp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <type_traits>

#include "base/error.hpp"
#include "integration/pg_test_support.hpp"
#include "jobs/pg_job_store.hpp"
#include "jobs/sqlite_job_store.hpp"

using namespace wharf;
using namespace wharf::host;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// A fresh directory under the system temp folder, removed with its contents.
class TempDir {
public:
    TempDir() {
        static std::atomic<int> counter{0};
        std::random_device random;
        path_ = fs::temp_directory_path() /
                ("wharf-jobs-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) +
                 "-" + std::to_string(random()));
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

// A clock the test moves by hand.
class FakeClock {
public:
    JobTimePoint now() const { return JobTimePoint(std::chrono::microseconds(us_.load())); }
    void advance(std::chrono::microseconds d) { us_ += d.count(); }
    void set(JobTimePoint t) {
        us_ = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
    }

private:
    // 2024-05-01 00:00:00 UTC
    std::atomic<std::int64_t> us_{1714521600LL * 1000000};
};

// Per (queue, topic, state): jobs, wait sum, wait count, run sum, run count.
using CountRows =
    std::map<std::tuple<std::string, std::string, std::string>, std::array<std::int64_t, 5>>;

// The conformance suite runs every store test against each backend: the same
// calls, the same assertions. A backend gives a store on its own fresh
// database (open() again reaches the same one, as a restarted or a second
// instance would) and plain SQL access for the checks that read tables.

class SqliteBackend {
public:
    using Store = SqliteJobStore;
    static constexpr int kSchemaVersion = SqliteJobStore::kSchemaVersion;

    bool available() const { return true; }
    std::string why_not() const { return {}; }

    std::unique_ptr<SqliteJobStore> open(FakeClock* clock = nullptr,
                                         std::int64_t max_log_lines = 10000, bool migrate = true) {
        SqliteJobStoreOptions options;
        options.path = db_path();
        options.max_log_lines = max_log_lines;
        if (clock) options.clock = [clock] { return clock->now(); };
        auto store = std::make_unique<SqliteJobStore>(options);
        if (migrate) store->migrate();
        return store;
    }

    fs::path db_path() const { return dir_.path() / "jobs.db"; }

    void exec(const std::string& sql) {
        SQLite::Database db(db_path().string(), SQLite::OPEN_READWRITE);
        db.exec(sql);
    }

    std::int64_t count(const std::string& sql) {
        SQLite::Database db(db_path().string(), SQLite::OPEN_READONLY);
        return db.execAndGet(sql).getInt64();
    }

    CountRows count_rows(const std::string& sql) {
        SQLite::Database c(db_path().string(), SQLite::OPEN_READONLY);
        SQLite::Statement s(c, sql);
        CountRows rows;
        while (s.executeStep()) {
            rows[{s.getColumn(0).getString(), s.getColumn(1).getString(),
                  s.getColumn(2).getString()}] = {
                s.getColumn(3).getInt64(), s.getColumn(4).getInt64(), s.getColumn(5).getInt64(),
                s.getColumn(6).getInt64(), s.getColumn(7).getInt64()};
        }
        return rows;
    }

private:
    TempDir dir_;
};

class PgBackend {
public:
    using Store = PgJobStore;
    static constexpr int kSchemaVersion = PgJobStore::kSchemaVersion;

    PgBackend() : server_(wharf::test::PgServer::shared(&why_not_)) {
        if (server_) url_ = server_->create_database();
    }

    bool available() const { return server_ != nullptr; }
    const std::string& why_not() const { return why_not_; }
    const std::string& url() const { return url_; }

    std::unique_ptr<PgJobStore> open(FakeClock* clock = nullptr, std::int64_t max_log_lines = 10000,
                                     bool migrate = true) {
        PgJobStoreOptions options;
        options.url = url_;
        options.max_log_lines = max_log_lines;
        if (clock) options.clock = [clock] { return clock->now(); };
        auto store = std::make_unique<PgJobStore>(options);
        if (migrate) store->migrate();
        return store;
    }

    void exec(const std::string& sql) {
        pqxx::connection c(url_);
        pqxx::nontransaction n(c);
        n.exec(sql);
    }

    std::int64_t count(const std::string& sql) {
        pqxx::connection c(url_);
        pqxx::nontransaction n(c);
        return n.exec(sql)[0][0].as<std::int64_t>();
    }

    CountRows count_rows(const std::string& sql) {
        pqxx::connection c(url_);
        pqxx::nontransaction n(c);
        CountRows rows;
        for (const auto& r : n.exec(sql)) {
            rows[{r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>()}] = {
                r[3].as<std::int64_t>(), r[4].as<std::int64_t>(), r[5].as<std::int64_t>(),
                r[6].as<std::int64_t>(), r[7].as<std::int64_t>()};
        }
        return rows;
    }

private:
    std::string why_not_;
    wharf::test::PgServer* server_ = nullptr;
    std::string url_;
};

}  // namespace

// Declares `name`, the test's backend; a backend that is not installed
// (PostgreSQL missing) skips the test with a warning that says so.
#define WHARF_STORE_BACKEND(name) \
    TestType name;                \
    if (!name.available()) {      \
        WARN(name.why_not());     \
        return;                   \
    }

namespace {

NewJob new_job(std::string topic = "wharf/asset/delete", std::string queue = "default") {
    NewJob job;
    job.topic = std::move(topic);
    job.queue = std::move(queue);
    job.payload.put("path", "/content/dam/a");
    job.max_retries = 2;
    return job;
}

Job claim_one(JobStore& store, const std::string& queue = {}) {
    ClaimRequest request;
    if (!queue.empty()) request.queues = {queue};
    auto jobs = store.claim_next(request);
    REQUIRE(jobs.size() == 1);
    return jobs.front();
}

JobCompletion completion(JobId id, JobOutcome outcome, std::string message = {},
                         JobTimePoint retry_at = {}) {
    return JobCompletion{id, outcome, std::move(message), retry_at};
}

}  // namespace

TEMPLATE_TEST_CASE("an inserted job reads back with its topic, payload, queue, user and times",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    FakeClock clock;
    auto store = backend.open(&clock);
    NewJob job = new_job();
    job.submitted_by = "alice";
    job.payload.put("options.force", "true");
    boost::property_tree::ptree list;
    list.push_back({"", boost::property_tree::ptree("/a")});
    list.push_back({"", boost::property_tree::ptree("/b")});
    job.payload.add_child("paths", list);

    Job stored = store->insert(job);
    REQUIRE(stored.id > 0);
    REQUIRE(stored.state == JobState::queued);

    std::optional<Job> found = store->find(stored.id);
    REQUIRE(found);
    REQUIRE(found->topic == "wharf/asset/delete");
    REQUIRE(found->queue == "default");
    REQUIRE(found->submitted_by == "alice");
    REQUIRE(found->created == clock.now());
    REQUIRE(found->max_retries == 2);
    REQUIRE(found->retry_count == 0);
    REQUIRE(found->payload.get<std::string>("path") == "/content/dam/a");
    REQUIRE(found->payload.get<bool>("options.force"));
    auto paths = found->payload.get_child("paths");
    REQUIRE(paths.size() == 2);
    REQUIRE(paths.front().second.data() == "/a");
    REQUIRE_FALSE(found->started);
    REQUIRE_FALSE(found->finished);

    REQUIRE_FALSE(store->find(stored.id + 1000));
}

TEMPLATE_TEST_CASE("a payload that is a bare value is refused and nothing is stored",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    auto store = backend.open();
    NewJob job = new_job();
    job.payload = boost::property_tree::ptree("just text");
    REQUIRE_THROWS_AS(store->insert(job), Error);
    REQUIRE(store->list({}).jobs.empty());
}

TEST_CASE("a bad synchronous mode is refused when the store opens") {
    TempDir dir;
    SqliteJobStoreOptions options;
    options.path = dir.path() / "jobs.db";
    options.synchronous = "SOMETIMES";
    REQUIRE_THROWS_AS(SqliteJobStore(options), Error);
}

TEMPLATE_TEST_CASE("a job exists once insert returns: reopening the file finds it", "[jobs][store]",
                   SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    JobId id = 0;
    {
        auto store = backend.open();
        id = store->insert(new_job()).id;
    }
    auto reopened = backend.open();
    auto found = reopened->find(id);
    REQUIRE(found);
    REQUIRE(found->state == JobState::queued);
}

TEMPLATE_TEST_CASE("migrations run once; reopening and migrating again changes nothing",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    {
        auto store = backend.open();
        REQUIRE(store->schema_version() == TestType::kSchemaVersion);
        store->migrate();
        store->insert(new_job());
    }
    auto store = backend.open();
    store->migrate();
    REQUIRE(store->schema_version() == TestType::kSchemaVersion);
    REQUIRE(store->list({}).jobs.size() == 1);
    REQUIRE(backend.count("SELECT COUNT(*) FROM schema_version") == TestType::kSchemaVersion);
    if constexpr (std::is_same_v<TestType, SqliteBackend>) {
        SQLite::Database db(backend.db_path().string());
        REQUIRE(db.execAndGet("PRAGMA journal_mode").getString() == "wal");
    }
}

TEMPLATE_TEST_CASE("a database from a newer wharfd is refused with both versions named",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    { backend.open(); }
    backend.exec("INSERT INTO schema_version(version, applied_at) VALUES (99, 0)");
    auto store = backend.open(nullptr, 10000, /*migrate=*/false);
    try {
        store->migrate();
        FAIL("migrate accepted a newer schema");
    } catch (const Error& e) {
        REQUIRE(e.code() == ErrorCode::storage);
        REQUIRE_THAT(e.what(),
                     Catch::Contains("99") &&
                         Catch::Contains("(" + std::to_string(TestType::kSchemaVersion) + ")"));
    }
}

TEMPLATE_TEST_CASE("claim takes the oldest queued job of the asked queue and topic, once",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    FakeClock clock;
    auto store = backend.open(&clock);
    JobId first = store->insert(new_job("a/x", "q1")).id;
    JobId second = store->insert(new_job("a/y", "q1")).id;
    JobId other_queue = store->insert(new_job("a/x", "q2")).id;

    ClaimRequest by_topic;
    by_topic.queues = {"q1"};
    by_topic.topics = {"a/y"};
    by_topic.worker = "instance-1";
    auto claimed = store->claim_next(by_topic);
    REQUIRE(claimed.size() == 1);
    REQUIRE(claimed[0].id == second);
    REQUIRE(claimed[0].state == JobState::active);
    REQUIRE(claimed[0].started == clock.now());
    REQUIRE(store->claim_next(by_topic).empty());

    Job next = claim_one(*store, "q1");
    REQUIRE(next.id == first);
    REQUIRE(store->claim_next(ClaimRequest{{"q1"}, {}, 5, {}, ""}).empty());

    auto rest = store->claim_next(ClaimRequest{{}, {}, 5, {}, ""});
    REQUIRE(rest.size() == 1);
    REQUIRE(rest[0].id == other_queue);
}

TEMPLATE_TEST_CASE("succeeded, error and stopped runs are final with a finished time",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    FakeClock clock;
    auto store = backend.open(&clock);
    for (auto [outcome, state] : {std::pair{JobOutcome::succeeded, JobState::succeeded},
                                  std::pair{JobOutcome::error, JobState::error},
                                  std::pair{JobOutcome::stopped, JobState::stopped}}) {
        store->insert(new_job());
        Job job = claim_one(*store);
        clock.advance(2s);
        auto done = store->finish(completion(job.id, outcome, "the message"));
        REQUIRE(done);
        REQUIRE(done->state == state);
        REQUIRE(done->finished == clock.now());
        REQUIRE(done->result_message == "the message");
        REQUIRE(store->claim_next({}).empty());
    }
}

TEMPLATE_TEST_CASE(
    "a failed run waits for its retry time, then runs again until retries are exhausted",
    "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    FakeClock clock;
    auto store = backend.open(&clock);
    JobId id = store->insert(new_job()).id;  // max_retries = 2

    for (int attempt = 1; attempt <= 2; ++attempt) {
        Job job = claim_one(*store);
        REQUIRE(job.id == id);
        REQUIRE(job.retry_count == attempt - 1);
        auto retry_at = clock.now() + 10s;
        auto failed = store->finish(completion(id, JobOutcome::failed, "try later", retry_at));
        REQUIRE(failed->state == JobState::failed);
        REQUIRE(failed->retry_count == attempt);
        REQUIRE(failed->scheduled == retry_at);
        REQUIRE_FALSE(failed->finished);
        REQUIRE(store->next_due() == retry_at);

        REQUIRE(store->claim_next({}).empty());
        REQUIRE(store->due_scheduled(retry_at - 1s).empty());
        auto due = store->due_scheduled(retry_at);
        REQUIRE(due.size() == 1);
        REQUIRE(due[0].state == JobState::queued);
        clock.advance(11s);
    }
    claim_one(*store);
    auto last = store->finish(completion(id, JobOutcome::failed, "still broken"));
    REQUIRE(last->state == JobState::given_up);
    REQUIRE(last->retry_count == 2);
    REQUIRE(last->finished);
    REQUIRE_FALSE(store->next_due());
}

TEMPLATE_TEST_CASE("finishing a job that is not active is a conflict; an unknown id finds nothing",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    auto store = backend.open();
    JobId id = store->insert(new_job()).id;
    try {
        store->finish(completion(id, JobOutcome::succeeded));
        FAIL("finish accepted a queued job");
    } catch (const Error& e) {
        REQUIRE(e.code() == ErrorCode::conflict);
        REQUIRE_THAT(e.what(), Catch::Contains("queued"));
    }
    REQUIRE_FALSE(store->finish(completion(id + 99, JobOutcome::succeeded)));
    REQUIRE(store->find(id)->state == JobState::queued);
}

TEMPLATE_TEST_CASE("queued and active jobs cannot be deleted and the refusal says why",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    auto store = backend.open();
    JobId active = store->insert(new_job()).id;
    JobId queued = store->insert(new_job()).id;
    REQUIRE(claim_one(*store).id == active);

    auto refused = store->remove(queued);
    REQUIRE(refused.status == JobActionResult::Status::refused);
    REQUIRE_THAT(refused.reason, Catch::Contains("queued"));
    refused = store->remove(active);
    REQUIRE(refused.status == JobActionResult::Status::refused);
    REQUIRE_THAT(refused.reason, Catch::Contains("active"));
    REQUIRE(store->find(queued));
    REQUIRE(store->find(active));
    REQUIRE(store->remove(4242).status == JobActionResult::Status::not_found);
}

TEMPLATE_TEST_CASE("a finished job is deleted with its log, report and checkpoints",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    auto store = backend.open();
    JobId id = store->insert(new_job()).id;
    claim_one(*store);
    REQUIRE(store->append_log(id, {"one", "two"}));
    REQUIRE(store->append_report_rows(id, {{"path", "status"}, {"/a", "deleted"}}));
    REQUIRE(store->put_checkpoint(id, "cursor", "/a"));
    store->finish(completion(id, JobOutcome::succeeded));

    REQUIRE(store->remove(id));
    REQUIRE_FALSE(store->find(id));
    REQUIRE(store->log(id, 0, 100).empty());
    REQUIRE(store->report(id, 0, 100).empty());
    REQUIRE(store->checkpoints(id).empty());
}

TEMPLATE_TEST_CASE(
    "stop ends a waiting job at once, flags an active one and refuses a finished one",
    "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    FakeClock clock;
    auto store = backend.open(&clock);
    JobId running = store->insert(new_job()).id;
    JobId waiting = store->insert(new_job()).id;
    NewJob later = new_job();
    later.scheduled_at = clock.now() + 1h;
    JobId scheduled = store->insert(later).id;
    claim_one(*store);

    REQUIRE(store->request_stop(waiting));
    REQUIRE(store->find(waiting)->state == JobState::stopped);
    REQUIRE(store->find(waiting)->finished);
    REQUIRE(store->request_stop(scheduled));
    REQUIRE(store->find(scheduled)->state == JobState::stopped);

    REQUIRE_FALSE(store->stop_requested(running));
    REQUIRE(store->request_stop(running));
    REQUIRE(store->stop_requested(running));
    REQUIRE(store->find(running)->state == JobState::active);
    store->finish(completion(running, JobOutcome::stopped, "stopped by alice"));

    auto refused = store->request_stop(running);
    REQUIRE(refused.status == JobActionResult::Status::refused);
    REQUIRE_THAT(refused.reason, Catch::Contains("stopped"));
    REQUIRE(store->request_stop(999).status == JobActionResult::Status::not_found);
}

TEMPLATE_TEST_CASE(
    "after a crash, active jobs run again with the retry counted, or give up, or stop",
    "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    JobId fresh = 0, exhausted = 0, stopping = 0, untouched = 0;
    {
        auto store = backend.open();
        fresh = store->insert(new_job()).id;
        NewJob no_retries = new_job();
        no_retries.max_retries = 0;
        exhausted = store->insert(no_retries).id;
        stopping = store->insert(new_job()).id;
        REQUIRE(store->claim_next(ClaimRequest{{}, {}, 3, {}, "host-a"}).size() == 3);
        untouched = store->insert(new_job()).id;
        REQUIRE(store->put_checkpoint(fresh, "done_until", "/content/dam/a/500"));
        REQUIRE(store->request_stop(stopping));
        // the store goes away without finishing anything: the process died
    }
    auto store = backend.open();
    auto recovered = store->requeue_active();
    REQUIRE(recovered.size() == 3);

    auto f = store->find(fresh);
    REQUIRE(f->state == JobState::queued);
    REQUIRE(f->retry_count == 1);
    REQUIRE(store->checkpoints(fresh).at("done_until") == "/content/dam/a/500");
    auto e = store->find(exhausted);
    REQUIRE(e->state == JobState::given_up);
    REQUIRE(e->finished);
    REQUIRE(store->find(stopping)->state == JobState::stopped);
    REQUIRE(store->find(untouched)->state == JobState::queued);
    REQUIRE(store->find(untouched)->retry_count == 0);
    REQUIRE(store->requeue_active().empty());

    Job rerun = claim_one(*store);
    REQUIRE(rerun.id == fresh);
    REQUIRE(rerun.retry_count == 1);
}

TEMPLATE_TEST_CASE("requeue for one worker leaves other workers' active jobs alone",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    auto store = backend.open();
    JobId a = store->insert(new_job()).id;
    JobId b = store->insert(new_job()).id;
    store->claim_next(ClaimRequest{{}, {}, 1, {}, "host-a"});
    store->claim_next(ClaimRequest{{}, {}, 1, {}, "host-b"});
    REQUIRE(store->requeue_active("host-a").size() == 1);
    REQUIRE(store->find(a)->state == JobState::queued);
    REQUIRE(store->find(b)->state == JobState::active);
}

TEMPLATE_TEST_CASE("progress heartbeats and yields an ETA from the elapsed time", "[jobs][store]",
                   SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    FakeClock clock;
    auto store = backend.open(&clock);
    JobId id = store->insert(new_job()).id;
    REQUIRE_FALSE(store->record_progress(id, 1, 10));  // not active yet
    Job job = claim_one(*store);
    clock.advance(10s);
    REQUIRE(store->record_progress(id, 25, 100));
    auto found = store->find(id);
    REQUIRE(found->progress_done == 25);
    REQUIRE(found->progress_total == 100);
    REQUIRE(found->last_heartbeat == clock.now());
    REQUIRE(found->eta);
    // 10 s for 25 steps: 75 more take 30 s
    auto eta_offset =
        std::chrono::duration_cast<std::chrono::milliseconds>(*found->eta - clock.now());
    REQUIRE(eta_offset == 30000ms);
    clock.advance(5s);
    REQUIRE(store->heartbeat(id));
    REQUIRE(store->find(id)->last_heartbeat == clock.now());
    REQUIRE(*job.started < clock.now());
}

TEMPLATE_TEST_CASE("log lines keep their order and the oldest go beyond the cap", "[jobs][store]",
                   SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    auto store = backend.open(nullptr, /*max_log_lines=*/5);
    JobId id = store->insert(new_job()).id;
    for (int i = 1; i <= 8; ++i) REQUIRE(store->append_log(id, {"line " + std::to_string(i)}));
    auto lines = store->log(id, 0, 100);
    REQUIRE(lines.size() == 5);
    REQUIRE(lines.front().seq == 4);
    REQUIRE(lines.front().line == "line 4");
    REQUIRE(lines.back().line == "line 8");
    REQUIRE(store->log(id, 6, 100).size() == 2);
    REQUIRE(store->find(id)->log_lines == 8);
    REQUIRE_FALSE(store->append_log(id + 1, {"nobody"}));
}

TEMPLATE_TEST_CASE("report rows come back in order with commas, quotes and unicode intact",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    auto store = backend.open();
    JobId id = store->insert(new_job()).id;
    REQUIRE(store->append_report_rows(id, {{"path", "status"}}));
    REQUIRE(store->append_report_rows(id, {{"/a,b", "say \"hi\""}, {"/ä/ü", ""}}));
    auto rows = store->report(id, 0, 10);
    REQUIRE(rows.size() == 3);
    REQUIRE(rows[1] == std::vector<std::string>{"/a,b", "say \"hi\""});
    REQUIRE(rows[2] == std::vector<std::string>{"/ä/ü", ""});
    REQUIRE(store->report(id, 1, 1).front()[0] == "/a,b");
    REQUIRE(store->find(id)->report_rows == 3);
}

TEMPLATE_TEST_CASE("a checkpoint is replaced by key and read back", "[jobs][store]", SqliteBackend,
                   PgBackend) {
    WHARF_STORE_BACKEND(backend);
    auto store = backend.open();
    JobId id = store->insert(new_job()).id;
    REQUIRE(store->put_checkpoint(id, "cursor", "10"));
    REQUIRE(store->put_checkpoint(id, "cursor", "20"));
    REQUIRE(store->put_checkpoint(id, "phase", "copy"));
    auto all = store->checkpoints(id);
    REQUIRE(all.size() == 2);
    REQUIRE(all["cursor"] == "20");
    REQUIRE_FALSE(store->put_checkpoint(id + 1, "cursor", "1"));
}

TEMPLATE_TEST_CASE(
    "keyset paging returns every job exactly once, newest first, even while jobs arrive",
    "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    auto store = backend.open();
    std::vector<JobId> ids;
    for (int i = 0; i < 237; ++i) ids.push_back(store->insert(new_job()).id);
    std::reverse(ids.begin(), ids.end());

    std::vector<JobId> seen;
    JobFilter filter;
    filter.limit = 50;
    int pages = 0;
    while (true) {
        auto page = store->list(filter);
        ++pages;
        for (const auto& job : page.jobs) seen.push_back(job.id);
        store->insert(new_job());  // newer jobs must not shift later pages
        if (!page.next_cursor) break;
        REQUIRE(page.jobs.size() == 50);
        filter.cursor = page.next_cursor;
    }
    REQUIRE(pages == 5);
    REQUIRE(seen == ids);
}

TEMPLATE_TEST_CASE("a page that ends exactly at the last job has no next cursor", "[jobs][store]",
                   SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    auto store = backend.open();
    for (int i = 0; i < 10; ++i) store->insert(new_job());
    JobFilter filter;
    filter.limit = 10;
    auto page = store->list(filter);
    REQUIRE(page.jobs.size() == 10);
    REQUIRE_FALSE(page.next_cursor);
}

TEMPLATE_TEST_CASE("list filters by state, topic, queue, user, time range and text",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    FakeClock clock;
    auto store = backend.open(&clock);
    auto t0 = clock.now();
    NewJob a = new_job("wharf/asset/delete", "assets");
    a.submitted_by = "alice";
    a.payload.put("path", "/content/dam/100%_done");
    JobId ja = store->insert(a).id;
    clock.advance(1h);
    NewJob b = new_job("wharf/asset/move", "assets");
    b.submitted_by = "bob";
    JobId jb = store->insert(b).id;
    clock.advance(1h);
    NewJob c = new_job("wharf/page/rollout", "pages");
    c.submitted_by = "alice";
    JobId jc = store->insert(c).id;
    claim_one(*store, "pages");
    store->finish(completion(jc, JobOutcome::error, "blueprint missing"));

    auto ids = [&](JobFilter f) {
        std::vector<JobId> out;
        for (const auto& j : store->list(f).jobs) out.push_back(j.id);
        return out;
    };
    JobFilter f;
    f.states = {JobState::queued};
    REQUIRE(ids(f) == std::vector<JobId>{jb, ja});
    f.states = {JobState::queued, JobState::error};
    REQUIRE(ids(f) == std::vector<JobId>{jc, jb, ja});
    f = {};
    f.topic = "wharf/asset/move";
    REQUIRE(ids(f) == std::vector<JobId>{jb});
    f = {};
    f.queue = "assets";
    REQUIRE(ids(f) == std::vector<JobId>{jb, ja});
    f = {};
    f.user = "alice";
    REQUIRE(ids(f) == std::vector<JobId>{jc, ja});
    f = {};
    f.created_from = t0 + 30min;
    f.created_to = t0 + 90min;
    REQUIRE(ids(f) == std::vector<JobId>{jb});
    f = {};
    f.text = "blueprint";
    REQUIRE(ids(f) == std::vector<JobId>{jc});
    f.text = "100%_";  // LIKE wildcards are matched literally
    REQUIRE(ids(f) == std::vector<JobId>{ja});
    f.text = "0%_d";
    REQUIRE(ids(f) == std::vector<JobId>{ja});
    f.text = "10%d";
    REQUIRE(ids(f).empty());
    f = {};
    f.user = "alice";
    f.states = {JobState::error};
    REQUIRE(ids(f) == std::vector<JobId>{jc});
}

TEMPLATE_TEST_CASE("purge removes only finished jobs older than the threshold, in batches",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    FakeClock clock;
    auto store = backend.open(&clock);
    std::vector<JobId> old_finished;
    for (int i = 0; i < 7; ++i) {
        JobId id = store->insert(new_job()).id;
        claim_one(*store);
        store->append_log(id, {"done"});
        store->finish(completion(id, i % 2 ? JobOutcome::error : JobOutcome::succeeded));
        old_finished.push_back(id);
    }
    // Jobs purge must never touch, however old: one waiting for a retry, one
    // running, one queued, one scheduled.
    JobId failed = store->insert(new_job()).id;
    claim_one(*store);
    store->finish(completion(failed, JobOutcome::failed, "", clock.now() + 48h));
    JobId active = store->insert(new_job()).id;
    claim_one(*store);
    JobId queued = store->insert(new_job()).id;
    NewJob later = new_job();
    later.scheduled_at = clock.now() + 48h;
    JobId scheduled = store->insert(later).id;

    clock.advance(48h);
    JobId recent = store->insert(new_job()).id;
    store->request_stop(recent);  // finished now, so younger than the threshold

    PurgeRequest request;
    request.finished_before = clock.now() - 24h;
    request.batch_size = 3;
    auto result = store->purge(request);
    REQUIRE(result.removed == 7);
    REQUIRE(result.batches == 3);
    for (JobId id : old_finished) {
        REQUIRE_FALSE(store->find(id));
        REQUIRE(store->log(id, 0, 10).empty());
    }
    REQUIRE(store->find(queued)->state == JobState::queued);
    REQUIRE(store->find(active)->state == JobState::active);
    REQUIRE(store->find(failed)->state == JobState::failed);
    REQUIRE(store->find(scheduled)->state == JobState::scheduled);
    REQUIRE(store->find(recent)->state == JobState::stopped);
}

TEMPLATE_TEST_CASE("purge keeps at most max_keep finished jobs, removing the oldest first",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    FakeClock clock;
    auto store = backend.open(&clock);
    std::vector<JobId> finished;
    for (int i = 0; i < 10; ++i) {
        JobId id = store->insert(new_job()).id;
        claim_one(*store);
        clock.advance(1min);
        store->finish(completion(id, JobOutcome::succeeded));
        finished.push_back(id);
    }
    JobId queued = store->insert(new_job()).id;

    PurgeRequest request;
    request.max_keep = 4;
    request.batch_size = 4;
    auto result = store->purge(request);
    REQUIRE(result.removed == 6);
    for (std::size_t i = 0; i < finished.size(); ++i) {
        CAPTURE(i);
        REQUIRE(store->find(finished[i]).has_value() == (i >= 6));
    }
    REQUIRE(store->find(queued));
    REQUIRE(store->purge(request).removed == 0);
}

TEMPLATE_TEST_CASE("a job scheduled at a time is queued only when due", "[jobs][store]",
                   SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    FakeClock clock;
    auto store = backend.open(&clock);
    NewJob job = new_job();
    auto at = clock.now() + 5min;
    job.scheduled_at = at;
    Job stored = store->insert(job);
    REQUIRE(stored.state == JobState::scheduled);
    REQUIRE(store->next_due() == at);
    REQUIRE(store->claim_next({}).empty());
    REQUIRE(store->due_scheduled(at - 1s).empty());
    auto due = store->due_scheduled(at);
    REQUIRE(due.size() == 1);
    REQUIRE(due[0].id == stored.id);
    REQUIRE(claim_one(*store).id == stored.id);
    REQUIRE_FALSE(store->next_due());
}

TEMPLATE_TEST_CASE("a cron schedule spawns one run per fire time and moves to the next",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    FakeClock clock;
    clock.set(JobTimePoint(std::chrono::sys_days(std::chrono::year(2024) / 5 / 1)));
    auto store = backend.open(&clock);
    NewJob purge = new_job("wharf/purge", "maintenance");
    purge.cron = "0 0 1 * * ?";
    Job schedule = store->insert(purge);
    REQUIRE(schedule.state == JobState::scheduled);
    auto first_fire = clock.now() + 1h;
    REQUIRE(schedule.scheduled == first_fire);

    REQUIRE(store->due_scheduled(first_fire - 1s).empty());
    auto runs = store->due_scheduled(first_fire + 3s);
    REQUIRE(runs.size() == 1);
    REQUIRE(runs[0].topic == "wharf/purge");
    REQUIRE(runs[0].state == JobState::queued);
    REQUIRE(runs[0].cron.empty());
    REQUIRE(runs[0].id != schedule.id);
    auto moved = store->find(schedule.id);
    REQUIRE(moved->state == JobState::scheduled);
    REQUIRE(moved->scheduled == first_fire + 24h);
    REQUIRE(store->due_scheduled(first_fire + 10s).empty());

    // Missed fire times (host down for three days) collapse into one run.
    auto runs_after_outage = store->due_scheduled(first_fire + 72h + 1min);
    REQUIRE(runs_after_outage.size() == 1);
    REQUIRE(store->find(schedule.id)->scheduled == first_fire + 96h);
}

TEMPLATE_TEST_CASE("registering a named schedule again replaces it instead of adding a second",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    FakeClock clock;
    auto store = backend.open(&clock);
    NewJob purge = new_job("wharf/purge", "maintenance");
    purge.cron = "0 0 1 * * ?";
    purge.schedule_name = "wharf.purge";
    JobId first = store->insert(purge).id;
    purge.cron = "0 30 2 * * ?";
    Job again = store->insert(purge);
    REQUIRE(again.id == first);
    REQUIRE(again.cron == "0 30 2 * * ?");
    JobFilter scheduled;
    scheduled.states = {JobState::scheduled};
    REQUIRE(store->list(scheduled).jobs.size() == 1);
}

TEMPLATE_TEST_CASE("a bad cron expression is refused with its column and nothing is stored",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    auto store = backend.open();
    NewJob job = new_job();
    job.cron = "0 0 25 * * ?";
    REQUIRE_THROWS_WITH(store->insert(job), Catch::Contains("column 4"));
    REQUIRE(store->list({}).jobs.empty());
}

TEMPLATE_TEST_CASE("two stores on one file never spawn the same cron fire time twice",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    FakeClock clock;
    auto a = backend.open(&clock);
    auto b = backend.open(&clock);
    NewJob job = new_job("wharf/purge", "maintenance");
    job.cron = "0 * * * * ?";
    Job schedule = a->insert(job);
    auto fire = *schedule.scheduled;
    std::vector<Job> from_a, from_b;
    std::thread ta([&] { from_a = a->due_scheduled(fire); });
    std::thread tb([&] { from_b = b->due_scheduled(fire); });
    ta.join();
    tb.join();
    REQUIRE(from_a.size() + from_b.size() == 1);
    JobFilter queued;
    queued.states = {JobState::queued};
    REQUIRE(a->list(queued).jobs.size() == 1);
}

TEMPLATE_TEST_CASE("statistics count jobs per queue and topic with average wait and processing",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    FakeClock clock;
    auto store = backend.open(&clock);
    for (int i = 0; i < 2; ++i) {
        JobId id = store->insert(new_job("wharf/asset/delete", "assets")).id;
        clock.advance(2s);  // waits 2 s
        claim_one(*store, "assets");
        clock.advance(std::chrono::seconds(4 + 2 * i));  // runs 4 s, then 6 s
        store->finish(completion(id, i == 0 ? JobOutcome::succeeded : JobOutcome::error));
    }
    store->insert(new_job("wharf/asset/move", "assets"));
    store->insert(new_job("wharf/page/rollout", "pages"));

    auto by_queue = store->statistics(StatisticsGroup::queue);
    REQUIRE(by_queue.size() == 2);
    REQUIRE(by_queue[0].key == "assets");
    REQUIRE(by_queue[0].count(JobState::succeeded) == 1);
    REQUIRE(by_queue[0].count(JobState::error) == 1);
    REQUIRE(by_queue[0].count(JobState::queued) == 1);
    REQUIRE(by_queue[0].average_wait == 2s);
    REQUIRE(by_queue[0].average_processing == 5s);
    REQUIRE(by_queue[1].key == "pages");
    REQUIRE(by_queue[1].count(JobState::queued) == 1);

    auto by_topic = store->statistics(StatisticsGroup::topic);
    REQUIRE(by_topic.size() == 3);
    REQUIRE(by_topic[0].key == "wharf/asset/delete");
    REQUIRE(by_topic[0].count(JobState::succeeded) + by_topic[0].count(JobState::error) == 2);
}

TEMPLATE_TEST_CASE(
    "threads claiming at the same time never get the same job, and commits are shared",
    "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    auto store = backend.open();
    constexpr int kJobs = 1500;
    for (int i = 0; i < kJobs; ++i) store->insert(new_job());
    WriterCounters before;
    if constexpr (std::is_same_v<TestType, SqliteBackend>) before = store->writer_counters();

    std::mutex mutex;
    std::vector<JobId> claimed;
    std::vector<std::thread> workers;
    for (int w = 0; w < 8; ++w) {
        workers.emplace_back([&, w] {
            ClaimRequest request;
            request.limit = 1 + static_cast<std::size_t>(w % 3);
            request.worker = "w" + std::to_string(w);
            while (true) {
                auto jobs = store->claim_next(request);
                if (jobs.empty()) return;
                for (const auto& job : jobs) {
                    store->finish(completion(job.id, JobOutcome::succeeded));
                    std::lock_guard lock(mutex);
                    claimed.push_back(job.id);
                }
            }
        });
    }
    for (auto& t : workers) t.join();

    std::set<JobId> unique(claimed.begin(), claimed.end());
    REQUIRE(claimed.size() == kJobs);
    REQUIRE(unique.size() == kJobs);
    JobFilter succeeded;
    succeeded.states = {JobState::succeeded};
    succeeded.limit = 1000;
    auto page = store->list(succeeded);
    REQUIRE(page.jobs.size() == 1000);
    if constexpr (std::is_same_v<TestType, SqliteBackend>) {
        auto after = store->writer_counters();
        CHECK(after.transactions - before.transactions < after.operations - before.operations);
    }
}

TEMPLATE_TEST_CASE("an operation refused inside a shared commit does not undo the others",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    auto store = backend.open();
    JobId queued = store->insert(new_job()).id;
    std::atomic<int> conflicts{0};
    std::mutex mutex;
    std::vector<JobId> inserted;
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 100; ++i) {
                if (t % 2) {
                    try {
                        store->finish(completion(queued, JobOutcome::succeeded));
                    } catch (const Error& e) {
                        if (e.code() == ErrorCode::conflict) ++conflicts;
                    }
                } else {
                    JobId id = store->insert(new_job()).id;
                    std::lock_guard lock(mutex);
                    inserted.push_back(id);
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    REQUIRE(conflicts == 300);
    REQUIRE(inserted.size() == 300);
    for (JobId id : inserted) REQUIRE(store->find(id));
    REQUIRE(store->find(queued)->state == JobState::queued);
}

namespace {

// What the running counts must equal: a scan of every job.
template <class Backend>
CountRows counted_by_scan(Backend& backend) {
    return backend.count_rows(
        "SELECT queue, topic, state, COUNT(*), "
        "COALESCE(SUM(CASE WHEN finished_at IS NOT NULL THEN started_at - queued_at END), 0), "
        "COUNT(CASE WHEN finished_at IS NOT NULL THEN started_at - queued_at END), "
        "COALESCE(SUM(CASE WHEN finished_at IS NOT NULL THEN finished_at - started_at END), 0), "
        "COUNT(CASE WHEN finished_at IS NOT NULL THEN finished_at - started_at END) "
        "FROM jobs GROUP BY queue, topic, state");
}

template <class Backend>
CountRows running_counts(Backend& backend) {
    // A row whose counts all came to zero may stay (the PostgreSQL store's
    // one-statement exchange cannot delete what it just updated).
    return backend.count_rows(
        "SELECT queue, topic, state, jobs, wait_sum, wait_n, run_sum, run_n FROM job_counts "
        "WHERE jobs != 0 OR wait_sum != 0 OR wait_n != 0 OR run_sum != 0 OR run_n != 0");
}

// statistics() against the scan, for both groupings.
template <class Backend>
void require_statistics_match_scan(const JobStore& store, Backend& backend) {
    auto scan = counted_by_scan(backend);
    for (auto group : {StatisticsGroup::queue, StatisticsGroup::topic}) {
        std::map<std::string, JobStatistics> expected;
        std::map<std::string, std::array<std::int64_t, 4>> sums;
        for (const auto& [key, v] : scan) {
            const std::string& k =
                group == StatisticsGroup::queue ? std::get<0>(key) : std::get<1>(key);
            auto& e = expected[k];
            e.key = k;
            e.count(*job_state_from_string(std::get<2>(key))) += v[0];
            auto& sum = sums[k];
            for (std::size_t i = 0; i < 4; ++i) sum[i] += v[i + 1];
        }
        for (auto& [k, e] : expected) {
            const auto& sum = sums[k];
            if (sum[1] > 0) e.average_wait = std::chrono::microseconds(sum[0] / sum[1]);
            if (sum[3] > 0) e.average_processing = std::chrono::microseconds(sum[2] / sum[3]);
        }
        auto actual = store.statistics(group);
        REQUIRE(actual.size() == expected.size());
        for (const auto& a : actual) {
            INFO("statistics key " << a.key);
            REQUIRE(expected.count(a.key) == 1);
            const auto& e = expected[a.key];
            REQUIRE(a.by_state == e.by_state);
            REQUIRE(a.average_wait == e.average_wait);
            REQUIRE(a.average_processing == e.average_processing);
        }
    }
}

}  // namespace

TEMPLATE_TEST_CASE(
    "running counts equal a count of every job after a random mix of changes and crashes",
    "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    FakeClock clock;
    auto store = backend.open(&clock);
    std::mt19937 random(20240501);
    auto pick = [&](int n) { return static_cast<int>(random() % static_cast<unsigned>(n)); };
    const std::vector<std::string> queues = {"assets", "pages", "default"};
    const std::vector<std::string> topics = {"wharf/asset/delete", "wharf/asset/move",
                                             "wharf/page/move"};
    std::vector<JobId> active;
    JobId highest = 0;

    auto insert_some = [&] {
        NewJob job = new_job(topics[static_cast<std::size_t>(pick(3))],
                             queues[static_cast<std::size_t>(pick(3))]);
        job.max_retries = pick(3) - 1;  // -1 (endless), 0 or 1
        int kind = pick(10);
        if (kind == 0) job.scheduled_at = clock.now() + std::chrono::seconds(1 + pick(5));
        if (kind == 1) {
            job.cron = "*/2 * * * * ?";
            job.schedule_name = "every-two-seconds-" + std::to_string(pick(2));
        }
        highest = std::max(highest, store->insert(job).id);
    };
    auto claim_some = [&] {
        ClaimRequest request;
        request.limit = static_cast<std::size_t>(1 + pick(3));
        if (pick(2)) request.queues = {queues[static_cast<std::size_t>(pick(3))]};
        for (const auto& job : store->claim_next(request)) active.push_back(job.id);
    };
    auto end_some = [&] {
        ExchangeRequest exchange;
        while (!active.empty() && exchange.completions.size() < 3) {
            std::size_t i = static_cast<std::size_t>(pick(static_cast<int>(active.size())));
            JobCompletion done = completion(active[i], static_cast<JobOutcome>(pick(5)), "ended",
                                            clock.now() + std::chrono::seconds(pick(3)));
            done.discard = pick(4) == 0;
            exchange.completions.push_back(done);
            active.erase(active.begin() + static_cast<std::ptrdiff_t>(i));
        }
        if (pick(2)) exchange.claims.push_back(ClaimRequest{{}, {}, 2, {}, "local"});
        auto result = store->exchange(exchange);
        for (const auto& claimed : result.claimed)
            for (const auto& job : claimed) active.push_back(job.id);
    };
    auto any_id = [&] { return static_cast<JobId>(1 + pick(static_cast<int>(highest + 2))); };

    for (int step = 0; step < 3000; ++step) {
        clock.advance(std::chrono::milliseconds(pick(700)));
        switch (pick(12)) {
            case 0:
            case 1:
            case 2:
                insert_some();
                break;
            case 3:
            case 4:
                claim_some();
                break;
            case 5:
            case 6:
                end_some();
                break;
            case 7:
                store->due_scheduled(clock.now());
                break;
            case 8:
                store->request_stop(any_id());
                break;
            case 9:
                store->remove(any_id());
                // A finish of a job that is not active (any more) is refused
                // and changes nothing.
                if (pick(2)) {
                    try {
                        store->finish(completion(any_id(), JobOutcome::succeeded));
                    } catch (const Error&) {
                    }
                }
                break;
            case 10:
                if (pick(3) == 0) {
                    PurgeRequest purge;
                    purge.batch_size = 7;
                    if (pick(2)) {
                        purge.max_keep = static_cast<std::size_t>(pick(40));
                    } else {
                        purge.finished_before = clock.now() - std::chrono::seconds(pick(30));
                    }
                    store->purge(purge);
                } else {
                    store->move_waiting(queues[static_cast<std::size_t>(pick(3))],
                                        topics[static_cast<std::size_t>(pick(3))],
                                        queues[static_cast<std::size_t>(pick(3))]);
                }
                break;
            case 11:
                if (pick(8) == 0) {
                    // A crash: the store closes with jobs active, the next
                    // start puts them back.
                    store.reset();
                    store = backend.open(&clock);
                    store->requeue_active();
                    active.clear();
                }
                break;
        }
        if (step % 250 == 0) REQUIRE(running_counts(backend) == counted_by_scan(backend));
    }
    auto scan = counted_by_scan(backend);
    REQUIRE(scan.size() > 10);  // the mix reached many (queue, topic, state) rows
    REQUIRE(running_counts(backend) == scan);
    require_statistics_match_scan(*store, backend);
}

TEMPLATE_TEST_CASE("running counts stay exact when many threads change jobs in shared commits",
                   "[jobs][store]", SqliteBackend, PgBackend) {
    WHARF_STORE_BACKEND(backend);
    auto store = backend.open();
    std::atomic<int> refused{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&store, &refused, t] {
            std::mt19937 random(static_cast<unsigned>(t));
            for (int i = 0; i < 150; ++i) {
                JobId id = store->insert(new_job("wharf/asset/delete", t % 2 ? "a" : "b")).id;
                if (random() % 3 == 0) {
                    store->request_stop(id);
                    continue;
                }
                ClaimRequest request;
                request.queues = {t % 2 ? "a" : "b"};
                for (const auto& job : store->claim_next(request)) {
                    store->finish(completion(job.id, JobOutcome::succeeded));
                    // Refused inside a shared commit: its savepoint rolls back
                    // and its counts must not be applied either.
                    try {
                        store->finish(completion(job.id, JobOutcome::error));
                    } catch (const Error&) {
                        ++refused;
                    }
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    REQUIRE(refused > 0);
    REQUIRE(running_counts(backend) == counted_by_scan(backend));
    require_statistics_match_scan(*store, backend);
}

TEST_CASE("migrating a database without running counts builds them from its jobs") {
    SqliteBackend backend;
    FakeClock clock;
    {
        auto store = backend.open(&clock);
        for (int i = 0; i < 20; ++i) {
            store->insert(new_job("wharf/asset/delete", i % 2 ? "a" : "b"));
            if (i % 3 == 0) continue;
            clock.advance(1s);
            JobId id = claim_one(*store, i % 2 ? "a" : "b").id;
            clock.advance(std::chrono::seconds(i));
            store->finish(completion(id, i % 5 ? JobOutcome::succeeded : JobOutcome::error));
        }
    }
    {
        // The database as the previous version (2) left it.
        SQLite::Database c(backend.db_path().string(), SQLite::OPEN_READWRITE);
        c.exec("DROP TABLE job_counts");
        c.exec("DELETE FROM schema_version WHERE version >= 3");
    }
    auto store = backend.open(&clock);
    REQUIRE(store->schema_version() == SqliteJobStore::kSchemaVersion);
    auto counts = running_counts(backend);
    REQUIRE(counts.size() == 6);  // 2 queues x (queued, succeeded, error)
    REQUIRE(counts == counted_by_scan(backend));
    require_statistics_match_scan(*store, backend);
}
