// Repository building blocks without a database: path rules, property value
// packing, link extraction and rewriting.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "repository/links.hpp"
#include "repository/path.hpp"
#include "repository/value_codec.hpp"
#include "wharf/paths.hpp"
#include "wharf/repository.hpp"

using namespace wharf;
using namespace wharf::host::repo;

namespace {

std::vector<std::string> link_targets(std::string_view text) {
    std::vector<std::string> out;
    for (auto l : find_links(text)) out.emplace_back(text.substr(l.begin, l.end - l.begin));
    return out;
}

}  // namespace

TEST_CASE("valid repository paths are accepted", "[repository][path]") {
    for (const char* p : {"/", "/content", "/content/dam/a b/ü.png", "/a/b-c/d.e", "/a/...x"})
        CHECK(path_problem(p).empty());
}

TEST_CASE("malformed paths are refused with the reason", "[repository][path]") {
    CHECK(path_problem("") == "empty path");
    CHECK_THAT(path_problem("content"), Catch::Contains("not absolute"));
    CHECK_THAT(path_problem("/a/"), Catch::Contains("trailing '/'"));
    CHECK_THAT(path_problem("/a//b"), Catch::Contains("empty segment at byte 3"));
    CHECK_THAT(path_problem("/a/../b"), Catch::Contains("segment '..'"));
    CHECK_THAT(path_problem("/a/./b"), Catch::Contains("segment '.'"));
    CHECK_THAT(path_problem(std::string("/a\nb")), Catch::Contains("control character 0x0a"));
    CHECK_THAT(path_problem(std::string("/a\0b", 4)), Catch::Contains("control character 0x00"));
    CHECK_THAT(path_problem("/a\xff"), Catch::Contains("invalid UTF-8"));
    CHECK_THAT(path_problem("/" + std::string(151, 'x')), Catch::Contains("longer than 150"));
    std::string long_path;
    while (long_path.size() <= 1024) long_path += "/abcdefgh";
    CHECK_THAT(path_problem(long_path), Catch::Contains("longer than 1024"));
    try {
        require_valid_path("/a//b", "source");
        FAIL("no exception");
    } catch (const RepositoryError& e) {
        CHECK(e.code() == RepositoryError::Code::invalid_path);
        CHECK_THAT(e.what(), Catch::Contains("invalid source \"/a//b\": empty segment"));
    }
}

TEST_CASE("property names are 1..255 bytes without '/', control characters or a leading ':'",
          "[repository][path]") {
    CHECK(property_name_problem("dc:title").empty());
    CHECK_FALSE(property_name_problem("").empty());
    CHECK_FALSE(property_name_problem("a/b").empty());
    CHECK_FALSE(property_name_problem(":text").empty());
    CHECK_FALSE(property_name_problem("a\tb").empty());
    CHECK_FALSE(property_name_problem(std::string(256, 'n')).empty());
}

TEST_CASE("a subtree range holds the root and its descendants but not prefix siblings",
          "[repository][path]") {
    auto r = subtree_range("/a/b");
    auto in = [&](std::string_view p) {
        return p >= r.low && p < r.high && (p == r.low || p >= r.children);
    };
    CHECK(in("/a/b"));
    CHECK(in("/a/b/c"));
    CHECK(in("/a/b/c/d"));
    CHECK_FALSE(in("/a/b-c"));
    CHECK_FALSE(in("/a/b.c/d"));
    CHECK_FALSE(in("/a/bc"));
    CHECK_FALSE(in("/a/b0"));
    CHECK_FALSE(in("/a"));
    auto all = subtree_range("/");
    CHECK(std::string_view("/zzz/\xc3\xbc") < all.high);
    CHECK(is_same_or_under("/a/b/c", "/a/b"));
    CHECK_FALSE(is_same_or_under("/a/bc", "/a/b"));
    CHECK(parent_path("/a") == "/");
    CHECK(parent_path("/a/b/c") == "/a/b");
}

TEST_CASE("packed values round-trip every type exactly", "[repository][codec]") {
    std::vector<Scalar> doubles = {0.1,
                                   -0.0,
                                   std::numeric_limits<double>::denorm_min(),
                                   std::numeric_limits<double>::max(),
                                   -std::numeric_limits<double>::infinity(),
                                   std::numeric_limits<double>::quiet_NaN()};
    auto back = unpack_values(PropertyType::double_, pack_values(PropertyType::double_, doubles));
    REQUIRE(back.size() == doubles.size());
    for (std::size_t i = 0; i < doubles.size(); ++i) {
        auto a = std::get<double>(doubles[i]), b = std::get<double>(back[i]);
        CHECK(std::memcmp(&a, &b, sizeof a) == 0);
    }
    std::vector<Scalar> strings = {std::string(), std::string("a|b,\"c\"\n"),
                                   std::string("nul\0inside", 10), std::string(300, 'x')};
    CHECK(unpack_values(PropertyType::string, pack_values(PropertyType::string, strings)) ==
          strings);
    std::vector<Scalar> longs = {std::int64_t{0}, std::numeric_limits<std::int64_t>::min(),
                                 std::numeric_limits<std::int64_t>::max()};
    CHECK(unpack_values(PropertyType::long_, pack_values(PropertyType::long_, longs)) == longs);
    std::vector<Scalar> dates = {Date(std::chrono::milliseconds(-62'135'596'800'000LL)),
                                 Date(std::chrono::milliseconds(1'700'000'000'123LL))};
    CHECK(unpack_values(PropertyType::date, pack_values(PropertyType::date, dates)) == dates);
    std::vector<Scalar> bools = {true, false, true};
    CHECK(unpack_values(PropertyType::boolean, pack_values(PropertyType::boolean, bools)) == bools);
    CHECK_THROWS_AS(unpack_values(PropertyType::long_, "abc"), RepositoryError);
}

TEST_CASE("property values of the wrong type or multiplicity are described",
          "[repository][codec]") {
    CHECK(property_problem(Property::long_(3)).empty());
    Property wrong{PropertyType::long_, false, {std::string("3")}};
    CHECK(property_problem(wrong) == "value 0 is a String, the property is Long");
    Property two{PropertyType::string, false, {std::string("a"), std::string("b")}};
    CHECK(property_problem(two) == "single-valued but has 2 values");
    CHECK(property_problem(Property::multi(PropertyType::string, {})).empty());
    CHECK_THAT(property_problem(Property::path("relative/x")), Catch::Contains("not a valid path"));
    CHECK_THAT(property_problem(Property::multi(PropertyType::path, {PathRef{"/a"}, 1.5})),
               Catch::Contains("value 1 is a Double, the property is Path"));
}

TEST_CASE("links in text are found in href and src with either quote", "[repository][links]") {
    std::string text =
        "<a href=\"/content/site/a.html\">x</a> <img SRC='/content/dam/p.png?w=10'>"
        "<a data-href=\"/content/no\"> <a href = \"/content/site/b#top\"> "
        "<a href=\"https://example.com/content/x\"> <a href=\"/other/x\"> "
        "<img src=\"/content/dam/x.html\"> <a href=\"/content/bad//path\"> <a href=\"/content\">";
    CHECK(link_targets(text) == std::vector<std::string>{"/content/site/a", "/content/dam/p.png",
                                                         "/content/site/b", "/content/dam/x.html",
                                                         "/content"});
    CHECK(link_targets("<a href=\"/content/unterminated").empty());
}

TEST_CASE("rewriting links replaces the prefix and keeps suffixes", "[repository][links]") {
    std::string text =
        "<a href=\"/content/site/a.html\">a</a><a href='/content/site/a/b?x=1'>b</a>"
        "<a href=\"/content/site/ab\">not under</a>";
    CHECK(rewrite_links(text, "/content/site/a", "/content/new") == 2);
    CHECK(text ==
          "<a href=\"/content/new.html\">a</a><a href='/content/new/b?x=1'>b</a>"
          "<a href=\"/content/site/ab\">not under</a>");
    CHECK(rewrite_links(text, "/content/none", "/content/x") == 0);
}

TEST_CASE("a nested path's nearest listed ancestor is found, a sibling prefix is not one",
          "[repository][path]") {
    std::set<std::string, std::less<>> listed = {"/content/dam", "/content/dam/a/b", "/x"};
    auto in = [&listed](std::string_view p) { return listed.count(p) > 0; };
    CHECK(wharf::listed_ancestor("/content/dam/a/b/c", in) == "/content/dam/a/b");
    CHECK(wharf::listed_ancestor("/content/dam/a", in) == "/content/dam");
    CHECK(wharf::listed_ancestor("/content/dam", in).empty());  // itself is not its ancestor
    CHECK(wharf::listed_ancestor("/content/damage/a", in).empty());
    CHECK(wharf::listed_ancestor("/x", in).empty());
}

TEST_CASE("a request's checkpoint name is the prefix and the FNV-1a hash of its text",
          "[repository][checkpoint]") {
    // The names earlier versions of move and rollout wrote (their offset
    // basis, 1469598103934665603 = 0x14650fb0739d0383): a job interrupted by
    // an upgrade must find its checkpoint under the same name.
    CHECK(wharf::request_checkpoint_name("wharf.move/move/", "") ==
          "wharf.move/move/14650fb0739d0383");
    CHECK(wharf::request_checkpoint_name("p/", "a") == "p/44bd8ad473cd9906");
    CHECK(wharf::request_checkpoint_name("p/", "a") != wharf::request_checkpoint_name("p/", "b"));
}
