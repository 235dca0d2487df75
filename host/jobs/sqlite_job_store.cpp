#include "jobs/sqlite_job_store.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <type_traits>
#include <unordered_map>

#include "base/cron.hpp"
#include "base/error.hpp"
#include "base/log.hpp"
#include "base/ptree_json.hpp"
#include "base/sqlite_library.hpp"
#include "jobs/job_store_codec.hpp"

namespace wharf::host {

namespace {

using Json = nlohmann::json;
using Ptree = boost::property_tree::ptree;

// --- conversions (jobs/job_store_codec.hpp: the same as every store's) ---------

using job_codec::escape_like;
using job_codec::from_micros;
using job_codec::json_text;
using job_codec::payload_from_text;
using job_codec::payload_to_json;
using job_codec::state_from_text;
using job_codec::to_micros;

const char* state_name(JobState s) { return wharf::to_string(s); }

std::string placeholders(std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out += i == 0 ? "?" : ",?";
    return out;
}

// --- schema ----------------------------------------------------------------------

// Fills job_counts from the jobs table (migration 3, and rebuild_statistics).
// Part of a released migration: change it only together with a new migration.
constexpr const char* kRecount = R"sql(
DELETE FROM job_counts;
INSERT INTO job_counts
SELECT queue, topic, state, COUNT(*),
       COALESCE(SUM(CASE WHEN finished_at IS NOT NULL THEN started_at - queued_at END), 0),
       COUNT(CASE WHEN finished_at IS NOT NULL THEN started_at - queued_at END),
       COALESCE(SUM(CASE WHEN finished_at IS NOT NULL THEN finished_at - started_at END), 0),
       COUNT(CASE WHEN finished_at IS NOT NULL THEN finished_at - started_at END)
FROM jobs GROUP BY queue, topic, state;
)sql";

// Each migration is applied once, in order, inside one transaction with the
// schema_version row that records it. Never edit a released migration: add one.
const std::vector<std::string> kMigrations = {
    // 1: jobs and their side tables.
    R"sql(
CREATE TABLE jobs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    topic          TEXT    NOT NULL,
    queue          TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    submitted_by   TEXT    NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    queued_at      INTEGER,
    scheduled_at   INTEGER,
    started_at     INTEGER,
    finished_at    INTEGER,
    heartbeat_at   INTEGER,
    retry_count    INTEGER NOT NULL DEFAULT 0,
    max_retries    INTEGER NOT NULL,
    progress_done  INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER NOT NULL DEFAULT 0,
    eta_at         INTEGER,
    result_message TEXT    NOT NULL DEFAULT '',
    log_count      INTEGER NOT NULL DEFAULT 0,
    report_count   INTEGER NOT NULL DEFAULT 0,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    cron           TEXT    NOT NULL DEFAULT '',
    schedule_name  TEXT    NOT NULL DEFAULT '',
    schedule_id    INTEGER,
    fire_at        INTEGER,
    claimed_by     TEXT
);
CREATE INDEX jobs_by_state ON jobs(state, id);
CREATE INDEX jobs_by_queue_state ON jobs(state, queue, id);
CREATE INDEX jobs_by_topic ON jobs(topic, id);
CREATE INDEX jobs_by_queue ON jobs(queue, id);
CREATE INDEX jobs_by_user ON jobs(submitted_by, id);
CREATE INDEX jobs_by_created ON jobs(created_at, id);
CREATE INDEX jobs_by_finished ON jobs(finished_at, id) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_due ON jobs(scheduled_at) WHERE state IN ('scheduled', 'failed');
CREATE UNIQUE INDEX jobs_one_run_per_fire ON jobs(schedule_id, fire_at)
    WHERE schedule_id IS NOT NULL;
CREATE UNIQUE INDEX jobs_named_schedule ON jobs(schedule_name)
    WHERE schedule_name != '' AND state = 'scheduled';
CREATE TABLE job_logs (
    job_id INTEGER NOT NULL,
    seq    INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    line   TEXT    NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
CREATE TABLE job_report_rows (
    job_id INTEGER NOT NULL,
    seq    INTEGER NOT NULL,
    cells  TEXT    NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
CREATE TABLE job_checkpoints (
    job_id INTEGER NOT NULL,
    key    TEXT    NOT NULL,
    value  TEXT    NOT NULL,
    PRIMARY KEY (job_id, key)
) WITHOUT ROWID;
)sql",
    // 2: cheaper dispatch. Every claim and finish moved a row between two
    // (state, ...) indexes; claims now read a partial index that holds only
    // queued jobs, so a run's two state changes touch one full index less.
    R"sql(
DROP INDEX jobs_by_queue_state;
CREATE INDEX jobs_waiting ON jobs(queue, id) WHERE state = 'queued';
)sql",
    // 3: statistics as running counts. One row per (queue, topic, state) with
    // the number of jobs and the wait and run time sums of final jobs, kept by
    // every write in the transaction of the change it counts (Counts below),
    // so statistics read a table as small as the number of queue x topic x
    // state combinations instead of scanning the history. Built from the jobs
    // already there.
    R"sql(
CREATE TABLE job_counts (
    queue    TEXT    NOT NULL,
    topic    TEXT    NOT NULL,
    state    TEXT    NOT NULL,
    jobs     INTEGER NOT NULL,
    wait_sum INTEGER NOT NULL,
    wait_n   INTEGER NOT NULL,
    run_sum  INTEGER NOT NULL,
    run_n    INTEGER NOT NULL,
    PRIMARY KEY (queue, topic, state)
) WITHOUT ROWID;
)sql" + std::string(kRecount),
};


// What a job row adds to the averages: the wait and run time of a final job,
// NULL while the job is not final or when it never started. Returned by every
// statement that moves a job to or from a final state.
constexpr const char* kTimesColumns =
    "CASE WHEN finished_at IS NOT NULL THEN started_at - queued_at END, "
    "CASE WHEN finished_at IS NOT NULL THEN finished_at - started_at END";

std::optional<std::int64_t> optional_int(const SQLite::Column& c) {
    if (c.isNull()) return std::nullopt;
    return c.getInt64();
}

// Changes to job_counts made by one write operation or one group commit,
// applied to the table just before the transaction commits. Adding and
// removing the same job in one batch (a claim and its finish) cancel out here
// instead of costing table writes.
class Counts {
public:
    struct Delta {
        std::int64_t jobs = 0, wait_sum = 0, wait_n = 0, run_sum = 0, run_n = 0;
        bool zero() const { return !jobs && !wait_sum && !wait_n && !run_sum && !run_n; }
    };
    struct Key {
        std::string queue;
        std::string topic;
        JobState state;
        bool operator==(const Key&) const = default;
    };

    // A job of (queue, topic) enters (sign +1) or leaves (-1) `state`; `wait`
    // and `run` are its kTimesColumns in that state.
    void add(const std::string& queue, const std::string& topic, JobState state, int sign,
             std::optional<std::int64_t> wait = std::nullopt,
             std::optional<std::int64_t> run = std::nullopt) {
        Delta& d = deltas_[Key{queue, topic, state}];
        d.jobs += sign;
        if (wait) {
            d.wait_sum += sign * *wait;
            d.wait_n += sign;
        }
        if (run) {
            d.run_sum += sign * *run;
            d.run_n += sign;
        }
    }

    // A job moves between states (not final before, so no times to remove).
    void move(const std::string& queue, const std::string& topic, JobState from, JobState to,
              std::optional<std::int64_t> wait = std::nullopt,
              std::optional<std::int64_t> run = std::nullopt) {
        add(queue, topic, from, -1);
        add(queue, topic, to, +1, wait, run);
    }

    void merge(const Counts& other) {
        for (const auto& [key, d] : other.deltas_) {
            Delta& m = deltas_[key];
            m.jobs += d.jobs;
            m.wait_sum += d.wait_sum;
            m.wait_n += d.wait_n;
            m.run_sum += d.run_sum;
            m.run_n += d.run_n;
        }
    }

    void clear() {
        deltas_.clear();
        recounted_ = false;
    }
    bool empty() const { return deltas_.empty(); }

    // The operation recounted job_counts from the jobs table: changes counted
    // by earlier operations of the same transaction are in the recount.
    void mark_recounted() { recounted_ = true; }
    bool recounted() const { return recounted_; }

    template <class F>
    void for_each(F fn) const {
        for (const auto& [key, d] : deltas_)
            if (!d.zero()) fn(key, d);
    }

private:
    struct KeyHash {
        std::size_t operator()(const Key& k) const noexcept {
            std::size_t h = std::hash<std::string>()(k.queue);
            h = h * 31 + std::hash<std::string>()(k.topic);
            return h * 31 + static_cast<std::size_t>(k.state);
        }
    };
    std::unordered_map<Key, Delta, KeyHash> deltas_;
    bool recounted_ = false;
};

constexpr const char* kJobColumns =
    "id, topic, queue, state, payload, submitted_by, created_at, scheduled_at, started_at, "
    "finished_at, cron, retry_count, max_retries, progress_done, progress_total, eta_at, "
    "result_message, log_count, report_count, heartbeat_at, stop_requested";

std::optional<JobTimePoint> optional_time(const SQLite::Column& c) {
    if (c.isNull()) return std::nullopt;
    return from_micros(c.getInt64());
}

// A job row as kJobColumns selects it. `with_payload` false leaves the payload
// empty for a caller that has it already (parsing it is the costliest part).
Job read_job(SQLite::Statement& s, bool with_payload = true) {
    Job j;
    j.id = s.getColumn(0).getInt64();
    j.topic = s.getColumn(1).getString();
    j.queue = s.getColumn(2).getString();
    j.state = state_from_text(s.getColumn(3).getString());
    if (with_payload) j.payload = payload_from_text(s.getColumn(4).getString());
    j.submitted_by = s.getColumn(5).getString();
    j.created = from_micros(s.getColumn(6).getInt64());
    j.scheduled = optional_time(s.getColumn(7));
    j.started = optional_time(s.getColumn(8));
    j.finished = optional_time(s.getColumn(9));
    j.cron = s.getColumn(10).getString();
    j.retry_count = s.getColumn(11).getInt();
    j.max_retries = s.getColumn(12).getInt();
    j.progress_done = s.getColumn(13).getInt64();
    j.progress_total = s.getColumn(14).getInt64();
    j.eta = optional_time(s.getColumn(15));
    j.result_message = s.getColumn(16).getString();
    j.log_lines = s.getColumn(17).getInt64();
    j.report_rows = s.getColumn(18).getInt64();
    j.last_heartbeat = optional_time(s.getColumn(19));
    j.stop_requested = s.getColumn(20).getInt() != 0;
    return j;
}

void bind_optional_time(SQLite::Statement& s, int index, const std::optional<JobTimePoint>& t) {
    if (t) {
        s.bind(index, to_micros(*t));
    } else {
        s.bind(index);
    }
}

// --- connections -------------------------------------------------------------------

// One SQLite connection with its prepared statements. Used by one thread at a
// time (the writer, or a reader holding a lease).
class Connection {
public:
    Connection(const SqliteJobStoreOptions& options)
        : db_(options.path.string(), sqlite_open_flags(),
              static_cast<int>(options.busy_timeout.count())) {
        db_.exec("PRAGMA journal_mode=WAL");
        db_.exec("PRAGMA synchronous=" + options.synchronous);
        db_.exec("PRAGMA temp_store=MEMORY");
    }

    // The cached statement for `sql`, reset and with bindings cleared.
    SQLite::Statement& statement(const std::string& sql) {
        auto it = cache_.find(sql);
        if (it == cache_.end()) {
            // Filters produce a bounded family of texts, but never let it grow
            // without limit.
            if (cache_.size() >= kMaxCachedStatements) cache_.clear();
            it = cache_.emplace(sql, std::make_unique<SQLite::Statement>(db_, sql)).first;
        }
        SQLite::Statement& s = *it->second;
        s.tryReset();
        s.clearBindings();
        return s;
    }

    void exec(const std::string& sql) { db_.exec(sql); }
    SQLite::Database& db() { return db_; }

    // job_counts changes of the write operation running on this connection.
    Counts& counts() { return counts_; }

private:
    Counts counts_;
    static constexpr std::size_t kMaxCachedStatements = 256;
    SQLite::Database db_;
    std::unordered_map<std::string, std::unique_ptr<SQLite::Statement>> cache_;
};

// Resets a statement when a read is done, so that no read transaction stays
// open on an idle connection (it would hold back WAL checkpoints).
class StatementScope {
public:
    explicit StatementScope(SQLite::Statement& s) : s_(s) {}
    ~StatementScope() { s_.tryReset(); }
    StatementScope(const StatementScope&) = delete;
    StatementScope& operator=(const StatementScope&) = delete;

private:
    SQLite::Statement& s_;
};

// One write operation waiting for its group commit.
struct PendingWrite {
    // Runs the operation inside the open transaction. Returns false if it
    // failed (its changes must be rolled back, its error is kept for delivery).
    std::function<bool(Connection&)> run;
    // Called after the transaction committed (delivers the result or the
    // operation's own error).
    std::function<void()> deliver;
    // Called when the transaction as a whole failed.
    std::function<void(std::exception_ptr)> fail;
    // Committed in a transaction of its own: a long operation (a purge
    // batch) must not make short ones that arrived with it wait for it.
    bool alone = false;
};

// Callers and the writer hand over through atomics with wait/notify (a futex,
// after libstdc++'s own short spin). Longer spinning with sched_yield was
// measured: it burnt a core on this 2-core machine and gained nothing.
template <class R>
struct WriteState {
    std::atomic<bool> done{false};
    std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> value;
    std::exception_ptr error;

    void complete() {
        done.store(true, std::memory_order_release);
        done.notify_one();
    }

    R wait() {
        while (!done.load(std::memory_order_acquire)) done.wait(false, std::memory_order_acquire);
        if (error) std::rethrow_exception(error);
        if constexpr (!std::is_void_v<R>) return std::move(*value);
    }
};

std::exception_ptr as_storage_error(const std::exception& e, const char* what) {
    return std::make_exception_ptr(Error(ErrorCode::storage, std::string(what) + ": " + e.what()));
}

}  // namespace

// --- the store ------------------------------------------------------------------

class SqliteJobStore::Impl {
public:
    explicit Impl(SqliteJobStoreOptions options) : options_(std::move(options)) {
        if (!options_.clock) options_.clock = [] { return JobClock::now(); };
        static const std::vector<std::string> kModes = {"OFF", "NORMAL", "FULL", "EXTRA"};
        if (std::find(kModes.begin(), kModes.end(), options_.synchronous) == kModes.end()) {
            throw Error(ErrorCode::invalid_argument,
                        "job store synchronous must be OFF, NORMAL, FULL or EXTRA, not '" +
                            options_.synchronous + "'");
        }
        try {
            if (options_.path.has_parent_path()) {
                std::filesystem::create_directories(options_.path.parent_path());
            }
            writer_connection_ = std::make_unique<Connection>(options_);
        } catch (const std::exception& e) {
            throw Error(ErrorCode::storage,
                        "cannot open job store path=" + options_.path.string() + ": " + e.what());
        }
        // Checkpoints (copying the WAL back into the database, with two
        // fdatasyncs) run on a thread of their own instead of inside the
        // commit that crosses SQLite's autocheckpoint size: a commit, and
        // every write waiting for it, no longer pays for one. The hook
        // replaces SQLite's own autocheckpoint on the writer connection.
        sqlite3_wal_hook(writer_connection_->db().getHandle(), &Impl::on_wal_commit, this);
        checkpointer_ = std::thread([this] { checkpoint_loop(); });
        writer_ = std::thread([this] { writer_loop(); });
    }

    ~Impl() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        submitted_.fetch_add(1, std::memory_order_release);
        submitted_.notify_one();
        writer_.join();
        checkpoint_closing_.store(true, std::memory_order_release);
        checkpoint_wanted_.store(true, std::memory_order_release);
        checkpoint_wanted_.notify_one();
        checkpointer_.join();
    }

    SqliteJobStoreOptions options_;

    std::int64_t now_us() const { return to_micros(options_.clock()); }

    // Runs `fn` inside the next group transaction (on whichever thread commits it) and
    // returns its result once that transaction has committed.
    template <class F>
    auto write(F fn, bool alone = false) -> std::invoke_result_t<F, Connection&> {
        using R = std::invoke_result_t<F, Connection&>;
        auto state = std::make_shared<WriteState<R>>();
        PendingWrite op;
        op.run = [state, fn = std::move(fn)](Connection& c) mutable {
            try {
                if constexpr (std::is_void_v<R>) {
                    fn(c);
                    state->value = true;
                } else {
                    state->value.emplace(fn(c));
                }
                return true;
            } catch (const SQLite::Exception& e) {
                state->error = as_storage_error(e, "job store write failed");
            } catch (...) {
                state->error = std::current_exception();
            }
            return false;
        };
        op.deliver = [state] { state->complete(); };
        op.fail = [state](std::exception_ptr e) {
            state->error = std::move(e);
            state->complete();
        };
        op.alone = alone;
        {
            std::lock_guard lock(mutex_);
            if (stopping_) throw Error(ErrorCode::internal, "job store is closing");
            pending_.push_back(std::move(op));
        }
        // Leader/follower group commit: a caller that finds no commit running
        // commits the pending batch on its own thread (no hand-off to the
        // writer thread, the common case when idle); otherwise its operation
        // joins the batch after the running one, committed by whoever leads.
        std::unique_lock leader(leader_mutex_, std::try_to_lock);
        if (leader.owns_lock()) {
            while (!state->done.load(std::memory_order_acquire) && commit_pending()) {
            }
            leader.unlock();
        }
        bool left;
        {
            std::lock_guard lock(mutex_);
            left = !pending_.empty();
        }
        if (left || !state->done.load(std::memory_order_acquire)) {
            submitted_.fetch_add(1, std::memory_order_release);
            submitted_.notify_one();
        }
        return state->wait();
    }

    // Commits one batch of pending operations. REQUIRES: leader_mutex_ held.
    // Returns false when nothing was pending.
    bool commit_pending() {
        std::vector<PendingWrite> batch;
        {
            std::lock_guard lock(mutex_);
            std::size_t max = std::min(pending_.size(), std::max<std::size_t>(1, options_.max_batch));
            // The batch ends before an operation that commits alone (or is it).
            std::size_t n = 0;
            while (n < max) {
                if (pending_[n].alone) {
                    if (n == 0) n = 1;
                    break;
                }
                ++n;
            }
            batch.reserve(n);
            for (std::size_t i = 0; i < n; ++i) {
                batch.push_back(std::move(pending_.front()));
                pending_.pop_front();
            }
        }
        if (batch.empty()) return false;
        commit_batch(batch);
        return true;
    }

    // The fallback leader: commits what callers left pending because another
    // commit was running when they arrived.
    void writer_loop() {
        while (true) {
            // Read the counter before looking at the queue: a submission after
            // the look changes it, so the wait below cannot miss it.
            std::uint64_t seen = submitted_.load(std::memory_order_acquire);
            bool committed;
            {
                std::lock_guard leader(leader_mutex_);
                committed = commit_pending();
            }
            if (committed) continue;
            {
                std::lock_guard lock(mutex_);
                if (pending_.empty() && stopping_) return;
            }
            submitted_.wait(seen, std::memory_order_acquire);
        }
    }

    void commit_batch(std::vector<PendingWrite>& batch) {
        Connection& c = *writer_connection_;
        try {
            c.statement("BEGIN IMMEDIATE").exec();
            if (batch.size() == 1) {
                // A lone operation needs no savepoint: if it fails, roll back all.
                c.counts().clear();
                if (!batch[0].run(c)) {
                    c.statement("ROLLBACK").exec();
                    batch[0].deliver();
                    return;
                }
                apply_counts(c, c.counts());
            } else {
                // Each operation's count changes join the batch only if the
                // operation's own changes stay.
                batch_counts_.clear();
                for (auto& op : batch) {
                    c.counts().clear();
                    c.statement("SAVEPOINT op").exec();
                    if (op.run(c)) {
                        c.statement("RELEASE op").exec();
                        if (c.counts().recounted()) batch_counts_.clear();
                        batch_counts_.merge(c.counts());
                    } else {
                        c.statement("ROLLBACK TO op").exec();
                        c.statement("RELEASE op").exec();
                    }
                }
                apply_counts(c, batch_counts_);
            }
            c.statement("COMMIT").exec();
        } catch (const std::exception& e) {
            try {
                c.exec("ROLLBACK");
            } catch (const std::exception&) {
                // no transaction was open
            }
            auto error = as_storage_error(e, "job store commit failed");
            logger("jobs")->error("job store commit failed operations={} error={}", batch.size(),
                                  e.what());
            for (auto& op : batch) op.fail(error);
            return;
        }
        transactions_.fetch_add(1, std::memory_order_relaxed);
        operations_.fetch_add(batch.size(), std::memory_order_relaxed);
        for (auto& op : batch) op.deliver();
    }

    // Writes the running counts changed by the transaction, in it.
    void apply_counts(Connection& c, const Counts& counts) {
        counts.for_each([&c](const Counts::Key& key, const Counts::Delta& d) {
            auto& u = c.statement(
                "INSERT INTO job_counts (queue, topic, state, jobs, wait_sum, wait_n, run_sum, "
                "run_n) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (queue, topic, state) DO UPDATE SET "
                "jobs=jobs+excluded.jobs, wait_sum=wait_sum+excluded.wait_sum, "
                "wait_n=wait_n+excluded.wait_n, run_sum=run_sum+excluded.run_sum, "
                "run_n=run_n+excluded.run_n RETURNING jobs");
            std::int64_t left = 0;
            {
                StatementScope scope(u);
                u.bind(1, key.queue);
                u.bind(2, key.topic);
                u.bindNoCopy(3, state_name(key.state));
                u.bind(4, d.jobs);
                u.bind(5, d.wait_sum);
                u.bind(6, d.wait_n);
                u.bind(7, d.run_sum);
                u.bind(8, d.run_n);
                if (u.executeStep()) left = u.getColumn(0).getInt64();
            }
            if (left > 0) return;
            if (left < 0) {
                logger("jobs")->error(
                    "job counts went negative queue={} topic={} state={} jobs={}; the "
                    "statistics of this queue and topic are off",
                    key.queue, key.topic, state_name(key.state), left);
            }
            auto& del = c.statement("DELETE FROM job_counts WHERE queue=? AND topic=? AND state=?");
            del.bind(1, key.queue);
            del.bind(2, key.topic);
            del.bindNoCopy(3, state_name(key.state));
            del.exec();
        });
    }

    // A read connection for the duration of one call.
    class ReadLease {
    public:
        ReadLease(Impl& impl, std::unique_ptr<Connection> c) : impl_(impl), c_(std::move(c)) {}
        ~ReadLease() { impl_.release_reader(std::move(c_)); }
        ReadLease(const ReadLease&) = delete;
        ReadLease& operator=(const ReadLease&) = delete;
        Connection& operator*() { return *c_; }
        Connection* operator->() { return c_.get(); }

    private:
        Impl& impl_;
        std::unique_ptr<Connection> c_;
    };

    ReadLease reader() {
        {
            std::lock_guard lock(readers_mutex_);
            if (!idle_readers_.empty()) {
                auto c = std::move(idle_readers_.back());
                idle_readers_.pop_back();
                return ReadLease(*this, std::move(c));
            }
        }
        try {
            return ReadLease(*this, std::make_unique<Connection>(options_));
        } catch (const SQLite::Exception& e) {
            std::rethrow_exception(as_storage_error(e, "cannot open job store reader"));
        }
    }

    void release_reader(std::unique_ptr<Connection> c) {
        std::lock_guard lock(readers_mutex_);
        if (idle_readers_.size() < kMaxIdleReaders) idle_readers_.push_back(std::move(c));
    }

    // Runs a read, turning database failures into Error(storage).
    template <class F>
    auto read(F fn) -> std::invoke_result_t<F, Connection&> {
        try {
            auto lease = reader();
            return fn(*lease);
        } catch (const SQLite::Exception& e) {
            std::rethrow_exception(as_storage_error(e, "job store read failed"));
        }
    }

    // --- helpers used inside write operations --------------------------------

    std::optional<Job> load(Connection& c, JobId id) {
        auto& s = c.statement(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id=?");
        StatementScope scope(s);
        s.bind(1, id);
        if (!s.executeStep()) return std::nullopt;
        return read_job(s);
    }

    std::optional<std::string> load_state(Connection& c, JobId id) {
        auto& s = c.statement("SELECT state FROM jobs WHERE id=?");
        StatementScope scope(s);
        s.bind(1, id);
        if (!s.executeStep()) return std::nullopt;
        return s.getColumn(0).getString();
    }

    Job load_existing(Connection& c, JobId id) {
        auto job = load(c, id);
        if (!job) throw Error(ErrorCode::internal, "job vanished inside a transaction");
        return *job;
    }

    // Deletes a job with its side rows and takes it out of the counts.
    void delete_job_rows(Connection& c, JobId id) {
        {
            auto& d = c.statement(std::string("DELETE FROM jobs WHERE id=? RETURNING queue, topic, "
                                              "state, ") +
                                  kTimesColumns);
            StatementScope scope(d);
            d.bind(1, id);
            if (!d.executeStep()) return;
            c.counts().add(d.getColumn(0).getString(), d.getColumn(1).getString(),
                           state_from_text(d.getColumn(2).getString()), -1,
                           optional_int(d.getColumn(3)), optional_int(d.getColumn(4)));
        }
        for (const char* sql :
             {"DELETE FROM job_logs WHERE job_id=?", "DELETE FROM job_report_rows WHERE job_id=?",
              "DELETE FROM job_checkpoints WHERE job_id=?"}) {
            auto& s = c.statement(sql);
            s.bind(1, id);
            s.exec();
        }
    }

    // Moves up to request.limit queued jobs to active (oldest first).
    std::vector<Job> claim(Connection& c, const ClaimRequest& request, std::int64_t now) {
        if (request.now != JobTimePoint{}) now = to_micros(request.now);
        std::string sql =
            "UPDATE jobs SET state='active', started_at=?, heartbeat_at=?, claimed_by=?, "
            "progress_done=0, progress_total=0, eta_at=NULL, stop_requested=0 "
            "WHERE id IN (SELECT id FROM jobs WHERE state='queued'";
        if (!request.queues.empty())
            sql += " AND queue IN (" + placeholders(request.queues.size()) + ")";
        if (!request.topics.empty())
            sql += " AND topic IN (" + placeholders(request.topics.size()) + ")";
        sql += std::string(" ORDER BY id LIMIT ?) RETURNING ") + kJobColumns;
        auto& s = c.statement(sql);
        StatementScope scope(s);
        int i = 1;
        s.bind(i++, now);
        s.bind(i++, now);
        s.bind(i++, request.worker);
        for (const auto& q : request.queues) s.bind(i++, q);
        for (const auto& t : request.topics) s.bind(i++, t);
        s.bind(i++, static_cast<std::int64_t>(request.limit));
        std::vector<Job> jobs;
        while (s.executeStep()) {
            jobs.push_back(read_job(s));
            c.counts().move(jobs.back().queue, jobs.back().topic, JobState::queued,
                            JobState::active);
        }
        // RETURNING gives no order guarantee; callers rely on oldest first.
        std::sort(jobs.begin(), jobs.end(),
                  [](const Job& a, const Job& b) { return a.id < b.id; });
        return jobs;
    }

    // Ends one run with a single UPDATE that decides the next state in SQL
    // (retry or give up) and returns what it chose, so the row is never read
    // twice on the hot path.
    FinishedRun finish_run(Connection& c, const JobCompletion& done, std::int64_t now) {
        FinishedRun run;
        run.id = done.id;
        SQLite::Statement* u = nullptr;
        switch (done.outcome) {
            case JobOutcome::succeeded:
            case JobOutcome::error:
            case JobOutcome::stopped: {
                u = &c.statement(
                    "UPDATE jobs SET state=?, result_message=?, finished_at=?, eta_at=NULL, "
                    "claimed_by=NULL WHERE id=? AND state='active' RETURNING state, retry_count, "
                    "queue, topic, " + std::string(kTimesColumns));
                const char* next = done.outcome == JobOutcome::succeeded ? "succeeded"
                                   : done.outcome == JobOutcome::error   ? "error"
                                                                         : "stopped";
                u->bindNoCopy(1, next);
                u->bind(2, done.message);
                u->bind(3, now);
                u->bind(4, done.id);
                break;
            }
            case JobOutcome::failed:
                u = &c.statement(
                    "UPDATE jobs SET "
                    "state=CASE WHEN max_retries<0 OR retry_count<max_retries "
                    "THEN 'failed' ELSE 'given_up' END, "
                    "finished_at=CASE WHEN max_retries<0 OR retry_count<max_retries "
                    "THEN NULL ELSE ?1 END, "
                    "scheduled_at=CASE WHEN max_retries<0 OR retry_count<max_retries "
                    "THEN ?2 ELSE NULL END, "
                    "retry_count=CASE WHEN max_retries<0 OR retry_count<max_retries "
                    "THEN retry_count+1 ELSE retry_count END, "
                    "result_message=?3, eta_at=NULL, claimed_by=NULL "
                    "WHERE id=?4 AND state='active' RETURNING state, retry_count, queue, topic, " +
                    std::string(kTimesColumns));
                u->bind(1, now);
                u->bind(2, to_micros(done.retry_at));
                u->bind(3, done.message);
                u->bind(4, done.id);
                break;
            case JobOutcome::requeued:
                u = &c.statement(
                    "UPDATE jobs SET state='queued', queued_at=?, result_message=?, eta_at=NULL, "
                    "claimed_by=NULL, stop_requested=0 WHERE id=? AND state='active' "
                    "RETURNING state, retry_count, queue, topic, " +
                    std::string(kTimesColumns));
                u->bind(1, now);
                u->bind(2, done.message);
                u->bind(3, done.id);
                break;
        }
        {
            StatementScope scope(*u);
            if (u->executeStep()) {
                run.applied = true;
                run.state = state_from_text(u->getColumn(0).getString());
                run.retry_count = u->getColumn(1).getInt();
                c.counts().move(u->getColumn(2).getString(), u->getColumn(3).getString(),
                                JobState::active, run.state, optional_int(u->getColumn(4)),
                                optional_int(u->getColumn(5)));
            }
        }
        if (run.applied && done.discard && run.state == JobState::succeeded) {
            delete_job_rows(c, done.id);
            run.discarded = true;
        }
        return run;
    }

    std::unique_ptr<Connection> writer_connection_;
    std::thread writer_;

    // --- checkpoints ---------------------------------------------------------

    // WAL frames after which the checkpointer copies the WAL back (SQLite's
    // default autocheckpoint size).
    static constexpr int kCheckpointFrames = 1000;
    // A passive checkpoint running beside the writer copies what was
    // committed when it began; the WAL starts over only once a checkpoint
    // caught up with the writer. Should writes never leave it a gap, the
    // commit that finds the WAL this long checkpoints itself, so the file
    // stays bounded (32 MiB at 4 KiB pages).
    static constexpr int kInlineCheckpointFrames = 8 * kCheckpointFrames;

    // sqlite3_wal_hook: runs after each commit of the writer connection.
    static int on_wal_commit(void* self, sqlite3* db, const char* name, int frames) {
        auto& impl = *static_cast<Impl*>(self);
        if (frames >= kInlineCheckpointFrames) {
            sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        } else if (frames >= kCheckpointFrames &&
                   !impl.checkpoint_wanted_.exchange(true, std::memory_order_acq_rel)) {
            impl.checkpoint_wanted_.notify_one();
        }
        return SQLITE_OK;
    }

    void checkpoint_loop() {
        std::unique_ptr<Connection> c;
        while (true) {
            checkpoint_wanted_.wait(false, std::memory_order_acquire);
            if (checkpoint_closing_.load(std::memory_order_acquire)) return;
            // Reset before the checkpoint: a commit during it asks again.
            checkpoint_wanted_.store(false, std::memory_order_release);
            try {
                if (!c) c = std::make_unique<Connection>(options_);
                int rc = sqlite3_wal_checkpoint_v2(c->db().getHandle(), nullptr,
                                                   SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
                if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
                    logger("jobs")->warn("job store checkpoint failed path={} error={}",
                                         options_.path.string(), sqlite3_errstr(rc));
                }
            } catch (const std::exception& e) {
                logger("jobs")->warn("job store checkpoint failed path={} error={}",
                                     options_.path.string(), e.what());
            }
        }
    }

    std::thread checkpointer_;
    std::atomic<bool> checkpoint_wanted_{false};
    std::atomic<bool> checkpoint_closing_{false};
    std::mutex leader_mutex_;  // held by whoever commits (a caller or the writer thread)
    std::mutex mutex_;
    std::atomic<std::uint64_t> submitted_{0};  // bumped after every submission
    std::deque<PendingWrite> pending_;
    bool stopping_ = false;
    std::atomic<std::uint64_t> transactions_{0};
    std::atomic<std::uint64_t> operations_{0};
    Counts batch_counts_;  // REQUIRES: leader_mutex_ held

    static constexpr std::size_t kMaxIdleReaders = 8;
    std::mutex readers_mutex_;
    std::vector<std::unique_ptr<Connection>> idle_readers_;
};

SqliteJobStore::SqliteJobStore(SqliteJobStoreOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

SqliteJobStore::~SqliteJobStore() = default;

WriterCounters SqliteJobStore::writer_counters() const {
    return {impl_->transactions_.load(), impl_->operations_.load()};
}

// --- schema ------------------------------------------------------------------------

void SqliteJobStore::migrate() {
    int known = static_cast<int>(kMigrations.size());
    static_assert(kSchemaVersion >= 1);
    auto applied = impl_->write([this, known](Connection& c) {
        c.exec(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
        int current =
            c.db().execAndGet("SELECT COALESCE(MAX(version), 0) FROM schema_version").getInt();
        if (current > known) {
            throw Error(ErrorCode::storage, "job store schema version " + std::to_string(current) +
                                                " is newer than this wharfd supports (" +
                                                std::to_string(known) +
                                                "); upgrade wharfd or use another data directory");
        }
        int count = 0;
        for (int v = current + 1; v <= known; ++v) {
            c.exec(kMigrations[static_cast<std::size_t>(v - 1)]);
            c.counts().mark_recounted();
            SQLite::Statement s(c.db(),
                                "INSERT INTO schema_version(version, applied_at) VALUES (?,?)");
            s.bind(1, v);
            s.bind(2, impl_->now_us());
            s.exec();
            ++count;
        }
        return count;
    });
    if (applied > 0) {
        logger("jobs")->info("job store migrated path={} applied={} version={}",
                             impl_->options_.path.string(), applied, known);
    }
}

void SqliteJobStore::rebuild_statistics() {
    impl_->write([](Connection& c) {
        c.exec(kRecount);
        c.counts().mark_recounted();
    });
}

int SqliteJobStore::schema_version() const {
    return impl_->read([](Connection& c) {
        if (!c.db().tableExists("schema_version")) return 0;
        return c.db().execAndGet("SELECT COALESCE(MAX(version), 0) FROM schema_version").getInt();
    });
}

// --- writes ------------------------------------------------------------------------

Job SqliteJobStore::insert(const NewJob& job) {
    // Serialise and parse before the write: the commit runs as short as it can.
    const job_codec::PreparedJob prepared = job_codec::prepare_new_job(job, impl_->options_.clock());
    const Json& payload_json = prepared.payload_json;
    const std::string& payload = prepared.payload;
    const std::optional<JobTimePoint>& first_run = prepared.first_run;
    return impl_->write([this, &job, &payload, &payload_json, first_run](Connection& c) {
        std::int64_t now = impl_->now_us();
        const char* state = first_run ? "scheduled" : "queued";
        if (!job.schedule_name.empty()) {
            auto& find = c.statement(
                "SELECT id, queue, topic FROM jobs WHERE schedule_name=? AND state='scheduled'");
            find.bind(1, job.schedule_name);
            std::optional<JobId> existing;
            if (find.executeStep()) {
                existing = find.getColumn(0).getInt64();
                c.counts().add(find.getColumn(1).getString(), find.getColumn(2).getString(),
                               JobState::scheduled, -1);
                c.counts().add(job.queue, job.topic, JobState::scheduled, +1);
            }
            find.tryReset();
            if (existing) {
                auto& u = c.statement(
                    "UPDATE jobs SET topic=?, queue=?, payload=?, submitted_by=?, "
                    "max_retries=?, cron=?, scheduled_at=? WHERE id=?");
                u.bind(1, job.topic);
                u.bind(2, job.queue);
                u.bind(3, payload);
                u.bind(4, job.submitted_by);
                u.bind(5, job.max_retries);
                u.bind(6, job.cron);
                bind_optional_time(u, 7, first_run);
                u.bind(8, *existing);
                u.exec();
                return impl_->load_existing(c, *existing);
            }
        }
        auto& s = c.statement(
            std::string("INSERT INTO jobs (topic, queue, state, payload, submitted_by, "
                        "created_at, queued_at, scheduled_at, max_retries, cron, schedule_name) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?) RETURNING ") +
            kJobColumns);
        StatementScope scope(s);
        s.bind(1, job.topic);
        s.bind(2, job.queue);
        s.bindNoCopy(3, state);
        s.bind(4, payload);
        s.bind(5, job.submitted_by);
        s.bind(6, now);
        if (first_run) {
            s.bind(7);
        } else {
            s.bind(7, now);
        }
        bind_optional_time(s, 8, first_run);
        s.bind(9, job.max_retries);
        s.bind(10, job.cron);
        s.bind(11, job.schedule_name);
        if (!s.executeStep()) throw Error(ErrorCode::internal, "insert returned no row");
        // The payload as stored, from the JSON it was written from rather
        // than parsed back from its text.
        Job stored = read_job(s, /*with_payload=*/false);
        stored.payload = json_to_ptree(payload_json);
        c.counts().add(stored.queue, stored.topic, stored.state, +1);
        while (s.executeStep()) {
        }
        return stored;
    });
}

std::vector<Job> SqliteJobStore::claim_next(const ClaimRequest& request) {
    if (request.limit == 0) return {};
    auto claimed = impl_->write([this, &request](Connection& c) {
        return impl_->claim(c, request, impl_->now_us());
    });
    return claimed;
}

std::optional<Job> SqliteJobStore::finish(const JobCompletion& done) {
    return impl_->write([this, &done](Connection& c) -> std::optional<Job> {
        FinishedRun run = impl_->finish_run(c, done, impl_->now_us());
        if (!run.applied) {
            auto state = impl_->load_state(c, done.id);
            if (!state) return std::nullopt;
            throw Error(ErrorCode::conflict, "job " + std::to_string(done.id) + " is " + *state +
                                                 ", not active: it cannot finish");
        }
        if (run.discarded) return std::nullopt;
        return impl_->load(c, done.id);
    });
}

ExchangeResult SqliteJobStore::exchange(const ExchangeRequest& request) {
    if (request.completions.empty() && request.claims.empty()) return {};
    return impl_->write([this, &request](Connection& c) {
        std::int64_t now = impl_->now_us();
        ExchangeResult result;
        result.finished.reserve(request.completions.size());
        for (const auto& done : request.completions)
            result.finished.push_back(impl_->finish_run(c, done, now));
        result.claimed.reserve(request.claims.size());
        for (const auto& claim : request.claims) {
            result.claimed.push_back(claim.limit == 0 ? std::vector<Job>{}
                                                      : impl_->claim(c, claim, now));
        }
        return result;
    });
}

std::vector<WaitingGroup> SqliteJobStore::waiting_groups() const {
    return impl_->read([](Connection& c) {
        auto& s = c.statement(
            "SELECT queue, topic, SUM(state='queued'), SUM(state!='queued') FROM jobs "
            "WHERE state IN ('queued', 'scheduled', 'failed') GROUP BY queue, topic");
        StatementScope scope(s);
        std::vector<WaitingGroup> groups;
        while (s.executeStep()) {
            groups.push_back({s.getColumn(0).getString(), s.getColumn(1).getString(),
                              s.getColumn(2).getInt64(), s.getColumn(3).getInt64()});
        }
        return groups;
    });
}

std::size_t SqliteJobStore::move_waiting(const std::string& from, const std::string& topic,
                                         const std::string& to) {
    return impl_->write([&](Connection& c) {
        auto& u = c.statement(
            "UPDATE jobs SET queue=? WHERE queue=? AND topic=? "
            "AND state IN ('queued', 'scheduled', 'failed') RETURNING state");
        StatementScope scope(u);
        u.bind(1, to);
        u.bind(2, from);
        u.bind(3, topic);
        std::size_t moved = 0;
        while (u.executeStep()) {
            JobState state = state_from_text(u.getColumn(0).getString());
            c.counts().add(from, topic, state, -1);
            c.counts().add(to, topic, state, +1);
            ++moved;
        }
        return moved;
    });
}

std::optional<Job> SqliteJobStore::find_schedule(const std::string& schedule_name) const {
    return impl_->read([&](Connection& c) -> std::optional<Job> {
        auto& s = c.statement(std::string("SELECT ") + kJobColumns +
                              " FROM jobs WHERE schedule_name=? AND state='scheduled'");
        StatementScope scope(s);
        s.bind(1, schedule_name);
        if (!s.executeStep()) return std::nullopt;
        return read_job(s);
    });
}

std::vector<Job> SqliteJobStore::requeue_active(const std::string& worker) {
    return impl_->write([this, &worker](Connection& c) {
        std::string sql =
            "SELECT id, retry_count, max_retries, stop_requested FROM jobs "
            "WHERE state='active'";
        if (!worker.empty()) sql += " AND claimed_by=?";
        struct Row {
            JobId id;
            int retry_count;
            int max_retries;
            bool stop;
        };
        std::vector<Row> rows;
        {
            auto& s = c.statement(sql);
            StatementScope scope(s);
            if (!worker.empty()) s.bind(1, worker);
            while (s.executeStep()) {
                rows.push_back({s.getColumn(0).getInt64(), s.getColumn(1).getInt(),
                                s.getColumn(2).getInt(), s.getColumn(3).getInt() != 0});
            }
        }
        std::int64_t now = impl_->now_us();
        std::vector<Job> jobs;
        for (const auto& r : rows) {
            auto& u = c.statement(
                "UPDATE jobs SET state=?, retry_count=?, queued_at=?, finished_at=?, "
                "result_message=?, claimed_by=NULL, eta_at=NULL WHERE id=? "
                "RETURNING queue, topic, state, " +
                std::string(kTimesColumns));
            if (r.stop) {
                u.bindNoCopy(1, "stopped");
                u.bind(2, r.retry_count);
                u.bind(3);
                u.bind(4, now);
                u.bindNoCopy(5, "stopped: the host ended while the job ran after a stop request");
            } else if (r.max_retries < 0 || r.retry_count < r.max_retries) {
                u.bindNoCopy(1, "queued");
                u.bind(2, r.retry_count + 1);
                u.bind(3, now);
                u.bind(4);
                u.bindNoCopy(5, "requeued: the host ended while the job ran");
            } else {
                u.bindNoCopy(1, "given_up");
                u.bind(2, r.retry_count);
                u.bind(3);
                u.bind(4, now);
                u.bindNoCopy(5, "given up: the host ended while the job ran and no retry is left");
            }
            u.bind(6, r.id);
            {
                StatementScope scope(u);
                if (u.executeStep()) {
                    c.counts().move(u.getColumn(0).getString(), u.getColumn(1).getString(),
                                    JobState::active, state_from_text(u.getColumn(2).getString()),
                                    optional_int(u.getColumn(3)), optional_int(u.getColumn(4)));
                }
            }
            jobs.push_back(impl_->load_existing(c, r.id));
        }
        return jobs;
    });
}

std::vector<Job> SqliteJobStore::due_scheduled(JobTimePoint now_point) {
    return impl_->write([this, now_point](Connection& c) {
        std::int64_t now = to_micros(now_point);
        std::vector<Job> due;
        {
            auto& s = c.statement(std::string("SELECT ") + kJobColumns +
                                  " FROM jobs WHERE state IN ('scheduled', 'failed') "
                                  "AND scheduled_at <= ? ORDER BY scheduled_at LIMIT 1000");
            StatementScope scope(s);
            s.bind(1, now);
            while (s.executeStep()) due.push_back(read_job(s));
        }
        std::vector<Job> queued;
        for (const auto& job : due) {
            if (job.cron.empty() || job.state == JobState::failed) {
                auto& u = c.statement("UPDATE jobs SET state='queued', queued_at=? WHERE id=?");
                u.bind(1, now);
                u.bind(2, job.id);
                u.exec();
                c.counts().move(job.queue, job.topic, job.state, JobState::queued);
                queued.push_back(impl_->load_existing(c, job.id));
                continue;
            }
            // A cron schedule spawns one run per fire time; the unique index on
            // (schedule_id, fire_at) keeps a second spawn of the same fire time
            // out, whoever tries. Missed fire times collapse into this one run.
            std::int64_t fire_at = to_micros(*job.scheduled);
            auto& ins = c.statement(
                std::string("INSERT OR IGNORE INTO jobs (topic, queue, state, payload, "
                            "submitted_by, created_at, queued_at, scheduled_at, max_retries, "
                            "schedule_id, fire_at) "
                            "SELECT topic, queue, 'queued', payload, submitted_by, ?, ?, "
                            "scheduled_at, max_retries, id, ? FROM jobs WHERE id=? RETURNING ") +
                kJobColumns);
            {
                StatementScope scope(ins);
                ins.bind(1, now);
                ins.bind(2, now);
                ins.bind(3, fire_at);
                ins.bind(4, job.id);
                while (ins.executeStep()) {
                    queued.push_back(read_job(ins));
                    c.counts().add(queued.back().queue, queued.back().topic, JobState::queued, +1);
                }
            }
            auto next = CronSchedule::parse(job.cron).next_after(now_point);
            if (next) {
                auto& u = c.statement("UPDATE jobs SET scheduled_at=? WHERE id=?");
                u.bind(1, to_micros(*next));
                u.bind(2, job.id);
                u.exec();
            } else {
                auto& u = c.statement(
                    "UPDATE jobs SET state='succeeded', finished_at=?, result_message="
                    "'schedule ended: the cron expression fires no more' WHERE id=? RETURNING " +
                    std::string(kTimesColumns));
                StatementScope scope(u);
                u.bind(1, now);
                u.bind(2, job.id);
                if (u.executeStep()) {
                    c.counts().move(job.queue, job.topic, JobState::scheduled,
                                    JobState::succeeded, optional_int(u.getColumn(0)),
                                    optional_int(u.getColumn(1)));
                }
            }
        }
        return queued;
    });
}

std::optional<JobTimePoint> SqliteJobStore::next_due() const {
    return impl_->read([](Connection& c) -> std::optional<JobTimePoint> {
        auto& s = c.statement(
            "SELECT MIN(scheduled_at) FROM jobs WHERE state IN ('scheduled', 'failed')");
        StatementScope scope(s);
        if (!s.executeStep()) return std::nullopt;
        return optional_time(s.getColumn(0));
    });
}

bool SqliteJobStore::record_progress(JobId id, std::int64_t done, std::int64_t total) {
    return impl_->write([this, id, done, total](Connection& c) {
        // ETA = now + elapsed / done * remaining, in floating point: the product
        // of two large integers could overflow.
        auto& u = c.statement(
            "UPDATE jobs SET progress_done=?1, progress_total=?2, heartbeat_at=?3, "
            "eta_at=CASE WHEN ?1 > 0 AND ?2 >= ?1 AND started_at IS NOT NULL "
            "THEN CAST(?3 + (?3 - started_at) * 1.0 * (?2 - ?1) / ?1 AS INTEGER) "
            "ELSE NULL END WHERE id=?4 AND state='active'");
        u.bind(1, done);
        u.bind(2, total);
        u.bind(3, impl_->now_us());
        u.bind(4, id);
        return u.exec() > 0;
    });
}

bool SqliteJobStore::heartbeat(JobId id) {
    return impl_->write([this, id](Connection& c) {
        auto& u = c.statement("UPDATE jobs SET heartbeat_at=? WHERE id=? AND state='active'");
        u.bind(1, impl_->now_us());
        u.bind(2, id);
        return u.exec() > 0;
    });
}

bool SqliteJobStore::append_log(JobId id, const std::vector<std::string>& lines) {
    return impl_->write([this, id, &lines](Connection& c) {
        auto& q = c.statement("SELECT log_count FROM jobs WHERE id=?");
        q.bind(1, id);
        if (!q.executeStep()) {
            q.tryReset();
            return false;
        }
        std::int64_t seq = q.getColumn(0).getInt64();
        q.tryReset();
        std::int64_t now = impl_->now_us();
        auto& ins = c.statement("INSERT INTO job_logs (job_id, seq, at, line) VALUES (?,?,?,?)");
        for (const auto& line : lines) {
            ins.tryReset();
            ins.bind(1, id);
            ins.bind(2, ++seq);
            ins.bind(3, now);
            ins.bind(4, line);
            ins.exec();
        }
        auto& u = c.statement(
            "UPDATE jobs SET log_count=?, heartbeat_at=CASE WHEN state='active' THEN ? "
            "ELSE heartbeat_at END WHERE id=?");
        u.bind(1, seq);
        u.bind(2, now);
        u.bind(3, id);
        u.exec();
        std::int64_t keep = impl_->options_.max_log_lines;
        if (keep >= 0 && seq > keep) {
            auto& d = c.statement("DELETE FROM job_logs WHERE job_id=? AND seq<=?");
            d.bind(1, id);
            d.bind(2, seq - keep);
            d.exec();
        }
        return true;
    });
}

bool SqliteJobStore::append_report_rows(JobId id,
                                        const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::string> encoded;
    encoded.reserve(rows.size());
    for (const auto& row : rows)
        encoded.push_back(Json(row).dump(-1, ' ', false, Json::error_handler_t::replace));
    return impl_->write([this, id, &encoded](Connection& c) {
        auto& q = c.statement("SELECT report_count FROM jobs WHERE id=?");
        q.bind(1, id);
        if (!q.executeStep()) {
            q.tryReset();
            return false;
        }
        std::int64_t seq = q.getColumn(0).getInt64();
        q.tryReset();
        auto& ins = c.statement("INSERT INTO job_report_rows (job_id, seq, cells) VALUES (?,?,?)");
        for (const auto& cells : encoded) {
            ins.tryReset();
            ins.bind(1, id);
            ins.bind(2, ++seq);
            ins.bind(3, cells);
            ins.exec();
        }
        auto& u = c.statement(
            "UPDATE jobs SET report_count=?, heartbeat_at=CASE WHEN state='active' THEN ? "
            "ELSE heartbeat_at END WHERE id=?");
        u.bind(1, seq);
        u.bind(2, impl_->now_us());
        u.bind(3, id);
        u.exec();
        return true;
    });
}

bool SqliteJobStore::put_checkpoint(JobId id, const std::string& key, const std::string& value) {
    return impl_->write([this, id, &key, &value](Connection& c) {
        auto& u = c.statement(
            "UPDATE jobs SET heartbeat_at=CASE WHEN state='active' THEN ? ELSE heartbeat_at END "
            "WHERE id=?");
        u.bind(1, impl_->now_us());
        u.bind(2, id);
        if (u.exec() == 0) return false;
        auto& s = c.statement(
            "INSERT INTO job_checkpoints (job_id, key, value) VALUES (?,?,?) "
            "ON CONFLICT (job_id, key) DO UPDATE SET value=excluded.value");
        s.bind(1, id);
        s.bind(2, key);
        s.bind(3, value);
        s.exec();
        return true;
    });
}

JobActionResult SqliteJobStore::request_stop(JobId id) {
    return impl_->write([this, id](Connection& c) -> JobActionResult {
        auto state = impl_->load_state(c, id);
        if (!state) return {JobActionResult::Status::not_found, "no job " + std::to_string(id)};
        JobState s = state_from_text(*state);
        if (is_final(s)) {
            return {JobActionResult::Status::refused,
                    "job " + std::to_string(id) + " has already finished (" + *state + ")"};
        }
        if (s == JobState::active) {
            auto& u = c.statement("UPDATE jobs SET stop_requested=1 WHERE id=?");
            u.bind(1, id);
            u.exec();
        } else {
            auto& u = c.statement(
                "UPDATE jobs SET state='stopped', stop_requested=1, finished_at=?, "
                "result_message='stopped before it ran' WHERE id=? RETURNING queue, topic, " +
                std::string(kTimesColumns));
            StatementScope scope(u);
            u.bind(1, impl_->now_us());
            u.bind(2, id);
            if (u.executeStep()) {
                c.counts().move(u.getColumn(0).getString(), u.getColumn(1).getString(), s,
                                JobState::stopped, optional_int(u.getColumn(2)),
                                optional_int(u.getColumn(3)));
            }
        }
        return {};
    });
}

JobActionResult SqliteJobStore::remove(JobId id) {
    return impl_->write([this, id](Connection& c) -> JobActionResult {
        auto state = impl_->load_state(c, id);
        if (!state) return {JobActionResult::Status::not_found, "no job " + std::to_string(id)};
        if (*state == "queued" || *state == "active") {
            return {JobActionResult::Status::refused,
                    "job " + std::to_string(id) + " is " + *state +
                        ": queued and active jobs cannot be deleted; stop it first"};
        }
        impl_->delete_job_rows(c, id);
        return {};
    });
}

PurgeResult SqliteJobStore::purge(const PurgeRequest& request) {
    PurgeResult result;
    std::size_t batch = std::max<std::size_t>(1, request.batch_size);
    const auto budget_time = impl_->options_.purge_batch_time;
    // One transaction per batch: dispatch and other writers get the writer
    // between batches. A batch also ends when it has run purge_batch_time, so
    // a write that joins the group commit behind it is not held for the whole
    // batch on a slow or busy machine.
    struct Batch {
        std::size_t removed = 0;
        bool exhausted = false;  // fewer candidates than asked for: nothing left
    };
    auto run_phase = [&](bool by_age, std::int64_t budget) {
        while (budget > 0) {
            std::int64_t take = std::min(static_cast<std::int64_t>(batch), budget);
            Batch done = impl_->write([&](Connection& c) -> Batch {
                auto started = std::chrono::steady_clock::now();
                std::vector<JobId> ids;
                auto& s =
                    c.statement(by_age ? "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND "
                                         "finished_at < ? ORDER BY finished_at, id LIMIT ?"
                                       : "SELECT id FROM jobs WHERE finished_at IS NOT NULL "
                                         "ORDER BY finished_at, id LIMIT ?");
                {
                    StatementScope scope(s);
                    int i = 1;
                    if (by_age) s.bind(i++, to_micros(*request.finished_before));
                    s.bind(i, take);
                    while (s.executeStep()) ids.push_back(s.getColumn(0).getInt64());
                }
                Batch out;
                out.exhausted = static_cast<std::int64_t>(ids.size()) < take;
                for (JobId id : ids) {
                    impl_->delete_job_rows(c, id);
                    ++out.removed;
                    if (out.removed % 16 == 0 &&
                        std::chrono::steady_clock::now() - started >= budget_time) {
                        out.exhausted = false;
                        break;
                    }
                }
                return out;
            }, /*alone=*/true);
            if (done.removed == 0) return;
            result.removed += done.removed;
            ++result.batches;
            budget -= static_cast<std::int64_t>(done.removed);
            if (done.exhausted) return;
            std::this_thread::sleep_for(budget_time / 5);
        }
    };
    if (request.finished_before) run_phase(true, std::numeric_limits<std::int64_t>::max());
    if (request.max_keep) {
        // Counted once: jobs finishing meanwhile only make purge keep a few more.
        std::int64_t finished = impl_->read([](Connection& c) {
            return c.db()
                .execAndGet("SELECT COUNT(*) FROM jobs WHERE finished_at IS NOT NULL")
                .getInt64();
        });
        std::int64_t excess = finished - static_cast<std::int64_t>(*request.max_keep);
        if (excess > 0) run_phase(false, excess);
    }
    if (result.removed > 0) {
        logger("jobs")->info("jobs purged removed={} batches={}", result.removed, result.batches);
    }
    return result;
}

// --- reads -------------------------------------------------------------------------

std::optional<Job> SqliteJobStore::find(JobId id) const {
    return impl_->read([this, id](Connection& c) { return impl_->load(c, id); });
}

JobPage SqliteJobStore::list(const JobFilter& filter) const {
    std::size_t limit = std::clamp<std::size_t>(filter.limit, 1, 1000);
    std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE 1=1";
    if (filter.states.size() == 1) {
        sql += " AND state=?";
    } else if (!filter.states.empty()) {
        // Several states: walk the ids newest first and filter, rather than
        // merging several index ranges with a sort of all their rows.
        sql += " AND +state IN (" + placeholders(filter.states.size()) + ")";
    }
    if (!filter.topic.empty()) sql += " AND topic=?";
    if (!filter.queue.empty()) sql += " AND queue=?";
    if (!filter.user.empty()) sql += " AND submitted_by=?";
    if (filter.created_from) sql += " AND created_at>=?";
    if (filter.created_to) sql += " AND created_at<?";
    if (!filter.text.empty()) {
        sql +=
            " AND (topic LIKE ? ESCAPE '\\' OR payload LIKE ? ESCAPE '\\' OR "
            "result_message LIKE ? ESCAPE '\\' OR submitted_by LIKE ? ESCAPE '\\')";
    }
    if (filter.cursor) sql += " AND id<?";
    sql += " ORDER BY id DESC LIMIT ?";
    return impl_->read([&](Connection& c) {
        auto& s = c.statement(sql);
        StatementScope scope(s);
        int i = 1;
        for (auto state : filter.states) s.bindNoCopy(i++, state_name(state));
        if (!filter.topic.empty()) s.bind(i++, filter.topic);
        if (!filter.queue.empty()) s.bind(i++, filter.queue);
        if (!filter.user.empty()) s.bind(i++, filter.user);
        if (filter.created_from) s.bind(i++, to_micros(*filter.created_from));
        if (filter.created_to) s.bind(i++, to_micros(*filter.created_to));
        if (!filter.text.empty()) {
            std::string pattern = "%" + escape_like(filter.text) + "%";
            for (int k = 0; k < 4; ++k) s.bind(i++, pattern);
        }
        if (filter.cursor) s.bind(i++, *filter.cursor);
        s.bind(i++, static_cast<std::int64_t>(limit + 1));
        JobPage page;
        while (s.executeStep()) page.jobs.push_back(read_job(s));
        if (page.jobs.size() > limit) {
            page.jobs.pop_back();
            page.next_cursor = page.jobs.back().id;
        }
        return page;
    });
}

std::vector<JobStatistics> SqliteJobStore::statistics(StatisticsGroup group) const {
    std::string key = group == StatisticsGroup::queue ? "queue" : "topic";
    std::string sql = "SELECT " + key +
                      ", state, SUM(jobs), SUM(wait_sum), SUM(wait_n), SUM(run_sum), SUM(run_n) "
                      "FROM job_counts GROUP BY " +
                      key + ", state ORDER BY " + key;
    return impl_->read([&](Connection& c) {
        struct Sums {
            JobStatistics stats;
            std::int64_t wait_sum = 0, wait_n = 0, run_sum = 0, run_n = 0;
        };
        std::vector<Sums> rows;
        auto& s = c.statement(sql);
        StatementScope scope(s);
        while (s.executeStep()) {
            std::string k = s.getColumn(0).getString();
            if (rows.empty() || rows.back().stats.key != k) {
                rows.emplace_back();
                rows.back().stats.key = k;
            }
            Sums& r = rows.back();
            r.stats.count(state_from_text(s.getColumn(1).getString())) += s.getColumn(2).getInt64();
            r.wait_sum += s.getColumn(3).getInt64();
            r.wait_n += s.getColumn(4).getInt64();
            r.run_sum += s.getColumn(5).getInt64();
            r.run_n += s.getColumn(6).getInt64();
        }
        std::vector<JobStatistics> out;
        for (auto& r : rows) {
            if (r.wait_n > 0) r.stats.average_wait = std::chrono::microseconds(r.wait_sum / r.wait_n);
            if (r.run_n > 0)
                r.stats.average_processing = std::chrono::microseconds(r.run_sum / r.run_n);
            out.push_back(std::move(r.stats));
        }
        return out;
    });
}

std::vector<JobLogLine> SqliteJobStore::log(JobId id, std::int64_t after_seq,
                                            std::size_t limit) const {
    return impl_->read([&](Connection& c) {
        auto& s = c.statement(
            "SELECT seq, at, line FROM job_logs WHERE job_id=? AND seq>? ORDER BY seq LIMIT ?");
        StatementScope scope(s);
        s.bind(1, id);
        s.bind(2, after_seq);
        s.bind(3, static_cast<std::int64_t>(limit));
        std::vector<JobLogLine> lines;
        while (s.executeStep()) {
            lines.push_back({s.getColumn(0).getInt64(), from_micros(s.getColumn(1).getInt64()),
                             s.getColumn(2).getString()});
        }
        return lines;
    });
}

std::vector<std::vector<std::string>> SqliteJobStore::report(JobId id, std::int64_t offset,
                                                             std::size_t limit) const {
    return impl_->read([&](Connection& c) {
        auto& s = c.statement(
            "SELECT cells FROM job_report_rows WHERE job_id=? AND seq>? ORDER BY seq LIMIT ?");
        StatementScope scope(s);
        s.bind(1, id);
        s.bind(2, offset);
        s.bind(3, static_cast<std::int64_t>(limit));
        std::vector<std::vector<std::string>> rows;
        while (s.executeStep()) {
            rows.push_back(Json::parse(s.getColumn(0).getString()).get<std::vector<std::string>>());
        }
        return rows;
    });
}

std::map<std::string, std::string> SqliteJobStore::checkpoints(JobId id) const {
    return impl_->read([&](Connection& c) {
        auto& s = c.statement("SELECT key, value FROM job_checkpoints WHERE job_id=?");
        StatementScope scope(s);
        s.bind(1, id);
        std::map<std::string, std::string> out;
        while (s.executeStep()) out[s.getColumn(0).getString()] = s.getColumn(1).getString();
        return out;
    });
}

bool SqliteJobStore::stop_requested(JobId id) const {
    return impl_->read([&](Connection& c) {
        auto& s = c.statement("SELECT stop_requested FROM jobs WHERE id=?");
        StatementScope scope(s);
        s.bind(1, id);
        return s.executeStep() && s.getColumn(0).getInt() != 0;
    });
}

}  // namespace wharf::host
