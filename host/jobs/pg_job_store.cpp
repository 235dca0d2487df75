#include "jobs/pg_job_store.hpp"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>
#include <tuple>
#include <unordered_map>

#include "base/cron.hpp"
#include "base/error.hpp"
#include "base/log.hpp"
#include "base/pg_pool.hpp"
#include "base/ptree_json.hpp"
#include "jobs/job_store_codec.hpp"

namespace wharf::host {

namespace {

using Json = nlohmann::json;
using Ptree = boost::property_tree::ptree;

// --- conversions (jobs/job_store_codec.hpp: the same as the SQLite store's) -------

using job_codec::escape_like;
using job_codec::from_micros;
using job_codec::json_text;
using job_codec::payload_from_text;
using job_codec::payload_to_json;
using job_codec::state_from_text;
using job_codec::to_micros;

// A PostgreSQL array literal ({"a","b"}) of the given texts: one parameter
// instead of one per element, so a statement's text does not depend on how
// many values it gets. Also used for bigint arrays (quoted numbers parse).
template <class Range>
std::string pg_array(const Range& values) {
    std::string out = "{";
    bool first = true;
    for (const auto& v : values) {
        if (!first) out += ',';
        first = false;
        out += '"';
        if constexpr (std::is_arithmetic_v<std::decay_t<decltype(v)>>) {
            out += std::to_string(v);
        } else {
            for (char c : v) {
                if (c == '"' || c == '\\') out += '\\';
                out += c;
            }
        }
        out += '"';
    }
    return out + "}";
}

std::optional<std::int64_t> optional_int(const pqxx::field& f) {
    if (f.is_null()) return std::nullopt;
    return f.as<std::int64_t>();
}

std::optional<JobTimePoint> optional_time(const pqxx::field& f) {
    if (f.is_null()) return std::nullopt;
    return from_micros(f.as<std::int64_t>());
}

// --- schema ----------------------------------------------------------------------

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

// Applied once each, in order, in one transaction with the schema_version row
// that records it. Never edit a released migration: add one. Version 1 is the
// SQLite store's schema at its version 3, in PostgreSQL types (times are
// microseconds since the epoch in BIGINT, as there).
const std::vector<std::string> kMigrations = {
    R"sql(
CREATE TABLE jobs (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic          TEXT    NOT NULL,
    queue          TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    submitted_by   TEXT    NOT NULL DEFAULT '',
    created_at     BIGINT  NOT NULL,
    queued_at      BIGINT,
    scheduled_at   BIGINT,
    started_at     BIGINT,
    finished_at    BIGINT,
    heartbeat_at   BIGINT,
    retry_count    INTEGER NOT NULL DEFAULT 0,
    max_retries    INTEGER NOT NULL,
    progress_done  BIGINT  NOT NULL DEFAULT 0,
    progress_total BIGINT  NOT NULL DEFAULT 0,
    eta_at         BIGINT,
    result_message TEXT    NOT NULL DEFAULT '',
    log_count      BIGINT  NOT NULL DEFAULT 0,
    report_count   BIGINT  NOT NULL DEFAULT 0,
    stop_requested BOOLEAN NOT NULL DEFAULT FALSE,
    cron           TEXT    NOT NULL DEFAULT '',
    schedule_name  TEXT    NOT NULL DEFAULT '',
    schedule_id    BIGINT,
    fire_at        BIGINT,
    claimed_by     TEXT
);
CREATE INDEX jobs_by_state ON jobs(state, id);
CREATE INDEX jobs_waiting ON jobs(queue, id) WHERE state = 'queued';
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
    job_id BIGINT NOT NULL,
    seq    BIGINT NOT NULL,
    at     BIGINT NOT NULL,
    line   TEXT   NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE TABLE job_report_rows (
    job_id BIGINT NOT NULL,
    seq    BIGINT NOT NULL,
    cells  TEXT   NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE TABLE job_checkpoints (
    job_id BIGINT NOT NULL,
    key    TEXT   NOT NULL,
    value  TEXT   NOT NULL,
    PRIMARY KEY (job_id, key)
);
CREATE TABLE job_counts (
    queue    TEXT   NOT NULL,
    topic    TEXT   NOT NULL,
    state    TEXT   NOT NULL,
    jobs     BIGINT NOT NULL,
    wait_sum BIGINT NOT NULL,
    wait_n   BIGINT NOT NULL,
    run_sum  BIGINT NOT NULL,
    run_n    BIGINT NOT NULL,
    PRIMARY KEY (queue, topic, state)
);
)sql",
    // 2: cluster instances with their heartbeat lease (cluster_lease.hpp).
    // Times are the database server's clock, so instances' clocks may differ.
    R"sql(
CREATE TABLE instances (
    id             TEXT             PRIMARY KEY,
    address        TEXT             NOT NULL DEFAULT '',
    started_at     BIGINT           NOT NULL,
    last_heartbeat BIGINT           NOT NULL,
    lease_us       BIGINT           NOT NULL,
    load           DOUBLE PRECISION NOT NULL DEFAULT 0
);
)sql",
    // 3: every job that becomes queued (enqueued, due, retried, requeued,
    // moved to another queue) is announced on channel wharf_jobs as
    // "<queue>\n<topic>", so every instance's dispatcher learns of work that
    // another instance queued (cluster_member.hpp). Notifications are sent at
    // commit and identical ones within a transaction are sent once.
    R"sql(
CREATE FUNCTION wharf_job_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wharf_jobs', NEW.queue || E'\n' || NEW.topic);
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_announce_queued AFTER INSERT OR UPDATE OF state, queue ON jobs
    FOR EACH ROW WHEN (NEW.state = 'queued') EXECUTE FUNCTION wharf_job_queued();
)sql",
};

// Advisory lock keys (pg_advisory_xact_lock): one for migrations, one space
// for named schedules (combined with hashtext(name)).
constexpr std::int64_t kMigrationLock = 0x57484152460001;  // "WHARF" 1
constexpr int kScheduleLockSpace = 0x5748;

constexpr const char* kTimesColumns =
    "CASE WHEN finished_at IS NOT NULL THEN started_at - queued_at END, "
    "CASE WHEN finished_at IS NOT NULL THEN finished_at - started_at END";

constexpr const char* kJobColumns =
    "id, topic, queue, state, payload, submitted_by, created_at, scheduled_at, started_at, "
    "finished_at, cron, retry_count, max_retries, progress_done, progress_total, eta_at, "
    "result_message, log_count, report_count, heartbeat_at, stop_requested";
constexpr int kJobColumnCount = 21;

Job read_job(const pqxx::row& r, bool with_payload = true) {
    Job j;
    j.id = r[0].as<std::int64_t>();
    j.topic = r[1].as<std::string>();
    j.queue = r[2].as<std::string>();
    j.state = state_from_text(r[3].as<std::string>());
    if (with_payload) {
        j.payload = payload_from_text(r[4].c_str());
    }
    j.submitted_by = r[5].as<std::string>();
    j.created = from_micros(r[6].as<std::int64_t>());
    j.scheduled = optional_time(r[7]);
    j.started = optional_time(r[8]);
    j.finished = optional_time(r[9]);
    j.cron = r[10].as<std::string>();
    j.retry_count = r[11].as<int>();
    j.max_retries = r[12].as<int>();
    j.progress_done = r[13].as<std::int64_t>();
    j.progress_total = r[14].as<std::int64_t>();
    j.eta = optional_time(r[15]);
    j.result_message = r[16].as<std::string>();
    j.log_lines = r[17].as<std::int64_t>();
    j.report_rows = r[18].as<std::int64_t>();
    j.last_heartbeat = optional_time(r[19]);
    j.stop_requested = r[20].as<bool>();
    return j;
}

void sort_by_id(std::vector<Job>& jobs) {
    std::sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) { return a.id < b.id; });
}

// Changes to job_counts made by one transaction, written just before it
// commits. Ordered by key: every transaction locks count rows in the same
// order, so two of them never wait on each other in a cycle.
class Counts {
public:
    struct Delta {
        std::int64_t jobs = 0, wait_sum = 0, wait_n = 0, run_sum = 0, run_n = 0;
        bool zero() const { return !jobs && !wait_sum && !wait_n && !run_sum && !run_n; }
    };
    using Key = std::tuple<std::string, std::string, std::string>;  // queue, topic, state

    void add(const std::string& queue, const std::string& topic, JobState state, int sign,
             std::optional<std::int64_t> wait = std::nullopt,
             std::optional<std::int64_t> run = std::nullopt) {
        Delta& d = deltas_[Key{queue, topic, wharf::to_string(state)}];
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

    void move(const std::string& queue, const std::string& topic, JobState from, JobState to,
              std::optional<std::int64_t> wait = std::nullopt,
              std::optional<std::int64_t> run = std::nullopt) {
        add(queue, topic, from, -1);
        add(queue, topic, to, +1, wait, run);
    }

    void clear() { deltas_.clear(); }
    const std::map<Key, Delta>& deltas() const { return deltas_; }

private:
    std::map<Key, Delta> deltas_;
};

// --- connections -------------------------------------------------------------------

// Connections and the pool are base/pg_pool.hpp's (shared with the repository).
using Connection = PgConnection;

// A transaction (or a single autocommitted read) on a leased connection, with
// the counts its writes changed.
template <class Transaction>
class Session {
public:
    Session(Connection& c) : c_(c), t_(c.raw()) {}

    template <class... Args>
    pqxx::result exec(const std::string& sql, Args&&... args) {
        return t_.exec_prepared(c_.prepared(sql), std::forward<Args>(args)...);
    }

    pqxx::result exec_plain(const std::string& sql) { return t_.exec(sql); }

    Transaction& tx() { return t_; }
    Counts& counts() { return counts_; }

private:
    Connection& c_;
    Transaction t_;
    Counts counts_;
};

using Write = Session<pqxx::work>;
using Read = Session<pqxx::nontransaction>;

std::string storage_message(const char* what, const std::exception& e) {
    return pg_error_message(what, e);
}

}  // namespace

// --- the store ------------------------------------------------------------------

class PgJobStore::Impl {
public:
    explicit Impl(PgJobStoreOptions options)
        : options_(checked(std::move(options))),
          pool_(options_.url, options_.pool_size, [this](const std::exception& e) {
              throw Error(
                  ErrorCode::storage,
                  storage_message(
                      ("cannot connect to the job store url=" + redacted_url(options_.url)).c_str(),
                      e));
          }) {}

    static PgJobStoreOptions checked(PgJobStoreOptions options) {
        if (options.url.empty()) {
            throw Error(ErrorCode::invalid_argument, "job store url is empty");
        }
        if (options.pool_size == 0) {
            throw Error(ErrorCode::invalid_argument, "job store pool_size must be at least 1");
        }
        if (!options.clock) options.clock = [] { return JobClock::now(); };
        return options;
    }

    PgJobStoreOptions options_;
    PgPool pool_;

    std::int64_t now_us() const { return to_micros(options_.clock()); }

    // A connection for the duration of one call; a broken one is not returned.
    using Lease = PgPool::Lease;
    Lease lease() { return pool_.lease(); }

    // Runs `fn` in a transaction and commits it with the counts it changed.
    // A transaction that lost a deadlock or serialisation race is run again.
    template <class F>
    auto write(F fn) -> std::invoke_result_t<F, Write&> {
        return with_retry<Write>([&](Write& w) {
            if constexpr (std::is_void_v<std::invoke_result_t<F, Write&>>) {
                fn(w);
                apply_counts(w);
                w.tx().commit();
            } else {
                auto result = fn(w);
                apply_counts(w);
                w.tx().commit();
                return result;
            }
        });
    }

    // Runs `fn`, whose one statement commits by itself (it keeps its counts
    // itself); run again when it lost a deadlock.
    template <class F>
    auto autocommit(F fn) -> std::invoke_result_t<F, Read&> {
        return with_retry<Read>(fn);
    }

    template <class S, class F>
    auto with_retry(F fn) -> std::invoke_result_t<F, S&> {
        constexpr int kAttempts = 5;
        for (int attempt = 1;; ++attempt) {
            auto c = lease();
            try {
                S session(*c);
                return fn(session);
            } catch (const pqxx::transaction_rollback& e) {
                if (attempt >= kAttempts) {
                    throw Error(ErrorCode::storage, storage_message("job store write failed", e));
                }
                logger("jobs")->debug("job store transaction retried attempt={} error={}", attempt,
                                      e.what());
            } catch (const pqxx::broken_connection& e) {
                c.mark_broken();
                throw Error(ErrorCode::storage, storage_message("job store connection lost", e));
            } catch (const pqxx::in_doubt_error& e) {
                c.mark_broken();
                throw Error(ErrorCode::storage,
                            storage_message("job store commit outcome unknown", e));
            } catch (const Error&) {
                throw;
            } catch (const pqxx::failure& e) {
                throw Error(ErrorCode::storage, storage_message("job store write failed", e));
            }
        }
    }

    template <class F>
    auto read(F fn) -> std::invoke_result_t<F, Read&> {
        auto c = lease();
        try {
            Read r(*c);
            return fn(r);
        } catch (const pqxx::broken_connection& e) {
            c.mark_broken();
            throw Error(ErrorCode::storage, storage_message("job store connection lost", e));
        } catch (const Error&) {
            throw;
        } catch (const pqxx::failure& e) {
            throw Error(ErrorCode::storage, storage_message("job store read failed", e));
        }
    }

    // Writes the transaction's count changes with one statement, in key order.
    void apply_counts(Write& w) {
        std::vector<std::string> queues, topics, states, jobs, wait_sum, wait_n, run_sum, run_n;
        for (const auto& [key, d] : w.counts().deltas()) {
            if (d.zero()) continue;
            queues.push_back(std::get<0>(key));
            topics.push_back(std::get<1>(key));
            states.push_back(std::get<2>(key));
            jobs.push_back(std::to_string(d.jobs));
            wait_sum.push_back(std::to_string(d.wait_sum));
            wait_n.push_back(std::to_string(d.wait_n));
            run_sum.push_back(std::to_string(d.run_sum));
            run_n.push_back(std::to_string(d.run_n));
        }
        if (queues.empty()) return;
        auto left = w.exec(
            "INSERT INTO job_counts AS c (queue, topic, state, jobs, wait_sum, wait_n, run_sum, "
            "run_n) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], "
            "$5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[]) "
            "ON CONFLICT (queue, topic, state) DO UPDATE SET jobs=c.jobs+excluded.jobs, "
            "wait_sum=c.wait_sum+excluded.wait_sum, wait_n=c.wait_n+excluded.wait_n, "
            "run_sum=c.run_sum+excluded.run_sum, run_n=c.run_n+excluded.run_n "
            "RETURNING queue, topic, state, jobs",
            pg_array(queues), pg_array(topics), pg_array(states), pg_array(jobs),
            pg_array(wait_sum), pg_array(wait_n), pg_array(run_sum), pg_array(run_n));
        std::vector<std::string> gone_q, gone_t, gone_s;
        for (const auto& row : left) {
            std::int64_t n = row[3].as<std::int64_t>();
            if (n > 0) continue;
            if (n < 0) {
                logger("jobs")->error(
                    "job counts went negative queue={} topic={} state={} jobs={}; the "
                    "statistics of this queue and topic are off",
                    row[0].c_str(), row[1].c_str(), row[2].c_str(), n);
            }
            gone_q.push_back(row[0].as<std::string>());
            gone_t.push_back(row[1].as<std::string>());
            gone_s.push_back(row[2].as<std::string>());
        }
        if (gone_q.empty()) return;
        w.exec(
            "DELETE FROM job_counts WHERE jobs <= 0 AND (queue, topic, state) IN "
            "(SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))",
            pg_array(gone_q), pg_array(gone_t), pg_array(gone_s));
    }

    // --- helpers used inside write operations --------------------------------

    std::optional<Job> load(Write& w, JobId id) {
        auto r = w.exec(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id=$1", id);
        if (r.empty()) return std::nullopt;
        return read_job(r[0]);
    }

    // The job's state, with its row locked until the transaction ends.
    std::optional<std::string> lock_state(Write& w, JobId id) {
        auto r = w.exec("SELECT state FROM jobs WHERE id=$1 FOR UPDATE", id);
        if (r.empty()) return std::nullopt;
        return r[0][0].as<std::string>();
    }

    // Deletes jobs with their side rows and takes them out of the counts, in
    // one statement. Returns how many jobs it deleted.
    std::size_t delete_jobs(Write& w, const std::vector<JobId>& ids) {
        if (ids.empty()) return 0;
        auto r =
            w.exec(std::string("WITH ids AS (SELECT unnest($1::bigint[]) AS id), "
                               "l AS (DELETE FROM job_logs WHERE job_id IN (SELECT id FROM ids)), "
                               "p AS (DELETE FROM job_report_rows WHERE job_id IN "
                               "(SELECT id FROM ids)), "
                               "k AS (DELETE FROM job_checkpoints WHERE job_id IN "
                               "(SELECT id FROM ids)) "
                               "DELETE FROM jobs WHERE id IN (SELECT id FROM ids) "
                               "RETURNING queue, topic, state, ") +
                       kTimesColumns,
                   pg_array(ids));
        for (const auto& row : r) {
            w.counts().add(row[0].as<std::string>(), row[1].as<std::string>(),
                           state_from_text(row[2].as<std::string>()), -1, optional_int(row[3]),
                           optional_int(row[4]));
        }
        return r.size();
    }

    // The dispatcher's exchange as one autocommitted statement, so one round
    // trip: data-modifying CTEs end the runs (an UPDATE that decides each
    // next state in SQL, retry or give up; a DELETE for successes the queue
    // does not keep), claim for each ClaimRequest up to its limit of queued
    // jobs oldest first (rows another instance is claiming are skipped, not
    // waited for), and add what both changed to job_counts (in key order, so
    // two instances never wait on each other in a cycle). All CTEs see one
    // snapshot: runs that end (active) and jobs claimed (queued) are disjoint
    // rows. A second completion of a job in the same batch is not applied, as
    // if it came later.
    ExchangeResult exchange(const ExchangeRequest& request) {
        ExchangeResult result;
        result.finished.resize(request.completions.size());
        result.claimed.resize(request.claims.size());
        const std::int64_t now = now_us();

        std::vector<std::int64_t> ids, retry_at;
        std::vector<std::string> outcomes, messages, discard;
        std::set<JobId> seen;
        for (std::size_t i = 0; i < request.completions.size(); ++i) {
            const JobCompletion& done = request.completions[i];
            result.finished[i].id = done.id;
            if (!seen.insert(done.id).second) continue;
            ids.push_back(done.id);
            retry_at.push_back(to_micros(done.retry_at));
            messages.push_back(done.message);
            discard.emplace_back(done.discard ? "t" : "f");
            switch (done.outcome) {
                case JobOutcome::succeeded:
                    outcomes.emplace_back("succeeded");
                    break;
                case JobOutcome::error:
                    outcomes.emplace_back("error");
                    break;
                case JobOutcome::stopped:
                    outcomes.emplace_back("stopped");
                    break;
                case JobOutcome::failed:
                    outcomes.emplace_back("failed");
                    break;
                case JobOutcome::requeued:
                    outcomes.emplace_back("requeued");
                    break;
            }
        }

        // Parameters as text, cast in the statement.
        std::vector<std::string> params = {std::to_string(now),
                                           request.worker,
                                           pg_array(ids),
                                           pg_array(outcomes),
                                           pg_array(messages),
                                           pg_array(retry_at),
                                           pg_array(discard)};
        auto param = [&params](std::string value, const char* type) {
            params.push_back(std::move(value));
            return "$" + std::to_string(params.size()) + "::" + type;
        };
        // One queue or topic (the dispatcher's case) is compared with `=`:
        // the planner then walks the waiting index (queue, id) in order and
        // stops at the limit, where `= ANY(array)` would collect and sort
        // every queued job of the queue.
        auto filter = [&](const char* column, const std::vector<std::string>& values) {
            if (values.empty()) return std::string();
            if (values.size() == 1)
                return std::string(" AND ") + column + " = " + param(values[0], "text");
            return std::string(" AND ") + column + " = ANY(" + param(pg_array(values), "text[]") +
                   ")";
        };
        // The worker fence: a completion applies only while the job is still
        // claimed by the instance that ran it.
        const std::string fence =
            "jobs.state = 'active' AND ($2::text = '' OR jobs.claimed_by = $2::text)";
        const std::string kept = "NOT (v.discard AND v.outcome = 'succeeded')";
        // retry_left: a failed run that may run again.
        const std::string retry_left =
            "(v.outcome = 'failed' AND (jobs.max_retries < 0 OR "
            "jobs.retry_count < jobs.max_retries))";
        std::string sql =
            "WITH v AS (SELECT * FROM unnest($3::bigint[], $4::text[], $5::text[], "
            "$6::bigint[], $7::boolean[]) AS v(id, outcome, message, retry_at, discard)), "
            "gone AS (DELETE FROM jobs USING v WHERE jobs.id = v.id AND NOT (" +
            kept + ") AND " + fence +
            " RETURNING jobs.id, jobs.retry_count, jobs.queue, jobs.topic), "
            "gone_logs AS (DELETE FROM job_logs WHERE job_id IN (SELECT id FROM gone)), "
            "gone_rows AS (DELETE FROM job_report_rows WHERE job_id IN (SELECT id FROM gone)), "
            "gone_checkpoints AS (DELETE FROM job_checkpoints WHERE job_id IN "
            "(SELECT id FROM gone)), "
            "fin AS (UPDATE jobs SET "
            "state = CASE v.outcome WHEN 'failed' THEN CASE WHEN " +
            retry_left +
            " THEN 'failed' ELSE 'given_up' END WHEN 'requeued' THEN 'queued' "
            "ELSE v.outcome END, "
            "finished_at = CASE WHEN v.outcome = 'requeued' THEN jobs.finished_at WHEN " +
            retry_left +
            " THEN NULL ELSE $1::bigint END, "
            "scheduled_at = CASE WHEN v.outcome = 'failed' THEN CASE WHEN " +
            retry_left +
            " THEN v.retry_at ELSE NULL END ELSE jobs.scheduled_at END, "
            "retry_count = CASE WHEN " +
            retry_left +
            " THEN jobs.retry_count + 1 ELSE jobs.retry_count END, "
            "queued_at = CASE WHEN v.outcome = 'requeued' THEN $1::bigint "
            "ELSE jobs.queued_at END, "
            "stop_requested = CASE WHEN v.outcome = 'requeued' THEN FALSE "
            "ELSE jobs.stop_requested END, "
            "result_message = v.message, eta_at = NULL, claimed_by = NULL "
            "FROM v WHERE jobs.id = v.id AND " +
            kept + " AND " + fence +
            " RETURNING jobs.id, jobs.state, jobs.retry_count, jobs.queue, jobs.topic, "
            "CASE WHEN jobs.finished_at IS NOT NULL THEN jobs.started_at - jobs.queued_at END "
            "AS wait, "
            "CASE WHEN jobs.finished_at IS NOT NULL THEN jobs.finished_at - jobs.started_at END "
            "AS run)";
        std::string claimed;
        for (std::size_t i = 0; i < request.claims.size(); ++i) {
            const ClaimRequest& claim = request.claims[i];
            if (claim.limit == 0) continue;
            std::string n = std::to_string(i);
            std::string started =
                param(std::to_string(claim.now == JobTimePoint{} ? now : to_micros(claim.now)),
                      "bigint");
            std::string worker = param(claim.worker, "text");
            sql += ", p" + n + " AS (SELECT id FROM jobs WHERE state = 'queued'" +
                   filter("queue", claim.queues) + filter("topic", claim.topics) +
                   " ORDER BY id LIMIT " + param(std::to_string(claim.limit), "bigint") +
                   " FOR UPDATE SKIP LOCKED), c" + n + " AS (UPDATE jobs SET state = 'active', " +
                   "started_at = " + started + ", heartbeat_at = " + started +
                   ", claimed_by = " + worker +
                   ", progress_done = 0, progress_total = 0, eta_at = NULL, "
                   "stop_requested = FALSE FROM p" +
                   n + " WHERE jobs.id = p" + n + ".id RETURNING " + n + " AS claim";
            for (const char* column :
                 {"id", "topic", "queue", "state", "payload", "submitted_by", "created_at",
                  "scheduled_at", "started_at", "finished_at", "cron", "retry_count",
                  "max_retries", "progress_done", "progress_total", "eta_at", "result_message",
                  "log_count", "report_count", "heartbeat_at", "stop_requested"}) {
                sql += std::string(", jobs.") + column;
            }
            sql += ")";
            claimed += (claimed.empty() ? "" : " UNION ALL ") + std::string("SELECT * FROM c") + n;
        }
        if (claimed.empty()) {
            claimed = "SELECT 0 AS claim, " + std::string(kJobColumns) +
                      " FROM jobs WHERE FALSE";
        }
        // Count changes: ended runs leave active for their new state (a
        // discarded one leaves the counts), claimed jobs go queued -> active.
        // Net-zero changes (runs ended and claimed in one queue and topic)
        // write nothing.
        sql += ", claimed AS (" + claimed +
               "), "
               "delta (queue, topic, state, jobs, wait_sum, wait_n, run_sum, run_n) AS ("
               "SELECT queue, topic, 'active', -1, 0, 0, 0, 0 FROM fin "
               "UNION ALL SELECT queue, topic, state, 1, COALESCE(wait, 0), "
               "(wait IS NOT NULL)::int, COALESCE(run, 0), (run IS NOT NULL)::int FROM fin "
               "UNION ALL SELECT queue, topic, 'active', -1, 0, 0, 0, 0 FROM gone "
               "UNION ALL SELECT queue, topic, 'queued', -1, 0, 0, 0, 0 FROM claimed "
               "UNION ALL SELECT queue, topic, 'active', 1, 0, 0, 0, 0 FROM claimed), "
               "counted AS (INSERT INTO job_counts AS c (queue, topic, state, jobs, wait_sum, "
               "wait_n, run_sum, run_n) SELECT queue, topic, state, SUM(jobs), SUM(wait_sum), "
               "SUM(wait_n), SUM(run_sum), SUM(run_n) FROM delta GROUP BY queue, topic, state "
               "HAVING SUM(jobs) != 0 OR SUM(wait_n) != 0 OR SUM(run_n) != 0 "
               "ORDER BY queue, topic, state "
               "ON CONFLICT (queue, topic, state) DO UPDATE SET jobs = c.jobs + excluded.jobs, "
               "wait_sum = c.wait_sum + excluded.wait_sum, wait_n = c.wait_n + excluded.wait_n, "
               "run_sum = c.run_sum + excluded.run_sum, run_n = c.run_n + excluded.run_n "
               "RETURNING c.queue, c.topic, c.state, c.jobs) ";
        // One result, rows of one shape: kind, claim, the job columns. 'c' a
        // claimed job (claim index, every column); 'f' an ended run and 'g' a
        // discarded one (id, state, retry_count); 'n' a count that went
        // negative (jobs in the claim column; topic, queue, state).
        auto row_of = [](const std::string& kind, const std::string& claim,
                         const std::map<int, std::string>& columns, const std::string& from) {
            std::string select = "SELECT '" + kind + "', " + claim;
            for (int i = 0; i < kJobColumnCount; ++i) {
                auto it = columns.find(i);
                select += ", " + (it == columns.end() ? std::string("NULL") : it->second);
            }
            return select + " FROM " + from;
        };
        sql += "SELECT 'c' AS kind, claimed.* FROM claimed UNION ALL " +
               row_of("f", "NULL", {{0, "id"}, {3, "state"}, {11, "retry_count"}}, "fin") +
               " UNION ALL " +
               row_of("g", "NULL", {{0, "id"}, {3, "'succeeded'"}, {11, "retry_count"}}, "gone") +
               " UNION ALL " +
               row_of("n", "jobs", {{1, "topic"}, {2, "queue"}, {3, "state"}},
                      "counted WHERE jobs < 0");

        pqxx::result rows = autocommit([&](Read& r) {
            return r.exec(sql, pqxx::prepare::make_dynamic_params(params));
        });
        std::unordered_map<JobId, std::size_t> first;  // id -> index of its first completion
        for (std::size_t i = request.completions.size(); i-- > 0;)
            first[request.completions[i].id] = i;
        for (const auto& row : rows) {
            const char kind = row[0].c_str()[0];
            const pqxx::row job = row.slice(2, 2 + kJobColumnCount);
            if (kind == 'c') {
                result.claimed[row[1].as<std::size_t>()].push_back(read_job(job));
            } else if (kind == 'f' || kind == 'g') {
                FinishedRun& run = result.finished[first.at(job[0].as<std::int64_t>())];
                run.applied = true;
                run.state = state_from_text(job[3].as<std::string>());
                run.retry_count = job[11].as<int>();
                run.discarded = kind == 'g';
            } else {
                logger("jobs")->error(
                    "job counts went negative queue={} topic={} state={} jobs={}; the "
                    "statistics of this queue and topic are off",
                    job[2].c_str(), job[1].c_str(), job[3].c_str(), row[1].as<std::int64_t>());
            }
        }
        for (auto& jobs : result.claimed) sort_by_id(jobs);
        return result;
    }
};

PgJobStore::PgJobStore(PgJobStoreOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

PgJobStore::~PgJobStore() = default;

std::string PgJobStore::redacted_url(const std::string& url) { return redacted_pg_url(url); }

// --- schema ------------------------------------------------------------------------

void PgJobStore::migrate() {
    int known = static_cast<int>(kMigrations.size());
    static_assert(kSchemaVersion >= 1);
    int applied = impl_->write([this, known](Write& w) {
        // Instances starting together migrate one after the other.
        w.exec("SELECT pg_advisory_xact_lock($1::bigint)", kMigrationLock);
        w.exec_plain(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)");
        int current =
            w.exec_plain("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0].as<int>();
        if (current > known) {
            throw Error(ErrorCode::storage, "job store schema version " + std::to_string(current) +
                                                " is newer than this wharfd supports (" +
                                                std::to_string(known) +
                                                "); upgrade wharfd or use another database");
        }
        int count = 0;
        for (int v = current + 1; v <= known; ++v) {
            w.exec_plain(kMigrations[static_cast<std::size_t>(v - 1)]);
            w.tx().exec_params("INSERT INTO schema_version(version, applied_at) VALUES ($1, $2)", v,
                               impl_->now_us());
            ++count;
        }
        if (count > 0) w.exec_plain(kRecount);
        return count;
    });
    if (applied > 0) {
        logger("jobs")->info("job store migrated backend=postgresql url={} applied={} version={}",
                             redacted_url(impl_->options_.url), applied, known);
    }
}

void PgJobStore::rebuild_statistics() {
    impl_->write([](Write& w) { w.exec_plain(kRecount); });
}

int PgJobStore::schema_version() const {
    return impl_->read([](Read& r) {
        if (!r.exec("SELECT to_regclass('schema_version') IS NOT NULL")[0][0].as<bool>()) return 0;
        return r.exec("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0].as<int>();
    });
}

// --- writes ------------------------------------------------------------------------

Job PgJobStore::insert(const NewJob& job) {
    const job_codec::PreparedJob prepared = job_codec::prepare_new_job(job, impl_->options_.clock());
    const Json& payload_json = prepared.payload_json;
    const std::string& payload = prepared.payload;
    const std::optional<JobTimePoint>& first_run = prepared.first_run;
    std::optional<std::int64_t> first_us;
    if (first_run) first_us = to_micros(*first_run);
    Job stored = impl_->write([this, &job, &payload, first_us](Write& w) {
        std::int64_t now = impl_->now_us();
        if (!job.schedule_name.empty()) {
            // Registering the same name on two instances at once: one after
            // the other, so the second replaces what the first stored.
            w.exec("SELECT pg_advisory_xact_lock($1::integer, hashtext($2::text))",
                   kScheduleLockSpace, job.schedule_name);
            auto existing = w.exec(
                "SELECT id, queue, topic FROM jobs WHERE schedule_name=$1 AND state='scheduled' "
                "FOR UPDATE",
                job.schedule_name);
            if (!existing.empty()) {
                JobId id = existing[0][0].as<std::int64_t>();
                w.counts().add(existing[0][1].as<std::string>(), existing[0][2].as<std::string>(),
                               JobState::scheduled, -1);
                w.counts().add(job.queue, job.topic, JobState::scheduled, +1);
                auto r = w.exec(std::string("UPDATE jobs SET topic=$1, queue=$2, payload=$3, "
                                            "submitted_by=$4, max_retries=$5, cron=$6, "
                                            "scheduled_at=$7 WHERE id=$8 RETURNING ") +
                                    kJobColumns,
                                job.topic, job.queue, payload, job.submitted_by, job.max_retries,
                                job.cron, first_us, id);
                return read_job(r[0]);
            }
        }
        std::optional<std::int64_t> queued_at;
        if (!first_us) queued_at = now;
        auto r = w.exec(std::string("INSERT INTO jobs (topic, queue, state, payload, submitted_by, "
                                    "created_at, queued_at, scheduled_at, max_retries, cron, "
                                    "schedule_name) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) "
                                    "RETURNING ") +
                            kJobColumns,
                        job.topic, job.queue, first_us ? "scheduled" : "queued", payload,
                        job.submitted_by, now, queued_at, first_us, job.max_retries, job.cron,
                        job.schedule_name);
        Job j = read_job(r[0], /*with_payload=*/false);
        w.counts().add(j.queue, j.topic, j.state, +1);
        return j;
    });
    if (stored.payload.empty()) stored.payload = json_to_ptree(payload_json);
    return stored;
}

std::vector<Job> PgJobStore::claim_next(const ClaimRequest& request) {
    if (request.limit == 0) return {};
    ExchangeRequest one;
    one.claims.push_back(request);
    return std::move(impl_->exchange(one).claimed.front());
}

std::optional<Job> PgJobStore::finish(const JobCompletion& done) {
    ExchangeRequest one;
    one.completions.push_back(done);
    FinishedRun run = impl_->exchange(one).finished.front();
    if (!run.applied) {
        auto state = impl_->read([&done](Read& r) {
            return r.exec("SELECT state FROM jobs WHERE id=$1", done.id);
        });
        if (state.empty()) return std::nullopt;
        throw Error(ErrorCode::conflict, "job " + std::to_string(done.id) + " is " +
                                             state[0][0].as<std::string>() +
                                             ", not active: it cannot finish");
    }
    if (run.discarded) return std::nullopt;
    return find(done.id);
}

ExchangeResult PgJobStore::exchange(const ExchangeRequest& request) {
    if (request.completions.empty() && request.claims.empty()) return {};
    return impl_->exchange(request);
}

std::vector<WaitingGroup> PgJobStore::waiting_groups() const {
    return impl_->read([](Read& r) {
        auto rows = r.exec(
            "SELECT queue, topic, COUNT(*) FILTER (WHERE state='queued'), "
            "COUNT(*) FILTER (WHERE state!='queued') FROM jobs "
            "WHERE state IN ('queued', 'scheduled', 'failed') GROUP BY queue, topic");
        std::vector<WaitingGroup> groups;
        for (const auto& row : rows) {
            groups.push_back({row[0].as<std::string>(), row[1].as<std::string>(),
                              row[2].as<std::int64_t>(), row[3].as<std::int64_t>()});
        }
        return groups;
    });
}

std::size_t PgJobStore::move_waiting(const std::string& from, const std::string& topic,
                                     const std::string& to) {
    return impl_->write([&](Write& w) {
        auto r = w.exec(
            "UPDATE jobs SET queue=$1 WHERE queue=$2 AND topic=$3 "
            "AND state IN ('queued', 'scheduled', 'failed') RETURNING state",
            to, from, topic);
        for (const auto& row : r) {
            JobState state = state_from_text(row[0].as<std::string>());
            w.counts().add(from, topic, state, -1);
            w.counts().add(to, topic, state, +1);
        }
        return static_cast<std::size_t>(r.size());
    });
}

std::optional<Job> PgJobStore::find_schedule(const std::string& schedule_name) const {
    return impl_->read([&](Read& r) -> std::optional<Job> {
        auto rows = r.exec(std::string("SELECT ") + kJobColumns +
                               " FROM jobs WHERE schedule_name=$1 AND state='scheduled'",
                           schedule_name);
        if (rows.empty()) return std::nullopt;
        return read_job(rows[0]);
    });
}

std::vector<Job> PgJobStore::requeue_active(const std::string& worker) {
    return impl_->write([this, &worker](Write& w) {
        // One statement decides every job's next state: stopped if a stop was
        // asked, queued with the retry counted if one is left, else given_up.
        const std::string retry_left = "(max_retries < 0 OR retry_count < max_retries)";
        std::string sql =
            "UPDATE jobs SET "
            "state = CASE WHEN stop_requested THEN 'stopped' WHEN " +
            retry_left +
            " THEN 'queued' ELSE 'given_up' END, "
            "retry_count = CASE WHEN NOT stop_requested AND " +
            retry_left +
            " THEN retry_count + 1 ELSE retry_count END, "
            "queued_at = CASE WHEN NOT stop_requested AND " +
            retry_left +
            " THEN $1::bigint ELSE NULL END, "
            "finished_at = CASE WHEN NOT stop_requested AND " +
            retry_left +
            " THEN NULL ELSE $1::bigint END, "
            "result_message = CASE WHEN stop_requested THEN "
            "'stopped: the host ended while the job ran after a stop request' WHEN " +
            retry_left +
            " THEN 'requeued: the host ended while the job ran' ELSE "
            "'given up: the host ended while the job ran and no retry is left' END, "
            "claimed_by = NULL, eta_at = NULL WHERE state = 'active'";
        if (!worker.empty()) sql += " AND claimed_by = $2";
        sql += std::string(" RETURNING ") + kJobColumns + ", " + kTimesColumns;
        auto r =
            worker.empty() ? w.exec(sql, impl_->now_us()) : w.exec(sql, impl_->now_us(), worker);
        std::vector<Job> jobs;
        for (const auto& row : r) {
            jobs.push_back(read_job(row));
            w.counts().move(jobs.back().queue, jobs.back().topic, JobState::active,
                            jobs.back().state, optional_int(row[kJobColumnCount]),
                            optional_int(row[kJobColumnCount + 1]));
        }
        sort_by_id(jobs);
        return jobs;
    });
}

std::vector<Job> PgJobStore::due_scheduled(JobTimePoint now_point) {
    return impl_->write([this, now_point](Write& w) {
        std::int64_t now = to_micros(now_point);
        // The due rows, locked; rows another instance is handling right now
        // are skipped (it moves them), not waited for.
        auto due_rows = w.exec(std::string("SELECT ") + kJobColumns +
                                   " FROM jobs WHERE state IN ('scheduled', 'failed') "
                                   "AND scheduled_at <= $1 ORDER BY scheduled_at "
                                   "LIMIT 1000 FOR UPDATE SKIP LOCKED",
                               now);
        std::vector<Job> due;
        for (const auto& row : due_rows) due.push_back(read_job(row, /*with_payload=*/false));

        std::vector<JobId> plain;  // one-shots and retries
        std::vector<JobId> schedules, next_ids, ended;
        std::vector<std::int64_t> next_times;
        for (const auto& job : due) {
            if (job.cron.empty() || job.state == JobState::failed) {
                plain.push_back(job.id);
                continue;
            }
            schedules.push_back(job.id);
            auto next = CronSchedule::parse(job.cron).next_after(now_point);
            if (next) {
                next_ids.push_back(job.id);
                next_times.push_back(to_micros(*next));
            } else {
                ended.push_back(job.id);
            }
        }
        std::unordered_map<JobId, Job> became_queued;  // by the id it came from
        if (!plain.empty()) {
            auto r = w.exec(std::string("UPDATE jobs SET state='queued', queued_at=$1 "
                                        "WHERE id = ANY($2::bigint[]) RETURNING ") +
                                kJobColumns,
                            now, pg_array(plain));
            for (const auto& row : r) {
                Job j = read_job(row);
                became_queued.emplace(j.id, std::move(j));
            }
            for (const auto& job : due) {
                if (became_queued.count(job.id))
                    w.counts().move(job.queue, job.topic, job.state, JobState::queued);
            }
        }
        if (!schedules.empty()) {
            // One run per (schedule, fire time): the unique index keeps a
            // second spawn of the same fire time out, whichever instance tries.
            // Missed fire times collapse into this one run.
            auto r = w.exec(std::string("INSERT INTO jobs (topic, queue, state, payload, "
                                        "submitted_by, created_at, queued_at, scheduled_at, "
                                        "max_retries, schedule_id, fire_at) "
                                        "SELECT topic, queue, 'queued', payload, submitted_by, "
                                        "$1, $1, scheduled_at, max_retries, id, scheduled_at "
                                        "FROM jobs WHERE id = ANY($2::bigint[]) ORDER BY id "
                                        "ON CONFLICT (schedule_id, fire_at) "
                                        "WHERE schedule_id IS NOT NULL DO NOTHING RETURNING ") +
                                kJobColumns + ", schedule_id",
                            now, pg_array(schedules));
            for (const auto& row : r) {
                Job j = read_job(row);
                w.counts().add(j.queue, j.topic, JobState::queued, +1);
                became_queued.emplace(row[kJobColumnCount].as<std::int64_t>(), std::move(j));
            }
            if (!next_ids.empty()) {
                w.exec(
                    "UPDATE jobs SET scheduled_at = v.next FROM unnest($1::bigint[], "
                    "$2::bigint[]) AS v(id, next) WHERE jobs.id = v.id",
                    pg_array(next_ids), pg_array(next_times));
            }
            if (!ended.empty()) {
                auto e = w.exec(
                    std::string("UPDATE jobs SET state='succeeded', finished_at=$1, "
                                "result_message='schedule ended: the cron expression fires no "
                                "more' WHERE id = ANY($2::bigint[]) RETURNING queue, topic, ") +
                        kTimesColumns,
                    now, pg_array(ended));
                for (const auto& row : e) {
                    w.counts().move(row[0].as<std::string>(), row[1].as<std::string>(),
                                    JobState::scheduled, JobState::succeeded, optional_int(row[2]),
                                    optional_int(row[3]));
                }
            }
        }
        // In the order they were due, as the SQLite store returns them.
        std::vector<Job> queued;
        for (const auto& job : due) {
            auto it = became_queued.find(job.id);
            if (it != became_queued.end()) queued.push_back(std::move(it->second));
        }
        return queued;
    });
}

std::optional<JobTimePoint> PgJobStore::next_due() const {
    return impl_->read([](Read& r) -> std::optional<JobTimePoint> {
        auto rows =
            r.exec("SELECT MIN(scheduled_at) FROM jobs WHERE state IN ('scheduled', 'failed')");
        if (rows.empty()) return std::nullopt;
        return optional_time(rows[0][0]);
    });
}

bool PgJobStore::record_progress(JobId id, std::int64_t done, std::int64_t total) {
    return impl_->write([this, id, done, total](Write& w) {
        // ETA = now + elapsed / done * remaining, in floating point (the
        // product of two large integers could overflow), truncated like
        // SQLite's CAST.
        auto r = w.exec(
            "UPDATE jobs SET progress_done=$1::bigint, progress_total=$2::bigint, "
            "heartbeat_at=$3::bigint, "
            "eta_at=CASE WHEN $1::bigint > 0 AND $2::bigint >= $1::bigint AND started_at IS NOT "
            "NULL THEN trunc($3::bigint + ($3::bigint - started_at)::float8 * "
            "($2::bigint - $1::bigint) / $1::bigint)::bigint ELSE NULL END "
            "WHERE id=$4 AND state='active'",
            done, total, impl_->now_us(), id);
        return r.affected_rows() > 0;
    });
}

bool PgJobStore::heartbeat(JobId id) {
    return impl_->write([this, id](Write& w) {
        return w.exec("UPDATE jobs SET heartbeat_at=$1 WHERE id=$2 AND state='active'",
                      impl_->now_us(), id)
                   .affected_rows() > 0;
    });
}

bool PgJobStore::append_log(JobId id, const std::vector<std::string>& lines) {
    return impl_->write([this, id, &lines](Write& w) {
        std::int64_t now = impl_->now_us();
        // Counting first locks the job's row: concurrent appends number their
        // lines one after the other.
        auto r = w.exec(
            "UPDATE jobs SET log_count = log_count + $1::bigint, heartbeat_at = CASE WHEN "
            "state='active' THEN $2::bigint ELSE heartbeat_at END WHERE id=$3 RETURNING log_count",
            static_cast<std::int64_t>(lines.size()), now, id);
        if (r.empty()) return false;
        std::int64_t last = r[0][0].as<std::int64_t>();
        if (!lines.empty()) {
            w.exec(
                "INSERT INTO job_logs (job_id, seq, at, line) SELECT $1::bigint, $2::bigint + n, "
                "$3::bigint, line FROM unnest($4::text[]) WITH ORDINALITY AS t(line, n)",
                id, last - static_cast<std::int64_t>(lines.size()), now, pg_array(lines));
        }
        std::int64_t keep = impl_->options_.max_log_lines;
        if (keep >= 0 && last > keep) {
            w.exec("DELETE FROM job_logs WHERE job_id=$1 AND seq<=$2", id, last - keep);
        }
        return true;
    });
}

bool PgJobStore::append_report_rows(JobId id, const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::string> encoded;
    encoded.reserve(rows.size());
    for (const auto& row : rows) encoded.push_back(json_text(Json(row)));
    return impl_->write([this, id, &encoded](Write& w) {
        auto r = w.exec(
            "UPDATE jobs SET report_count = report_count + $1::bigint, heartbeat_at = CASE WHEN "
            "state='active' THEN $2::bigint ELSE heartbeat_at END WHERE id=$3 "
            "RETURNING report_count",
            static_cast<std::int64_t>(encoded.size()), impl_->now_us(), id);
        if (r.empty()) return false;
        std::int64_t last = r[0][0].as<std::int64_t>();
        if (!encoded.empty()) {
            w.exec(
                "INSERT INTO job_report_rows (job_id, seq, cells) SELECT $1::bigint, "
                "$2::bigint + n, cells FROM unnest($3::text[]) WITH ORDINALITY AS t(cells, n)",
                id, last - static_cast<std::int64_t>(encoded.size()), pg_array(encoded));
        }
        return true;
    });
}

bool PgJobStore::put_checkpoint(JobId id, const std::string& key, const std::string& value) {
    return impl_->write([this, id, &key, &value](Write& w) {
        auto u = w.exec(
            "UPDATE jobs SET heartbeat_at=CASE WHEN state='active' THEN $1::bigint ELSE "
            "heartbeat_at END WHERE id=$2",
            impl_->now_us(), id);
        if (u.affected_rows() == 0) return false;
        w.exec(
            "INSERT INTO job_checkpoints (job_id, key, value) VALUES ($1,$2,$3) "
            "ON CONFLICT (job_id, key) DO UPDATE SET value=excluded.value",
            id, key, value);
        return true;
    });
}

JobActionResult PgJobStore::request_stop(JobId id) {
    return impl_->write([this, id](Write& w) -> JobActionResult {
        auto state = impl_->lock_state(w, id);
        if (!state) return {JobActionResult::Status::not_found, "no job " + std::to_string(id)};
        JobState s = state_from_text(*state);
        if (is_final(s)) {
            return {JobActionResult::Status::refused,
                    "job " + std::to_string(id) + " has already finished (" + *state + ")"};
        }
        if (s == JobState::active) {
            w.exec("UPDATE jobs SET stop_requested=TRUE WHERE id=$1", id);
        } else {
            auto r = w.exec(std::string("UPDATE jobs SET state='stopped', stop_requested=TRUE, "
                                        "finished_at=$1, result_message='stopped before it ran' "
                                        "WHERE id=$2 RETURNING queue, topic, ") +
                                kTimesColumns,
                            impl_->now_us(), id);
            if (!r.empty()) {
                w.counts().move(r[0][0].as<std::string>(), r[0][1].as<std::string>(), s,
                                JobState::stopped, optional_int(r[0][2]), optional_int(r[0][3]));
            }
        }
        return {};
    });
}

JobActionResult PgJobStore::remove(JobId id) {
    return impl_->write([this, id](Write& w) -> JobActionResult {
        auto state = impl_->lock_state(w, id);
        if (!state) return {JobActionResult::Status::not_found, "no job " + std::to_string(id)};
        if (*state == "queued" || *state == "active") {
            return {JobActionResult::Status::refused,
                    "job " + std::to_string(id) + " is " + *state +
                        ": queued and active jobs cannot be deleted; stop it first"};
        }
        impl_->delete_jobs(w, {id});
        return {};
    });
}

PurgeResult PgJobStore::purge(const PurgeRequest& request) {
    PurgeResult result;
    std::size_t batch = std::max<std::size_t>(1, request.batch_size);
    // One transaction per batch, so that dispatch interleaves.
    auto run_phase = [&](bool by_age, std::int64_t budget) {
        while (budget > 0) {
            std::int64_t take = std::min(static_cast<std::int64_t>(batch), budget);
            std::size_t removed = impl_->write([&](Write& w) -> std::size_t {
                pqxx::result r =
                    by_age ? w.exec(
                                 "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND "
                                 "finished_at < $1 ORDER BY finished_at, id LIMIT $2 FOR UPDATE",
                                 to_micros(*request.finished_before), take)
                           : w.exec(
                                 "SELECT id FROM jobs WHERE finished_at IS NOT NULL "
                                 "ORDER BY finished_at, id LIMIT $1 FOR UPDATE",
                                 take);
                std::vector<JobId> ids;
                for (const auto& row : r) ids.push_back(row[0].as<std::int64_t>());
                return impl_->delete_jobs(w, ids);
            });
            if (removed == 0) return;
            result.removed += removed;
            ++result.batches;
            budget -= static_cast<std::int64_t>(removed);
            if (static_cast<std::int64_t>(removed) < take) return;
        }
    };
    if (request.finished_before) run_phase(true, std::numeric_limits<std::int64_t>::max());
    if (request.max_keep) {
        std::int64_t finished = impl_->read([](Read& r) {
            return r.exec("SELECT COUNT(*) FROM jobs WHERE finished_at IS NOT NULL")[0][0]
                .as<std::int64_t>();
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

std::optional<Job> PgJobStore::find(JobId id) const {
    return impl_->read([id](Read& r) -> std::optional<Job> {
        auto rows = r.exec(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id=$1", id);
        if (rows.empty()) return std::nullopt;
        return read_job(rows[0]);
    });
}

JobPage PgJobStore::list(const JobFilter& filter) const {
    std::size_t limit = std::clamp<std::size_t>(filter.limit, 1, 1000);
    // Parameters as text, cast in the statement: one prepared statement per
    // combination of filters.
    std::vector<std::string> params;
    auto param = [&params](std::string value, const char* type) {
        params.push_back(std::move(value));
        return "$" + std::to_string(params.size()) + "::" + type;
    };
    std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE TRUE";
    if (!filter.states.empty()) {
        std::vector<std::string> names;
        for (auto s : filter.states) names.emplace_back(wharf::to_string(s));
        sql += " AND state = ANY(" + param(pg_array(names), "text[]") + ")";
    }
    if (!filter.topic.empty()) sql += " AND topic=" + param(filter.topic, "text");
    if (!filter.queue.empty()) sql += " AND queue=" + param(filter.queue, "text");
    if (!filter.user.empty()) sql += " AND submitted_by=" + param(filter.user, "text");
    if (filter.created_from) {
        sql +=
            " AND created_at>=" + param(std::to_string(to_micros(*filter.created_from)), "bigint");
    }
    if (filter.created_to) {
        sql += " AND created_at<" + param(std::to_string(to_micros(*filter.created_to)), "bigint");
    }
    if (!filter.text.empty()) {
        // ILIKE: case-insensitive, as SQLite's LIKE is.
        std::string p = param("%" + escape_like(filter.text) + "%", "text");
        sql += " AND (topic ILIKE " + p + " ESCAPE '\\' OR payload ILIKE " + p +
               " ESCAPE '\\' OR result_message ILIKE " + p + " ESCAPE '\\' OR submitted_by ILIKE " +
               p + " ESCAPE '\\')";
    }
    if (filter.cursor) sql += " AND id<" + param(std::to_string(*filter.cursor), "bigint");
    sql += " ORDER BY id DESC LIMIT " + param(std::to_string(limit + 1), "bigint");
    return impl_->read([&](Read& r) {
        auto rows = r.exec(sql, pqxx::prepare::make_dynamic_params(params));
        JobPage page;
        for (const auto& row : rows) page.jobs.push_back(read_job(row));
        if (page.jobs.size() > limit) {
            page.jobs.pop_back();
            page.next_cursor = page.jobs.back().id;
        }
        return page;
    });
}

std::vector<JobStatistics> PgJobStore::statistics(StatisticsGroup group) const {
    std::string key = group == StatisticsGroup::queue ? "queue" : "topic";
    // Byte order, as SQLite sorts, whatever the database's collation. Rows
    // whose count came to zero may stay (the dispatcher's exchange leaves
    // them): they are left out.
    std::string sql = "SELECT " + key +
                      ", state, SUM(jobs)::bigint, SUM(wait_sum)::bigint, SUM(wait_n)::bigint, "
                      "SUM(run_sum)::bigint, SUM(run_n)::bigint FROM job_counts GROUP BY " +
                      key + ", state HAVING SUM(jobs) != 0 ORDER BY " + key + " COLLATE \"C\"";
    return impl_->read([&](Read& r) {
        struct Sums {
            JobStatistics stats;
            std::int64_t wait_sum = 0, wait_n = 0, run_sum = 0, run_n = 0;
        };
        std::vector<Sums> rows;
        for (const auto& row : r.exec(sql)) {
            std::string k = row[0].as<std::string>();
            if (rows.empty() || rows.back().stats.key != k) {
                rows.emplace_back();
                rows.back().stats.key = k;
            }
            Sums& s = rows.back();
            s.stats.count(state_from_text(row[1].as<std::string>())) += row[2].as<std::int64_t>();
            s.wait_sum += row[3].as<std::int64_t>();
            s.wait_n += row[4].as<std::int64_t>();
            s.run_sum += row[5].as<std::int64_t>();
            s.run_n += row[6].as<std::int64_t>();
        }
        std::vector<JobStatistics> out;
        for (auto& s : rows) {
            if (s.wait_n > 0)
                s.stats.average_wait = std::chrono::microseconds(s.wait_sum / s.wait_n);
            if (s.run_n > 0)
                s.stats.average_processing = std::chrono::microseconds(s.run_sum / s.run_n);
            out.push_back(std::move(s.stats));
        }
        return out;
    });
}

std::vector<JobLogLine> PgJobStore::log(JobId id, std::int64_t after_seq, std::size_t limit) const {
    return impl_->read([&](Read& r) {
        std::vector<JobLogLine> lines;
        for (const auto& row :
             r.exec("SELECT seq, at, line FROM job_logs WHERE job_id=$1 AND seq>$2 ORDER BY seq "
                    "LIMIT $3",
                    id, after_seq, static_cast<std::int64_t>(limit))) {
            lines.push_back({row[0].as<std::int64_t>(), from_micros(row[1].as<std::int64_t>()),
                             row[2].as<std::string>()});
        }
        return lines;
    });
}

std::vector<std::vector<std::string>> PgJobStore::report(JobId id, std::int64_t offset,
                                                         std::size_t limit) const {
    return impl_->read([&](Read& r) {
        std::vector<std::vector<std::string>> rows;
        for (const auto& row :
             r.exec("SELECT cells FROM job_report_rows WHERE job_id=$1 AND seq>$2 ORDER BY seq "
                    "LIMIT $3",
                    id, offset, static_cast<std::int64_t>(limit))) {
            rows.push_back(Json::parse(row[0].c_str()).get<std::vector<std::string>>());
        }
        return rows;
    });
}

std::map<std::string, std::string> PgJobStore::checkpoints(JobId id) const {
    return impl_->read([&](Read& r) {
        std::map<std::string, std::string> out;
        for (const auto& row : r.exec("SELECT key, value FROM job_checkpoints WHERE job_id=$1", id))
            out[row[0].as<std::string>()] = row[1].as<std::string>();
        return out;
    });
}

bool PgJobStore::stop_requested(JobId id) const {
    return impl_->read([&](Read& r) {
        auto rows = r.exec("SELECT stop_requested FROM jobs WHERE id=$1", id);
        return !rows.empty() && rows[0][0].as<bool>();
    });
}

}  // namespace wharf::host
