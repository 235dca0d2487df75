#include "config/topic_pattern.hpp"

namespace wharf::host {
namespace {

bool topic_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

std::optional<FormatProblem> check_segments(std::string_view topic, std::string_view what) {
    if (topic.empty()) return FormatProblem{std::string(what) + " is empty", 0};
    if (topic.front() == '/')
        return FormatProblem{std::string(what) + " must not start with '/'", 0};
    for (std::size_t i = 0; i < topic.size(); ++i) {
        char c = topic[i];
        if (c == '/') {
            if (i + 1 == topic.size())
                return FormatProblem{std::string(what) + " must not end with '/'", i};
            if (topic[i + 1] == '/')
                return FormatProblem{std::string(what) + " has an empty segment ('//')", i};
            continue;
        }
        if (c == '*' || c == '.') {
            return FormatProblem{"'" + std::string(1, c) +
                                     "' is only allowed at the end of a queue topic pattern "
                                     "('a/b/*', 'a/b/.') or as '*' alone",
                                 i};
        }
        if (!topic_char(c)) {
            std::string shown = c == ' ' ? "a space" : "'" + std::string(1, c) + "'";
            return FormatProblem{std::string(what) + " contains " + shown +
                                     "; use letters, digits, '_', '-' and '/'",
                                 i};
        }
    }
    return std::nullopt;
}

}  // namespace

std::optional<FormatProblem> check_topic(std::string_view topic) {
    return check_segments(topic, "topic");
}

std::optional<FormatProblem> check_queue_topic_pattern(std::string_view pattern) {
    if (pattern == "*") return std::nullopt;
    std::string_view base = pattern;
    for (std::string_view suffix : {"/**", "/*", "/.", "*", "."}) {
        if (base.size() > suffix.size() && base.substr(base.size() - suffix.size()) == suffix) {
            base.remove_suffix(suffix.size());
            break;
        }
    }
    return check_segments(base, "topic pattern");
}

}  // namespace wharf::host
