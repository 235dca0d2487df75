// The PostgreSQL job store beyond the conformance suite (tests/unit/
// job_store_test.cpp runs every store test against it too): bad settings,
// several instances on one database, the connection pool.
#include "jobs/pg_job_store.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <set>
#include <thread>

#include "base/error.hpp"
#include "integration/pg_test_support.hpp"

using namespace wharf;
using namespace wharf::host;
using namespace std::chrono_literals;

namespace {

// The shared test server, or nullptr with a warning when PostgreSQL is missing.
wharf::test::PgServer* server_or_skip() {
    std::string why_not;
    auto* server = wharf::test::PgServer::shared(&why_not);
    if (!server) WARN(why_not);
    return server;
}

std::unique_ptr<PgJobStore> open_pg(const std::string& url, std::size_t pool_size = 4,
                                    std::function<JobTimePoint()> clock = {}) {
    PgJobStoreOptions options;
    options.url = url;
    options.pool_size = pool_size;
    options.clock = std::move(clock);
    auto store = std::make_unique<PgJobStore>(options);
    store->migrate();
    return store;
}

NewJob new_job(std::string topic = "wharf/asset/delete", std::string queue = "default") {
    NewJob job;
    job.topic = std::move(topic);
    job.queue = std::move(queue);
    job.payload.put("path", "/content/dam/a");
    job.max_retries = 2;
    return job;
}

}  // namespace

TEST_CASE("a PostgreSQL store with an empty url or a pool of 0 connections is refused",
          "[jobs][pg]") {
    PgJobStoreOptions options;
    try {
        PgJobStore store(options);
        FAIL("an empty url was accepted");
    } catch (const Error& e) {
        REQUIRE(e.code() == ErrorCode::invalid_argument);
        REQUIRE_THAT(e.what(), Catch::Contains("url"));
    }
    options.url = "postgresql://wharf@127.0.0.1:1/wharf";
    options.pool_size = 0;
    try {
        PgJobStore store(options);
        FAIL("a pool of 0 was accepted");
    } catch (const Error& e) {
        REQUIRE(e.code() == ErrorCode::invalid_argument);
        REQUIRE_THAT(e.what(), Catch::Contains("pool_size"));
    }
}

TEST_CASE("an unreachable PostgreSQL server is a storage error naming the url without its password",
          "[jobs][pg]") {
    auto port = wharf::test::free_port();  // nothing listens there
    PgJobStoreOptions options;
    options.url =
        "postgresql://wharf:s3cret@127.0.0.1:" + std::to_string(port) + "/wharf?connect_timeout=5";
    try {
        PgJobStore store(options);
        FAIL("connected to a port nobody listens on");
    } catch (const Error& e) {
        REQUIRE(e.code() == ErrorCode::storage);
        REQUIRE_THAT(e.what(), Catch::Contains("127.0.0.1:" + std::to_string(port)) &&
                                   Catch::Contains("wharf:***@") && !Catch::Contains("s3cret"));
    }
}

TEST_CASE("passwords are hidden in both forms of a PostgreSQL url", "[jobs][pg]") {
    REQUIRE(PgJobStore::redacted_url("postgresql://wharf:pa:ss@db.example:5432/wharf") ==
            "postgresql://wharf:***@db.example:5432/wharf");
    REQUIRE(PgJobStore::redacted_url("postgresql://wharf@db.example/wharf") ==
            "postgresql://wharf@db.example/wharf");
    REQUIRE(PgJobStore::redacted_url("host=db user=wharf password=secret dbname=wharf") ==
            "host=db user=wharf password=*** dbname=wharf");
    REQUIRE(PgJobStore::redacted_url("host=db password = 'two words' dbname=wharf") ==
            "host=db password = *** dbname=wharf");
}

TEST_CASE("three instances draining one database run every job exactly once", "[jobs][pg]") {
    auto* server = server_or_skip();
    if (!server) return;
    std::string url = server->create_database();
    std::vector<std::unique_ptr<PgJobStore>> instances;
    for (int i = 0; i < 3; ++i) instances.push_back(open_pg(url, 2));
    constexpr int kJobs = 1200;
    for (int i = 0; i < kJobs; ++i) {
        instances[static_cast<std::size_t>(i % 3)]->insert(
            new_job("wharf/asset/delete", i % 2 ? "assets" : "pages"));
    }

    std::mutex mutex;
    std::vector<JobId> ran;
    std::vector<std::thread> workers;
    for (int w = 0; w < 6; ++w) {
        workers.emplace_back([&, w] {
            PgJobStore& store = *instances[static_cast<std::size_t>(w % 3)];
            ExchangeRequest request;
            ClaimRequest claim;
            claim.limit = 1 + static_cast<std::size_t>(w % 4);
            claim.worker = "instance-" + std::to_string(w % 3);
            // Every other worker claims only one queue: claims with and
            // without filters meet on the same rows.
            if (w % 2) claim.queues = {"assets"};
            request.claims = {claim};
            while (true) {
                auto result = store.exchange(request);
                for (const auto& run : result.finished) REQUIRE(run.applied);
                request.completions.clear();
                for (const auto& job : result.claimed.front()) {
                    request.completions.push_back(
                        JobCompletion{job.id, JobOutcome::succeeded, "done", {}});
                    std::lock_guard lock(mutex);
                    ran.push_back(job.id);
                }
                if (request.completions.empty()) {
                    if (!claim.queues.empty()) {
                        claim.queues.clear();  // then help with the rest
                        request.claims = {claim};
                        continue;
                    }
                    return;
                }
            }
        });
    }
    for (auto& t : workers) t.join();

    std::set<JobId> unique(ran.begin(), ran.end());
    REQUIRE(ran.size() == kJobs);
    REQUIRE(unique.size() == kJobs);
    auto stats = instances[0]->statistics(StatisticsGroup::queue);
    std::int64_t succeeded = 0, other = 0;
    for (const auto& s : stats) {
        for (auto state : kAllJobStates) {
            (state == JobState::succeeded ? succeeded : other) += s.count(state);
        }
    }
    REQUIRE(succeeded == kJobs);
    REQUIRE(other == 0);
}

TEST_CASE("three instances polling one cron schedule spawn exactly one run per fire time",
          "[jobs][pg]") {
    auto* server = server_or_skip();
    if (!server) return;
    std::string url = server->create_database();
    // 2024-05-01 00:00:00 UTC, moved by hand.
    std::atomic<std::int64_t> now_us{1714521600LL * 1000000};
    auto clock = [&now_us] { return JobTimePoint(std::chrono::microseconds(now_us.load())); };
    std::vector<std::unique_ptr<PgJobStore>> instances;
    for (int i = 0; i < 3; ++i) instances.push_back(open_pg(url, 2, clock));
    NewJob purge = new_job("wharf/purge", "maintenance");
    purge.cron = "* * * * * ?";  // every second
    purge.schedule_name = "wharf.purge";
    JobId schedule = instances[0]->insert(purge).id;
    // Every instance registers the schedule at start-up: still one schedule.
    REQUIRE(instances[1]->insert(purge).id == schedule);
    REQUIRE(instances[2]->insert(purge).id == schedule);

    constexpr int kFires = 40;
    std::atomic<int> spawned{0};
    for (int fire = 1; fire <= kFires; ++fire) {
        now_us += 1000000;
        std::vector<std::thread> pollers;
        for (auto& instance : instances) {
            pollers.emplace_back([&instance, &spawned, &clock] {
                spawned += static_cast<int>(instance->due_scheduled(clock()).size());
            });
        }
        for (auto& t : pollers) t.join();
        REQUIRE(spawned == fire);
    }
    JobFilter runs;
    runs.topic = "wharf/purge";
    runs.states = {JobState::queued};
    runs.limit = 1000;
    auto page = instances[0]->list(runs);
    REQUIRE(page.jobs.size() == kFires);
    std::set<JobTimePoint> fire_times;
    for (const auto& job : page.jobs) fire_times.insert(*job.scheduled);
    REQUIRE(fire_times.size() == kFires);
    JobFilter schedules;
    schedules.states = {JobState::scheduled};
    REQUIRE(instances[2]->list(schedules).jobs.size() == 1);
}

TEST_CASE("a pool of one connection serves many threads one after the other", "[jobs][pg]") {
    auto* server = server_or_skip();
    if (!server) return;
    auto store = open_pg(server->create_database(), 1);
    std::vector<std::thread> threads;
    std::atomic<int> finished{0};
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 25; ++i) {
                JobId id = store->insert(new_job()).id;
                store->append_log(id, {"line"});
                for (const auto& job : store->claim_next({})) {
                    if (store->finish(JobCompletion{job.id, JobOutcome::succeeded, "", {}}))
                        ++finished;
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    while (true) {
        auto jobs = store->claim_next({});
        if (jobs.empty()) break;
        for (const auto& job : jobs) {
            store->finish(JobCompletion{job.id, JobOutcome::succeeded, "", {}});
            ++finished;
        }
    }
    REQUIRE(finished == 100);
}

TEST_CASE("after the server drops the store's connections the store works again", "[jobs][pg]") {
    auto* server = server_or_skip();
    if (!server) return;
    std::string url = server->create_database();
    auto store = open_pg(url, 2);
    JobId id = store->insert(new_job()).id;
    {
        pqxx::connection admin(url);
        pqxx::nontransaction n(admin);
        auto killed = n.exec(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()");
        REQUIRE(killed.size() >= 1);
    }
    // The first call on a dropped connection may fail, as a storage error;
    // the pool then opens a new one.
    std::optional<Job> found;
    for (int attempt = 0; attempt < 3 && !found; ++attempt) {
        try {
            found = store->find(id);
        } catch (const Error& e) {
            REQUIRE(e.code() == ErrorCode::storage);
        }
    }
    REQUIRE(found);
    REQUIRE(found->state == JobState::queued);
    REQUIRE(store->claim_next({}).size() == 1);
}

TEST_CASE("instances starting together on an empty database migrate it once", "[jobs][pg]") {
    auto* server = server_or_skip();
    if (!server) return;
    std::string url = server->create_database();
    std::vector<std::unique_ptr<PgJobStore>> instances(4);
    std::vector<std::string> errors(instances.size());
    std::vector<std::thread> starting;
    for (std::size_t i = 0; i < instances.size(); ++i) {
        starting.emplace_back([&, i] {
            try {
                instances[i] = open_pg(url, 1);
            } catch (const std::exception& e) {
                errors[i] = e.what();
            }
        });
    }
    for (auto& t : starting) t.join();
    for (const auto& e : errors) REQUIRE(e.empty());
    for (const auto& store : instances)
        REQUIRE(store->schema_version() == PgJobStore::kSchemaVersion);
    pqxx::connection c(url);
    pqxx::nontransaction n(c);
    REQUIRE(n.exec("SELECT COUNT(*) FROM schema_version")[0][0].as<int>() ==
            PgJobStore::kSchemaVersion);
    REQUIRE(instances[3]->insert(new_job()).id > 0);
}
