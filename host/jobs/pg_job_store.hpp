#pragma once
// PgJobStore: the JobStore on a PostgreSQL server, for several wharfd
// instances sharing one set of jobs (cluster mode). Same state rules, same
// results and the same errors as SqliteJobStore (sqlite_job_store.hpp); the
// conformance tests run one suite against both.
//
// What makes it safe with several instances:
//   - claims pick queued rows with SELECT ... FOR UPDATE SKIP LOCKED, so two
//     instances claiming at once take different jobs and never wait on each
//     other;
//   - a cron fire time spawns its run with INSERT ... ON CONFLICT DO NOTHING
//     against a unique index on (schedule, fire time): one run per fire time
//     however many instances call due_scheduled;
//   - registering a named schedule and migrating the schema take a
//     transaction-scoped advisory lock;
//   - the running statistics (job_counts) are updated in key order, so two
//     transactions never wait on each other's count rows in a cycle; a
//     transaction that still loses a deadlock or serialisation race is retried.
//
// Every write is one transaction on a pooled connection (BEGIN, the
// operation's statements, the counts, COMMIT); reads are single statements
// outside a transaction. Statements are prepared once per connection.
//
// Ownership: the store owns its connections (at most `pool_size`, opened on
// demand; one is opened by the constructor to check the URL). Thread-safety:
// as JobStore; a call waits for a free connection when all are in use.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "jobs/job_store.hpp"

namespace wharf::host {

struct PgJobStoreOptions {
    /// libpq connection string or URI, e.g.
    /// "postgresql://wharf@127.0.0.1:5432/wharf" or "host=... dbname=...".
    std::string url;
    std::size_t pool_size = 4;           ///< connections at most (>= 1)
    std::int64_t max_log_lines = 10000;  ///< per job; older lines are dropped
    /// Source of the times the store records; defaults to the system clock.
    std::function<JobTimePoint()> clock;
};

class PgJobStore final : public JobStore {
public:
    /// Connects once to check the URL. Throws Error(invalid_argument) for an
    /// empty URL or a pool size of 0, Error(storage) when the server cannot be
    /// reached (the message names the URL without its password).
    explicit PgJobStore(PgJobStoreOptions options);
    ~PgJobStore() override;

    PgJobStore(const PgJobStore&) = delete;
    PgJobStore& operator=(const PgJobStore&) = delete;

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

    /// Recounts the running statistics from the jobs table (see
    /// SqliteJobStore::rebuild_statistics).
    void rebuild_statistics();

    /// The schema version this build creates.
    static constexpr int kSchemaVersion = 3;

    /// `url` with any password replaced by "***", for messages and logs.
    static std::string redacted_url(const std::string& url);

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace wharf::host
