#pragma once
// Job routing rules, as pure functions: which topics are valid, which queue a
// topic goes to, and which consumer runs it.
//
// Two topic syntaxes meet here, as in Apache Sling:
//   - queue topics (wharf/queues.hpp, queue_topic_matches): `a/b`, `a/b/.`
//     (children), `a/b/*` or `a/b/**` (descendants), `*` (everything);
//   - consumer topics (`job.topics` of a wharf.JobConsumer): `a/b` exactly,
//     `a/b/*` the direct children of a/b, `a/b/**` every descendant of a/b.
//     `*` or `**` alone are ignored, as in Sling.
// A consumer is chosen by specificity first (exact, then `parent/*`, then the
// nearest `ancestor/**`), then by service ranking (higher first), then by
// service id (older first).
//
// A queue is chosen by the queues' ranking (higher first, then older service
// first): the first whose topics match wins; none matching routes to the queue
// named "default" (whether or not it exists right now: its jobs then wait).
//
// Pure functions over values; thread-safe.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wharf/queues.hpp"

namespace wharf::host {

/// The queue jobs go to when no queue's topics match.
inline constexpr const char* kDefaultQueueName = "default";

/// Tokens of letters, digits, `_` and `-`, separated by single `/`; no
/// leading or trailing `/`; at most 255 characters.
bool is_valid_job_topic(std::string_view topic);

/// How well one consumer pattern matches a topic; nullopt when it does not.
/// Lower is better: 0 exact, 1 `parent/*`, 2 + distance for `ancestor/**`
/// (distance = segments between the ancestor and the topic, 1 for a child).
std::optional<std::size_t> consumer_match_rank(std::string_view pattern, std::string_view topic);

/// One registered consumer as routing sees it.
struct ConsumerCandidate {
    std::uint64_t service_id = 0;
    std::int32_t ranking = 0;
    std::vector<std::string> topics;  ///< `job.topics`
};

/// The index into `candidates` of the consumer that runs `topic`, or nullopt.
std::optional<std::size_t> select_consumer(const std::vector<ConsumerCandidate>& candidates,
                                           std::string_view topic);

/// One live queue as routing sees it.
struct QueueCandidate {
    std::uint64_t service_id = 0;
    std::shared_ptr<const wharf::QueueSettings> settings;
};

/// The name of the queue `topic` goes to (see above).
std::string select_queue(const std::vector<QueueCandidate>& queues, std::string_view topic);

/// Whether one of `settings`' topic patterns matches `topic`.
bool queue_takes(const wharf::QueueSettings& settings, std::string_view topic);

}  // namespace wharf::host
