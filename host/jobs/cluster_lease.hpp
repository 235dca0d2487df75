#pragma once
// ClusterLease: one wharfd instance's membership of a cluster that shares a
// PostgreSQL job store (pg_job_store.hpp), and the recovery of the jobs of
// instances that died.
//
// An instance registers a row in `instances` (id, address, start time, last
// heartbeat, its lease length, load) and renews it well within its lease.
// Every instance periodically calls requeue_expired(): the instances whose
// last heartbeat is older than their own lease are taken (one surviving
// instance per dead one: rows are locked with SKIP LOCKED), their active jobs
// go back to queued with the retry counted (JobStore::requeue_active for that
// worker: given_up when no retry is left, stopped when a stop was requested)
// and the dead instance's row is removed. Jobs resume from their checkpoints
// wherever they are claimed next.
//
// Lease times are the database server's clock, never the instances' own, so
// clock skew between machines cannot expire a live instance early.
//
// A live instance that missed its lease (paused, partitioned) finds its row
// gone at the next renew(), which returns false: it must stop claiming, treat
// its running jobs as lost (another instance may run them) and register again.
//
// REQUIRES: the PgJobStore on the same database has been migrated (schema 2
// creates `instances`). Ownership: holds one connection of its own. Thread-
// safety: every method may be called from any thread (calls are serialised).

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "jobs/job_store.hpp"

namespace wharf::host {

struct ClusterLeaseOptions {
    std::string url;          ///< the job store's PostgreSQL url
    std::string instance_id;  ///< unique in the cluster; default_instance_id() makes one
    std::string address;      ///< where other instances and users reach it (API address)
    /// An instance not heard of this long is dead. Renew at most every lease/3.
    std::chrono::milliseconds lease{30000};
};

/// A registered instance as the cluster sees it.
struct ClusterInstance {
    std::string id;
    std::string address;
    JobTimePoint started{};
    JobTimePoint last_heartbeat{};
    std::chrono::milliseconds lease{0};
    double load = 0;
    bool expired = false;  ///< its lease ran out; requeue_expired will take its jobs
};

/// What requeue_expired did for one dead instance.
struct RequeuedInstance {
    std::string id;
    std::vector<Job> jobs;  ///< its active jobs, now queued, given_up or stopped
};

class ClusterLease {
public:
    /// Connects. Throws Error(invalid_argument) for an empty url or instance
    /// id or a lease shorter than 100 ms, Error(storage) when the server
    /// cannot be reached. `store` does the requeueing and must outlive this.
    ClusterLease(ClusterLeaseOptions options, JobStore& store);
    ~ClusterLease();

    ClusterLease(const ClusterLease&) = delete;
    ClusterLease& operator=(const ClusterLease&) = delete;

    /// Registers this instance (or takes over its row after a restart with
    /// the same id: start time and heartbeat become now). Throws
    /// Error(conflict) when a live instance already holds the id.
    void register_instance(double load = 0);

    /// Renews the heartbeat and records the load (e.g. active jobs / slots).
    /// False when the row is gone: the cluster took this instance for dead.
    bool renew(double load);

    /// Removes this instance's row (clean shutdown, after its jobs ended or
    /// were requeued by the engine).
    void deregister();

    /// Requeues the active jobs of every other instance whose lease expired
    /// and removes those instances; then the active jobs of claimers that
    /// have no row at all (an instance that deregistered while runs were
    /// still going). Safe to call from every instance at once: each dead
    /// instance's jobs are requeued by one of them.
    std::vector<RequeuedInstance> requeue_expired();

    /// Jobs this instance runs whose stop was requested (through any
    /// instance: the store's flag), so that their consumers are asked to stop.
    std::vector<JobId> stop_requests() const;

    /// Every registered instance, oldest first.
    std::vector<ClusterInstance> instances() const;

    const std::string& instance_id() const noexcept;

    /// "<hostname>-<pid>-<random>": unique per process start.
    static std::string default_instance_id();

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace wharf::host
