#pragma once
// Jobs as plugins see them: the job value, the context a consumer runs with,
// and the three job services (consumer, manager, listener).
//
// A job is durable work on a topic (`wharf/asset/delete`): a payload, a queue
// chosen by the host from the topic, a state, timestamps, a retry count,
// progress, a log, a result message and a report (rows a CSV download
// contains). The host's job store is the truth: a job exists once
// JobManager::enqueue returns, survives restarts, and a job that was active
// when the host died runs again (with its retry counted) and may resume from
// its checkpoints. Delivery is therefore at-least-once: consumers must be
// idempotent, and checkpoints are how they avoid redoing finished work.
//
// Ownership: Job is a plain value (a snapshot; it does not change when the
// stored job does). A JobContext is owned by the host and valid only during the
// JobConsumer::process call it is passed to. Services follow services.hpp.
//
// Threading: JobManager and JobListener methods may be called from any thread.
// A consumer's process() runs on a host worker thread, possibly concurrently
// with other calls of the same consumer for other jobs (as many as the queue's
// max_parallel); the JobContext it receives belongs to that one call and must
// not be used from other threads without the consumer's own locking.
//
// Errors: the host throws std::invalid_argument for bad input (an invalid topic
// or cron expression) and std::runtime_error for storage failures; "not found"
// is std::nullopt. An exception thrown by process() ends the job as `error`.

#include <boost/property_tree/ptree.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "wharf/services.hpp"

namespace wharf {

/// Identifies a job for the lifetime of the store; never reused. Shown to
/// people and in URLs as its decimal string (see job_id_to_string).
using JobId = std::int64_t;

/// Wall-clock time. The host stores and compares times in UTC.
using JobTime = std::chrono::system_clock::time_point;

/// Where a job is in its life. The dashboard labels (AEM's) are in brackets.
enum class JobState {
    queued,     ///< waiting for a worker slot or for a consumer [Queued]
    scheduled,  ///< waiting for a time or a cron fire time [Scheduled]
    active,     ///< a consumer runs it [Active]
    succeeded,  ///< final: the consumer succeeded [Success]
    failed,     ///< the last run failed; waits for its retry delay, then queued [Fail]
    error,      ///< final: the consumer reported a permanent error or threw [Error]
    stopped,    ///< final: stopped by a user [Stopped]
    given_up,   ///< final: failed and retries are exhausted [Fail]
};

/// The state's stable name: "queued", ..., "given_up".
inline const char* to_string(JobState state) noexcept {
    switch (state) {
        case JobState::queued:
            return "queued";
        case JobState::scheduled:
            return "scheduled";
        case JobState::active:
            return "active";
        case JobState::succeeded:
            return "succeeded";
        case JobState::failed:
            return "failed";
        case JobState::error:
            return "error";
        case JobState::stopped:
            return "stopped";
        case JobState::given_up:
            return "given_up";
    }
    return "queued";
}

/// The state named `name` (as to_string spells it), or std::nullopt.
inline std::optional<JobState> job_state_from_string(std::string_view name) noexcept {
    for (auto s : {JobState::queued, JobState::scheduled, JobState::active, JobState::succeeded,
                   JobState::failed, JobState::error, JobState::stopped, JobState::given_up}) {
        if (name == to_string(s)) return s;
    }
    return std::nullopt;
}

/// True for the states a job never leaves (it may only be deleted or purged).
inline constexpr bool is_final(JobState state) noexcept {
    return state == JobState::succeeded || state == JobState::error || state == JobState::stopped ||
           state == JobState::given_up;
}

/// The job id as people see it.
inline std::string job_id_to_string(JobId id) { return std::to_string(id); }

/// Payload keys that start with "wharf:" belong to the host. One is defined:
/// kJobDescriptionKey, a sentence for people ("Move 12,408 assets from
/// /content/dam/a to /content/dam/b") that the API and dashboard show as the
/// job's description (the topic when absent). The operation submission
/// service sets it from Operation::describe(); anyone enqueueing a job may set
/// it. The host removes it before a consumer sees the payload.
inline constexpr const char* kJobDescriptionKey = "wharf:description";

/// A snapshot of one job.
struct Job {
    JobId id = 0;
    std::string topic;                    ///< e.g. "wharf/asset/delete"
    boost::property_tree::ptree payload;  ///< as enqueued (values are strings)
    std::string queue;                    ///< the queue that runs it
    JobState state = JobState::queued;
    std::string submitted_by;  ///< user who enqueued it ("" for the system)

    JobTime created{};                 ///< when it was enqueued
    std::optional<JobTime> scheduled;  ///< next run time (scheduled) or retry time (failed)
    std::optional<JobTime> started;    ///< start of the current or last run
    std::optional<JobTime> finished;   ///< set once the state is final
    std::string cron;                  ///< Quartz cron of a periodic schedule, else ""

    std::int32_t retry_count = 0;  ///< retries so far (0 on the first run)
    std::int32_t max_retries = 0;  ///< retries allowed after a failure; -1 = endless

    std::int64_t progress_done = 0;   ///< steps done in the current run
    std::int64_t progress_total = 0;  ///< 0 = unknown
    std::optional<JobTime> eta;       ///< estimated end of the current run

    std::string result_message;    ///< the consumer's last message
    std::int64_t log_lines = 0;    ///< log lines stored
    std::int64_t report_rows = 0;  ///< report rows stored

    std::optional<JobTime> last_heartbeat;  ///< last progress, log or checkpoint while active
    bool stop_requested = false;            ///< a user asked it to stop
    bool stuck = false;                     ///< active without a heartbeat for too long
    bool overdue = false;                   ///< asked to stop, still running after the grace time
};

/// What a consumer's run ended with.
struct JobResult {
    enum class Outcome {
        succeeded,  ///< done
        failed,     ///< try again later (counts a retry; given up when exhausted)
        error,      ///< permanent failure: never retried
    };
    Outcome outcome = Outcome::succeeded;
    std::string message;  ///< shown as the job's result message
    /// For `failed`: overrides the queue's retry delay for this retry.
    std::optional<std::chrono::milliseconds> retry_delay;

    static JobResult succeeded(std::string message = {}) {
        return {Outcome::succeeded, std::move(message), std::nullopt};
    }
    static JobResult failed(std::string message = {},
                            std::optional<std::chrono::milliseconds> delay = std::nullopt) {
        return {Outcome::failed, std::move(message), delay};
    }
    static JobResult error(std::string message = {}) {
        return {Outcome::error, std::move(message), std::nullopt};
    }
};

/// What a consumer works with during one run. Every progress, log, report and
/// checkpoint call is a heartbeat: an active job without one for the
/// configured time is reported as stuck. These calls write to the store and
/// may block briefly; they throw std::runtime_error when the store fails.
class JobContext {
public:
    virtual ~JobContext() = default;

    /// The job as it was when this run started.
    virtual const Job& job() const = 0;

    /// The payload the job was enqueued with.
    virtual const boost::property_tree::ptree& payload() const = 0;

    /// Starts progress reporting: `total` steps (0 = unknown). Resets done to 0.
    virtual void init_progress(std::int64_t total) = 0;

    /// Adds `steps` done; the ETA is recomputed from the elapsed time. Done is
    /// capped at the total.
    virtual void increment_progress(std::int64_t steps = 1) = 0;

    /// Appends a line to the job's log (kept with the job, capped in count by
    /// the host: oldest lines go first).
    virtual void log(std::string_view line) = 0;

    /// Appends a row to the job's report (the CSV download). By convention a
    /// consumer that wants a header row reports it first. Log lines, report
    /// rows and progress are buffered by the host and reach the store at least
    /// every flush interval, when the run ends, and at every checkpoint(): a
    /// crash of the host may lose those reported since the last of these.
    virtual void report_row(std::vector<std::string> cells) = 0;

    /// Stores `value` under `key` with the job, durably before it returns,
    /// together with every log line, report row and progress step reported
    /// before it (they are stored first). A re-run of the same job (retry,
    /// crash recovery, plugin upgrade) reads it back to resume. Setting a key
    /// again replaces it.
    virtual void checkpoint(std::string_view key, std::string_view value) = 0;

    /// The value last stored under `key` for this job, or std::nullopt.
    virtual std::optional<std::string> checkpoint(std::string_view key) const = 0;

    /// True once a user asked the job to stop. Poll it between steps and
    /// return soon (any result; the job ends as stopped).
    virtual bool is_stopped() const = 0;

    /// Attaches the job's downloadable result (an export CSV, say). `file` is a
    /// complete, closed regular file the consumer wrote (streamed) under its
    /// plugin's data directory (PluginContext::data_dir()), in a directory of
    /// its own named after the job id for a job (`.../results/<job id>/x.csv`;
    /// any directory of its own for an inline run). The host takes the file
    /// over: it is served as `GET /api/jobs/{id}/result`, with
    /// `download_name` as the file name (Content-Disposition) and
    /// `content_type`, and deleted with its directory when the job is deleted
    /// or purged. Attaching again replaces the previous result. The record is
    /// durable when this returns (like a checkpoint). An inline run (job().id
    /// == 0) hands the file's content to the caller in the synchronous answer
    /// and deletes the file and its directory.
    /// Throws std::invalid_argument when `file` is not a regular file, is not
    /// in a directory named after the job id, or `download_name` is empty or
    /// holds '/', '\\', '"' or control characters. The default implementation
    /// (contexts that keep no files, such as test fakes) throws
    /// std::runtime_error.
    /// Added at the end of JobContext in SDK ABI 1.1 (additive).
    virtual void attach_result(const std::filesystem::path& file, std::string_view download_name,
                               std::string_view content_type) {
        (void)file;
        (void)download_name;
        (void)content_type;
        throw std::runtime_error("this job context keeps no result files");
    }
};

/// Runs jobs of the topics in its `job.topics` property (a list): an exact
/// topic, `a/b/*` (direct children of a/b) or `a/b/**` (any depth). When
/// several consumers match, the exact one wins, then `parent/*`, then the
/// nearest `ancestor/**`, then the higher service ranking.
class JobConsumer {
public:
    static constexpr const char* kInterfaceName = interfaces::kJobConsumer;
    /// The registration property that lists the topics.
    static constexpr const char* kTopicsProperty = "job.topics";

    virtual ~JobConsumer() = default;

    /// Runs one job to its end and says how it went. May throw: the job then
    /// ends as `error` with the exception's message.
    virtual JobResult process(JobContext& context) = 0;
};

/// How to enqueue a job.
struct EnqueueOptions {
    std::string user;           ///< who submits it (shown, filterable)
    std::optional<JobTime> at;  ///< run once at this time (must be in the future)
    std::string cron;           ///< run at each fire time of this Quartz expression
    /// For cron schedules: a stable name that makes registration idempotent;
    /// enqueueing again with the same name replaces that schedule instead of
    /// adding a second one.
    std::string schedule_name;
};

/// Which jobs to list. Empty fields do not filter. Results are newest first
/// (by id); page with `cursor` = the previous page's `next_cursor`.
struct JobFilter {
    std::vector<JobState> states;         ///< any of these
    std::string topic;                    ///< exact topic
    std::string queue;                    ///< exact queue name
    std::string user;                     ///< exact submitter
    std::optional<JobTime> created_from;  ///< created at or after
    std::optional<JobTime> created_to;    ///< created before
    std::string text;                     ///< substring of topic, payload, message or user
    std::optional<JobId> cursor;          ///< only jobs with an id below this
    std::size_t limit = 50;               ///< page size (the host caps it at 1000)
};

/// One page of a listing.
struct JobPage {
    std::vector<Job> jobs;
    /// Pass as JobFilter::cursor for the next page; std::nullopt on the last.
    std::optional<JobId> next_cursor;
};

/// The answer to stop and remove.
struct JobActionResult {
    enum class Status {
        done,       ///< the action happened (for stop on an active job: the flag is set)
        not_found,  ///< no such job
        refused,    ///< not allowed in the job's state; `reason` says why
    };
    Status status = Status::done;
    std::string reason;
    explicit operator bool() const noexcept { return status == Status::done; }
};

/// The host's job service (Sling's JobManager).
class JobManager {
public:
    static constexpr const char* kInterfaceName = interfaces::kJobManager;
    virtual ~JobManager() = default;

    /// Stores a job and returns it; it is durable when this returns. Without
    /// options it is queued at once; with `at` or `cron` it is scheduled.
    /// Throws std::invalid_argument for an invalid topic (tokens of letters,
    /// digits, `_` and `-` separated by `/`), a past `at` or a bad cron
    /// expression (the message names the column).
    virtual Job enqueue(std::string_view topic, boost::property_tree::ptree payload,
                        const EnqueueOptions& options = {}) = 0;

    /// The job with this id, or std::nullopt.
    virtual std::optional<Job> find(JobId id) const = 0;

    /// Stops a job: an active one gets its stop flag (the consumer polls it);
    /// a queued, scheduled or failed one becomes stopped at once. Refused for
    /// finished jobs.
    virtual JobActionResult stop(JobId id) = 0;

    /// Deletes a job with its log, report and checkpoints. Refused for queued
    /// and active jobs (stop them first); a scheduled job is unscheduled.
    virtual JobActionResult remove(JobId id) = 0;

    /// A page of jobs matching `filter`, newest first.
    virtual JobPage list(const JobFilter& filter) const = 0;
};

/// Lifecycle events.
enum class JobEventType { added, started, finished, failed, stopped, removed };

struct JobEvent {
    JobEventType type = JobEventType::added;
    Job job;  ///< the job after the change (before it, for removed)
};

/// Receives job lifecycle events. Registered as a service; the host calls
/// every listener on its event thread, one event at a time in the order the
/// changes happened. Calls must be quick (hand long work to another thread);
/// an exception is logged and otherwise ignored.
class JobListener {
public:
    static constexpr const char* kInterfaceName = interfaces::kJobListener;
    virtual ~JobListener() = default;

    virtual void on_job_event(const JobEvent& event) = 0;
};

}  // namespace wharf
