#pragma once
// JobEngine: runs the jobs of a JobStore on the consumers and queues found in
// the service registry. It is the host's wharf.JobManager.
//
// Parts (all owned by the engine):
//   - trackers on wharf.Queue, wharf.JobConsumer and wharf.JobListener: queues,
//     consumers and listeners come and go while jobs run;
//   - dispatch rounds, run by one thread at a time (the dispatcher thread, or
//     a worker whose run just ended, which then usually runs the next job
//     itself): each round takes every run that ended since the last round
//     plus claims for every free slot (per queue: ordered 1, parallel and
//     topic-round-robin max_parallel) and hands them to the store as ONE
//     exchange (one transaction). A worker whose run ended while runs that
//     started within the last millisecond still go waits up to that
//     millisecond for them, so that ends arriving together share the
//     exchange. The dispatcher sleeps on a condition variable that enqueue, a
//     new consumer or a due schedule signals: there is no polling delay;
//   - a worker pool: one thread per running job (grown on demand, idle threads
//     reused). Every call into plugin code catches exceptions: a throw ends the
//     job as `error` with the exception's message;
//   - the timer thread: scheduled and cron jobs (store.due_scheduled), retry
//     times, stuck and overdue detection, drain deadlines after a consumer went
//     away, re-routing of waiting jobs after queue changes;
//   - the event thread: JobListener events in the order the changes happened.
//
// Stop policy: stop(id) sets an in-memory flag the consumer polls
// (JobContext::is_stopped) and the store's stop flag. Whatever the consumer
// returns, the job ends as `stopped`. A consumer still running `stop_grace`
// after the request is marked overdue (Job::overdue, a warning in the log,
// QueueView::overdue). Its worker slot stays taken until the consumer returns
// (a thread cannot be taken back from plugin code, and freeing the slot would
// exceed the queue's limit on concurrent plugin calls); the slot is counted as
// overdue so operators see where capacity went.
//
// Hot deploy: when a consumer service goes away its running jobs continue;
// after `drain_timeout` they are asked to stop and, unless they succeed anyway,
// go back to queued without counting a retry, keeping their checkpoints, and
// run again on whichever consumer matches next (the new plugin version).
//
// Threading: every public method may be called from any thread. Listener and
// consumer calls never happen with an engine lock held.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "jobs/job_store.hpp"
#include "modules/service_registry.hpp"
#include "wharf/jobs.hpp"
#include "wharf/queues.hpp"

namespace wharf::host {

struct JobEngineOptions {
    /// Recorded as the claimer of runs; in a cluster the instance id, and the
    /// store then fences this engine's completions by it.
    std::string worker = "local";
    /// start(): requeue every job left active (one host owns the store).
    /// False in a cluster: only the jobs `worker` claimed (the others belong
    /// to live instances, or are recovered when their leases expire).
    bool recover_every_worker = true;
    std::chrono::milliseconds stop_grace{30000};    ///< stop request -> overdue
    std::chrono::milliseconds stuck_after{300000};  ///< no heartbeat this long -> stuck
    std::chrono::milliseconds drain_timeout{30000}; ///< consumer gone -> stop and requeue
    std::chrono::milliseconds shutdown_grace{10000};///< stop(): wait this long for runs
    /// Buffered log lines, report rows, progress and heartbeats of a running job
    /// reach the store at most this often (and always when the run ends or a
    /// checkpoint is written).
    std::chrono::milliseconds flush_interval{1000};
    /// Jobs running at once over all queues; 0 = only the queues' limits. When
    /// it binds, queues with a higher priority get the free workers first.
    std::size_t max_workers = 0;
};

/// The built-in purge job (purge.yaml).
struct PurgeSettings {
    bool enabled = true;
    std::string schedule = "0 0 1 * * ?";  ///< Quartz cron, UTC
    std::int64_t threshold_days = 1;
    std::int64_t max_jobs = 10000;
    std::size_t batch_size = 500;  ///< jobs deleted per transaction
};

/// The topic and schedule name of the built-in purge job.
inline constexpr const char* kPurgeTopic = "wharf/system/purge";
inline constexpr const char* kPurgeScheduleName = "wharf.purge";

/// A job as the API shows it: the stored job with the engine's live view of a
/// running one (progress, ETA, heartbeat, stuck, overdue) merged in.
struct JobView {
    Job job;
    bool no_consumer = false;  ///< queued, and no consumer takes its topic now
    bool queue_live = true;    ///< its queue exists now
};

struct JobViewPage {
    std::vector<JobView> jobs;
    std::optional<JobId> next_cursor;
};

/// A queue as the API shows it.
struct QueueView {
    std::string name;
    std::shared_ptr<const wharf::QueueSettings> settings;  ///< null once removed
    bool live = false;       ///< registered now (a removed queue lingers while jobs finish)
    unsigned running = 0;    ///< slots in use (overdue ones included)
    unsigned overdue = 0;    ///< slots held by jobs that ignore a stop request
    unsigned stuck = 0;      ///< running jobs without a heartbeat for stuck_after
    std::optional<JobId> held_by_retry;  ///< ordered queue waiting for this job's retry
    std::vector<std::string> topics_without_consumer;  ///< waiting topics nobody takes
};

/// Engine counters (since start), for tests, benchmarks and metrics.
struct JobEngineCounters {
    std::uint64_t started = 0;
    std::uint64_t ended = 0;
    std::uint64_t exchanges = 0;  ///< dispatcher transactions
    std::uint64_t overdue = 0;    ///< runs that became overdue
    std::uint64_t stuck = 0;      ///< runs that were flagged stuck
    std::uint64_t requeued = 0;   ///< runs put back (drain, shutdown)
    std::uint64_t moved = 0;      ///< waiting jobs re-routed to another queue
};

class JobEngine {
public:
    /// Neither `registry` nor `store` is owned; both must outlive the engine.
    /// REQUIRES: store.migrate() was called.
    JobEngine(ServiceRegistryImpl& registry, JobStore& store, JobEngineOptions options = {});
    /// Calls stop().
    ~JobEngine();
    JobEngine(const JobEngine&) = delete;
    JobEngine& operator=(const JobEngine&) = delete;

    /// Crash recovery (jobs left active go back to queued with retry+1, or
    /// given_up), opens the trackers, starts the threads and registers the
    /// wharf.JobManager service and the purge consumer (owner "host").
    void start();

    /// Takes no new jobs, asks running ones to stop, waits up to shutdown_grace;
    /// runs that end in time are requeued (unless they succeeded), the others
    /// stay active in the store and are recovered at the next start.
    /// Idempotent.
    void stop();

    /// The wharf.JobManager service object (also registered by start()).
    std::shared_ptr<wharf::JobManager> manager();

    /// Schedules (or unschedules, when disabled) the purge job. Applies live.
    /// Throws Error(invalid_argument) for a bad cron expression.
    void set_purge(const PurgeSettings& settings);

    // --- the JobManager operations, with the host's error types ---------------

    /// See wharf::JobManager::enqueue. Throws Error(invalid_argument).
    Job enqueue(std::string_view topic, boost::property_tree::ptree payload,
                const wharf::EnqueueOptions& options = {});
    JobActionResult stop_job(JobId id);
    JobActionResult remove_job(JobId id);

    // --- the host API (HTTP layer) ---------------------------------------------

    std::optional<JobView> find(JobId id) const;
    JobViewPage list(const JobFilter& filter) const;
    std::vector<QueueView> queues() const;
    std::vector<JobStatistics> statistics(StatisticsGroup group) const;
    std::vector<JobLogLine> log(JobId id, std::int64_t after_seq, std::size_t limit) const;
    std::vector<std::vector<std::string>> report(JobId id, std::int64_t offset,
                                                 std::size_t limit) const;
    /// The queue a job of `topic` would go to now.
    std::string route(std::string_view topic) const;
    JobEngineCounters counters() const;
    /// Runs going on now (ended runs not yet committed included).
    std::size_t running_jobs() const;

    /// Cluster mode: jobs of `topic` became queued in `queue` through another
    /// instance (or were requeued from a dead one). The dispatcher looks for
    /// them at once, as after a local enqueue.
    void work_queued_elsewhere(const std::string& queue, const std::string& topic);

    /// Cluster mode: a stop of job `id` was requested through another
    /// instance (the store's stop flag). If it runs here, its consumer is
    /// asked to stop as by stop_job(); otherwise nothing happens.
    void stop_requested_elsewhere(JobId id);

    struct Core;

private:
    std::shared_ptr<Core> core_;
};

}  // namespace wharf::host
