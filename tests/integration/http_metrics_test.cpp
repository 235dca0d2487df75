// GET /metrics: the Prometheus exposition is valid (promtool when installed,
// and always a strict parser here) and counts what happened.
#include <catch2/catch.hpp>
#include <cstdio>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "integration/http_test_support.hpp"

using namespace std::chrono_literals;
using wharf::JobState;
using wharf::test::ApiHost;
using wharf::test::kAdminToken;
using wharf::test::kOperatorToken;
using wharf::test::kViewerToken;

namespace {

// Parses the text format strictly: every sample belongs to a family declared
// by # TYPE before it, names and labels are well formed, values are numbers,
// histogram buckets are cumulative and end in +Inf equal to _count. Returns
// "series -> value"; fails the test on any problem.
std::map<std::string, double> parse_exposition(const std::string& text) {
    static const std::regex sample_re(
        R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (\S+)$)");
    static const std::regex type_re(
        R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
    std::map<std::string, std::string> types;
    std::map<std::string, double> out;
    std::set<std::string> seen;
    std::istringstream in(text);
    std::string line;
    std::string last_bucket_series;
    double last_bucket = -1;
    while (std::getline(in, line)) {
        INFO(line);
        REQUIRE(!line.empty());
        if (line.rfind("# HELP ", 0) == 0) continue;
        std::smatch m;
        if (line.rfind("# TYPE ", 0) == 0) {
            REQUIRE(std::regex_match(line, m, type_re));
            REQUIRE(types.emplace(m[1], m[2]).second);
            continue;
        }
        REQUIRE(line[0] != '#');
        REQUIRE(std::regex_match(line, m, sample_re));
        std::string name = m[1];
        std::string family = name;
        for (const char* suffix : {"_bucket", "_sum", "_count"}) {
            std::string s = suffix;
            if (!types.count(family) && name.size() > s.size() &&
                name.compare(name.size() - s.size(), s.size(), s) == 0)
                family = name.substr(0, name.size() - s.size());
        }
        REQUIRE(types.count(family));
        if (types[family] == "counter") REQUIRE(name.size() > 6);
        std::string value = m[4];
        double v = value == "+Inf" ? INFINITY : std::stod(value);
        std::string series = name + "{" + std::string(m[3]) + "}";
        REQUIRE(seen.insert(series).second);
        out[series] = v;
        if (name.size() > 7 && name.compare(name.size() - 7, 7, "_bucket") == 0) {
            auto labels = std::regex_replace(std::string(m[3]), std::regex(R"(,?le="[^"]*")"), "");
            if (labels == last_bucket_series) REQUIRE(v >= last_bucket);
            last_bucket_series = labels;
            last_bucket = v;
        }
    }
    return out;
}

bool promtool_available() { return std::system("command -v promtool >/dev/null 2>&1") == 0; }

}  // namespace

TEST_CASE("/metrics is valid exposition text and counts jobs, plugins, config and requests",
          "[http][metrics]") {
    ApiHost host;
    auto op = host.client(kOperatorToken);
    for (int i = 0; i < 3; ++i)
        REQUIRE(op.post_json("/api/jobs", R"({"topic":"test/metrics"})").status == 201);
    host.job_in_state("test/noretry/m", R"({"outcome":"failed"})", JobState::given_up);
    REQUIRE(wharf::test::eventually([&] {
        wharf::JobFilter f;
        f.states = {JobState::succeeded};
        return host.store->list(f).jobs.size() == 3;
    }));
    op.get("/api/jobs/424242");  // a 404 to count
    wharf::test::write_text(host.dir / "configs/purge.yaml", "schedule: 99 * * * * ?\n");
    REQUIRE(host.client(kAdminToken).post_json("/api/config/rescan", "").status == 200);
    REQUIRE(host.plugins->wait_until([](const auto& all) { return all.size() == 2; }, 10s));

    auto r = host.client(kViewerToken).get("/metrics");
    REQUIRE(r.status == 200);
    CHECK(r.header("Content-Type").find("text/plain; version=0.0.4") == 0);
    auto series = parse_exposition(r.body);

    CHECK(series["wharf_up{}"] == 1);
    CHECK(series[R"(wharf_jobs{queue="test",state="succeeded"})"] == 3);
    CHECK(series[R"(wharf_jobs{queue="test-noretry",state="given_up"})"] == 1);
    CHECK(series.count(R"(wharf_queue_depth{queue="default"})"));
    CHECK(series[R"(wharf_job_duration_seconds_count{queue="test"})"] >= 3);
    CHECK(series[R"(wharf_job_wait_seconds_count{queue="test"})"] >= 3);
    CHECK(series[R"(wharf_http_requests_total{route="/api/jobs",method="POST",status="201"})"] ==
          3);
    CHECK(
        series[R"(wharf_http_requests_total{route="/api/jobs/{id}",method="GET",status="404"})"] ==
        1);
    CHECK(series[R"(wharf_plugins{state="active"})"] + series[R"(wharf_plugins{state="failed"})"] ==
          2);
    CHECK(series[R"(wharf_config_reloads_total{outcome="applied"})"] >= 6);
    CHECK(series[R"(wharf_config_reloads_total{outcome="refused"})"] == 1);
    CHECK(series[R"(wharf_config_files{state="refused"})"] == 1);

    // Unmatched and refused requests are counted under bounded labels.
    host.client().request("BREW", "/coffee/pot");
    auto again = parse_exposition(host.client(kViewerToken).get("/metrics").body);
    CHECK(again[R"(wharf_http_requests_total{route="invalid",method="other",status="400"})"] == 1);
    host.client().get("/no/such/route");
    again = parse_exposition(host.client(kViewerToken).get("/metrics").body);
    CHECK(again[R"(wharf_http_requests_total{route="unmatched",method="GET",status="404"})"] == 1);

    if (!promtool_available()) {
        WARN(
            "promtool not installed (Debian package prometheus): checked with the strict "
            "parser only");
        return;
    }
    auto file = host.dir / "metrics.txt";
    wharf::test::write_text(file, r.body);
    auto command = "promtool check metrics < " + file.string() + " 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe);
    std::string output;
    char buf[512];
    while (auto n = std::fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
    int status = ::pclose(pipe);
    INFO(output);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}
