// The job engine with real fixture consumer plugins (tests/fixtures/job_consumers)
// loaded through the PluginManager, a real SQLite store on a temp file, and
// queues registered as wharf.Queue services (by hand, or by ConfigAdmin from
// real queue files).
#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "config/config_admin.hpp"
#include "fixtures/job_consumers/job_probe.hpp"
#include "http/metrics.hpp"
#include "jobs/job_engine.hpp"
#include "jobs/sqlite_job_store.hpp"
#include "modules/plugin_manager.hpp"
#include "support/forwarding_job_store.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace wharf::host;
using wharf::Job;
using wharf::JobId;
using wharf::JobState;
using wharf::test::eventually;
using wharf::test::install_file;
using wharf::test::TempDir;

namespace {

// A live queue registered by the test, changed and removed at will.
class TestQueue final : public wharf::Queue {
public:
    explicit TestQueue(wharf::QueueSettings s)
        : name_(s.name), settings_(std::make_shared<wharf::QueueSettings>(std::move(s))) {}
    const std::string& name() const override { return name_; }
    std::shared_ptr<const wharf::QueueSettings> settings() const override {
        std::lock_guard lock(mutex_);
        return settings_;
    }
    bool matches(std::string_view topic) const override {
        auto s = settings();
        return std::any_of(s->topics.begin(), s->topics.end(),
                           [&](const auto& p) { return wharf::queue_topic_matches(p, topic); });
    }
    void set(wharf::QueueSettings s) {
        std::lock_guard lock(mutex_);
        settings_ = std::make_shared<wharf::QueueSettings>(std::move(s));
    }

private:
    std::string name_;
    mutable std::mutex mutex_;
    std::shared_ptr<const wharf::QueueSettings> settings_;
};

wharf::QueueSettings queue_settings(std::string name, std::vector<std::string> topics,
                                    wharf::QueueType type = wharf::QueueType::parallel,
                                    unsigned max_parallel = 4) {
    wharf::QueueSettings s;
    s.name = std::move(name);
    s.topics = std::move(topics);
    s.type = type;
    s.max_parallel = type == wharf::QueueType::ordered ? 1 : max_parallel;
    s.retries = 3;
    s.retry_delay = 20ms;
    return s;
}

JobEngineOptions fast_options() {
    JobEngineOptions o;
    o.stop_grace = 150ms;
    o.stuck_after = 300ms;
    o.drain_timeout = 150ms;
    o.shutdown_grace = 2s;
    o.flush_interval = 20ms;
    return o;
}

struct EngineHost {
    TempDir dir{"wharf-jobs-engine"};
    ServiceRegistryImpl registry;
    std::unique_ptr<SqliteJobStore> store;
    std::unique_ptr<JobStore> wrapper;  // what the engine uses instead, when set
    std::unique_ptr<JobEngine> engine;
    std::unique_ptr<PluginManager> plugins;
    std::map<std::string, std::pair<std::shared_ptr<TestQueue>,
                                    std::shared_ptr<wharf::ServiceRegistration>>>
        queues;

    using StoreWrapper = std::function<std::unique_ptr<JobStore>(JobStore&)>;

    explicit EngineHost(JobEngineOptions options = fast_options(), StoreWrapper wrap = {}) {
        SqliteJobStoreOptions so;
        so.path = dir / "data/jobs.db";
        store = std::make_unique<SqliteJobStore>(so);
        store->migrate();
        if (wrap) wrapper = wrap(*store);
        engine = std::make_unique<JobEngine>(registry, wrapper ? *wrapper : *store, options);
        engine->start();
        fs::create_directories(dir / "plugins");
        PluginManagerOptions po;
        po.plugins_dir = dir / "plugins";
        po.cache_dir = dir / "data/plugin-cache";
        po.plugin_data_dir = dir / "data/plugins";
        po.probe_executable = WHARF_PROBE_EXECUTABLE;
        po.drain_timeout = 5s;
        po.watch = false;
        plugins = std::make_unique<PluginManager>(registry, po);
        plugins->start();
    }

    ~EngineHost() {
        for (auto& [name, q] : queues) q.second->unregister();
        plugins->stop_all();
        engine->stop();
    }

    fs::path deploy(const std::string& fixture, const std::string& as = "") {
        auto target = dir / "plugins" / ((as.empty() ? fixture : as) + ".so");
        install_file(fs::path(WHARF_FIXTURE_DIR) / (fixture + ".so"), target);
        plugins->deploy(target);
        auto info = [&] {
            for (auto& p : plugins->plugins())
                if (p.file == target) return p;
            return PluginInfo{};
        }();
        REQUIRE(info.state == PluginState::active);
        return target;
    }

    void add_queue(wharf::QueueSettings s) {
        auto q = std::make_shared<TestQueue>(s);
        wharf::Properties props;
        props.put("queue.name", s.name);
        auto reg = registry.register_service(Owner{"test", 0}, nullptr, wharf::interfaces::kQueue,
                                             q, props, s.ranking);
        queues[s.name] = {q, reg};
    }

    void change_queue(wharf::QueueSettings s) {
        auto& [q, reg] = queues.at(s.name);
        q->set(s);
        wharf::Properties props;
        props.put("queue.name", s.name);
        props.put("config.version", ++s.version);
        reg->set_properties(props, s.ranking);
    }

    std::shared_ptr<job_fixture::Probe> probe(const std::string& plugin_id) const {
        auto found = registry.find(job_fixture::Probe::kInterfaceName, {{"probe.name", plugin_id}});
        if (!found) return nullptr;
        return std::static_pointer_cast<job_fixture::Probe>(found->service);
    }

    Job enqueue(const std::string& topic, std::map<std::string, std::string> payload = {},
                wharf::EnqueueOptions options = {}) {
        boost::property_tree::ptree p;
        for (auto& [k, v] : payload) p.put(k, v);
        return engine->enqueue(topic, p, options);
    }

    std::optional<JobView> view(JobId id) const { return engine->find(id); }

    bool reaches(JobId id, JobState state, std::chrono::milliseconds timeout = 10s) const {
        return eventually(
            [&] {
                auto v = engine->find(id);
                return v && v->job.state == state;
            },
            timeout);
    }
};

}  // namespace

TEST_CASE("an ordered queue runs its jobs one at a time in the order they were enqueued",
          "[jobs]") {
    EngineHost host;
    host.add_queue(queue_settings("serial", {"test/sleep"}, wharf::QueueType::ordered));
    host.deploy("jobs_sleeper");
    auto probe = host.probe("fixture.jobs.sleeper");
    REQUIRE(probe);
    std::vector<JobId> ids;
    for (int i = 0; i < 8; ++i)
        ids.push_back(host.enqueue("test/sleep", {{"ms", "15"}, {"tag", std::to_string(i)}}).id);
    for (auto id : ids) REQUIRE(host.reaches(id, JobState::succeeded));
    CHECK(probe->max_running() == 1);
    CHECK(probe->order() == std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7"});
    CHECK(host.view(ids[0])->job.queue == "serial");
}

TEST_CASE("a parallel queue never runs more than max_parallel jobs and a live change of "
          "max_parallel takes effect",
          "[jobs]") {
    EngineHost host;
    host.add_queue(queue_settings("wide", {"test/sleep"}, wharf::QueueType::parallel, 3));
    host.deploy("jobs_sleeper");
    auto probe = host.probe("fixture.jobs.sleeper");
    std::vector<JobId> ids;
    for (int i = 0; i < 12; ++i) ids.push_back(host.enqueue("test/sleep", {{"ms", "60"}}).id);
    for (auto id : ids) REQUIRE(host.reaches(id, JobState::succeeded));
    CHECK(probe->max_running() == 3);

    host.change_queue(queue_settings("wide", {"test/sleep"}, wharf::QueueType::parallel, 5));
    probe->reset();
    ids.clear();
    for (int i = 0; i < 15; ++i) ids.push_back(host.enqueue("test/sleep", {{"ms", "80"}}).id);
    for (auto id : ids) REQUIRE(host.reaches(id, JobState::succeeded));
    CHECK(probe->max_running() == 5);

    // Lowered while jobs run: the running ones finish, new starts respect 2.
    for (int i = 0; i < 5; ++i) ids.push_back(host.enqueue("test/sleep", {{"ms", "150"}}).id);
    REQUIRE(eventually([&] { return probe->running() == 5; }));
    host.change_queue(queue_settings("wide", {"test/sleep"}, wharf::QueueType::parallel, 2));
    probe->reset();
    for (int i = 0; i < 6; ++i) ids.push_back(host.enqueue("test/sleep", {{"ms", "40"}}).id);
    for (auto id : ids) REQUIRE(host.reaches(id, JobState::succeeded));
    REQUIRE(probe->runs() == 6);
    CHECK(probe->max_running() <= 5);  // the 5 old ones draining
    // Once the old runs drained, never more than 2 at once.
    auto v = host.engine->queues();
    CHECK(std::any_of(v.begin(), v.end(), [](auto& q) {
        return q.name == "wide" && q.settings->max_parallel == 2 && q.running == 0;
    }));
}

TEST_CASE("topic round-robin starts jobs in turn across topics", "[jobs]") {
    EngineHost host;
    host.add_queue(
        queue_settings("rr", {"test/sleep/*"}, wharf::QueueType::topic_round_robin, 1));
    host.deploy("jobs_sleeper");
    auto probe = host.probe("fixture.jobs.sleeper");
    // Block the queue while the backlog builds, so the order is the engine's choice.
    auto blocker = host.enqueue("test/sleep/z", {{"ms", "200"}, {"tag", "z"}});
    REQUIRE(host.reaches(blocker.id, JobState::active));
    std::vector<JobId> ids;
    for (int i = 0; i < 3; ++i) ids.push_back(host.enqueue("test/sleep/a", {{"tag", "a"}}).id);
    for (int i = 0; i < 3; ++i) ids.push_back(host.enqueue("test/sleep/b", {{"tag", "b"}}).id);
    for (auto id : ids) REQUIRE(host.reaches(id, JobState::succeeded));
    auto order = probe->order();
    REQUIRE(order.size() == 7);
    std::vector<std::string> after(order.begin() + 1, order.end());
    CHECK((after == std::vector<std::string>{"a", "b", "a", "b", "a", "b"} ||
           after == std::vector<std::string>{"b", "a", "b", "a", "b", "a"}));
}

TEST_CASE("a failing job is retried with back-off and given up when its retries are exhausted",
          "[jobs]") {
    EngineHost host;
    auto s = queue_settings("retrying", {"test/flaky"});
    s.retries = 2;
    s.retry_delay = 60ms;
    s.retry_backoff = 2.0;
    s.retry_delay_max = 1000ms;
    host.add_queue(s);
    host.deploy("jobs_flaky");
    auto probe = host.probe("fixture.jobs.flaky");

    auto doomed = host.enqueue("test/flaky", {{"fail_times", "10"}});
    REQUIRE(host.reaches(doomed.id, JobState::given_up));
    auto v = host.view(doomed.id)->job;
    CHECK(v.retry_count == 2);
    CHECK(v.result_message == "attempt 3 failed on purpose");
    auto starts = probe->start_times_ms();
    REQUIRE(starts.size() == 3);
    CHECK(starts[1] - starts[0] >= 55);   // retry_delay
    CHECK(starts[2] - starts[1] >= 115);  // retry_delay * backoff

    auto lucky = host.enqueue("test/flaky", {{"fail_times", "1"}});
    REQUIRE(host.reaches(lucky.id, JobState::succeeded));
    CHECK(host.view(lucky.id)->job.retry_count == 1);
    CHECK(host.view(lucky.id)->job.result_message == "succeeded at attempt 2");
}

TEST_CASE("an ordered queue is held while its failed job waits for the retry", "[jobs]") {
    EngineHost host;
    auto s = queue_settings("serial", {"test/flaky"}, wharf::QueueType::ordered);
    s.retries = 3;
    s.retry_delay = 150ms;
    host.add_queue(s);
    host.deploy("jobs_flaky");
    auto probe = host.probe("fixture.jobs.flaky");
    auto first = host.enqueue("test/flaky", {{"fail_times", "1"}, {"tag", "first"}});
    auto second = host.enqueue("test/flaky", {{"fail_times", "0"}, {"tag", "second"}});
    REQUIRE(host.reaches(second.id, JobState::succeeded));
    CHECK(host.view(first.id)->job.state == JobState::succeeded);
    CHECK(probe->order() == std::vector<std::string>{"first", "first", "second"});
}

TEST_CASE("a consumer that throws ends its job as error with the exception's message",
          "[jobs]") {
    EngineHost host;
    host.add_queue(queue_settings("default", {"*"}));
    host.deploy("jobs_thrower");
    auto job = host.enqueue("test/throw");
    REQUIRE(host.reaches(job.id, JobState::error));
    auto v = host.view(job.id)->job;
    CHECK_THAT(v.result_message, Catch::Contains("boom from the thrower fixture"));
    CHECK(v.retry_count == 0);
    CHECK(v.finished);
}

TEST_CASE("a job whose topic has no consumer stays queued, shown as such, and runs when the "
          "plugin arrives",
          "[jobs]") {
    EngineHost host;
    host.add_queue(queue_settings("default", {"*"}));
    host.deploy("jobs_noop");
    auto orphan = host.enqueue("test/sleep", {{"ms", "1"}});
    auto fine = host.enqueue("test/noop");
    REQUIRE(host.reaches(fine.id, JobState::succeeded));
    auto v = host.view(orphan.id);
    CHECK(v->job.state == JobState::queued);
    CHECK(v->no_consumer);
    auto q = host.engine->queues();
    REQUIRE(q.size() == 1);
    CHECK(q[0].topics_without_consumer == std::vector<std::string>{"test/sleep"});

    host.deploy("jobs_sleeper");
    REQUIRE(host.reaches(orphan.id, JobState::succeeded));
    CHECK_FALSE(host.view(orphan.id)->no_consumer);
}

TEST_CASE("stop ends an active job as stopped and a waiting one at once", "[jobs]") {
    EngineHost host;
    host.add_queue(queue_settings("default", {"*"}, wharf::QueueType::ordered));
    host.deploy("jobs_sleeper");
    auto running = host.enqueue("test/sleep", {{"ms", "10000"}});
    auto waiting = host.enqueue("test/sleep", {{"ms", "10000"}});
    REQUIRE(host.reaches(running.id, JobState::active));
    REQUIRE(host.engine->stop_job(waiting.id));
    CHECK(host.view(waiting.id)->job.state == JobState::stopped);
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(host.engine->stop_job(running.id));
    REQUIRE(host.reaches(running.id, JobState::stopped, 2s));
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
    CHECK_FALSE(host.view(running.id)->job.overdue);
    auto again = host.engine->stop_job(running.id);
    CHECK(again.status == wharf::JobActionResult::Status::refused);
}

TEST_CASE("a stop whose run ends before the store hears of it is answered as done", "[jobs]") {
    // The engine flags the run here first, then asks the store: a consumer
    // that returns at once can end the run (stopped) before the store is
    // asked. The request did stop the job, so it is not refused as "already
    // finished". The store below holds request_stop until the job is final.
    class LateStopStore final : public wharf::test::ForwardingJobStore {
    public:
        using ForwardingJobStore::ForwardingJobStore;
        wharf::JobActionResult request_stop(JobId id) override {
            eventually(
                [&] {
                    auto job = inner_.find(id);
                    return job && wharf::is_final(job->state);
                },
                10s);
            return inner_.request_stop(id);
        }
    };
    EngineHost host(fast_options(), [](JobStore& inner) -> std::unique_ptr<JobStore> {
        return std::make_unique<LateStopStore>(inner);
    });
    host.add_queue(queue_settings("default", {"*"}));
    host.deploy("jobs_sleeper");
    auto job = host.enqueue("test/sleep", {{"ms", "10000"}});
    REQUIRE(host.reaches(job.id, JobState::active));
    auto result = host.engine->stop_job(job.id);
    INFO(result.reason);
    CHECK(result.status == wharf::JobActionResult::Status::done);
    CHECK(host.view(job.id)->job.state == JobState::stopped);
    // A second request finds it finished, and says so.
    auto again = host.engine->stop_job(job.id);
    CHECK(again.status == wharf::JobActionResult::Status::refused);
    CHECK_THAT(again.reason, Catch::Contains("already finished (stopped)"));
}

TEST_CASE("a consumer that ignores stop is reported overdue and its slot is counted",
          "[jobs]") {
    EngineHost host;
    host.add_queue(queue_settings("default", {"*"}, wharf::QueueType::parallel, 1));
    host.deploy("jobs_stubborn");
    auto probe = host.probe("fixture.jobs.stubborn");
    auto job = host.enqueue("test/stubborn", {{"ms", "20000"}});
    REQUIRE(host.reaches(job.id, JobState::active));
    REQUIRE(host.engine->stop_job(job.id));
    REQUIRE(eventually([&] { return host.view(job.id)->job.overdue; }, 3s));
    auto v = host.view(job.id)->job;
    CHECK(v.state == JobState::active);
    CHECK(v.stop_requested);
    auto q = host.engine->queues();
    REQUIRE(q.size() == 1);
    CHECK(q[0].overdue == 1);
    CHECK(q[0].running == 1);
    CHECK(host.engine->counters().overdue == 1);
    probe->release();
    REQUIRE(host.reaches(job.id, JobState::stopped));
    CHECK(eventually([&] { return host.engine->queues()[0].overdue == 0; }));
}

TEST_CASE("an active job without a heartbeat for the configured time is flagged stuck",
          "[jobs]") {
    EngineHost host;
    host.add_queue(queue_settings("default", {"*"}));
    host.deploy("jobs_sleeper");
    auto quiet = host.enqueue("test/sleep", {{"ms", "1500"}, {"silent", "true"}});
    auto chatty = host.enqueue("test/sleep", {{"ms", "1500"}});
    REQUIRE(eventually([&] { return host.view(quiet.id)->job.stuck; }, 3s));
    CHECK_FALSE(host.view(chatty.id)->job.stuck);
    CHECK(host.view(chatty.id)->job.progress_total > 0);
    CHECK(host.engine->counters().stuck >= 1);
    REQUIRE(host.reaches(quiet.id, JobState::succeeded));
}

TEST_CASE("queued and active jobs cannot be deleted; finished and scheduled ones can", "[jobs]") {
    EngineHost host;
    host.add_queue(queue_settings("default", {"*"}, wharf::QueueType::ordered));
    host.deploy("jobs_sleeper");
    auto active = host.enqueue("test/sleep", {{"ms", "300"}});
    auto queued = host.enqueue("test/sleep", {{"ms", "1"}});
    REQUIRE(host.reaches(active.id, JobState::active));
    auto r1 = host.engine->remove_job(active.id);
    CHECK(r1.status == wharf::JobActionResult::Status::refused);
    CHECK_THAT(r1.reason, Catch::Contains("active"));
    auto r2 = host.engine->remove_job(queued.id);
    CHECK(r2.status == wharf::JobActionResult::Status::refused);
    CHECK_THAT(r2.reason, Catch::Contains("queued"));
    REQUIRE(host.reaches(queued.id, JobState::succeeded));
    CHECK(host.engine->remove_job(queued.id));
    CHECK_FALSE(host.view(queued.id));
    wharf::EnqueueOptions later;
    later.at = std::chrono::system_clock::now() + 1h;
    auto scheduled = host.enqueue("test/sleep", {}, later);
    CHECK(scheduled.state == JobState::scheduled);
    CHECK(host.engine->remove_job(scheduled.id));
    CHECK(host.engine->remove_job(424242).status == wharf::JobActionResult::Status::not_found);
}

TEST_CASE("enqueue refuses a bad topic, a past time and a bad cron expression", "[jobs]") {
    EngineHost host;
    auto manager = host.engine->manager();
    CHECK_THROWS_AS(manager->enqueue("bad topic", {}), std::invalid_argument);
    CHECK_THROWS_AS(manager->enqueue("/lead", {}), std::invalid_argument);
    wharf::EnqueueOptions past;
    past.at = std::chrono::system_clock::now() - 1s;
    CHECK_THROWS_AS(manager->enqueue("test/noop", {}, past), std::invalid_argument);
    wharf::EnqueueOptions cron;
    cron.cron = "0 0 25 * * ?";
    try {
        manager->enqueue("test/noop", {}, cron);
        FAIL("a bad cron was accepted");
    } catch (const std::invalid_argument& e) {
        CHECK_THAT(e.what(), Catch::Contains("column"));
    }
    CHECK(manager->list({}).jobs.empty());
}

TEST_CASE("the JobManager is a registry service plugins can find", "[jobs]") {
    EngineHost host;
    auto manager = host.registry.find(wharf::interfaces::kJobManager, {});
    REQUIRE(manager);
    auto m = std::static_pointer_cast<wharf::JobManager>(manager->service);
    auto job = m->enqueue("test/noop", {});
    CHECK(m->find(job.id)->topic == "test/noop");
    CHECK(m->find(job.id)->queue == "default");
}

TEST_CASE("a cron-scheduled job spawns one run per fire time", "[jobs]") {
    EngineHost host;
    host.add_queue(queue_settings("default", {"*"}));
    host.deploy("jobs_noop");
    auto probe = host.probe("fixture.jobs.noop");
    wharf::EnqueueOptions every_second;
    every_second.cron = "* * * * * ?";
    every_second.schedule_name = "tick";
    auto schedule = host.enqueue("test/noop", {{"tag", "tick"}}, every_second);
    CHECK(schedule.state == JobState::scheduled);
    REQUIRE(eventually([&] { return probe->runs() >= 2; }, 5s));
    auto starts = probe->start_times_ms();
    CHECK(starts[1] - starts[0] >= 700);  // one run per fire time, a second apart
    wharf::JobFilter done;
    done.states = {JobState::succeeded};
    done.topic = "test/noop";
    CHECK(host.engine->list(done).jobs.size() >= 2);
    CHECK(host.view(schedule.id)->job.state == JobState::scheduled);
    CHECK(host.engine->remove_job(schedule.id));
}

TEST_CASE("purge deletes old finished jobs only, and a new purge.yaml reschedules it live",
          "[jobs]") {
    EngineHost host;
    host.add_queue(queue_settings("default", {"*"}));
    host.deploy("jobs_noop");
    std::vector<JobId> finished;
    for (int i = 0; i < 30; ++i) finished.push_back(host.enqueue("test/noop").id);
    for (auto id : finished) REQUIRE(host.reaches(id, JobState::succeeded));
    auto waiting = host.enqueue("test/nobody");  // queued, no consumer
    wharf::EnqueueOptions later;
    later.at = std::chrono::system_clock::now() + 1h;
    auto scheduled = host.enqueue("test/noop", {}, later);

    PurgeSettings p;
    p.schedule = "0 0 1 * * ?";
    p.threshold_days = 0;
    p.max_jobs = 100000;
    p.batch_size = 7;
    host.engine->set_purge(p);
    auto purge = host.store->find_schedule(kPurgeScheduleName);
    REQUIRE(purge);
    CHECK(purge->cron == "0 0 1 * * ?");
    // purge.yaml changed: every second now, replacing the daily schedule.
    p.schedule = "* * * * * ?";
    host.engine->set_purge(p);
    auto again = host.store->find_schedule(kPurgeScheduleName);
    REQUIRE(again);
    CHECK(again->id == purge->id);
    REQUIRE(eventually([&] { return !host.view(finished.back()); }, 5s));
    for (auto id : finished) CHECK_FALSE(host.view(id));
    CHECK(host.view(waiting.id)->job.state == JobState::queued);
    CHECK(host.view(scheduled.id)->job.state == JobState::scheduled);

    p.enabled = false;
    host.engine->set_purge(p);
    CHECK_FALSE(host.store->find_schedule(kPurgeScheduleName));
}

TEST_CASE("listeners get added, started and finished in order, on the event thread", "[jobs]") {
    struct Recorder final : wharf::JobListener {
        std::mutex m;
        std::vector<std::pair<wharf::JobEventType, JobId>> seen;
        void on_job_event(const wharf::JobEvent& e) override {
            std::lock_guard lock(m);
            seen.emplace_back(e.type, e.job.id);
        }
    };
    EngineHost host;
    host.add_queue(queue_settings("default", {"*"}));
    auto recorder = std::make_shared<Recorder>();
    auto reg = host.registry.register_service(Owner{"test", 0}, nullptr,
                                              wharf::interfaces::kJobListener, recorder, {}, 0);
    host.deploy("jobs_noop");
    host.deploy("jobs_thrower");
    auto ok = host.enqueue("test/noop");
    auto bad = host.enqueue("test/throw");
    REQUIRE(host.reaches(ok.id, JobState::succeeded));
    REQUIRE(host.reaches(bad.id, JobState::error));
    REQUIRE(host.engine->remove_job(ok.id));
    REQUIRE(eventually([&] {
        std::lock_guard lock(recorder->m);
        return recorder->seen.size() == 7;
    }));
    auto of = [&](JobId id) {
        std::vector<wharf::JobEventType> out;
        std::lock_guard lock(recorder->m);
        for (auto& [t, i] : recorder->seen)
            if (i == id) out.push_back(t);
        return out;
    };
    using E = wharf::JobEventType;
    CHECK(of(ok.id) == std::vector<E>{E::added, E::started, E::finished, E::removed});
    CHECK(of(bad.id) == std::vector<E>{E::added, E::started, E::failed});
    reg->unregister();
}

TEST_CASE("removing a queue file moves its waiting jobs to the queue that now matches; none "
          "is lost or run twice",
          "[jobs]") {
    EngineHost host;
    auto configs = host.dir / "configs";
    fs::create_directories(configs / "queues");
    std::ofstream(configs / "queues/default.yaml") << "topics: ['*']\nmax_parallel: 4\n";
    std::ofstream(configs / "queues/special.yaml")
        << "topics: [test/sleep]\ntype: ordered\nranking: 10\n";
    ConfigAdminOptions co;
    co.config_dir = configs;
    co.registry = &host.registry;
    co.cores = 2;
    ConfigAdmin config(co);
    config.start();
    host.deploy("jobs_sleeper");
    auto probe = host.probe("fixture.jobs.sleeper");
    std::vector<JobId> ids;
    ids.push_back(host.enqueue("test/sleep", {{"ms", "400"}}).id);
    REQUIRE(host.reaches(ids[0], JobState::active));
    for (int i = 0; i < 5; ++i) ids.push_back(host.enqueue("test/sleep", {{"ms", "10"}}).id);
    for (auto id : ids) CHECK(host.view(id)->job.queue == "special");

    fs::remove(configs / "queues/special.yaml");
    for (std::size_t i = 1; i < ids.size(); ++i)
        REQUIRE(host.reaches(ids[i], JobState::succeeded));
    REQUIRE(host.reaches(ids[0], JobState::succeeded));
    for (std::size_t i = 1; i < ids.size(); ++i) CHECK(host.view(ids[i])->job.queue == "default");
    CHECK(host.view(ids[0])->job.queue == "special");  // it ran to its end where it was
    CHECK(probe->runs() == 6);
    CHECK(host.engine->counters().moved == 5);
    config.stop();
}

TEST_CASE("a consumer plugin replaced mid-job: past drain_timeout the job is requeued and "
          "completes on v2 from its checkpoint",
          "[jobs]") {
    EngineHost host;  // drain_timeout 150 ms
    host.add_queue(queue_settings("default", {"*"}));
    auto file = host.deploy("jobs_resumable_v1", "resumable");
    auto job = host.enqueue("test/resume", {{"steps", "40"}, {"ms", "25"}});
    REQUIRE(eventually([&] {
        auto cp = host.store->checkpoints(job.id);
        return cp.count("step") && std::stoi(cp["step"]) >= 3;
    }));
    install_file(fs::path(WHARF_FIXTURE_DIR) / "jobs_resumable_v2.so", file);
    host.plugins->deploy(file);
    REQUIRE(host.reaches(job.id, JobState::succeeded, 20s));
    auto v = host.view(job.id)->job;
    CHECK_THAT(v.result_message, Catch::StartsWith("done by v2 resumed from "));
    CHECK(std::stoi(v.result_message.substr(v.result_message.rfind(' ') + 1)) >= 3);
    CHECK(v.retry_count == 0);  // an upgrade is not the job's failure
    CHECK(host.engine->counters().requeued == 1);
}

TEST_CASE("a consumer plugin replaced mid-job: within drain_timeout the job finishes on v1",
          "[jobs]") {
    auto options = fast_options();
    options.drain_timeout = 20s;
    EngineHost host(options);
    host.add_queue(queue_settings("default", {"*"}));
    auto file = host.deploy("jobs_resumable_v1", "resumable");
    auto job = host.enqueue("test/resume", {{"steps", "12"}, {"ms", "25"}});
    REQUIRE(eventually([&] { return host.store->checkpoints(job.id).count("step") > 0; }));
    install_file(fs::path(WHARF_FIXTURE_DIR) / "jobs_resumable_v2.so", file);
    host.plugins->deploy(file);
    REQUIRE(host.reaches(job.id, JobState::succeeded, 20s));
    CHECK(host.view(job.id)->job.result_message == "done by v1 resumed from 0");
    auto next = host.enqueue("test/resume", {{"steps", "1"}, {"ms", "1"}});
    REQUIRE(host.reaches(next.id, JobState::succeeded));
    CHECK(host.view(next.id)->job.result_message == "done by v2 resumed from 0");
}

TEST_CASE("saving a queue file with a new max_parallel while jobs run changes the limit",
          "[jobs][config]") {
    EngineHost host;
    auto configs = host.dir / "configs";
    fs::create_directories(configs / "queues");
    std::ofstream(configs / "queues/default.yaml") << "topics: ['*']\nmax_parallel: 1\n";
    ConfigAdminOptions co;
    co.config_dir = configs;
    co.registry = &host.registry;
    co.cores = 4;
    ConfigAdmin config(co);
    config.start();
    host.deploy("jobs_sleeper");
    auto probe = host.probe("fixture.jobs.sleeper");

    std::vector<JobId> ids;
    for (int i = 0; i < 6; ++i) ids.push_back(host.enqueue("test/sleep", {{"ms", "60"}}).id);
    REQUIRE(host.reaches(ids.front(), JobState::active));

    // An editor's save while the first jobs run: temp file, then rename.
    {
        std::ofstream(configs / "queues/.default.yaml.swp") << "topics: ['*']\nmax_parallel: 3\n";
        fs::rename(configs / "queues/.default.yaml.swp", configs / "queues/default.yaml");
    }
    REQUIRE(eventually([&] {
        auto queues = host.engine->queues();
        return std::any_of(queues.begin(), queues.end(), [](const auto& q) {
            return q.name == "default" && q.settings->max_parallel == 3;
        });
    }));
    for (auto id : ids) REQUIRE(host.reaches(id, JobState::succeeded));

    probe->reset();
    ids.clear();
    for (int i = 0; i < 9; ++i) ids.push_back(host.enqueue("test/sleep", {{"ms", "80"}}).id);
    for (auto id : ids) REQUIRE(host.reaches(id, JobState::succeeded));
    CHECK(probe->max_running() == 3);
    CHECK(config.status("queues/default.yaml")->applied_version == 2);
    config.stop();
}

TEST_CASE("without any queue configuration jobs run on the built-in default queue, which a "
          "default queue file replaces and its removal brings back",
          "[jobs]") {
    EngineHost host;
    host.deploy("jobs_noop");
    auto first = host.enqueue("test/noop");
    REQUIRE(host.reaches(first.id, JobState::succeeded));
    CHECK(host.view(first.id)->job.queue == "default");

    host.add_queue(queue_settings("default", {"*"}, wharf::QueueType::ordered));
    auto second = host.enqueue("test/noop");
    REQUIRE(host.reaches(second.id, JobState::succeeded));

    host.queues.at("default").second->unregister();
    host.queues.erase("default");
    auto third = host.enqueue("test/noop");
    REQUIRE(host.reaches(third.id, JobState::succeeded));
    auto queues = host.engine->queues();
    CHECK(std::any_of(queues.begin(), queues.end(), [](const auto& q) {
        return q.name == "default" && q.settings && q.settings->ranking < -1000000;
    }));
}

TEST_CASE("stuck and overdue jobs are counted by queue in the metrics", "[jobs]") {
    EngineHost host;
    host.add_queue(queue_settings("default", {"*"}));
    host.deploy("jobs_sleeper");
    host.deploy("jobs_stubborn");
    auto stubborn_probe = host.probe("fixture.jobs.stubborn");
    auto quiet = host.enqueue("test/sleep", {{"ms", "60000"}, {"silent", "true"}});
    auto stubborn = host.enqueue("test/stubborn", {{"ms", "20000"}});
    REQUIRE(host.reaches(stubborn.id, JobState::active));
    REQUIRE(host.engine->stop_job(stubborn.id));
    auto scrape = [&] {
        auto views = host.engine->queues();
        MetricSources sources;
        sources.store = host.store.get();
        sources.queue_views = &views;
        return render_metrics(sources);
    };
    REQUIRE(eventually(
        [&] {
            auto text = scrape();
            // Both consumers are silent (no heartbeat): both are stuck; only
            // the one asked to stop is overdue.
            return text.find("wharf_jobs_stuck{queue=\"default\"} 2\n") != std::string::npos &&
                   text.find("wharf_jobs_overdue{queue=\"default\"} 1\n") != std::string::npos;
        },
        5s));
    CHECK(host.view(quiet.id)->job.stuck);
    CHECK(host.view(stubborn.id)->job.overdue);
    CHECK_THAT(scrape(), Catch::Contains("wharf_jobs_running{queue=\"default\"} 2\n"));
    stubborn_probe->release();
    REQUIRE(host.engine->stop_job(quiet.id));
    REQUIRE(host.reaches(stubborn.id, JobState::stopped));
    REQUIRE(host.reaches(quiet.id, JobState::stopped));
    auto text = scrape();
    CHECK_THAT(text, Catch::Contains("wharf_jobs_stuck{queue=\"default\"} 0\n"));
    CHECK_THAT(text, Catch::Contains("wharf_jobs_overdue{queue=\"default\"} 0\n"));
}

TEST_CASE("a short job that ends while a job started with it still runs is committed without "
          "waiting for that job",
          "[jobs]") {
    // Ends that arrive together share one exchange: a worker whose run ended
    // waits briefly for the runs that started with it. The wait is bounded: a
    // long neighbour never holds the short job's end (or its slot) hostage.
    EngineHost host;
    host.add_queue(queue_settings("pair", {"test/sleep"}, wharf::QueueType::parallel, 2));
    host.deploy("jobs_sleeper");
    auto long_job = host.enqueue("test/sleep", {{"ms", "4000"}, {"tag", "long"}});
    auto short_job = host.enqueue("test/sleep", {{"ms", "0"}, {"tag", "short"}});
    REQUIRE(host.reaches(short_job.id, JobState::succeeded, 2s));
    CHECK(host.view(long_job.id)->job.state == JobState::active);
    // The freed slot takes the next job while the long one still runs.
    auto next = host.enqueue("test/sleep", {{"ms", "0"}, {"tag", "next"}});
    REQUIRE(host.reaches(next.id, JobState::succeeded, 2s));
    CHECK(host.view(long_job.id)->job.state == JobState::active);
    REQUIRE(host.reaches(long_job.id, JobState::succeeded));
}

TEST_CASE("many short jobs at max_parallel 2 all run exactly once and never more than two at once",
          "[jobs]") {
    EngineHost host;
    host.add_queue(queue_settings("pair", {"test/sleep"}, wharf::QueueType::parallel, 2));
    host.deploy("jobs_sleeper");
    auto probe = host.probe("fixture.jobs.sleeper");
    std::vector<JobId> ids;
    for (int i = 0; i < 300; ++i)
        ids.push_back(host.enqueue("test/sleep", {{"ms", "0"}, {"tag", std::to_string(i)}}).id);
    for (auto id : ids) REQUIRE(host.reaches(id, JobState::succeeded));
    CHECK(probe->runs() == 300);
    CHECK(probe->max_running() <= 2);
    auto order = probe->order();
    std::set<std::string> distinct(order.begin(), order.end());
    CHECK(distinct.size() == 300);
    auto counters = host.engine->counters();
    CHECK(counters.started == 300);
    CHECK(counters.ended == 300);
}

TEST_CASE("a consumer that logs and then blocks has its lines stored within the flush interval",
          "[jobs][log]") {
    // Logs two lines, a report row and progress, then waits without calling
    // the context again until the test releases it.
    struct Blocker final : wharf::JobConsumer {
        std::atomic<bool> release{false};
        wharf::JobResult process(wharf::JobContext& ctx) override {
            ctx.init_progress(10);
            ctx.log("first line");
            ctx.log("second line");
            ctx.report_row({"a", "b"});
            ctx.increment_progress(3);
            while (!release.load() && !ctx.is_stopped()) std::this_thread::sleep_for(2ms);
            ctx.log("last line");
            return wharf::JobResult::succeeded("released");
        }
    };
    EngineHost host;  // flush_interval 20 ms
    host.add_queue(queue_settings("default", {"*"}));
    auto blocker = std::make_shared<Blocker>();
    wharf::Properties topics;
    topics.push_back({"", wharf::Properties("test/block")});
    wharf::Properties props;
    props.add_child(wharf::JobConsumer::kTopicsProperty, topics);
    auto reg = host.registry.register_service(Owner{"test", 0}, nullptr,
                                              wharf::interfaces::kJobConsumer, blocker, props, 0);
    auto job = host.enqueue("test/block");
    REQUIRE(eventually([&] { return host.store->log(job.id, 0, 10).size() == 2; }, 10s));
    auto lines = host.store->log(job.id, 0, 10);
    CHECK(lines[0].line == "first line");
    CHECK(lines[1].line == "second line");
    auto stored = host.store->find(job.id);
    CHECK(stored->state == JobState::active);
    CHECK(stored->report_rows == 1);
    CHECK(stored->progress_done == 3);
    CHECK(stored->progress_total == 10);
    blocker->release = true;
    REQUIRE(host.reaches(job.id, JobState::succeeded));
    CHECK(host.store->log(job.id, 0, 10).size() == 3);
    reg->unregister();
}
