#include "http/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace wharf::host {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

std::string escape_label(const std::string& value) {
    std::string out;
    for (char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::string format_value(double value) {
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    if (std::isnan(value)) return "NaN";
    char buf[64];
    if (value == std::floor(value) && std::fabs(value) < 1e15) {
        std::snprintf(buf, sizeof buf, "%.0f", value);
    } else {
        std::snprintf(buf, sizeof buf, "%.9g", value);
    }
    return buf;
}

class Writer {
public:
    void family(const std::string& name, const char* type, const std::string& help) {
        out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    }
    void sample(const std::string& name, const Labels& labels, double value) {
        out_ += name;
        if (!labels.empty()) {
            out_ += "{";
            for (std::size_t i = 0; i < labels.size(); ++i) {
                if (i > 0) out_ += ",";
                out_ += labels[i].first + "=\"" + escape_label(labels[i].second) + "\"";
            }
            out_ += "}";
        }
        out_ += " " + format_value(value) + "\n";
    }
    void histogram(const std::string& name, const std::string& help, const std::string& label,
                   const Histogram& h) {
        family(name, "histogram", help);
        for (const auto& [value, series] : h.snapshot()) {
            std::uint64_t cumulative = 0;
            for (std::size_t i = 0; i < h.bounds().size(); ++i) {
                cumulative += series.counts[i];
                sample(name + "_bucket", {{label, value}, {"le", format_value(h.bounds()[i])}},
                       static_cast<double>(cumulative));
            }
            sample(name + "_bucket", {{label, value}, {"le", "+Inf"}},
                   static_cast<double>(series.count));
            sample(name + "_sum", {{label, value}}, series.sum);
            sample(name + "_count", {{label, value}}, static_cast<double>(series.count));
        }
    }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

double seconds_between(JobTime from, JobTime to) {
    return std::max(0.0, std::chrono::duration<double>(to - from).count());
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {}

void Histogram::observe(const std::string& label, double value) {
    std::lock_guard lock(mutex_);
    auto& s = series_[label];
    if (s.counts.empty()) s.counts.assign(bounds_.size() + 1, 0);
    auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
    ++s.counts[static_cast<std::size_t>(it - bounds_.begin())];
    s.sum += value;
    ++s.count;
}

std::map<std::string, Histogram::Series> Histogram::snapshot() const {
    std::lock_guard lock(mutex_);
    return series_;
}

HttpMetrics::HttpMetrics()
    : durations_({0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10}) {}

void HttpMetrics::record(const std::string& route, const std::string& method, int status,
                         double seconds) {
    {
        std::lock_guard lock(mutex_);
        ++requests_[Key{route, method, status}];
    }
    durations_.observe(route, seconds);
}

std::map<HttpMetrics::Key, std::uint64_t> HttpMetrics::requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
}

JobMetrics::JobMetrics()
    : waits_({0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400}),
      durations_({0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400}) {}

void JobMetrics::on_job_event(const wharf::JobEvent& event) {
    static const char* names[] = {"added", "started", "finished", "failed", "stopped", "removed"};
    const auto& job = event.job;
    {
        std::lock_guard lock(mutex_);
        ++events_[names[static_cast<int>(event.type)]];
    }
    switch (event.type) {
        case wharf::JobEventType::started:
            if (job.started) waits_.observe(job.queue, seconds_between(job.created, *job.started));
            break;
        case wharf::JobEventType::finished:
        case wharf::JobEventType::failed:
        case wharf::JobEventType::stopped:
            if (job.started) {
                auto end = job.finished.value_or(std::chrono::system_clock::now());
                durations_.observe(job.queue, seconds_between(*job.started, end));
            }
            break;
        default:
            break;
    }
}

std::map<std::string, std::uint64_t> JobMetrics::events() const {
    std::lock_guard lock(mutex_);
    return events_;
}

std::uint64_t ConfigRefusalCounter::observe(const std::vector<ConfigFileStatus>& files) {
    std::lock_guard lock(mutex_);
    for (const auto& f : files) {
        if (!f.refused_at) continue;
        auto [it, fresh] = seen_.emplace(f.file, *f.refused_at);
        if (fresh || it->second != *f.refused_at) {
            it->second = *f.refused_at;
            ++total_;
        }
    }
    return total_;
}

std::string render_metrics(const MetricSources& src) {
    Writer w;
    w.family("wharf_up", "gauge", "1 while the host answers");
    w.sample("wharf_up", {}, 1);
    w.family("wharf_build_info", "gauge", "host and SDK version");
    w.sample("wharf_build_info", {{"version", WHARF_HOST_VERSION}}, 1);

    if (src.store) {
        auto stats = src.store->statistics(StatisticsGroup::queue);
        std::set<std::string> queues(src.live_queues.begin(), src.live_queues.end());
        for (const auto& s : stats) queues.insert(s.key);
        auto find = [&](const std::string& q) -> const JobStatistics* {
            for (const auto& s : stats)
                if (s.key == q) return &s;
            return nullptr;
        };
        w.family("wharf_jobs", "gauge", "jobs in the store by queue and state");
        for (const auto& q : queues) {
            JobStatistics empty;
            const auto* s = find(q);
            if (!s) s = &empty;
            for (auto state : kAllJobStates)
                w.sample("wharf_jobs", {{"queue", q}, {"state", wharf::to_string(state)}},
                         static_cast<double>(s->count(state)));
        }
        w.family("wharf_queue_depth", "gauge", "jobs waiting to run (queued) by queue");
        for (const auto& q : queues) {
            const auto* s = find(q);
            w.sample("wharf_queue_depth", {{"queue", q}},
                     s ? static_cast<double>(s->count(JobState::queued)) : 0);
        }
        w.family("wharf_job_average_wait_seconds", "gauge",
                 "average enqueue-to-start wait of finished jobs in history by queue");
        for (const auto& s : stats)
            w.sample("wharf_job_average_wait_seconds", {{"queue", s.key}},
                     std::chrono::duration<double>(s.average_wait).count());
        w.family("wharf_job_average_processing_seconds", "gauge",
                 "average run time of finished jobs in history by queue");
        for (const auto& s : stats)
            w.sample("wharf_job_average_processing_seconds", {{"queue", s.key}},
                     std::chrono::duration<double>(s.average_processing).count());
    }
    if (src.queue_views) {
        w.family("wharf_jobs_running", "gauge", "jobs running now by queue (overdue included)");
        for (const auto& v : *src.queue_views)
            w.sample("wharf_jobs_running", {{"queue", v.name}}, v.running);
        w.family("wharf_jobs_stuck", "gauge",
                 "running jobs without a heartbeat for jobs.stuck_after_ms, by queue");
        for (const auto& v : *src.queue_views)
            w.sample("wharf_jobs_stuck", {{"queue", v.name}}, v.stuck);
        w.family("wharf_jobs_overdue", "gauge",
                 "running jobs still going jobs.stop_grace_ms after a stop request, by queue");
        for (const auto& v : *src.queue_views)
            w.sample("wharf_jobs_overdue", {{"queue", v.name}}, v.overdue);
    }
    if (src.jobs) {
        w.histogram("wharf_job_duration_seconds", "run time of jobs by queue, observed at run end",
                    "queue", src.jobs->durations());
        w.histogram("wharf_job_wait_seconds", "enqueue-to-start wait by queue, observed at start",
                    "queue", src.jobs->waits());
        w.family("wharf_job_events_total", "counter", "job lifecycle events seen by type");
        for (const auto& [type, n] : src.jobs->events())
            w.sample("wharf_job_events_total", {{"type", type}}, static_cast<double>(n));
    }
    if (src.plugins) {
        w.family("wharf_plugins", "gauge", "plugins by state");
        std::map<std::string, int> by_state;
        for (auto s : {PluginState::installed, PluginState::resolved, PluginState::starting,
                       PluginState::active, PluginState::stopping, PluginState::stopped,
                       PluginState::uninstalled, PluginState::failed, PluginState::quarantined})
            by_state[to_string(s)] = 0;
        for (const auto& p : *src.plugins) ++by_state[to_string(p.state)];
        for (const auto& [state, n] : by_state) w.sample("wharf_plugins", {{"state", state}}, n);
        w.family("wharf_plugin_info", "gauge", "one series per plugin file: id, version, state");
        for (const auto& p : *src.plugins)
            w.sample("wharf_plugin_info",
                     {{"file", p.file.filename().string()},
                      {"id", p.id},
                      {"version", p.version},
                      {"state", to_string(p.state)}},
                     1);
    }
    if (src.config) {
        std::uint64_t applied = 0;
        std::map<std::string, int> by_state{{"applied", 0}, {"refused", 0}, {"pending", 0}};
        for (const auto& f : *src.config) {
            applied += f.applied_version;
            ++by_state[to_string(f.state)];
        }
        w.family("wharf_config_reloads_total", "counter",
                 "configuration changes applied (each file's applied versions) and refused");
        w.sample("wharf_config_reloads_total", {{"outcome", "applied"}},
                 static_cast<double>(applied));
        w.sample("wharf_config_reloads_total", {{"outcome", "refused"}},
                 static_cast<double>(src.config_refusals));
        w.family("wharf_config_files", "gauge", "configuration files by state");
        for (const auto& [state, n] : by_state)
            w.sample("wharf_config_files", {{"state", state}}, n);
    }
    if (src.http) {
        w.family("wharf_http_requests_total", "counter",
                 "HTTP requests by route pattern, method and status");
        for (const auto& [key, n] : src.http->requests())
            w.sample("wharf_http_requests_total",
                     {{"route", key.route},
                      {"method", key.method},
                      {"status", std::to_string(key.status)}},
                     static_cast<double>(n));
        w.histogram("wharf_http_request_duration_seconds", "time to answer by route pattern",
                    "route", src.http->durations());
    }
    return w.take();
}

}  // namespace wharf::host
