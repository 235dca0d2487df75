// bench_cluster: the real job engine (dispatcher, workers) on the PostgreSQL
// job store with 1, 2 and 3 instances against one instance on the embedded
// SQLite store, measured in the same run.
//
//   drain    - N no-op jobs already queued; every instance runs a queue with
//              max_parallel = 2 (graphile-worker's "concurrency 2"); from the
//              moment the consumers appear until the last end is committed.
//              Each instance is a JobEngine with its own PgJobStore (own
//              connection pool) in this process, as separate wharfd processes
//              would be, sharing one database.
//   latency  - enqueue -> consumer start, one job at a time on an idle
//              single instance (p50 and p99).
//
// PostgreSQL is a throwaway server (tests/integration/pg_test_support.hpp)
// with fsync on, run twice: synchronous_commit on (each commit flushed to disk
// before it returns: survives a power loss) and off (the WAL writer flushes
// commits within 3 x wal_writer_delay, 0.6 s by default: survives a crash of
// wharfd; a crash of the server or the machine may lose the last commits, as
// a power loss may with SQLite's WAL at synchronous=NORMAL, the SQLite row).
//
// Results are medians over the runs as Markdown tables.
//
// Usage: bench_cluster [jobs=5000] [runs=3] [latency_samples=300]

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "base/log.hpp"
#include "bench_util.hpp"
#include "integration/pg_test_support.hpp"
#include "jobs/job_engine.hpp"
#include "jobs/pg_job_store.hpp"
#include "jobs/sqlite_job_store.hpp"
#include "modules/service_registry.hpp"

namespace fs = std::filesystem;
using namespace wharf::host;
using wharf::bench::Clock;
using wharf::bench::median;
using wharf::bench::percentile;
using wharf::bench::seconds_since;

namespace {

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
    bool matches(std::string_view t) const override {
        return wharf::queue_topic_matches("bench/*", t);
    }

private:
    std::shared_ptr<const wharf::QueueSettings> settings_;
};

class NoopConsumer final : public wharf::JobConsumer {
public:
    wharf::JobResult process(wharf::JobContext&) override {
        last_start.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
        started.fetch_add(1, std::memory_order_release);
        return wharf::JobResult::succeeded();
    }
    std::atomic<std::uint64_t> started{0};
    std::atomic<Clock::rep> last_start{0};
};

// What a store backend is: how to open one store of the shared database.
struct Backend {
    std::string name;
    std::function<std::unique_ptr<JobStore>()> open;
};

// One wharfd instance: its store, engine, queue and (once added) consumer.
struct Instance {
    ServiceRegistryImpl registry;
    std::unique_ptr<JobStore> store;
    std::unique_ptr<JobEngine> engine;
    std::shared_ptr<NoopConsumer> consumer = std::make_shared<NoopConsumer>();
    std::shared_ptr<wharf::ServiceRegistration> queue, consumer_registration;

    Instance(const Backend& backend, int index) {
        store = backend.open();
        JobEngineOptions options;
        options.worker = "instance-" + std::to_string(index);
        engine = std::make_unique<JobEngine>(registry, *store, options);
        engine->start();
        queue = registry.register_service(Owner{"bench", 0}, nullptr, wharf::interfaces::kQueue,
                                          std::make_shared<BenchQueue>(2), {}, 0);
    }
    ~Instance() { engine->stop(); }

    void add_consumer() {
        wharf::Properties props;
        boost::property_tree::ptree topics;
        topics.push_back({"", boost::property_tree::ptree("bench/noop")});
        props.add_child(wharf::JobConsumer::kTopicsProperty, topics);
        consumer_registration = registry.register_service(
            Owner{"bench", 0}, nullptr, wharf::interfaces::kJobConsumer, consumer, props, 0);
    }
};

// Drains `jobs` queued no-op jobs with `instances` engines; jobs/s.
double run_drain(const Backend& backend, int jobs, int instances) {
    {
        auto loader = backend.open();
        NewJob job;
        job.topic = "bench/noop";
        job.queue = "bench";
        for (int i = 0; i < jobs; ++i) loader->insert(job);
    }
    std::vector<std::unique_ptr<Instance>> cluster;
    for (int i = 0; i < instances; ++i) cluster.push_back(std::make_unique<Instance>(backend, i));
    auto start = Clock::now();
    for (auto& instance : cluster) instance->add_consumer();
    auto ended = [&] {
        std::uint64_t n = 0;
        for (auto& instance : cluster) n += instance->engine->counters().ended;
        return n;
    };
    while (ended() < static_cast<std::uint64_t>(jobs)) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    double seconds = seconds_since(start);
    std::uint64_t ran = 0;
    for (auto& instance : cluster) ran += instance->consumer->started.load();
    if (ran != static_cast<std::uint64_t>(jobs)) {
        throw std::runtime_error("drain ran " + std::to_string(ran) + " runs for " +
                                 std::to_string(jobs) + " jobs");
    }
    return jobs / seconds;
}

struct Latency {
    double p50_ms, p99_ms;
};

Latency run_latency(const Backend& backend, int samples) {
    Instance instance(backend, 0);
    instance.add_consumer();
    std::vector<double> waits;
    for (int i = 0; i < samples; ++i) {
        auto before = instance.consumer->started.load();
        auto t0 = Clock::now();
        instance.engine->enqueue("bench/noop", {});
        while (instance.consumer->started.load(std::memory_order_acquire) == before) {
        }
        auto started = Clock::time_point(Clock::duration(instance.consumer->last_start.load()));
        waits.push_back(std::chrono::duration<double, std::milli>(started - t0).count());
        while (instance.engine->counters().ended < static_cast<std::uint64_t>(i + 1)) {
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
    }
    return {percentile(waits, 0.5), percentile(waits, 0.99)};
}

}  // namespace

int main(int argc, char** argv) {
    int jobs = argc > 1 ? std::stoi(argv[1]) : 5000;
    int runs = argc > 2 ? std::stoi(argv[2]) : 3;
    int samples = argc > 3 ? std::stoi(argv[3]) : 300;
    wharf::host::set_log_level("warn");

    wharf::test::PgServer server(/*durable=*/true);
    int sqlite_n = 0;
    auto sqlite_dir = std::make_shared<std::vector<std::unique_ptr<wharf::bench::TempDir>>>();
    // Each measurement gets a fresh database of its own.
    auto sqlite_backend = [&] {
        sqlite_dir->push_back(std::make_unique<wharf::bench::TempDir>(
            "cluster", "sqlite" + std::to_string(sqlite_n++)));
        fs::path db = sqlite_dir->back()->path() / "jobs.db";
        return Backend{"SQLite (WAL, synchronous=NORMAL)", [db] {
                           SqliteJobStoreOptions o;
                           o.path = db;
                           auto store = std::make_unique<SqliteJobStore>(o);
                           store->migrate();
                           return std::unique_ptr<JobStore>(std::move(store));
                       }};
    };
    auto pg_backend = [&](bool synchronous_commit) {
        std::string url = server.create_database();
        if (!synchronous_commit) url += "?options=-csynchronous_commit%3Doff";
        return Backend{
            std::string("PostgreSQL 15, synchronous_commit=") + (synchronous_commit ? "on" : "off"),
            [url] {
                PgJobStoreOptions o;
                o.url = url;
                o.pool_size = 4;
                auto store = std::make_unique<PgJobStore>(o);
                store->migrate();
                return std::unique_ptr<JobStore>(std::move(store));
            }};
    };

    struct Row {
        std::string store;
        int instances;
        double drain;
        double p50 = -1, p99 = -1;
    };
    std::vector<Row> rows;
    auto measure = [&](const std::function<Backend()>& make, int instances, bool latency) {
        std::vector<double> drains, p50s, p99s;
        std::string name;
        for (int r = 0; r < runs; ++r) {
            Backend b = make();
            name = b.name;
            drains.push_back(run_drain(b, jobs, instances));
            if (latency) {
                Backend l = make();
                auto lat = run_latency(l, samples);
                p50s.push_back(lat.p50_ms);
                p99s.push_back(lat.p99_ms);
            }
        }
        rows.push_back({name, instances, median(drains), latency ? median(p50s) : -1,
                        latency ? median(p99s) : -1});
        std::fprintf(stderr, "measured %s x%d\n", name.c_str(), instances);
    };
    measure(sqlite_backend, 1, true);
    for (bool sync : {true, false}) {
        for (int n = 1; n <= 3; ++n) measure([&, sync] { return pg_backend(sync); }, n, n == 1);
    }

    std::printf(
        "No-op jobs: %d per drain, max_parallel 2 per instance, median of %d runs; "
        "latency over %d jobs one at a time.\n\n",
        jobs, runs, samples);
    std::printf(
        "| store | instances | drain (jobs/s) | vs SQLite | enqueue->start p50 (ms) | "
        "p99 (ms) |\n|---|---|---|---|---|---|\n");
    double sqlite_rate = rows.front().drain;
    for (const auto& r : rows) {
        char p50[32] = "-", p99[32] = "-";
        if (r.p50 >= 0) std::snprintf(p50, sizeof p50, "%.2f", r.p50);
        if (r.p99 >= 0) std::snprintf(p99, sizeof p99, "%.2f", r.p99);
        std::printf("| %s | %d | %.0f | %.2fx | %s | %s |\n", r.store.c_str(), r.instances, r.drain,
                    r.drain / sqlite_rate, p50, p99);
    }
    for (std::size_t i = 1; i < rows.size(); ++i) {
        using wharf::bench::format;
        const auto& r = rows[i];
        std::string value = format("%.0f jobs/s", r.drain);
        if (r.p50 >= 0) value += format(", enqueue->start p50 %.2f ms", r.p50);
        std::string peer = format("%.0f jobs/s", sqlite_rate);
        if (rows.front().p50 >= 0) peer += format(", p50 %.2f ms", rows.front().p50);
        wharf::bench::summary(
            format("cluster: %s, %d instance%s, drain", r.store.c_str(), r.instances,
                   r.instances == 1 ? "" : "s"),
            value, peer + " (1 instance, SQLite)", r.drain / sqlite_rate,
            r.instances == 1 ? ">= 2,400 jobs/s, p50 < 2 ms" : "",
            r.instances == 1 ? std::optional<bool>(r.drain >= 2400 && r.p50 >= 0 && r.p50 < 2)
                             : std::nullopt);
    }
    return 0;
}
