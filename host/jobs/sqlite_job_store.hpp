#pragma once
// SqliteJobStore: the embedded JobStore, one SQLite file in WAL mode.
//
// Writes go through one write connection. Callers enqueue an operation and
// block until the transaction that contains it has committed: operations that
// arrive while a transaction is running are taken together into the next one
// (group commit), each inside its own savepoint, so one operation's failure
// does not undo the others. Whoever finds no commit running leads: a caller
// commits the pending batch on its own thread (no thread hand-off when the
// store is idle); a writer thread commits what is left when callers arrive
// during a running commit. This makes
// concurrent claims and completions cost one commit per batch instead of one
// per call, and serialises all writers (claims are exclusive by construction).
// Reads use a small pool of read connections and see every committed write
// (WAL readers do not block the writer).
//
// Durability follows `synchronous`: with NORMAL (the default) a committed
// change survives a crash of the process; with FULL also a power loss.
//
// Checkpoints (the WAL copied back into the database file) run on a
// checkpointer thread with its own connection once the WAL holds 1,000
// pages, instead of inside the commit that crossed that size; a commit that
// finds 8,000 pages (the checkpointer never caught up) checkpoints itself.
// Purge batches commit alone and end after `purge_batch_time`, so other
// writes wait for at most about one short batch.
//
// Ownership: the store owns its threads and connections; the destructor
// finishes the queued writes and joins the threads. Thread-safety: as JobStore.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "jobs/job_store.hpp"

namespace wharf::host {

struct SqliteJobStoreOptions {
    std::filesystem::path path;          ///< database file; parent folders are created
    std::string synchronous = "NORMAL";  ///< OFF, NORMAL, FULL or EXTRA
    std::chrono::milliseconds busy_timeout{5000};
    std::size_t max_batch = 512;         ///< operations per group commit at most
    std::int64_t max_log_lines = 10000;  ///< per job; older lines are dropped
    /// A purge batch commits after this long even when it has not deleted
    /// batch_size jobs yet, so a write waiting behind it (a claim, an
    /// enqueue) waits at most about this long. Each batch is committed in a
    /// transaction of its own (other writes never share it), and purge pauses
    /// a fifth of this between batches so that writes that follow one (the
    /// dispatcher's claim after an enqueue) get in before the next batch.
    std::chrono::milliseconds purge_batch_time{10};
    /// Source of the times the store records (created, started, finished,
    /// heartbeat). Defaults to the system clock; tests inject their own.
    std::function<JobTimePoint()> clock;
};

/// Counters of the writer, for benchmarks and metrics.
struct WriterCounters {
    std::uint64_t transactions = 0;
    std::uint64_t operations = 0;
};

class SqliteJobStore final : public JobStore {
public:
    /// Opens (creates) the database and starts the writer thread. Throws
    /// Error(storage) when the file cannot be opened, Error(invalid_argument)
    /// for a bad `synchronous` value.
    explicit SqliteJobStore(SqliteJobStoreOptions options);
    ~SqliteJobStore() override;

    SqliteJobStore(const SqliteJobStore&) = delete;
    SqliteJobStore& operator=(const SqliteJobStore&) = delete;

    void migrate() override;
    int schema_version() const override;

    Job insert(const NewJob& job) override;
    std::vector<Job> claim_next(const ClaimRequest& request) override;
    ExchangeResult exchange(const ExchangeRequest& request) override;
    std::vector<WaitingGroup> waiting_groups() const override;
    std::size_t move_waiting(const std::string& from, const std::string& topic,
                             const std::string& to) override;
    std::optional<Job> find_schedule(const std::string& schedule_name) const override;
    std::optional<Job> finish(const JobCompletion& completion) override;
    std::vector<Job> requeue_active(const std::string& worker = {}) override;
    std::vector<Job> due_scheduled(JobTimePoint now) override;
    std::optional<JobTimePoint> next_due() const override;
    bool record_progress(JobId id, std::int64_t done, std::int64_t total) override;
    bool heartbeat(JobId id) override;
    bool append_log(JobId id, const std::vector<std::string>& lines) override;
    bool append_report_rows(JobId id, const std::vector<std::vector<std::string>>& rows) override;
    bool put_checkpoint(JobId id, const std::string& key, const std::string& value) override;
    JobActionResult request_stop(JobId id) override;
    JobActionResult remove(JobId id) override;
    PurgeResult purge(const PurgeRequest& request) override;

    std::optional<Job> find(JobId id) const override;
    JobPage list(const JobFilter& filter) const override;
    std::vector<JobStatistics> statistics(StatisticsGroup group) const override;
    std::vector<JobLogLine> log(JobId id, std::int64_t after_seq, std::size_t limit) const override;
    std::vector<std::vector<std::string>> report(JobId id, std::int64_t offset,
                                                 std::size_t limit) const override;
    std::map<std::string, std::string> checkpoints(JobId id) const override;
    bool stop_requested(JobId id) const override;

    /// Recounts the running statistics (job_counts) from the jobs table in one
    /// transaction, a scan of every job. Migration does it once; tools that
    /// write job rows with plain SQL (benchmarks loading a history) call it.
    void rebuild_statistics();

    /// Transactions and operations the writer committed so far.
    WriterCounters writer_counters() const;

    /// The schema version this build creates.
    static constexpr int kSchemaVersion = 3;

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace wharf::host
