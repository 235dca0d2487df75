#include "jobs/cluster_member.hpp"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <pqxx/pqxx>
#include <thread>

#include "base/error.hpp"
#include "base/log.hpp"
#include "jobs/job_engine.hpp"
#include "jobs/job_store.hpp"
#include "jobs/pg_job_store.hpp"

namespace wharf::host {

namespace {

using Clock = std::chrono::steady_clock;

// The channel the store's trigger announces queued jobs on (pg_job_store.cpp,
// schema 3); the payload is "<queue>\n<topic>".
constexpr const char* kChannel = "wharf_jobs";

// Longest wait for a notification before the thread looks at its clocks and
// its stop flag again.
constexpr auto kMaxWait = std::chrono::milliseconds(200);

class QueuedReceiver final : public pqxx::notification_receiver {
public:
    QueuedReceiver(pqxx::connection_base& connection,
                   std::function<void(const std::string&, const std::string&)> on_queued)
        : pqxx::notification_receiver(connection, kChannel), on_queued_(std::move(on_queued)) {}

    void operator()(const std::string& payload, int) override {
        auto nl = payload.find('\n');
        if (nl == std::string::npos) return;
        on_queued_(payload.substr(0, nl), payload.substr(nl + 1));
    }

private:
    std::function<void(const std::string&, const std::string&)> on_queued_;
};

}  // namespace

class ClusterMember::Impl {
public:
    Impl(ClusterMemberOptions options, JobStore& store)
        : options_(std::move(options)), store_(store), lease_(options_.lease, store) {
        lease_.register_instance(0);
    }

    ~Impl() {
        stop();
        try {
            lease_.deregister();
            log_->info("cluster instance deregistered id={}", lease_.instance_id());
        } catch (const std::exception& e) {
            log_->warn("cluster instance not deregistered id={} error=\"{}\"; its lease runs out",
                       lease_.instance_id(), e.what());
        }
    }

    void start(JobEngine& engine) {
        std::lock_guard lock(mutex_);
        if (thread_.joinable()) return;
        exit_ = false;
        // Listening before start() returns: every job queued elsewhere after
        // it is announced to this instance (the first poll finds the earlier).
        listen(engine);
        thread_ = std::thread([this, &engine] { loop(engine); });
    }

    void stop() {
        {
            std::lock_guard lock(mutex_);
            exit_ = true;
        }
        wake_.notify_all();
        if (thread_.joinable()) thread_.join();
    }

    ClusterLease& lease() { return lease_; }
    const ClusterLease& lease() const { return lease_; }

    Counters counters() const {
        return {notifications_.load(), renewals_.load(), lost_leases_.load(),
                requeued_jobs_.load()};
    }

private:
    bool exiting() {
        std::lock_guard lock(mutex_);
        return exit_;
    }

    // (Re)opens the listening connection; null when the server is unreachable
    // (the next tick tries again, and the waiting-group poll covers the gap).
    void listen(JobEngine& engine) {
        receiver_.reset();
        connection_.reset();
        try {
            connection_ = std::make_unique<pqxx::connection>(options_.lease.url);
            receiver_ = std::make_unique<QueuedReceiver>(
                *connection_, [this, &engine](const std::string& queue, const std::string& topic) {
                    notifications_.fetch_add(1, std::memory_order_relaxed);
                    engine.work_queued_elsewhere(queue, topic);
                });
        } catch (const std::exception& e) {
            receiver_.reset();
            connection_.reset();
            log_->error("cluster cannot listen for queued jobs url={} error=\"{}\"; polling",
                        PgJobStore::redacted_url(options_.lease.url), e.what());
        }
    }

    void poll_waiting(JobEngine& engine) {
        for (const auto& group : store_.waiting_groups())
            if (group.queued > 0) engine.work_queued_elsewhere(group.queue, group.topic);
    }

    void loop(JobEngine& engine) {
        const auto lease = options_.lease.lease;
        const auto renew_every = std::max<std::chrono::milliseconds>(lease / 3, kMaxWait / 4);
        const auto recover_every = std::max<std::chrono::milliseconds>(lease / 2, kMaxWait / 4);
        auto now = Clock::now();
        auto next_renew = now + renew_every;
        auto next_recover = now;  // at once: jobs of instances that died while none ran
        auto next_poll = now;
        auto next_stop_poll = now;
        auto next_listen = now + renew_every;  // start() listened already
        while (!exiting()) {
            now = Clock::now();
            if (!connection_ && now >= next_listen) {
                listen(engine);
                next_listen = now + renew_every;
                next_poll = now;  // what was announced while nobody listened
            }
            try {
                if (now >= next_renew) {
                    next_renew = now + renew_every;
                    double load = static_cast<double>(engine.running_jobs());
                    if (lease_.renew(load)) {
                        renewals_.fetch_add(1, std::memory_order_relaxed);
                    } else {
                        lost_leases_.fetch_add(1, std::memory_order_relaxed);
                        lease_.register_instance(load);
                    }
                }
                if (now >= next_recover) {
                    next_recover = now + recover_every;
                    for (const auto& dead : lease_.requeue_expired()) {
                        requeued_jobs_.fetch_add(dead.jobs.size(), std::memory_order_relaxed);
                        for (const auto& job : dead.jobs)
                            if (job.state == JobState::queued)
                                engine.work_queued_elsewhere(job.queue, job.topic);
                    }
                }
                if (now >= next_poll) {
                    next_poll = now + options_.poll;
                    poll_waiting(engine);
                }
                if (now >= next_stop_poll) {
                    next_stop_poll = now + options_.stop_poll;
                    for (auto id : lease_.stop_requests()) engine.stop_requested_elsewhere(id);
                }
            } catch (const std::exception& e) {
                log_->error("cluster upkeep failed; retrying error=\"{}\"", e.what());
            }
            auto until = std::min(
                {next_renew, next_recover, next_poll, next_stop_poll, Clock::now() + kMaxWait});
            auto wait = std::chrono::duration_cast<std::chrono::microseconds>(until - Clock::now());
            if (wait.count() < 0) wait = std::chrono::microseconds(0);
            if (connection_) {
                try {
                    connection_->await_notification(static_cast<long>(wait.count() / 1000000),
                                                    static_cast<long>(wait.count() % 1000000));
                } catch (const std::exception& e) {
                    log_->warn("cluster notification connection lost error=\"{}\"; reconnecting",
                               e.what());
                    receiver_.reset();
                    connection_.reset();
                    next_listen = Clock::now() + kMaxWait;
                }
            } else {
                std::unique_lock lock(mutex_);
                wake_.wait_for(lock, wait, [this] { return exit_; });
            }
        }
        receiver_.reset();
        connection_.reset();
    }

    ClusterMemberOptions options_;
    JobStore& store_;
    ClusterLease lease_;
    std::shared_ptr<spdlog::logger> log_ = logger("jobs");

    std::mutex mutex_;
    std::condition_variable wake_;
    bool exit_ = false;
    std::thread thread_;
    // Used only by the thread.
    std::unique_ptr<pqxx::connection> connection_;
    std::unique_ptr<QueuedReceiver> receiver_;

    std::atomic<std::uint64_t> notifications_{0}, renewals_{0}, lost_leases_{0},
        requeued_jobs_{0};
};

ClusterMember::ClusterMember(ClusterMemberOptions options, JobStore& store)
    : impl_(std::make_unique<Impl>(std::move(options), store)) {}

ClusterMember::~ClusterMember() = default;

void ClusterMember::start(JobEngine& engine) { impl_->start(engine); }

void ClusterMember::stop() { impl_->stop(); }

const std::string& ClusterMember::instance_id() const noexcept {
    return impl_->lease().instance_id();
}

std::vector<ClusterInstance> ClusterMember::instances() const { return impl_->lease().instances(); }

ClusterMember::Counters ClusterMember::counters() const { return impl_->counters(); }

}  // namespace wharf::host
