// bench_jobs: the job store alone against the raw SQLite floor.
//
// For N no-op jobs it measures, with the real SqliteJobStore (WAL, synchronous
// NORMAL, group commit):
//   enqueue   - insert N jobs from C threads, each call durable on return
//   drain     - C threads loop claim_next(1) + finish(succeeded) until empty
// at concurrency C = 1 and 2, and in the same run the floor: the plain SQLite
// C API doing insert -> mark active -> mark done per job, one transaction per
// state change, same journal and sync mode. Results are medians over the runs,
// printed as a Markdown table with ratios to the floor (a ratio holds on a
// noisy machine better than a rate does).
//
// Usage: bench_jobs [jobs=20000] [runs=3]

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "base/log.hpp"
#include "jobs/sqlite_job_store.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using wharf::host::SqliteJobStore;

namespace {

class TempDir {
public:
    explicit TempDir(const std::string& tag) {
        static int counter = 0;
        path_ = fs::temp_directory_path() / ("wharf-bench-jobs-" + std::to_string(::getpid()) +
                                             "-" + tag + "-" + std::to_string(counter++));
        fs::remove_all(path_);
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

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct StoreRun {
    double enqueue_per_s;
    double drain_per_s;
    double lifecycle_per_s;  // N / (enqueue time + drain time)
    double ops_per_commit;   // during the drain
};

StoreRun run_store(int jobs, int concurrency) {
    TempDir dir("store");
    wharf::host::SqliteJobStoreOptions options;
    options.path = dir.path() / "jobs.db";
    SqliteJobStore store(options);
    store.migrate();

    auto run_threads = [&](auto body) {
        std::vector<std::thread> threads;
        for (int t = 0; t < concurrency; ++t) threads.emplace_back(body, t);
        for (auto& t : threads) t.join();
    };

    auto start = Clock::now();
    run_threads([&](int t) {
        wharf::host::NewJob job;
        job.topic = "bench/noop";
        job.queue = "bench";
        for (int i = t; i < jobs; i += concurrency) store.insert(job);
    });
    double enqueue_s = seconds_since(start);

    auto before = store.writer_counters();
    std::atomic<int> finished{0};
    start = Clock::now();
    run_threads([&](int t) {
        wharf::host::ClaimRequest request;
        request.queues = {"bench"};
        request.limit = 1;
        request.worker = "bench-" + std::to_string(t);
        while (true) {
            auto claimed = store.claim_next(request);
            if (claimed.empty()) return;
            store.finish({claimed.front().id, wharf::host::JobOutcome::succeeded, {}, {}});
            ++finished;
        }
    });
    double drain_s = seconds_since(start);
    auto after = store.writer_counters();
    if (finished != jobs) throw std::runtime_error("drain lost jobs");
    return {jobs / enqueue_s, jobs / drain_s, jobs / (enqueue_s + drain_s),
            double(after.operations - before.operations) /
                double(std::max<std::uint64_t>(1, after.transactions - before.transactions))};
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

}  // namespace

int main(int argc, char** argv) {
    int jobs = argc > 1 ? std::stoi(argv[1]) : 20000;
    int runs = argc > 2 ? std::stoi(argv[2]) : 3;
    wharf::host::set_log_level("warn");

    std::vector<double> floor_insert, floor_drain, floor_all;
    std::vector<std::vector<double>> enqueue(3), drain(3), all(3), batch(3);
    for (int r = 0; r < runs; ++r) {
        // Interleaved, so that drift on a shared machine hits all alike.
        FloorRun f = run_floor(jobs);
        floor_insert.push_back(f.insert_per_s);
        floor_drain.push_back(f.drain_per_s);
        floor_all.push_back(f.lifecycle_per_s);
        for (int c : {1, 2}) {
            StoreRun s = run_store(jobs, c);
            enqueue[c].push_back(s.enqueue_per_s);
            drain[c].push_back(s.drain_per_s);
            all[c].push_back(s.lifecycle_per_s);
            batch[c].push_back(s.ops_per_commit);
        }
        std::fprintf(stderr, "run %d/%d done\n", r + 1, runs);
    }

    std::printf(
        "Job store alone vs raw SQLite floor: N = %d no-op jobs, WAL, synchronous=NORMAL, "
        "median of %d runs\n\n",
        jobs, runs);
    std::printf(
        "| measure | store c=1 | store c=2 | floor (1 thread) | c=1 / floor | c=2 / floor |\n");
    std::printf("|---|---:|---:|---:|---:|---:|\n");
    auto row = [&](const char* name, std::vector<double>& s1, std::vector<double>& s2,
                   std::vector<double>& floor_values) {
        double a = median(s1), b = median(s2), f = median(floor_values);
        std::printf("| %s | %.0f | %.0f | %.0f | %.2f | %.2f |\n", name, a, b, f, a / f, b / f);
    };
    row("enqueue, jobs/s (floor: insert)", enqueue[1], enqueue[2], floor_insert);
    row("claim+finish, jobs/s (floor: active+done)", drain[1], drain[2], floor_drain);
    row("whole life, jobs/s (floor: insert+active+done)", all[1], all[2], floor_all);
    row("drain (claim+finish) vs whole-life floor, jobs/s", drain[1], drain[2], floor_all);
    std::printf("| operations per commit (drain) | %.2f | %.2f | 1 | | |\n", median(batch[1]),
                median(batch[2]));
    return 0;
}
