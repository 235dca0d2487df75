// Routing rules of the job engine: topic validity, Sling's consumer selection
// and queue selection by ranking with the "default" fallback.
#include <catch2/catch.hpp>

#include "jobs/job_routing.hpp"

using namespace wharf::host;

namespace {

QueueCandidate queue(std::uint64_t id, std::string name, std::vector<std::string> topics,
                     std::int32_t ranking = 0) {
    auto s = std::make_shared<wharf::QueueSettings>();
    s->name = std::move(name);
    s->topics = std::move(topics);
    s->ranking = ranking;
    return {id, s};
}

}  // namespace

TEST_CASE("job topics are tokens of letters, digits, _ and - separated by single slashes") {
    CHECK(is_valid_job_topic("wharf/asset/delete"));
    CHECK(is_valid_job_topic("a_b-c/D9"));
    CHECK_FALSE(is_valid_job_topic(""));
    CHECK_FALSE(is_valid_job_topic("/wharf"));
    CHECK_FALSE(is_valid_job_topic("wharf/"));
    CHECK_FALSE(is_valid_job_topic("wharf//x"));
    CHECK_FALSE(is_valid_job_topic("wharf/a b"));
    CHECK_FALSE(is_valid_job_topic("wharf/*"));
    CHECK_FALSE(is_valid_job_topic(std::string(256, 'a')));
}

TEST_CASE("consumer topics: exact, parent/* for direct children, ancestor/** at any depth") {
    CHECK(consumer_match_rank("a/b", "a/b") == 0u);
    CHECK(consumer_match_rank("a/*", "a/b") == 1u);
    CHECK_FALSE(consumer_match_rank("a/*", "a/b/c"));
    CHECK_FALSE(consumer_match_rank("a/*", "a"));
    CHECK(consumer_match_rank("a/**", "a/b") == 2u);
    CHECK(consumer_match_rank("a/**", "a/b/c") == 3u);
    CHECK_FALSE(consumer_match_rank("a/**", "a"));
    CHECK_FALSE(consumer_match_rank("*", "a"));
    CHECK_FALSE(consumer_match_rank("**", "a/b"));
    CHECK_FALSE(consumer_match_rank("a/b", "a/bc"));
}

TEST_CASE("the exact consumer wins over parent/*, which wins over the nearest ancestor/**") {
    std::vector<ConsumerCandidate> c = {
        {1, 100, {"a/**"}}, {2, 50, {"a/b/**"}}, {3, 0, {"a/b/*"}}, {4, -10, {"a/b/c"}}};
    CHECK(select_consumer(c, "a/b/c") == 3u);
    CHECK(select_consumer(c, "a/b/d") == 2u);
    CHECK(select_consumer(c, "a/b/d/e") == 1u);  // a/b/** is nearer: distance 2 vs 3
    CHECK(select_consumer(c, "a/x") == 0u);
    CHECK_FALSE(select_consumer(c, "b/x"));
}

TEST_CASE("between equally specific consumers the higher ranking, then the older service wins") {
    std::vector<ConsumerCandidate> c = {{7, 0, {"t/x"}}, {5, 0, {"t/x"}}, {9, 3, {"t/*"}}};
    CHECK(select_consumer(c, "t/x") == 1u);
    c.push_back({11, 1, {"t/x"}});
    CHECK(select_consumer(c, "t/x") == 3u);
}

TEST_CASE("a topic goes to the highest ranking matching queue, else to default") {
    std::vector<QueueCandidate> q = {queue(1, "default", {"wharf/*"}, -100),
                                     queue(2, "moves", {"wharf/page/move"}),
                                     queue(3, "children", {"wharf/asset/."}, 5)};
    CHECK(select_queue(q, "wharf/page/move") == "moves");
    CHECK(select_queue(q, "wharf/asset/delete") == "children");
    CHECK(select_queue(q, "wharf/asset/delete/deep") == "default");
    CHECK(select_queue(q, "other/topic") == "default");
    CHECK(select_queue({}, "x") == "default");
}
