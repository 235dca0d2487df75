// SqliteJobStore's purge batches that end on time rather than on size: each
// batch commits once it has run `purge_batch_time`, so that writes waiting
// behind it are not held for a whole batch; the purge then goes on with the
// next batch until nothing it may remove is left.
#include <catch2/catch.hpp>

#include <vector>

#include "jobs/sqlite_job_store.hpp"
#include "support/temp_dir.hpp"

using namespace std::chrono_literals;
using namespace wharf::host;
using wharf::JobId;
using wharf::JobState;
using wharf::test::TempDir;

namespace {

NewJob new_job() {
    NewJob j;
    j.topic = "test/purge";
    j.queue = "default";
    j.payload.put("path", "/content/dam/a.jpg");
    return j;
}

JobId finished_job(SqliteJobStore& store, JobOutcome outcome) {
    JobId id = store.insert(new_job()).id;
    ClaimRequest claim;
    auto claimed = store.claim_next(claim);
    REQUIRE(claimed.size() == 1);
    REQUIRE(claimed[0].id == id);
    store.append_log(id, {"ran"});
    JobCompletion done;
    done.id = id;
    done.outcome = outcome;
    store.finish(done);
    return id;
}

}  // namespace

TEST_CASE("a purge whose batches end on time still removes every finished job and only those",
          "[jobs][store]") {
    TempDir dir("wharf-purge-time");
    SqliteJobStoreOptions options;
    options.path = dir / "jobs.db";
    options.purge_batch_time = 0ms;  // every batch ends at its first time check
    SqliteJobStore store(options);
    store.migrate();

    std::vector<JobId> finished;
    for (int i = 0; i < 100; ++i)
        finished.push_back(
            finished_job(store, i % 10 == 0 ? JobOutcome::error : JobOutcome::succeeded));
    JobId active = store.insert(new_job()).id;
    REQUIRE(store.claim_next(ClaimRequest{}).size() == 1);
    JobId queued = store.insert(new_job()).id;
    NewJob later = new_job();
    later.scheduled_at = JobClock::now() + 48h;
    JobId scheduled = store.insert(later).id;

    PurgeRequest request;
    request.max_keep = 0;
    request.batch_size = 500;
    auto result = store.purge(request);
    CHECK(result.removed == 100);
    CHECK(result.batches >= 100 / 16);  // cut short by time, not by size
    for (JobId id : finished) {
        CAPTURE(id);
        CHECK_FALSE(store.find(id));
        CHECK(store.log(id, 0, 10).empty());
    }
    CHECK(store.find(active)->state == JobState::active);
    CHECK(store.find(queued)->state == JobState::queued);
    CHECK(store.find(scheduled)->state == JobState::scheduled);

    // The running counts followed every batch: only the three jobs are left.
    auto stats = store.statistics(StatisticsGroup::queue);
    REQUIRE(stats.size() == 1);
    CHECK(stats[0].count(JobState::succeeded) == 0);
    CHECK(stats[0].count(JobState::error) == 0);
    CHECK(stats[0].count(JobState::active) == 1);
    CHECK(stats[0].count(JobState::queued) == 1);
    CHECK(stats[0].count(JobState::scheduled) == 1);
    CHECK(store.purge(request).removed == 0);
}

TEST_CASE("a store that wrote well past a checkpoint's worth of WAL reopens with every job",
          "[jobs][store]") {
    // Checkpoints run on the store's own thread beside the writer; whatever
    // point they reached, a job committed is a job the next open finds.
    TempDir dir("wharf-purge-checkpoint");
    SqliteJobStoreOptions options;
    options.path = dir / "jobs.db";
    std::vector<JobId> ids;
    {
        SqliteJobStore store(options);
        store.migrate();
        for (int i = 0; i < 1500; ++i) ids.push_back(finished_job(store, JobOutcome::succeeded));
    }
    SqliteJobStore reopened(options);
    reopened.migrate();
    for (JobId id : ids) {
        CAPTURE(id);
        REQUIRE(reopened.find(id)->state == JobState::succeeded);
    }
    auto stats = reopened.statistics(StatisticsGroup::queue);
    REQUIRE(stats.size() == 1);
    CHECK(stats[0].count(JobState::succeeded) == 1500);
}
