#pragma once
// JobStore: the durable truth about jobs, behind an interface that an embedded
// SQLite store (sqlite_job_store.hpp) implements today and a PostgreSQL store
// can implement later for cluster operation. No database type appears here.
//
// The store knows jobs, their state rules and their side tables (log lines,
// report rows, checkpoints). It does not know queues' configuration, consumers
// or threads: the dispatcher decides what to claim and when; the store makes
// each change atomic and durable before the call returns.
//
// State rules enforced here (see wharf/jobs.hpp for the states):
//   insert            -> queued, or scheduled (at a time or by cron)
//   claim_next        queued -> active (never the same job to two callers)
//   finish            active -> succeeded | error | stopped | failed (retry left)
//                     | given_up (retries exhausted)
//   due_scheduled     scheduled (one-shot) -> queued; failed whose retry time
//                     came -> queued; a cron schedule stays scheduled, spawns
//                     one queued run per fire time (unique per schedule and
//                     fire time) and moves to its next fire time
//   request_stop      queued | scheduled | failed -> stopped; active -> flag set
//   requeue_active    active -> queued with retry+1 | given_up | stopped (if the
//                     stop flag was set): crash recovery on start
//   exchange          finishes runs and claims new ones in one transaction (the
//                     dispatcher's hot path; a `requeued` outcome puts an active
//                     job back to queued without counting a retry)
//   move_waiting      queued | scheduled | failed jobs of one queue and topic
//                     move to another queue (a queue was removed or changed)
//   remove            refused for queued and active jobs
//   purge             only final jobs (finished time set)
//
// Times are UTC (std::chrono::system_clock), stored with microsecond precision.
// Ids increase with insertion order and are never reused, so "newest first"
// is "highest id first" and a keyset cursor is an id.
//
// Thread-safety: every method may be called from any thread concurrently.
// Errors: Error(storage) when the database fails, Error(conflict) for a
// transition the job's state does not allow, Error(invalid_argument) for bad
// input (payload that is not a JSON object, bad cron); "not found" is
// std::nullopt or a not_found JobActionResult.
// REQUIRES: migrate() has been called once before any other method.

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "wharf/jobs.hpp"

namespace wharf::host {

using JobClock = std::chrono::system_clock;
using JobTimePoint = JobClock::time_point;

/// A job to store.
struct NewJob {
    std::string topic;
    std::string queue;
    boost::property_tree::ptree payload;  ///< stored as JSON; must be an object
    std::string submitted_by;
    std::int32_t max_retries = 10;  ///< -1 = endless
    /// Run once at this time (state scheduled until due).
    std::optional<JobTimePoint> scheduled_at;
    /// Run at every fire time of this Quartz expression (state scheduled).
    std::string cron;
    /// With `cron`: inserting again under the same name replaces the schedule
    /// (topic, queue, payload, cron, next time) instead of adding another.
    std::string schedule_name;
};

/// What claim_next may take: the oldest queued jobs (lowest id first) of the
/// given queues and topics.
struct ClaimRequest {
    std::vector<std::string> queues;  ///< queue names; empty = any
    std::vector<std::string> topics;  ///< exact topics (with consumers); empty = any
    std::size_t limit = 1;
    JobTimePoint now{};  ///< recorded as the start time
    std::string worker;  ///< instance that runs them (for cluster recovery)
};

/// How a run ended, as the dispatcher reports it.
enum class JobOutcome {
    succeeded,
    failed,   ///< retry if retries are left, else given_up
    error,    ///< permanent
    stopped,  ///< ended after a stop request
    /// Put back to queued without counting a retry: the run was interrupted by
    /// the host (plugin upgrade drained, shutdown), not by the job's own fault.
    requeued,
};

struct JobCompletion {
    JobId id = 0;
    JobOutcome outcome = JobOutcome::succeeded;
    std::string message;
    /// For failed: when the retry becomes due (failed -> queued by due_scheduled).
    JobTimePoint retry_at{};
    /// For succeeded: delete the job instead of keeping it in the history
    /// (its queue has keep_jobs off).
    bool discard = false;
};

/// What one finished run turned into.
struct FinishedRun {
    JobId id = 0;
    /// False when the job was not active any more (deleted, or finished by
    /// someone else); `state` is then meaningless.
    bool applied = false;
    JobState state = JobState::succeeded;  ///< the state it is in now
    std::int32_t retry_count = 0;
    bool discarded = false;  ///< deleted because its queue keeps no successes
};

/// The dispatcher's batch: runs that ended and the claims for the slots they
/// (and any others) freed, committed as one transaction.
struct ExchangeRequest {
    std::vector<JobCompletion> completions;
    std::vector<ClaimRequest> claims;  ///< taken in this order
    /// The instance whose runs end. Non-empty: a completion applies only while
    /// its job is still claimed by this worker (FinishedRun::applied false
    /// otherwise), so an instance the cluster took for dead cannot finish a
    /// job that was requeued and claimed elsewhere. The SQLite store (one
    /// instance) ignores it.
    std::string worker;
};

struct ExchangeResult {
    std::vector<FinishedRun> finished;        ///< one per completion, same order
    std::vector<std::vector<Job>> claimed;    ///< one list per claim, same order
};

/// Waiting work of one queue and topic (queued, scheduled or failed jobs).
struct WaitingGroup {
    std::string queue;
    std::string topic;
    std::int64_t queued = 0;
    std::int64_t later = 0;  ///< scheduled or failed (waiting for a time)
};

/// One stored log line.
struct JobLogLine {
    std::int64_t seq = 0;  ///< 1, 2, ... per job; kept when older lines are dropped
    JobTimePoint at{};
    std::string line;
};

/// Every state in JobState order: the index of a state-indexed array.
inline constexpr std::array<JobState, 8> kAllJobStates = {
    JobState::queued, JobState::scheduled, JobState::active, JobState::succeeded,
    JobState::failed, JobState::error,     JobState::stopped, JobState::given_up};
static_assert(
    [] {
        for (std::size_t i = 0; i < kAllJobStates.size(); ++i)
            if (static_cast<std::size_t>(kAllJobStates[i]) != i) return false;
        return true;
    }(),
    "kAllJobStates must list the states in JobState order");

/// Counts and averages per queue or per topic. Averages are over final jobs
/// still in history: wait = started - queued, processing = finished - started.
struct JobStatistics {
    std::string key;  ///< queue name or topic
    /// Jobs per state, indexed by the JobState's value (see kAllJobStates).
    std::array<std::int64_t, kAllJobStates.size()> by_state{};
    std::chrono::microseconds average_wait{0};
    std::chrono::microseconds average_processing{0};

    std::int64_t count(JobState state) const noexcept {
        return by_state[static_cast<std::size_t>(state)];
    }
    std::int64_t& count(JobState state) noexcept {
        return by_state[static_cast<std::size_t>(state)];
    }
};

enum class StatisticsGroup { queue, topic };

/// What purge removes: final jobs finished before `finished_before`, then the
/// oldest final jobs beyond the newest `max_keep`. Each batch is its own
/// transaction so that other writers interleave.
struct PurgeRequest {
    std::optional<JobTimePoint> finished_before;
    std::optional<std::size_t> max_keep;
    std::size_t batch_size = 500;
};

struct PurgeResult {
    std::size_t removed = 0;
    std::size_t batches = 0;
};

class JobStore {
public:
    virtual ~JobStore() = default;

    /// Creates or upgrades the schema to the version this build knows.
    /// Idempotent. Throws Error(storage) if the database is newer than this build.
    virtual void migrate() = 0;

    /// The schema version in the database.
    virtual int schema_version() const = 0;

    // --- writes: each is committed when the call returns ------------------------

    /// Stores a job (queued, or scheduled when `scheduled_at` or `cron` is set;
    /// a cron job's first time is the next fire time after now).
    virtual Job insert(const NewJob& job) = 0;

    /// Moves up to `limit` queued jobs to active and returns them.
    virtual std::vector<Job> claim_next(const ClaimRequest& request) = 0;

    /// Applies completions, then claims, in one transaction. A completion for a
    /// job that is not active is reported as not applied (no error), so one
    /// stale completion never fails the batch.
    virtual ExchangeResult exchange(const ExchangeRequest& request) = 0;

    /// Queued, scheduled and failed jobs grouped by queue and topic.
    virtual std::vector<WaitingGroup> waiting_groups() const = 0;

    /// Moves the waiting (queued, scheduled, failed) jobs of `topic` in queue
    /// `from` to queue `to`; returns how many moved.
    virtual std::size_t move_waiting(const std::string& from, const std::string& topic,
                                     const std::string& to) = 0;

    /// The scheduled (cron) job registered under `schedule_name`, if any.
    virtual std::optional<Job> find_schedule(const std::string& schedule_name) const = 0;

    /// Ends the run of an active job. std::nullopt if there is no such job;
    /// Error(conflict) if it is not active.
    virtual std::optional<Job> finish(const JobCompletion& completion) = 0;

    /// Crash recovery: every active job (claimed by `worker`, or by anyone when
    /// empty) goes back to queued with retry+1, or to given_up when its retries
    /// are exhausted, or to stopped when a stop was requested. Returns them.
    virtual std::vector<Job> requeue_active(const std::string& worker = {}) = 0;

    /// Moves jobs whose time came (scheduled one-shots, failed jobs due for a
    /// retry, cron fire times) to queued; returns the queued jobs.
    virtual std::vector<Job> due_scheduled(JobTimePoint now) = 0;

    /// The earliest time due_scheduled would queue something, or std::nullopt.
    virtual std::optional<JobTimePoint> next_due() const = 0;

    /// Heartbeat and progress of an active job; the ETA is derived from the
    /// start time. Returns false if the job is not active.
    virtual bool record_progress(JobId id, std::int64_t done, std::int64_t total) = 0;

    /// Heartbeat only. Returns false if the job is not active.
    virtual bool heartbeat(JobId id) = 0;

    /// Appends log lines (and heartbeats). Oldest lines beyond the store's cap
    /// are dropped. Returns false if there is no such job.
    virtual bool append_log(JobId id, const std::vector<std::string>& lines) = 0;

    /// Appends report rows. Returns false if there is no such job.
    virtual bool append_report_rows(JobId id,
                                    const std::vector<std::vector<std::string>>& rows) = 0;

    /// Stores a checkpoint value (and heartbeats). Returns false if no such job.
    virtual bool put_checkpoint(JobId id, const std::string& key, const std::string& value) = 0;

    /// Queued, scheduled and failed jobs become stopped at once; an active job
    /// gets its stop flag. Refused for final jobs.
    virtual JobActionResult request_stop(JobId id) = 0;

    /// Deletes a job and its log, report and checkpoints. Refused for queued and
    /// active jobs with the reason.
    virtual JobActionResult remove(JobId id) = 0;

    /// Removes final jobs as `request` says, batch by batch.
    virtual PurgeResult purge(const PurgeRequest& request) = 0;

    // --- reads -----------------------------------------------------------------

    virtual std::optional<Job> find(JobId id) const = 0;

    /// A page newest first; see JobFilter. The limit is capped at 1000.
    virtual JobPage list(const JobFilter& filter) const = 0;

    /// Counts per state and average times, grouped by queue or topic. Read
    /// from running counts that every state change keeps in its own
    /// transaction: the cost does not grow with the number of jobs in history.
    virtual std::vector<JobStatistics> statistics(StatisticsGroup group) const = 0;

    /// Log lines with seq > after_seq, oldest first, at most `limit`.
    virtual std::vector<JobLogLine> log(JobId id, std::int64_t after_seq,
                                        std::size_t limit) const = 0;

    /// Report rows in order, skipping `offset`, at most `limit`.
    virtual std::vector<std::vector<std::string>> report(JobId id, std::int64_t offset,
                                                         std::size_t limit) const = 0;

    /// All checkpoints of a job.
    virtual std::map<std::string, std::string> checkpoints(JobId id) const = 0;

    /// Whether a stop was requested for the job (false if not found).
    virtual bool stop_requested(JobId id) const = 0;
};

}  // namespace wharf::host
