#pragma once
// Metrics the admin API exposes at GET /metrics in the Prometheus text
// exposition format (version 0.0.4).
//
// Two kinds of numbers: those counted as things happen (HTTP requests by
// route and status; job waits and run durations, observed by JobMetrics as a
// wharf::JobListener the host registers), and those read at scrape time from
// their owners (jobs by queue and state from the JobStore's statistics,
// plugin states, configuration files). Nothing here keeps a copy of a job.
//
// Label values are bounded: routes are the route patterns, never raw paths;
// queues and plugin ids are configuration, not request data.
//
// Thread-safety: every method may be called from any thread.

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "config/config_admin.hpp"
#include "jobs/job_engine.hpp"
#include "jobs/job_store.hpp"
#include "modules/plugin_manager.hpp"
#include "wharf/jobs.hpp"

namespace wharf::host {

/// A histogram with fixed upper bounds (seconds), one series per label value.
class Histogram {
public:
    explicit Histogram(std::vector<double> bounds);
    void observe(const std::string& label, double value);

    struct Series {
        std::vector<std::uint64_t> counts;  ///< per bound, not cumulative; last = +Inf
        double sum = 0;
        std::uint64_t count = 0;
    };
    const std::vector<double>& bounds() const noexcept { return bounds_; }
    std::map<std::string, Series> snapshot() const;

private:
    std::vector<double> bounds_;
    mutable std::mutex mutex_;
    std::map<std::string, Series> series_;
};

/// Counts requests by route pattern, method and status, and their durations.
class HttpMetrics {
public:
    HttpMetrics();
    void record(const std::string& route, const std::string& method, int status, double seconds);

    struct Key {
        std::string route;
        std::string method;
        int status = 0;
        auto operator<=>(const Key&) const = default;
    };
    std::map<Key, std::uint64_t> requests() const;
    const Histogram& durations() const noexcept { return durations_; }

private:
    mutable std::mutex mutex_;
    std::map<Key, std::uint64_t> requests_;
    Histogram durations_;
};

/// Observes job lifecycle events: enqueue-to-start wait when a run starts,
/// run duration when it ends (finished, failed or stopped), by queue.
class JobMetrics final : public wharf::JobListener {
public:
    JobMetrics();
    void on_job_event(const wharf::JobEvent& event) override;

    const Histogram& waits() const noexcept { return waits_; }
    const Histogram& durations() const noexcept { return durations_; }
    std::map<std::string, std::uint64_t> events() const;  ///< by event type

private:
    Histogram waits_;
    Histogram durations_;
    mutable std::mutex mutex_;
    std::map<std::string, std::uint64_t> events_;
};

/// Counts configuration refusals as seen at scrape time: ConfigAdmin keeps
/// the last refusal per file (refused_at), so a refusal counts once when its
/// time is first seen. Two refusals of one file between scrapes count once.
class ConfigRefusalCounter {
public:
    std::uint64_t observe(const std::vector<ConfigFileStatus>& files);

private:
    std::mutex mutex_;
    std::map<std::string, std::chrono::system_clock::time_point> seen_;
    std::uint64_t total_ = 0;
};

/// Everything a scrape reads. Null or empty members leave their metrics out.
struct MetricSources {
    const JobStore* store = nullptr;
    std::vector<std::string> live_queues;  ///< queues registered now (depth 0 if no jobs)
    /// The engine's view of running jobs per queue (stuck and overdue runs).
    const std::vector<QueueView>* queue_views = nullptr;
    const std::vector<PluginInfo>* plugins = nullptr;
    const std::vector<ConfigFileStatus>* config = nullptr;
    std::uint64_t config_refusals = 0;
    const HttpMetrics* http = nullptr;
    const JobMetrics* jobs = nullptr;
};

/// The exposition text.
std::string render_metrics(const MetricSources& sources);

}  // namespace wharf::host
