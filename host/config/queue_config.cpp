#include "config/queue_config.hpp"

#include <cmath>
#include <thread>

namespace pt = boost::property_tree;

namespace wharf::host {
namespace {

using wharf::ConfigField;
using wharf::make_field;
using wharf::ConfigType;

}  // namespace

wharf::ConfigSchema queue_schema() {
    wharf::ConfigSchema s;
    s.name = kQueuesSchema;
    s.description = "job queues: one file per queue, named by the file";
    s.factory = true;

    s.fields.push_back(make_field("title", ConfigType::string, "the queue's name for people", ""));

    auto topics = make_field("topics", ConfigType::list,
                        "Sling queue topic patterns: a/b exact, a/b/. direct children, a/b/* "
                        "any descendant, * everything");
    topics.required = true;
    topics.minimum = 1;
    auto topic = make_field("", ConfigType::string, "a topic pattern");
    topic.format = "topic-pattern";
    topics.item.push_back(topic);
    s.fields.push_back(topics);

    auto type =
        make_field("type", ConfigType::string,
              "ordered (one at a time, in order), parallel, or topic-round-robin", "parallel");
    type.one_of = {"ordered", "parallel", "topic-round-robin"};
    s.fields.push_back(type);

    s.fields.push_back(make_field("max_parallel", ConfigType::number,
                             "jobs at once: a count >= 1, -1 for all cores, or a fraction "
                             "0 < v < 1 of the cores",
                             "0.5"));

    auto retries = make_field("retries", ConfigType::integer,
                         "retries after a failed run; -1 retries without end", "10");
    retries.minimum = -1;
    retries.maximum = 1000000;
    s.fields.push_back(retries);

    auto delay = make_field("retry_delay_ms", ConfigType::integer,
                       "wait before the first retry, in milliseconds", "2000");
    delay.minimum = 0;
    delay.maximum = 86400000;
    s.fields.push_back(delay);

    auto backoff = make_field("retry_backoff", ConfigType::number,
                         "each further retry waits this many times longer (1 = constant)", "1");
    backoff.minimum = 1;
    backoff.maximum = 10;
    s.fields.push_back(backoff);

    auto delay_max = make_field("retry_delay_max_ms", ConfigType::integer,
                           "longest wait between retries, in milliseconds", "3600000");
    delay_max.minimum = 0;
    delay_max.maximum = 604800000;
    s.fields.push_back(delay_max);

    auto priority = make_field("priority", ConfigType::string,
                          "which queue's jobs start first when workers are scarce", "normal");
    priority.one_of = {"low", "normal", "high"};
    s.fields.push_back(priority);

    auto ranking = make_field("ranking", ConfigType::integer,
                         "when several queues match a topic, the highest ranking wins", "0");
    ranking.minimum = -1000000;
    ranking.maximum = 1000000;
    s.fields.push_back(ranking);

    s.fields.push_back(make_field("keep_jobs", ConfigType::boolean,
                             "keep succeeded jobs in the history until purged (failed ones "
                             "are always kept)",
                             "true"));
    return s;
}

std::vector<CheckProblem> check_queue(const pt::ptree& values) {
    std::vector<CheckProblem> problems;
    double v = values.get<double>("max_parallel", 0.5);
    bool integral = std::floor(v) == v;
    bool ok = (integral && (v >= 1 || v == -1)) || (v > 0 && v < 1);
    if (!ok) {
        problems.push_back(
            {"max_parallel", "invalid max_parallel " + values.get<std::string>("max_parallel") +
                                 ": use a count >= 1, -1 for all cores, or a fraction between 0 "
                                 "and 1 (0.5 = half the cores)"});
    }
    if (values.get<long>("retry_delay_max_ms", 0) < values.get<long>("retry_delay_ms", 0)) {
        problems.push_back(
            {"retry_delay_max_ms", "retry_delay_max_ms must not be less than retry_delay_ms"});
    }
    return problems;
}

unsigned resolve_max_parallel(double configured, unsigned cores) {
    cores = std::max(1u, cores);
    if (configured < 0) return cores;
    if (configured < 1) {
        auto n = static_cast<unsigned>(std::lround(cores * configured));
        return std::max(1u, n);
    }
    return static_cast<unsigned>(configured);
}

unsigned detect_cores() { return std::max(1u, std::thread::hardware_concurrency()); }

wharf::QueueSettings queue_settings(const std::string& name, const pt::ptree& values,
                                    unsigned cores) {
    wharf::QueueSettings q;
    q.name = name;
    q.title = values.get<std::string>("title", "");
    if (auto topics = values.get_child_optional("topics"))
        for (const auto& [k, t] : *topics) q.topics.push_back(t.data());
    auto type = values.get<std::string>("type", "parallel");
    q.type = type == "ordered"             ? wharf::QueueType::ordered
             : type == "topic-round-robin" ? wharf::QueueType::topic_round_robin
                                           : wharf::QueueType::parallel;
    q.max_parallel_configured = values.get<double>("max_parallel", 0.5);
    q.max_parallel = q.type == wharf::QueueType::ordered
                         ? 1
                         : resolve_max_parallel(q.max_parallel_configured, cores);
    q.retries = values.get<std::int64_t>("retries", 10);
    q.retry_delay = std::chrono::milliseconds(values.get<long>("retry_delay_ms", 2000));
    q.retry_backoff = values.get<double>("retry_backoff", 1.0);
    q.retry_delay_max = std::chrono::milliseconds(values.get<long>("retry_delay_max_ms", 3600000));
    auto priority = values.get<std::string>("priority", "normal");
    q.priority = priority == "low"    ? wharf::QueuePriority::low
                 : priority == "high" ? wharf::QueuePriority::high
                                      : wharf::QueuePriority::normal;
    q.ranking = values.get<std::int32_t>("ranking", 0);
    q.keep_jobs = values.get<bool>("keep_jobs", true);
    return q;
}

}  // namespace wharf::host
