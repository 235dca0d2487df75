#pragma once
// ClusterMember: what makes one wharfd an instance of a cluster sharing a
// PostgreSQL job store. It owns the instance's ClusterLease (cluster_lease.hpp)
// and one thread that
//   - listens on the store's `wharf_jobs` channel: every job that becomes
//     queued (enqueued, due, retried, requeued, moved) is announced by a
//     trigger with its queue and topic, and the engine is told at once, so a
//     job enqueued through any instance starts on whichever has a free slot;
//   - renews the heartbeat every lease/3 with the engine's running jobs as
//     the load; when the cluster took this instance for dead (renew() false)
//     it registers again: runs it still has cannot finish (the store fences
//     completions by claimer) and were requeued by whoever took them over;
//   - every lease/2 requeues the jobs of instances whose lease ran out, and
//     active jobs claimed by no registered instance (one that ended without
//     its runs ending), then wakes the engine for them;
//   - every `poll` re-reads the waiting groups and tells the engine, which
//     covers notifications lost while the listening connection was down;
//   - every `stop_poll` asks the store which of its running jobs someone
//     asked to stop through another instance, and stops them here.
//
// Order: construct (registers the instance, so every claim of this instance
// is covered by a lease) -> JobEngine::start() -> start() -> ... -> stop()
// (before the engine stops) -> destroy (deregisters).
//
// Threading: instances() and instance_id() may be called from any thread.
// Errors: the constructor throws Error(storage) when the server cannot be
// reached and Error(conflict) when a live instance holds the id; the thread
// logs failures and retries at its next tick.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "jobs/cluster_lease.hpp"

namespace wharf::host {

class JobEngine;
class JobStore;

struct ClusterMemberOptions {
    ClusterLeaseOptions lease;
    /// Re-read the waiting groups this often (a fallback for lost
    /// notifications; they normally arrive within a millisecond).
    std::chrono::milliseconds poll{2000};
    /// Look for stops requested through other instances of the jobs this one
    /// runs this often (a stop reaches the consumer within about this long).
    std::chrono::milliseconds stop_poll{250};
};

class ClusterMember {
public:
    /// Registers the instance. `store` must be the migrated PgJobStore on
    /// `options.lease.url`; it must outlive this object.
    ClusterMember(ClusterMemberOptions options, JobStore& store);
    /// Calls stop() and deregisters.
    ~ClusterMember();

    ClusterMember(const ClusterMember&) = delete;
    ClusterMember& operator=(const ClusterMember&) = delete;

    /// Listens for queued jobs (before it returns, unless the server cannot be
    /// reached: then the thread retries and polls) and starts the thread that
    /// tells `engine` about work from elsewhere.
    /// `engine` must stay alive until stop() returns.
    void start(JobEngine& engine);
    /// Ends the thread. Idempotent.
    void stop();

    const std::string& instance_id() const noexcept;
    /// Every registered instance (GET /api/cluster). Throws Error(storage).
    std::vector<ClusterInstance> instances() const;

    /// Counters since start, for tests and the API.
    struct Counters {
        std::uint64_t notifications = 0;  ///< queued-job announcements received
        std::uint64_t renewals = 0;
        std::uint64_t lost_leases = 0;    ///< renew() found the row gone
        std::uint64_t requeued_jobs = 0;  ///< jobs taken over from dead instances
    };
    Counters counters() const;

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace wharf::host
