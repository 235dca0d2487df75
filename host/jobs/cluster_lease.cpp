#include "jobs/cluster_lease.hpp"

#include <unistd.h>

#include <mutex>
#include <pqxx/pqxx>
#include <random>

#include "base/error.hpp"
#include "base/log.hpp"
#include "jobs/pg_job_store.hpp"

namespace wharf::host {

namespace {

// The database server's clock in microseconds since the epoch: leases are
// judged by one clock, whatever the instances' clocks say.
constexpr const char* kNowUs = "(extract(epoch from clock_timestamp()) * 1000000)::bigint";

JobTimePoint from_micros(std::int64_t us) {
    return JobTimePoint(
        std::chrono::duration_cast<JobClock::duration>(std::chrono::microseconds(us)));
}

std::string pg_text_array(const std::vector<std::string>& values) {
    std::string out = "{";
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i) out += ',';
        out += '"';
        for (char c : values[i]) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }
    return out + "}";
}

}  // namespace

class ClusterLease::Impl {
public:
    Impl(ClusterLeaseOptions options, JobStore& store)
        : options_(std::move(options)), store_(store) {
        if (options_.url.empty()) throw Error(ErrorCode::invalid_argument, "cluster url is empty");
        if (options_.instance_id.empty()) {
            throw Error(ErrorCode::invalid_argument, "cluster instance id is empty");
        }
        if (options_.lease < std::chrono::milliseconds(100)) {
            throw Error(ErrorCode::invalid_argument, "cluster lease must be at least 100 ms, not " +
                                                         std::to_string(options_.lease.count()) +
                                                         " ms");
        }
        connect();
    }

    // Runs `fn` with the connection; reconnects first when it was lost.
    template <class F>
    auto with_connection(const char* what, F fn) {
        std::lock_guard lock(mutex_);
        try {
            if (!connection_ || !connection_->is_open()) connect();
            return fn(*connection_);
        } catch (const pqxx::broken_connection& e) {
            connection_.reset();
            throw Error(ErrorCode::storage, std::string(what) + ": connection lost: " + e.what());
        } catch (const Error&) {
            throw;
        } catch (const pqxx::failure& e) {
            throw Error(ErrorCode::storage, std::string(what) + ": " + e.what());
        }
    }

    void connect() {
        try {
            connection_ = std::make_unique<pqxx::connection>(options_.url);
        } catch (const std::exception& e) {
            throw Error(ErrorCode::storage, "cannot connect to the cluster database url=" +
                                                PgJobStore::redacted_url(options_.url) + ": " +
                                                e.what());
        }
    }

    std::int64_t lease_us() const {
        return std::chrono::duration_cast<std::chrono::microseconds>(options_.lease).count();
    }

    ClusterLeaseOptions options_;
    JobStore& store_;
    std::mutex mutex_;  // guards connection_
    std::unique_ptr<pqxx::connection> connection_;
};

ClusterLease::ClusterLease(ClusterLeaseOptions options, JobStore& store)
    : impl_(std::make_unique<Impl>(std::move(options), store)) {}

ClusterLease::~ClusterLease() = default;

const std::string& ClusterLease::instance_id() const noexcept {
    return impl_->options_.instance_id;
}

std::string ClusterLease::default_instance_id() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "wharfd");
    std::mt19937_64 random{std::random_device{}()};
    char suffix[9];
    std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(random() & 0xffffffffu));
    return std::string(host) + "-" + std::to_string(::getpid()) + "-" + suffix;
}

void ClusterLease::register_instance(double load) {
    const auto& o = impl_->options_;
    bool registered = impl_->with_connection("cluster register failed", [&](pqxx::connection& c) {
        pqxx::work w(c);
        // A row with this id is taken over only when its lease ran out (the
        // same instance restarting, or a dead one's id reused).
        auto r = w.exec_params(std::string("INSERT INTO instances (id, address, started_at, "
                                           "last_heartbeat, lease_us, load) VALUES ($1, $2, ") +
                                   kNowUs + ", " + kNowUs +
                                   ", $3, $4) ON CONFLICT (id) DO UPDATE SET "
                                   "address=excluded.address, started_at=excluded.started_at, "
                                   "last_heartbeat=excluded.last_heartbeat, "
                                   "lease_us=excluded.lease_us, load=excluded.load "
                                   "WHERE instances.last_heartbeat < " +
                                   kNowUs + " - instances.lease_us RETURNING id",
                               o.instance_id, o.address, impl_->lease_us(), load);
        w.commit();
        return !r.empty();
    });
    if (!registered) {
        throw Error(ErrorCode::conflict, "cluster instance id '" + o.instance_id +
                                             "' is held by a live instance; use another id or "
                                             "wait until its lease of " +
                                             std::to_string(o.lease.count()) + " ms runs out");
    }
    logger("jobs")->info("cluster instance registered id={} address={} lease_ms={}", o.instance_id,
                         o.address, o.lease.count());
}

bool ClusterLease::renew(double load) {
    bool alive = impl_->with_connection("cluster heartbeat failed", [&](pqxx::connection& c) {
        pqxx::nontransaction n(c);
        auto r = n.exec_params(
            std::string("UPDATE instances SET last_heartbeat=") + kNowUs + ", load=$2 WHERE id=$1",
            impl_->options_.instance_id, load);
        return r.affected_rows() > 0;
    });
    if (!alive) {
        logger("jobs")->error(
            "cluster instance lost its lease id={}: the cluster took it for dead and may run its "
            "jobs elsewhere; stop claiming and register again",
            impl_->options_.instance_id);
    }
    return alive;
}

void ClusterLease::deregister() {
    impl_->with_connection("cluster deregister failed", [&](pqxx::connection& c) {
        pqxx::nontransaction n(c);
        n.exec_params("DELETE FROM instances WHERE id=$1", impl_->options_.instance_id);
        return 0;
    });
}

std::vector<RequeuedInstance> ClusterLease::requeue_expired() {
    auto requeued = impl_->with_connection("cluster requeue failed", [&](pqxx::connection& c) {
        pqxx::work w(c);
        // Locked until this transaction ends: another instance running
        // the same recovery skips these rows instead of requeueing twice.
        auto dead = w.exec_params(std::string("SELECT id FROM instances WHERE id <> $1 AND "
                                              "last_heartbeat < ") +
                                      kNowUs + " - lease_us ORDER BY id FOR UPDATE SKIP LOCKED",
                                  impl_->options_.instance_id);
        std::vector<RequeuedInstance> out;
        std::vector<std::string> ids;
        for (const auto& row : dead) {
            RequeuedInstance instance;
            instance.id = row[0].as<std::string>();
            // Committed by the store on its own connection; if this
            // transaction then fails, the row stays and a later call
            // finds no active jobs left for it.
            instance.jobs = impl_->store_.requeue_active(instance.id);
            ids.push_back(instance.id);
            out.push_back(std::move(instance));
        }
        if (!ids.empty()) {
            w.exec_params("DELETE FROM instances WHERE id = ANY($1::text[])", pg_text_array(ids));
        }
        // Active jobs of a claimer with no row: an instance that deregistered
        // while runs were still going (shutdown past its grace), or whose row
        // an earlier recovery removed while it claimed on. Every instance
        // registers before it claims, so no live claimer is without a row.
        auto orphaned = w.exec(
            "SELECT DISTINCT claimed_by FROM jobs WHERE state = 'active' AND claimed_by IS NOT "
            "NULL AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = jobs.claimed_by)");
        for (const auto& row : orphaned) {
            RequeuedInstance instance;
            instance.id = row[0].as<std::string>();
            if (instance.id == impl_->options_.instance_id) continue;
            instance.jobs = impl_->store_.requeue_active(instance.id);
            if (!instance.jobs.empty()) out.push_back(std::move(instance));
        }
        w.commit();
        return out;
    });
    for (const auto& instance : requeued) {
        logger("jobs")->warn(
            "cluster instance expired id={} requeued_jobs={}: its lease ran out without a "
            "heartbeat",
            instance.id, instance.jobs.size());
    }
    return requeued;
}

std::vector<JobId> ClusterLease::stop_requests() const {
    return impl_->with_connection("cluster stop poll failed", [&](pqxx::connection& c) {
        pqxx::nontransaction n(c);
        auto r = n.exec_params(
            "SELECT id FROM jobs WHERE state = 'active' AND claimed_by = $1 AND stop_requested",
            impl_->options_.instance_id);
        std::vector<JobId> out;
        for (const auto& row : r) out.push_back(row[0].as<std::int64_t>());
        return out;
    });
}

std::vector<ClusterInstance> ClusterLease::instances() const {
    return impl_->with_connection("cluster list failed", [&](pqxx::connection& c) {
        pqxx::nontransaction n(c);
        auto r = n.exec(std::string("SELECT id, address, started_at, last_heartbeat, lease_us, "
                                    "load, last_heartbeat < ") +
                        kNowUs + " - lease_us FROM instances ORDER BY started_at, id");
        std::vector<ClusterInstance> out;
        for (const auto& row : r) {
            ClusterInstance i;
            i.id = row[0].as<std::string>();
            i.address = row[1].as<std::string>();
            i.started = from_micros(row[2].as<std::int64_t>());
            i.last_heartbeat = from_micros(row[3].as<std::int64_t>());
            i.lease = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::microseconds(row[4].as<std::int64_t>()));
            i.load = row[5].as<double>();
            i.expired = row[6].as<bool>();
            out.push_back(std::move(i));
        }
        return out;
    });
}

}  // namespace wharf::host
