#pragma once
// Job queues as plugins, the job engine and the API see them.
//
// Each file `queues/<name>.yaml` in the host's config directory is one live
// queue. The host registers one wharf::Queue service per file under
// `interfaces::kQueue`, modifies it (trackers get `modified`) when the file
// changes and unregisters it when the file goes away. Find queues through the
// service registry, never through the configuration layer.
//
// Service properties: every key of the queue file with defaults filled
// (`title`, `topics` as a list, `type`, `max_parallel` as configured,
// `retries`, `retry_delay_ms`, `retry_backoff`, `retry_delay_max_ms`,
// `priority`, `ranking`, `keep_jobs`), plus
//   `queue.name`          the file name without `.yaml`
//   `queue.max_parallel`  max_parallel resolved to a count for this host
//   `config.factory`      "queues" (the factory configuration's name)
//   `config.pid`          "queues~<name>"
//   `config.file`         the file, relative to the config directory
//   `config.version`      increases with every applied change of the file
// The service's ranking is the queue's `ranking`.
//
// Topic patterns follow Apache Sling's queue syntax: `a/b` exactly that
// topic; `a/b/.` the direct children of a/b (`a/b/c`, not `a/b/c/d`);
// `a/b/*` (or `a/b/**`) every descendant of a/b; `*` alone every topic.
//
// Thread-safety: every method may be called from any thread. settings()
// returns an immutable snapshot; a later change publishes a new one.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "wharf/services.hpp"

namespace wharf {

enum class QueueType {
    ordered,            ///< one job at a time, in order; a retry holds the queue
    parallel,           ///< up to max_parallel jobs at once
    topic_round_robin,  ///< parallel, starting jobs round-robin over topics
};

enum class QueuePriority { low, normal, high };

/// One queue's configuration, resolved for this host.
struct QueueSettings {
    std::string name;                 ///< file name without .yaml
    std::string title;                ///< for people
    std::vector<std::string> topics;  ///< Sling queue topic patterns
    QueueType type = QueueType::parallel;
    double max_parallel_configured = 0.5;  ///< as written: count, -1 or fraction
    unsigned max_parallel = 1;             ///< resolved count, >= 1 (1 for ordered)
    std::int64_t retries = 10;             ///< retries after a failure; -1 = endless
    std::chrono::milliseconds retry_delay{2000};
    double retry_backoff = 1.0;  ///< each further retry waits this many times longer
    std::chrono::milliseconds retry_delay_max{3600000};
    QueuePriority priority = QueuePriority::normal;
    std::int32_t ranking = 0;   ///< higher wins when several queues match a topic
    bool keep_jobs = true;      ///< keep succeeded jobs in history (until purged)
    std::uint64_t version = 0;  ///< config.version

    /// The delay before retry number `retry` (1 = the first retry):
    /// retry_delay * retry_backoff^(retry-1), capped at retry_delay_max.
    std::chrono::milliseconds delay_before_retry(unsigned retry) const {
        double d = static_cast<double>(retry_delay.count());
        for (unsigned i = 1; i < retry && d < static_cast<double>(retry_delay_max.count()); ++i)
            d *= retry_backoff;
        auto capped = d < static_cast<double>(retry_delay_max.count())
                          ? static_cast<std::chrono::milliseconds::rep>(d)
                          : retry_delay_max.count();
        return std::chrono::milliseconds(capped);
    }
};

/// Whether `topic` matches one Sling queue topic `pattern` (see above).
inline bool queue_topic_matches(std::string_view pattern, std::string_view topic) {
    if (pattern == "*") return true;
    auto strip = [&](std::string_view suffix) {
        if (pattern.size() >= suffix.size() &&
            pattern.substr(pattern.size() - suffix.size()) == suffix) {
            pattern.remove_suffix(suffix.size());
            return true;
        }
        return false;
    };
    bool descendants = strip("**") || strip("*");
    bool children = !descendants && strip(".");
    if (!descendants && !children) return pattern == topic;
    if (!pattern.empty() && pattern.back() == '/') pattern.remove_suffix(1);
    if (topic.size() <= pattern.size() + 1 || topic.substr(0, pattern.size()) != pattern ||
        topic[pattern.size()] != '/')
        return false;
    return descendants || topic.find('/', pattern.size() + 1) == std::string_view::npos;
}

/// A live queue.
class Queue {
public:
    static constexpr const char* kInterfaceName = interfaces::kQueue;
    virtual ~Queue() = default;

    /// The queue's name (stable for the life of the service).
    virtual const std::string& name() const = 0;

    /// The configuration in force now.
    virtual std::shared_ptr<const QueueSettings> settings() const = 0;

    /// Whether one of the queue's topic patterns matches `topic`.
    virtual bool matches(std::string_view topic) const = 0;
};

}  // namespace wharf
