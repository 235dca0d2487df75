#include "jobs/job_routing.hpp"

#include <algorithm>
#include <cctype>

namespace wharf::host {

bool is_valid_job_topic(std::string_view topic) {
    if (topic.empty() || topic.size() > 255) return false;
    bool token_empty = true;
    for (char c : topic) {
        if (c == '/') {
            if (token_empty) return false;
            token_empty = true;
        } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') {
            token_empty = false;
        } else {
            return false;
        }
    }
    return !token_empty;
}

std::optional<std::size_t> consumer_match_rank(std::string_view pattern, std::string_view topic) {
    if (pattern.empty() || pattern == "*" || pattern == "**") return std::nullopt;
    auto ends_with = [&](std::string_view suffix) {
        return pattern.size() > suffix.size() &&
               pattern.substr(pattern.size() - suffix.size()) == suffix;
    };
    auto below = [&](std::string_view parent) -> std::optional<std::string_view> {
        if (topic.size() <= parent.size() + 1 || topic.substr(0, parent.size()) != parent ||
            topic[parent.size()] != '/')
            return std::nullopt;
        return topic.substr(parent.size() + 1);
    };
    if (ends_with("/**")) {
        auto rest = below(pattern.substr(0, pattern.size() - 3));
        if (!rest) return std::nullopt;
        return 2 + static_cast<std::size_t>(std::count(rest->begin(), rest->end(), '/'));
    }
    if (ends_with("/*")) {
        auto rest = below(pattern.substr(0, pattern.size() - 2));
        if (!rest || rest->find('/') != std::string_view::npos) return std::nullopt;
        return 1;
    }
    if (pattern == topic) return 0;
    return std::nullopt;
}

std::optional<std::size_t> select_consumer(const std::vector<ConsumerCandidate>& candidates,
                                           std::string_view topic) {
    std::optional<std::size_t> best;
    std::size_t best_rank = 0;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        std::optional<std::size_t> rank;
        for (const auto& pattern : candidates[i].topics) {
            auto r = consumer_match_rank(pattern, topic);
            if (r && (!rank || *r < *rank)) rank = r;
        }
        if (!rank) continue;
        if (!best || *rank < best_rank) {
            best = i;
            best_rank = *rank;
            continue;
        }
        if (*rank > best_rank) continue;
        const auto& a = candidates[i];
        const auto& b = candidates[*best];
        if (a.ranking > b.ranking || (a.ranking == b.ranking && a.service_id < b.service_id))
            best = i;
    }
    return best;
}

bool queue_takes(const wharf::QueueSettings& settings, std::string_view topic) {
    return std::any_of(settings.topics.begin(), settings.topics.end(),
                       [&](const std::string& p) { return wharf::queue_topic_matches(p, topic); });
}

std::string select_queue(const std::vector<QueueCandidate>& queues, std::string_view topic) {
    const QueueCandidate* best = nullptr;
    for (const auto& q : queues) {
        if (!q.settings || !queue_takes(*q.settings, topic)) continue;
        if (!best || q.settings->ranking > best->settings->ranking ||
            (q.settings->ranking == best->settings->ranking && q.service_id < best->service_id))
            best = &q;
    }
    return best ? best->settings->name : std::string(kDefaultQueueName);
}

}  // namespace wharf::host
