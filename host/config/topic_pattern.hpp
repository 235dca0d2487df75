#pragma once
// Syntax checks for job topics and Sling queue topic patterns, as used by the
// `topic` and `topic-pattern` schema formats. Matching itself is
// wharf::queue_topic_matches in the SDK (wharf/queues.hpp), so plugins, the job
// engine and the API route the same way.
//
// A topic is segments of letters, digits, `_` and `-` separated by single
// slashes (`wharf/asset/delete`). A queue pattern is a topic, or a topic
// followed by `/.` (direct children), `/*` or `/**` (any descendant), or `*`
// alone; Sling's short forms `a/b.` and `a/b*` are accepted too.
//
// Pure functions; thread-safe.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace wharf::host {

/// A problem with a value and where in it (character offset).
struct FormatProblem {
    std::string message;
    std::size_t offset = 0;
};

/// Why `topic` is not a valid job topic, or std::nullopt.
std::optional<FormatProblem> check_topic(std::string_view topic);

/// Why `pattern` is not a valid queue topic pattern, or std::nullopt.
std::optional<FormatProblem> check_queue_topic_pattern(std::string_view pattern);

}  // namespace wharf::host
