// ClusterMember: a job queued through one instance's store is announced by the
// store's trigger and started by another instance's engine without waiting for
// a poll; the member's heartbeat keeps its instance listed.
#include "jobs/cluster_member.hpp"

#include <atomic>
#include <catch2/catch.hpp>

#include "integration/pg_test_support.hpp"
#include "jobs/job_engine.hpp"
#include "jobs/job_routing.hpp"
#include "jobs/pg_job_store.hpp"
#include "modules/service_registry.hpp"
#include "wharf/jobs.hpp"

using namespace wharf;
using namespace wharf::host;
using namespace std::chrono_literals;

namespace {

class CountingConsumer final : public wharf::JobConsumer {
public:
    wharf::JobResult process(wharf::JobContext&) override {
        ++runs;
        return wharf::JobResult::succeeded("counted");
    }
    std::atomic<int> runs{0};
};

}  // namespace

TEST_CASE("a job queued through another instance starts at once on a listening instance",
          "[jobs][cluster]") {
    std::string why_not;
    auto* server = wharf::test::PgServer::shared(&why_not);
    if (!server) {
        WARN(why_not);
        return;
    }
    std::string url = server->create_database();
    PgJobStoreOptions store_options;
    store_options.url = url;
    store_options.pool_size = 2;
    PgJobStore elsewhere(store_options);  // another instance's store: only inserts
    elsewhere.migrate();
    PgJobStore store(store_options);

    ServiceRegistryImpl registry;
    auto consumer = std::make_shared<CountingConsumer>();
    wharf::Properties topics;
    topics.push_back({"", wharf::Properties("test/cluster")});
    wharf::Properties props;
    props.add_child(wharf::JobConsumer::kTopicsProperty, topics);
    auto registration = registry.register_service(Owner{"test", 0}, nullptr,
                                                  wharf::interfaces::kJobConsumer, consumer, props, 0);

    ClusterMemberOptions options;
    options.lease.url = url;
    options.lease.instance_id = "listener";
    options.lease.address = "127.0.0.1:1";
    options.lease.lease = 900ms;
    options.poll = std::chrono::hours(1);  // only the first look; the rest must be notifications
    JobEngineOptions engine_options;
    engine_options.worker = "listener";
    engine_options.recover_every_worker = false;
    JobEngine engine(registry, store, engine_options);
    ClusterMember member(options, store);
    engine.start();
    member.start(engine);

    for (int i = 0; i < 5; ++i) {
        NewJob job;
        job.topic = "test/cluster";
        job.queue = kDefaultQueueName;
        elsewhere.insert(job);
    }
    REQUIRE(wharf::test::eventually([&] { return consumer->runs.load() == 5; }, 10s));
    // start() listened before it returned, so the inserts were announced.
    CHECK(wharf::test::eventually([&] { return member.counters().notifications >= 1; }, 10s));
    // Runs were claimed by, and finished as, this instance.
    JobFilter done;
    done.states = {JobState::succeeded};
    REQUIRE(wharf::test::eventually([&] { return store.list(done).jobs.size() == 5; }, 10s));

    // Heartbeats keep the instance listed well past its lease.
    auto first = member.instances().at(0).last_heartbeat;
    REQUIRE(wharf::test::eventually(
        [&] {
            auto now = member.instances();
            return now.size() == 1 && !now[0].expired && now[0].last_heartbeat > first + 1s;
        },
        10s));
    CHECK(member.counters().renewals >= 3);
    CHECK(member.counters().lost_leases == 0);

    member.stop();
    engine.stop();
}
