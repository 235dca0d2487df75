// Cluster membership on PostgreSQL: instances register with a heartbeat
// lease; when one stops renewing, another requeues its active jobs (retry
// counted) once its lease has run out, and never before.
#include "jobs/cluster_lease.hpp"

#include <catch2/catch.hpp>
#include <thread>

#include "base/error.hpp"
#include "integration/pg_test_support.hpp"
#include "jobs/pg_job_store.hpp"

using namespace wharf;
using namespace wharf::host;
using namespace std::chrono_literals;

namespace {

// One instance: its store and its lease on the shared database.
struct Instance {
    Instance(const std::string& url, const std::string& id, std::chrono::milliseconds lease) {
        PgJobStoreOptions store_options;
        store_options.url = url;
        store_options.pool_size = 2;
        store = std::make_unique<PgJobStore>(store_options);
        store->migrate();
        ClusterLeaseOptions options;
        options.url = url;
        options.instance_id = id;
        options.address = "127.0.0.1:" + std::to_string(8420 + id.size());
        options.lease = lease;
        cluster = std::make_unique<ClusterLease>(options, *store);
    }
    std::unique_ptr<PgJobStore> store;
    std::unique_ptr<ClusterLease> cluster;
};

NewJob new_job(std::int32_t max_retries = 2) {
    NewJob job;
    job.topic = "wharf/asset/move";
    job.queue = "assets";
    job.payload.put("path", "/content/dam/a");
    job.max_retries = max_retries;
    return job;
}

wharf::test::PgServer* server_or_skip() {
    std::string why_not;
    auto* server = wharf::test::PgServer::shared(&why_not);
    if (!server) WARN(why_not);
    return server;
}

}  // namespace

TEST_CASE("a cluster lease with no instance id, no url or a too short lease is refused",
          "[jobs][cluster]") {
    auto* server = server_or_skip();
    if (!server) return;
    std::string url = server->create_database();
    PgJobStoreOptions store_options;
    store_options.url = url;
    PgJobStore store(store_options);
    store.migrate();
    ClusterLeaseOptions options;
    options.url = url;
    REQUIRE_THROWS_WITH(ClusterLease(options, store), Catch::Contains("instance id is empty"));
    options.instance_id = "a";
    options.lease = 10ms;
    REQUIRE_THROWS_WITH(ClusterLease(options, store), Catch::Contains("at least 100 ms"));
    options.url.clear();
    options.lease = 1s;
    REQUIRE_THROWS_WITH(ClusterLease(options, store), Catch::Contains("url is empty"));
}

TEST_CASE("registered instances are listed with address, heartbeat and load", "[jobs][cluster]") {
    auto* server = server_or_skip();
    if (!server) return;
    std::string url = server->create_database();
    Instance a(url, "a", 30s), b(url, "bb", 30s);
    a.cluster->register_instance();
    b.cluster->register_instance(0.25);
    auto listed = a.cluster->instances();
    REQUIRE(listed.size() == 2);
    REQUIRE(listed[0].id == "a");
    REQUIRE(listed[0].address == "127.0.0.1:8421");
    REQUIRE(listed[1].id == "bb");
    REQUIRE(listed[1].load == 0.25);
    REQUIRE(listed[1].lease == 30s);
    REQUIRE_FALSE(listed[0].expired);
    auto before = listed[0].last_heartbeat;
    REQUIRE(wharf::test::eventually([&] {
        REQUIRE(a.cluster->renew(0.5));
        auto now = a.cluster->instances();
        return now[0].last_heartbeat > before && now[0].load == 0.5;
    }));
    // A second process with the same id while the first is alive is refused.
    Instance impostor(url, "a", 30s);
    try {
        impostor.cluster->register_instance();
        FAIL("a live instance's id was taken");
    } catch (const Error& e) {
        REQUIRE(e.code() == ErrorCode::conflict);
        REQUIRE_THAT(e.what(), Catch::Contains("'a'") && Catch::Contains("live"));
    }
    b.cluster->deregister();
    REQUIRE(a.cluster->instances().size() == 1);
}

TEST_CASE(
    "a dead instance's active jobs are requeued with the retry counted once its lease expires",
    "[jobs][cluster]") {
    auto* server = server_or_skip();
    if (!server) return;
    std::string url = server->create_database();
    Instance dying(url, "dying", 1s);
    Instance survivor(url, "survivor", 30s), other(url, "other", 30s);
    dying.cluster->register_instance();
    survivor.cluster->register_instance();
    other.cluster->register_instance();

    JobId resumable = dying.store->insert(new_job()).id;
    JobId exhausted = dying.store->insert(new_job(/*max_retries=*/0)).id;
    JobId elsewhere = survivor.store->insert(new_job()).id;
    JobId waiting = survivor.store->insert(new_job()).id;
    auto claimed = dying.store->claim_next(ClaimRequest{{}, {}, 2, {}, "dying"});
    REQUIRE(claimed.size() == 2);
    REQUIRE(survivor.store->claim_next(ClaimRequest{{}, {}, 1, {}, "survivor"}).front().id ==
            elsewhere);
    REQUIRE(dying.store->put_checkpoint(resumable, "done_until", "/content/dam/a/40"));

    // Within its lease nothing is taken from it.
    REQUIRE(survivor.cluster->requeue_expired().empty());
    REQUIRE(dying.store->find(resumable)->state == JobState::active);

    // The dying instance stops renewing: both survivors try to recover it at
    // the same time, and its jobs are requeued once.
    std::vector<RequeuedInstance> by_survivor, by_other;
    REQUIRE(wharf::test::eventually(
        [&] {
            std::vector<RequeuedInstance> a, b;
            std::thread ta([&] { a = survivor.cluster->requeue_expired(); });
            std::thread tb([&] { b = other.cluster->requeue_expired(); });
            ta.join();
            tb.join();
            by_survivor.insert(by_survivor.end(), a.begin(), a.end());
            by_other.insert(by_other.end(), b.begin(), b.end());
            return !by_survivor.empty() || !by_other.empty();
        },
        10s));
    REQUIRE(by_survivor.size() + by_other.size() == 1);
    const auto& recovered = by_survivor.empty() ? by_other.front() : by_survivor.front();
    REQUIRE(recovered.id == "dying");
    REQUIRE(recovered.jobs.size() == 2);

    auto r = survivor.store->find(resumable);
    REQUIRE(r->state == JobState::queued);
    REQUIRE(r->retry_count == 1);
    REQUIRE(survivor.store->checkpoints(resumable).at("done_until") == "/content/dam/a/40");
    REQUIRE(survivor.store->find(exhausted)->state == JobState::given_up);
    REQUIRE(survivor.store->find(elsewhere)->state == JobState::active);
    REQUIRE(survivor.store->find(waiting)->state == JobState::queued);
    REQUIRE(survivor.store->find(waiting)->retry_count == 0);

    // The requeued job resumes on a live instance.
    auto rerun = survivor.store->claim_next(ClaimRequest{{}, {}, 5, {}, "survivor"});
    REQUIRE(rerun.size() == 2);
    REQUIRE(rerun.front().id == resumable);

    // The dead instance is gone from the list; if it wakes up, its renew
    // says it lost its lease, and it may register again.
    auto listed = survivor.cluster->instances();
    REQUIRE(listed.size() == 2);
    REQUIRE_FALSE(dying.cluster->renew(0));
    dying.cluster->register_instance();
    REQUIRE(survivor.cluster->instances().size() == 3);
    REQUIRE(survivor.cluster->requeue_expired().empty());
}

TEST_CASE("a run's end is not applied once another instance holds its job", "[jobs][cluster]") {
    auto* server = server_or_skip();
    if (!server) return;
    std::string url = server->create_database();
    Instance old_owner(url, "old", 30s), new_owner(url, "new", 30s);
    JobId id = old_owner.store->insert(new_job()).id;
    REQUIRE(old_owner.store->claim_next(ClaimRequest{{}, {}, 1, {}, "old"}).size() == 1);
    // The cluster took "old" for dead: its job went back and "new" claimed it.
    REQUIRE(new_owner.store->requeue_active("old").size() == 1);
    REQUIRE(new_owner.store->claim_next(ClaimRequest{{}, {}, 1, {}, "new"}).front().id == id);

    // "old" wakes up and reports its run as succeeded: not applied.
    ExchangeRequest late;
    late.completions.push_back({id, JobOutcome::succeeded, "done by old"});
    late.worker = "old";
    auto result = old_owner.store->exchange(late);
    REQUIRE(result.finished.size() == 1);
    REQUIRE_FALSE(result.finished[0].applied);
    auto job = new_owner.store->find(id);
    REQUIRE(job->state == JobState::active);
    REQUIRE(job->retry_count == 1);

    // The holder's own end is applied.
    ExchangeRequest own;
    own.completions.push_back({id, JobOutcome::succeeded, "done by new"});
    own.worker = "new";
    REQUIRE(new_owner.store->exchange(own).finished[0].applied);
    job = new_owner.store->find(id);
    REQUIRE(job->state == JobState::succeeded);
    REQUIRE(job->result_message == "done by new");
}

TEST_CASE("active jobs of a claimer with no instance row are requeued by a live instance",
          "[jobs][cluster]") {
    auto* server = server_or_skip();
    if (!server) return;
    std::string url = server->create_database();
    Instance gone(url, "gone", 30s), survivor(url, "survivor", 30s);
    gone.cluster->register_instance();
    survivor.cluster->register_instance();
    JobId id = gone.store->insert(new_job()).id;
    JobId mine = survivor.store->insert(new_job()).id;
    REQUIRE(gone.store->claim_next(ClaimRequest{{}, {}, 1, {}, "gone"}).front().id == id);
    REQUIRE(survivor.store->claim_next(ClaimRequest{{}, {}, 1, {}, "survivor"}).front().id ==
            mine);
    // Within its lease and registered: untouched.
    REQUIRE(survivor.cluster->requeue_expired().empty());
    // It deregisters with its run still going (a shutdown past its grace).
    gone.cluster->deregister();
    auto requeued = survivor.cluster->requeue_expired();
    REQUIRE(requeued.size() == 1);
    REQUIRE(requeued[0].id == "gone");
    REQUIRE(requeued[0].jobs.size() == 1);
    REQUIRE(requeued[0].jobs[0].id == id);
    REQUIRE(survivor.store->find(id)->state == JobState::queued);
    REQUIRE(survivor.store->find(id)->retry_count == 1);
    // The survivor's own running job stays its own.
    REQUIRE(survivor.store->find(mine)->state == JobState::active);
    REQUIRE(survivor.cluster->requeue_expired().empty());
}
