// bench_jobs: the real job engine (dispatcher, workers, SqliteJobStore with
// group commit) against the raw SQLite floor, measured in the same run.
//
// For N no-op jobs:
//   enqueue   - JobEngine::enqueue from C threads (each job durable on return)
//   drain     - the engine runs N queued no-op jobs on a queue with
//               max_parallel = C, until the last end is committed
//   latency   - enqueue -> consumer start, one job at a time on an idle engine
//   store     - the store alone on one thread: exchanges of C ends and C
//               claims, the most the engine could drain at concurrency C
// and the floor: the plain SQLite C API doing insert -> mark active -> mark
// done per job, one transaction per state change, same journal and sync mode.
// Then, on a history of H finished jobs (bulk-loaded): the time of a list page
// (first page, deep page, filtered), and a purge of the whole history while
// the engine dispatches probe jobs: the longest enqueue -> start wait during
// the purge shows how long dispatch was blocked.
//
// Results are medians over the runs, printed as Markdown tables with ratios to
// the floor (a ratio holds on a noisy machine better than a rate does).
//
// Usage: bench_jobs [jobs=20000] [runs=3] [history=1000000]

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "base/log.hpp"
#include "bench_util.hpp"
#include "jobs/job_engine.hpp"
#include "jobs/sqlite_job_store.hpp"
#include "modules/service_registry.hpp"

namespace fs = std::filesystem;
using namespace wharf::host;
using wharf::bench::Clock;
using wharf::bench::median;
using wharf::bench::percentile;
using wharf::bench::seconds_since;

namespace {

// A scratch directory for one measurement.
class TempDir : public wharf::bench::TempDir {
public:
    explicit TempDir(const std::string& tag) : wharf::bench::TempDir("jobs", tag) {}
};

// A queue registered by hand (wharfd gets them from ConfigAdmin).
class BenchQueue final : public wharf::Queue {
public:
    explicit BenchQueue(unsigned max_parallel) {
        auto s = std::make_shared<wharf::QueueSettings>();
        s->name = "bench";
        s->topics = {"bench/*"};
        s->max_parallel = max_parallel;
        settings_ = s;
    }
    const std::string& name() const override { return settings_->name; }
    std::shared_ptr<const wharf::QueueSettings> settings() const override { return settings_; }
    bool matches(std::string_view t) const override { return wharf::queue_topic_matches("bench/*", t); }

private:
    std::shared_ptr<const wharf::QueueSettings> settings_;
};

// Records when each job started (steady clock), by payload-free job id.
class NoopConsumer final : public wharf::JobConsumer {
public:
    wharf::JobResult process(wharf::JobContext& context) override {
        last_id = context.job().id;
        last_start = Clock::now().time_since_epoch().count();
        started.fetch_add(1, std::memory_order_release);
        return wharf::JobResult::succeeded();
    }
    std::atomic<std::uint64_t> started{0};
    std::atomic<wharf::JobId> last_id{0};
    std::atomic<Clock::rep> last_start{0};
};

struct Engine {
    ServiceRegistryImpl registry;
    std::unique_ptr<SqliteJobStore> store;
    std::unique_ptr<JobEngine> engine;
    std::shared_ptr<NoopConsumer> consumer = std::make_shared<NoopConsumer>();
    std::shared_ptr<wharf::ServiceRegistration> consumer_registration;

    Engine(const fs::path& db, unsigned max_parallel) {
        SqliteJobStoreOptions o;
        o.path = db;
        store = std::make_unique<SqliteJobStore>(o);
        store->migrate();
        engine = std::make_unique<JobEngine>(registry, *store);
        engine->start();
        registry.register_service(Owner{"bench", 0}, nullptr, wharf::interfaces::kQueue,
                                  std::make_shared<BenchQueue>(max_parallel), {}, 0);
    }
    ~Engine() { engine->stop(); }

    void add_consumer() {
        wharf::Properties props;
        boost::property_tree::ptree topics;
        topics.push_back({"", boost::property_tree::ptree("bench/noop")});
        props.add_child(wharf::JobConsumer::kTopicsProperty, topics);
        consumer_registration = registry.register_service(
            Owner{"bench", 0}, nullptr, wharf::interfaces::kJobConsumer, consumer, props, 0);
    }

    void wait_ended(std::uint64_t n) const {
        while (engine->counters().ended < n) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
};

struct EngineRun {
    double enqueue_per_s;
    double drain_per_s;
    double jobs_per_exchange;
};

EngineRun run_engine(int jobs, int concurrency) {
    TempDir dir("engine");
    Engine e(dir.path() / "jobs.db", static_cast<unsigned>(concurrency));
    auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < concurrency; ++t) {
        threads.emplace_back([&, t] {
            for (int i = t; i < jobs; i += concurrency) e.engine->enqueue("bench/noop", {});
        });
    }
    for (auto& t : threads) t.join();
    double enqueue_s = seconds_since(start);
    auto before = e.engine->counters();
    start = Clock::now();
    e.add_consumer();
    e.wait_ended(static_cast<std::uint64_t>(jobs));
    double drain_s = seconds_since(start);
    auto after = e.engine->counters();
    if (e.consumer->started != static_cast<std::uint64_t>(jobs))
        throw std::runtime_error("drain ran a job twice or lost one");
    return {jobs / enqueue_s, jobs / drain_s,
            double(jobs) / double(std::max<std::uint64_t>(1, after.exchanges - before.exchanges))};
}

// The store alone, on the calling thread (no dispatcher, no workers): N
// queued jobs drained by exchanges that each end the `per` runs the last one
// claimed and claim `per` more, as the dispatcher's exchange does at
// concurrency `per` with perfect pairing. The ceiling the engine can reach.
double run_store_only(int jobs, std::size_t per) {
    TempDir dir("store");
    SqliteJobStoreOptions o;
    o.path = dir.path() / "jobs.db";
    SqliteJobStore store(o);
    store.migrate();
    NewJob job;
    job.topic = "bench/noop";
    job.queue = "bench";
    for (int i = 0; i < jobs; ++i) store.insert(job);
    auto start = Clock::now();
    std::vector<wharf::Job> running;
    std::size_t ended = 0;
    while (true) {
        ExchangeRequest request;
        for (const auto& j : running) {
            JobCompletion done;
            done.id = j.id;
            request.completions.push_back(done);
        }
        ended += running.size();
        ClaimRequest claim;
        claim.queues = {"bench"};
        claim.limit = per;
        request.claims.push_back(claim);
        running = store.exchange(request).claimed.front();
        if (running.empty()) break;
    }
    double seconds = seconds_since(start);
    if (ended != static_cast<std::size_t>(jobs))
        throw std::runtime_error("store-only drain ended " + std::to_string(ended) + " of " +
                                 std::to_string(jobs));
    return jobs / seconds;
}

struct Latency {
    double p50_ms, p99_ms, after_return_p50_ms;
};

// Enqueue -> start, one job at a time, the engine idle in between.
Latency run_latency(int samples) {
    TempDir dir("latency");
    Engine e(dir.path() / "jobs.db", 2);
    e.add_consumer();
    std::vector<double> total, after_return;
    for (int i = 0; i < samples; ++i) {
        auto before = e.consumer->started.load();
        auto t0 = Clock::now();
        e.engine->enqueue("bench/noop", {});
        auto t1 = Clock::now();
        while (e.consumer->started.load(std::memory_order_acquire) == before) {
        }
        auto started = Clock::time_point(Clock::duration(e.consumer->last_start.load()));
        total.push_back(std::chrono::duration<double, std::milli>(started - t0).count());
        after_return.push_back(std::chrono::duration<double, std::milli>(started - t1).count());
        e.wait_ended(static_cast<std::uint64_t>(i + 1));
    }
    return {percentile(total, 0.5), percentile(total, 0.99), percentile(after_return, 0.5)};
}

void check(int rc, sqlite3* db, const char* what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        throw std::runtime_error(std::string(what) + ": " + sqlite3_errmsg(db));
    }
}

struct FloorRun {
    double insert_per_s;
    double drain_per_s;      // mark active + mark done
    double lifecycle_per_s;  // all three
};

// The floor: what any SQLite job queue must at least do per job, with nothing
// else (no thread hand-off, no JSON, no secondary indexes, no group commit).
FloorRun run_floor(int jobs) {
    TempDir dir("floor");
    sqlite3* db = nullptr;
    check(sqlite3_open((dir.path() / "floor.db").c_str(), &db), db, "open");
    check(sqlite3_exec(db,
                       "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                       "CREATE TABLE jobs (id INTEGER PRIMARY KEY, topic TEXT NOT NULL,"
                       " state TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER,"
                       " started_at INTEGER, finished_at INTEGER);",
                       nullptr, nullptr, nullptr),
          db, "schema");
    sqlite3_stmt* insert = nullptr;
    sqlite3_stmt* activate = nullptr;
    sqlite3_stmt* finish = nullptr;
    check(sqlite3_prepare_v2(db,
                             "INSERT INTO jobs (topic, state, payload, created_at) "
                             "VALUES ('bench/noop', 'queued', '{}', ?)",
                             -1, &insert, nullptr),
          db, "prepare insert");
    check(sqlite3_prepare_v2(db, "UPDATE jobs SET state='active', started_at=? WHERE id=?", -1,
                             &activate, nullptr),
          db, "prepare activate");
    check(sqlite3_prepare_v2(db, "UPDATE jobs SET state='done', finished_at=? WHERE id=?", -1,
                             &finish, nullptr),
          db, "prepare finish");
    auto now = [] { return Clock::now().time_since_epoch().count(); };
    std::vector<sqlite3_int64> ids;
    ids.reserve(static_cast<std::size_t>(jobs));

    auto start = Clock::now();
    for (int i = 0; i < jobs; ++i) {
        sqlite3_bind_int64(insert, 1, now());
        check(sqlite3_step(insert), db, "insert");
        sqlite3_reset(insert);
        ids.push_back(sqlite3_last_insert_rowid(db));
    }
    double insert_s = seconds_since(start);
    start = Clock::now();
    for (auto id : ids) {
        sqlite3_bind_int64(activate, 1, now());
        sqlite3_bind_int64(activate, 2, id);
        check(sqlite3_step(activate), db, "activate");
        sqlite3_reset(activate);
        sqlite3_bind_int64(finish, 1, now());
        sqlite3_bind_int64(finish, 2, id);
        check(sqlite3_step(finish), db, "finish");
        sqlite3_reset(finish);
    }
    double drain_s = seconds_since(start);
    sqlite3_finalize(insert);
    sqlite3_finalize(activate);
    sqlite3_finalize(finish);
    sqlite3_close(db);
    return {jobs / insert_s, jobs / drain_s, jobs / (insert_s + drain_s)};
}

// Writes `count` finished jobs straight into a migrated store file, in one
// transaction (loading a history is not what is measured).
void load_history(const fs::path& db_path, long count) {
    sqlite3* db = nullptr;
    check(sqlite3_open(db_path.c_str(), &db), db, "open");
    check(sqlite3_exec(db, "PRAGMA journal_mode=WAL; BEGIN", nullptr, nullptr, nullptr), db,
          "begin");
    sqlite3_stmt* s = nullptr;
    check(sqlite3_prepare_v2(
              db,
              "INSERT INTO jobs (topic, queue, state, payload, submitted_by, created_at, "
              "queued_at, started_at, finished_at, max_retries, result_message) "
              "VALUES (?, 'bench', ?, '{\"path\":\"/content/dam/x\"}', 'alice', ?, ?, ?, ?, 10, "
              "'done')",
              -1, &s, nullptr),
          db, "prepare");
    std::int64_t t = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count() -
                     std::int64_t(30) * 86400 * 1000000;
    const char* topics[] = {"bench/noop", "bench/move", "bench/delete"};
    for (long i = 0; i < count; ++i) {
        std::int64_t at = t + i * 1000;
        sqlite3_bind_text(s, 1, topics[i % 3], -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, i % 50 == 0 ? "error" : "succeeded", -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, at);
        sqlite3_bind_int64(s, 4, at);
        sqlite3_bind_int64(s, 5, at + 100);
        sqlite3_bind_int64(s, 6, at + 500);
        check(sqlite3_step(s), db, "insert");
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit");
    sqlite3_close(db);
}

template <class F>
double time_ms(F f, int repeat = 20) {
    std::vector<double> v;
    for (int i = 0; i < repeat; ++i) {
        auto t0 = Clock::now();
        f();
        v.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    return median(v);
}

void run_history(long history) {
    TempDir dir("history");
    auto db = dir.path() / "jobs.db";
    {
        SqliteJobStoreOptions o;
        o.path = db;
        SqliteJobStore s(o);
        s.migrate();
    }
    load_history(db, history);
    {
        SqliteJobStoreOptions o;
        o.path = db;
        SqliteJobStore s(o);
        s.rebuild_statistics();
    }
    Engine e(db, 2);
    e.add_consumer();
    auto& store = *e.store;
    wharf::JobFilter first;
    double first_ms = time_ms([&] { store.list(first); });
    wharf::JobFilter deep;
    deep.cursor = history / 2;
    double deep_ms = time_ms([&] { store.list(deep); });
    wharf::JobFilter by_state;
    by_state.states = {wharf::JobState::error};
    by_state.cursor = history / 2;
    double state_ms = time_ms([&] { store.list(by_state); });
    wharf::JobFilter by_topic;
    by_topic.topic = "bench/move";
    by_topic.states = {wharf::JobState::succeeded, wharf::JobState::error};
    double topic_ms = time_ms([&] { store.list(by_topic); });
    double engine_ms = time_ms([&] { e.engine->list(first); });
    double stats_queue_ms = time_ms([&] { store.statistics(StatisticsGroup::queue); });
    double stats_topic_ms = time_ms([&] { store.statistics(StatisticsGroup::topic); });

    // Probe jobs dispatched one at a time while `busy` holds: the enqueue ->
    // start wait of each.
    auto probe_while = [&](std::atomic<bool>& busy) {
        std::vector<double> waits;
        while (busy.load()) {
            auto before = e.consumer->started.load();
            auto t0 = Clock::now();
            e.engine->enqueue("bench/noop", {});
            while (e.consumer->started.load() == before) std::this_thread::yield();
            waits.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        return waits;
    };
    // The same probes with nothing else running: on a loaded machine the
    // scheduler alone makes waits of many ms; this is the peer to compare with.
    std::vector<double> idle_waits;
    {
        std::atomic<bool> busy{true};
        std::thread prober([&] { idle_waits = probe_while(busy); });
        std::this_thread::sleep_for(std::chrono::seconds(5));
        busy = false;
        prober.join();
    }
    // Purge everything while probe jobs keep being dispatched.
    std::atomic<bool> purging{true};
    std::vector<double> waits;
    std::thread prober([&] { waits = probe_while(purging); });
    PurgeRequest purge;
    purge.max_keep = 0;
    purge.batch_size = 500;
    auto t0 = Clock::now();
    auto result = store.purge(purge);
    double purge_s = seconds_since(t0);
    purging = false;
    prober.join();

    std::printf("\nHistory of %ld finished jobs (payload, user, 3 topics, 2%% error)\n\n", history);
    std::printf("| measure | value | goal |\n|---|---:|---:|\n");
    std::printf("| list, first page of 50, newest first (store) | %.3f ms | < 20 ms |\n", first_ms);
    std::printf("| list, first page through the engine (views merged) | %.3f ms | < 20 ms |\n",
                engine_ms);
    std::printf("| list, page at the middle of the history (keyset cursor) | %.3f ms | < 20 ms |\n",
                deep_ms);
    std::printf("| list, state=error from the middle | %.3f ms | < 20 ms |\n", state_ms);
    std::printf("| list, topic + 2 states | %.3f ms | < 20 ms |\n", topic_ms);
    std::printf("| statistics by queue (running counts) | %.3f ms | |\n", stats_queue_ms);
    std::printf("| statistics by topic (running counts) | %.3f ms | |\n", stats_topic_ms);
    std::printf("| purge of the whole history | %.1f s (%zu jobs, %zu batches, %.0f jobs/s) | |\n",
                purge_s, result.removed, result.batches, double(result.removed) / purge_s);
    std::printf("| enqueue->start during purge: p50 / p99 / max (%zu probes) | %.2f / %.2f / "
                "%.2f ms | max < 100 ms |\n",
                waits.size(), percentile(waits, 0.5), percentile(waits, 0.99),
                *std::max_element(waits.begin(), waits.end()));
    std::printf("| the same probes for 5 s before the purge (peer: machine noise) | %.2f / %.2f / "
                "%.2f ms (%zu probes) | |\n",
                percentile(idle_waits, 0.5), percentile(idle_waits, 0.99),
                *std::max_element(idle_waits.begin(), idle_waits.end()), idle_waits.size());
    std::printf("\nload average: %s\n", wharf::bench::load_average().c_str());
    using wharf::bench::format;
    using wharf::bench::summary;
    double page_ms = std::max({first_ms, engine_ms, deep_ms, state_ms, topic_ms});
    summary(format("jobs: slowest job list page, %ld finished jobs in history", history),
            format("%.3f ms", page_ms), "", NAN, "< 20 ms", page_ms < 20);
    double max_wait = *std::max_element(waits.begin(), waits.end());
    double idle_max = *std::max_element(idle_waits.begin(), idle_waits.end());
    summary(format("jobs: purge of %zu jobs, longest enqueue->start wait", result.removed),
            format("%.1f ms (purge %.1f s)", max_wait, purge_s),
            format("%.1f ms (same probes, idle)", idle_max), NAN, "< 100 ms", max_wait < 100);
}

}  // namespace

int main(int argc, char** argv) {
    int jobs = argc > 1 ? std::stoi(argv[1]) : 20000;
    int runs = argc > 2 ? std::stoi(argv[2]) : 3;
    long history = argc > 3 ? std::stol(argv[3]) : 1000000;
    set_log_level("warn");

    std::vector<double> floor_insert, floor_drain, floor_all;
    std::vector<std::vector<double>> enqueue(3), drain(3), batch(3), store_only(3);
    std::vector<double> p50, p99, p50_after;
    for (int r = 0; r < runs; ++r) {
        // Interleaved, so that drift on a shared machine hits all alike.
        FloorRun f = run_floor(jobs);
        floor_insert.push_back(f.insert_per_s);
        floor_drain.push_back(f.drain_per_s);
        floor_all.push_back(f.lifecycle_per_s);
        for (int c : {1, 2}) {
            EngineRun s = run_engine(jobs, c);
            enqueue[c].push_back(s.enqueue_per_s);
            drain[c].push_back(s.drain_per_s);
            batch[c].push_back(s.jobs_per_exchange);
            store_only[c].push_back(run_store_only(jobs, static_cast<std::size_t>(c)));
        }
        Latency l = run_latency(2000);
        p50.push_back(l.p50_ms);
        p99.push_back(l.p99_ms);
        p50_after.push_back(l.after_return_p50_ms);
        std::fprintf(stderr, "run %d/%d done\n", r + 1, runs);
    }

    std::printf("load average: %s\n\n", wharf::bench::load_average().c_str());
    std::printf(
        "Job engine (dispatcher + workers + SqliteJobStore) vs raw SQLite floor: N = %d no-op "
        "jobs, WAL, synchronous=NORMAL, median of %d runs\n\n",
        jobs, runs);
    std::printf(
        "| measure | engine c=1 | engine c=2 | floor (1 thread) | c=1 / floor | c=2 / floor |\n");
    std::printf("|---|---:|---:|---:|---:|---:|\n");
    auto row = [&](const char* name, std::vector<double>& s1, std::vector<double>& s2,
                   std::vector<double>& floor_values) {
        double a = median(s1), b = median(s2), f = median(floor_values);
        std::printf("| %s | %.0f | %.0f | %.0f | %.2f | %.2f |\n", name, a, b, f, a / f, b / f);
    };
    row("enqueue, jobs/s (floor: insert)", enqueue[1], enqueue[2], floor_insert);
    row("drain, jobs/s (floor: active+done)", drain[1], drain[2], floor_drain);
    row("drain, jobs/s vs whole-life floor (insert+active+done)", drain[1], drain[2], floor_all);
    std::printf("| jobs per dispatcher transaction (drain) | %.2f | %.2f | 1 | | |\n",
                median(batch[1]), median(batch[2]));
    row("store alone, one thread, c jobs ended and claimed per exchange (the engine's ceiling)",
        store_only[1], store_only[2], floor_all);
    std::printf("\n| enqueue->start, idle engine | p50 | p99 | goal |\n|---|---:|---:|---:|\n");
    std::printf("| from the enqueue call | %.3f ms | %.3f ms | p50 < 0.25 ms |\n", median(p50),
                median(p99));
    std::printf("| from enqueue's return (job durable) | %.3f ms | | |\n", median(p50_after));
    {
        using wharf::bench::format;
        using wharf::bench::summary;
        double d2 = median(drain[2]), fall = median(floor_all);
        summary(format("jobs: drain c=2, %d no-op jobs", jobs), format("%.0f jobs/s", d2),
                format("%.0f jobs/s (raw SQLite, whole life)", fall), d2 / fall,
                ">= 1.0 x floor", d2 / fall >= 1.0);
        double e1 = median(enqueue[1]), fi = median(floor_insert);
        summary("jobs: enqueue c=1", format("%.0f jobs/s", e1),
                format("%.0f jobs/s (raw SQLite insert)", fi), e1 / fi, "", std::nullopt);
        summary("jobs: enqueue->start p50, idle engine", format("%.3f ms", median(p50)), "", NAN,
                "< 0.25 ms", median(p50) < 0.25);
    }
    if (history > 0) run_history(history);
    return 0;
}
