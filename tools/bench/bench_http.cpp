// bench_http: the admin API over real sockets against the real job engine and
// SqliteJobStore (HttpServer on 127.0.0.1, HttpClient with one keep-alive
// connection, as a script would use it).
//
//   enqueue  - POST /api/jobs one by one, each answered 201 only after the job
//              is committed (durable): rate and latency percentiles, with the
//              store's synchronous=NORMAL (survives a crash of the process)
//              and FULL (also a power loss)
//   list     - GET /api/jobs pages on a history of H finished jobs (first
//              page, a page in the middle by keyset cursor, filtered by
//              state, 1000 per page)
//   metrics  - GET /metrics on that history (per-queue statistics included)
//
// Usage: bench_http [enqueues=20000] [history=100000]   (history 1000000 for the README)

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "base/log.hpp"
#include "bench_util.hpp"
#include "http/http_client.hpp"
#include "http/http_server.hpp"
#include "http/users.hpp"
#include "jobs/job_engine.hpp"
#include "jobs/sqlite_job_store.hpp"
#include "modules/service_registry.hpp"

namespace fs = std::filesystem;
using namespace wharf::host;
using wharf::bench::Clock;
using wharf::bench::percentile;

namespace {

const std::string kToken = "bench-operator-token";

// A scratch directory for one measurement.
class TempDir : public wharf::bench::TempDir {
public:
    explicit TempDir(const std::string& tag) : wharf::bench::TempDir("http", tag) {}
};

// A host reduced to what the API needs: store, engine (no queues or consumers:
// enqueued jobs wait, so only the enqueue path is measured), users, server.
struct Host {
    ServiceRegistryImpl registry;
    std::unique_ptr<SqliteJobStore> store;
    std::unique_ptr<JobEngine> engine;
    std::unique_ptr<HttpServer> server;

    Host(const fs::path& dir, const std::string& synchronous, bool migrate = true) {
        std::ofstream(dir / "users.yaml")
            << "users:\n  - name: bench\n    role: admin\n    token_sha256: "
            << token_sha256(kToken) << "\n";
        SqliteJobStoreOptions so;
        so.path = dir / "jobs.db";
        so.synchronous = synchronous;
        store = std::make_unique<SqliteJobStore>(so);
        if (migrate) store->migrate();
        engine = std::make_unique<JobEngine>(registry, *store);
        engine->start();
        HttpServerOptions ho;
        ho.listen = "127.0.0.1:0";
        ho.users_file = dir / "users.yaml";
        HttpBackends b;
        b.jobs = engine->manager().get();
        b.store = store.get();
        b.registry = &registry;
        b.queue_views = [this] { return engine->queues(); };
        server = std::make_unique<HttpServer>(ho, b);
        server->start();
    }
    ~Host() {
        server->stop();
        engine->stop();
    }
    HttpClient client() const {
        HttpClientOptions o;
        o.bearer_token = kToken;
        return HttpClient("http://127.0.0.1:" + std::to_string(server->port()), o);
    }
};

double bench_enqueue(long count, const std::string& synchronous) {
    TempDir dir("enqueue-" + synchronous);
    Host host(dir.path(), synchronous);
    auto client = host.client();
    const std::string body =
        R"({"topic":"bench/http/noop","payload":{"path":"/content/dam/bench/a.jpg","n":"1"}})";
    for (int i = 0; i < 200; ++i) client.post_json("/api/jobs", body);  // warm up
    std::vector<double> latencies;
    latencies.reserve(static_cast<std::size_t>(count));
    auto t0 = Clock::now();
    for (long i = 0; i < count; ++i) {
        auto s = Clock::now();
        auto r = client.post_json("/api/jobs", body);
        latencies.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
        if (r.status != 201)
            throw std::runtime_error("enqueue answered " + std::to_string(r.status));
    }
    double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    {
        // The HTTP round trip alone: /healthz answers from a cache.
        std::vector<double> rt;
        auto h0 = Clock::now();
        for (long i = 0; i < count / 4; ++i) {
            auto s = Clock::now();
            client.get("/healthz");
            rt.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
        }
        double hs = std::chrono::duration<double>(Clock::now() - h0).count();
        std::printf("| GET /healthz round trip (HTTP floor), same connection | %.0f req/s | "
                    "%.0f us | %.0f us | %.0f us |\n",
                    static_cast<double>(count / 4) / hs, percentile(rt, 0.5),
                    percentile(rt, 0.99), percentile(rt, 0.999));
    }
    std::printf(
        "| POST /api/jobs one by one, synchronous=%s | %.0f jobs/s | %.0f us | %.0f us | "
        "%.0f us |\n",
        synchronous.c_str(), static_cast<double>(count) / seconds, percentile(latencies, 0.5),
        percentile(latencies, 0.99), percentile(latencies, 0.999));
    if (synchronous == "NORMAL")
        wharf::bench::summary(
            "http: POST /api/jobs p50, one by one, synchronous=NORMAL",
            wharf::bench::format("%.0f us", percentile(latencies, 0.5)), "", NAN, "",
            std::nullopt);
    return static_cast<double>(count) / seconds;
}

// The floor under the API: the same jobs through JobEngine::enqueue in-process.
double bench_enqueue_floor(long count, const std::string& synchronous) {
    TempDir dir("floor-" + synchronous);
    Host host(dir.path(), synchronous);
    boost::property_tree::ptree payload;
    payload.put("path", "/content/dam/bench/a.jpg");
    payload.put("n", "1");
    wharf::EnqueueOptions options;
    options.user = "bench";
    for (int i = 0; i < 200; ++i) host.engine->enqueue("bench/http/noop", payload, options);
    std::vector<double> latencies;
    latencies.reserve(static_cast<std::size_t>(count));
    auto t0 = Clock::now();
    for (long i = 0; i < count; ++i) {
        auto s = Clock::now();
        host.engine->enqueue("bench/http/noop", payload, options);
        latencies.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
    }
    double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("| floor: JobEngine::enqueue in-process, synchronous=%s | %.0f jobs/s | %.0f us | "
                "%.0f us | %.0f us |\n",
                synchronous.c_str(), static_cast<double>(count) / seconds,
                percentile(latencies, 0.5), percentile(latencies, 0.99),
                percentile(latencies, 0.999));
    return static_cast<double>(count) / seconds;
}

void check(int rc, sqlite3* db, const char* what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        throw std::runtime_error(std::string(what) + ": " + sqlite3_errmsg(db));
}

// Writes `count` finished jobs straight into a migrated store file in one
// transaction (loading the history is not what is measured).
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
              "VALUES (?, ?, ?, '{\"path\":\"/content/dam/x\"}', 'alice', ?, ?, ?, ?, 10, 'done')",
              -1, &s, nullptr),
          db, "prepare");
    std::int64_t t = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count() -
                     std::int64_t(30) * 86400 * 1000000;
    const char* topics[] = {"bench/noop", "bench/move", "bench/delete"};
    const char* queues[] = {"default", "page-move-and-rollout"};
    for (long i = 0; i < count; ++i) {
        std::int64_t at = t + i * 1000;
        sqlite3_bind_text(s, 1, topics[i % 3], -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, queues[i % 2], -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, i % 50 == 0 ? "error" : "succeeded", -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, at);
        sqlite3_bind_int64(s, 5, at);
        sqlite3_bind_int64(s, 6, at + 100);
        sqlite3_bind_int64(s, 7, at + 500);
        check(sqlite3_step(s), db, "insert");
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit");
    sqlite3_close(db);
}

double median_ms(HttpClient& client, const std::string& path, int repeat, std::size_t* bytes) {
    std::vector<double> v;
    for (int i = 0; i < repeat; ++i) {
        auto t0 = Clock::now();
        auto r = client.get(path);
        v.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (r.status != 200)
            throw std::runtime_error(path + " answered " + std::to_string(r.status));
        if (bytes) *bytes = r.body.size();
    }
    return percentile(v, 0.5);
}

void bench_history(long history) {
    TempDir dir("history");
    {
        SqliteJobStoreOptions so;
        so.path = dir.path() / "jobs.db";
        SqliteJobStore store(so);
        store.migrate();
    }
    auto t0 = Clock::now();
    load_history(dir.path() / "jobs.db", history);
    {
        SqliteJobStoreOptions so;
        so.path = dir.path() / "jobs.db";
        SqliteJobStore store(so);
        store.rebuild_statistics();
    }
    double load_s = std::chrono::duration<double>(Clock::now() - t0).count();
    Host host(dir.path(), "NORMAL", false);
    auto client = host.client();
    std::printf(
        "\nHistory of %ld finished jobs (loaded in %.1f s), median of repeated requests\n\n",
        history, load_s);
    std::printf("| request | median | body |\n|---|---|---|\n");
    struct Probe {
        std::string label;
        std::string path;
        int repeat;
    };
    std::vector<Probe> probes = {
        {"GET /api/jobs (first page, 50)", "/api/jobs", 50},
        {"GET /api/jobs?cursor=<middle> (50)", "/api/jobs?cursor=" + std::to_string(history / 2),
         50},
        {"GET /api/jobs?state=error&cursor=<middle> (50)",
         "/api/jobs?state=error&cursor=" + std::to_string(history / 2), 20},
        {"GET /api/jobs?limit=1000", "/api/jobs?limit=1000", 10},
        {"GET /api/jobs?topic=bench/move&limit=50", "/api/jobs?topic=bench/move&limit=50", 20},
        {"GET /metrics", "/metrics", 5},
        {"GET /api/queues", "/api/queues", 5},
    };
    for (const auto& p : probes) {
        std::size_t bytes = 0;
        double ms = median_ms(client, p.path, p.repeat, &bytes);
        std::printf("| %s | %.2f ms | %zu B |\n", p.label.c_str(), ms, bytes);
        if (p.path == "/metrics" || p.path == "/api/jobs")
            wharf::bench::summary(
                wharf::bench::format("http: %s, %ld jobs in history",
                                     p.path == "/metrics" ? "GET /metrics"
                                                          : "GET /api/jobs first page",
                                     history),
                wharf::bench::format("%.2f ms", ms), "", NAN, "", std::nullopt);
    }
}

}  // namespace

int main(int argc, char** argv) {
    long enqueues = argc > 1 ? std::stol(argv[1]) : 20000;
    long history = argc > 2 ? std::stol(argv[2]) : 100000;
    set_log_level("warn");
    std::printf("bench_http: %ld enqueues, history %ld, %u cores, load average %s\n\n", enqueues,
                history, std::thread::hardware_concurrency(),
                wharf::bench::load_average().c_str());
    std::printf("| what | rate | p50 | p99 | p99.9 |\n|---|---|---|---|---|\n");
    double api_normal = bench_enqueue(enqueues, "NORMAL");
    double floor_normal = bench_enqueue_floor(enqueues, "NORMAL");
    double api_full = bench_enqueue(enqueues, "FULL");
    double floor_full = bench_enqueue_floor(enqueues, "FULL");
    using wharf::bench::format;
    wharf::bench::summary("http: POST /api/jobs one by one, durable, synchronous=NORMAL",
                          format("%.0f jobs/s", api_normal),
                          format("%.0f jobs/s (in-process enqueue)", floor_normal),
                          api_normal / floor_normal, ">= 7,000/s", api_normal >= 7000);
    wharf::bench::summary("http: POST /api/jobs one by one, synchronous=FULL",
                          format("%.0f jobs/s", api_full),
                          format("%.0f jobs/s (in-process enqueue)", floor_full),
                          api_full / floor_full, "", std::nullopt);
    if (history > 0) bench_history(history);
    return 0;
}
