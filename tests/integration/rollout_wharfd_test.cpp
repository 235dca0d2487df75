// The rollout plugin in a real wharfd on 127.0.0.1, driven through the HTTP
// API only: live copies created with POST /api/operations/live-copy-create
// (inline at or below the threshold, as jobs above it), a blueprint rolled
// out with POST /api/operations/rollout as a job (202 + Location), its
// report.csv and the live pages read back over HTTP; a rollout job whose
// wharfd is SIGKILLed half-way resumes after a restart and ends exactly as an
// uninterrupted rollout of a copy of the same repository; and bad requests
// get a 400 JSON error naming the field, with nothing changed. Repositories
// are seeded and compared with the host stopped.
#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "integration/rollout_test_support.hpp"
#include "integration/wharfd_pair_support.hpp"
#include "repository/generator.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Json = nlohmann::json;
using wharf::host::SqliteRepository;
using wharf::test::eventually;
using wharf::test::mirror_differences;
using wharf::test::repository_errors;
using wharf::test::repository_fingerprint;
using wharf::test::TempDir;
using wharf::test::WharfdHost;

namespace {

const std::string kOperatorToken = "rollout-operator-token-0123456789";
const std::string kBlueprint = "/content/gen/en";

// One wharfd with the rollout plugin, the shipped rollout/standard.yaml, a
// rollout queue that retries quickly and operations/rollout.yaml as given.
class RolloutHost {
public:
    RolloutHost(const fs::path& root, const std::string& name, const std::string& rollout_yaml)
        : host(root, name) {
        host.set_users({{{"otto", "operator", kOperatorToken}}});
        host.add_plugin("rollout");
        std::ifstream standard(fs::path(WHARF_SOURCE_DIR) / "configs/rollout/standard.yaml");
        std::stringstream text;
        text << standard.rdbuf();
        host.write_config("rollout/standard.yaml", text.str());
        host.write_config("queues/page-move-and-rollout.yaml",
                          "topics: [wharf/page/move, wharf/msm/rollout]\nmax_parallel: 1\n"
                          "retries: 3\nretry_delay_ms: 100\nretry_backoff: 1\n");
        host.write_config("operations/rollout.yaml", rollout_yaml);
    }

    void start() {
        host.start();
        api = host.client(kOperatorToken);
    }
    /// SIGTERM; the host must exit cleanly.
    void stop() {
        api.reset();
        REQUIRE(host.stop() == 0);
    }
    std::shared_ptr<SqliteRepository> open_repository() const { return host.open_repository(); }

    wharf::host::HttpResponse submit(const std::string& operation, const Json& request) {
        return api->post_json("/api/operations/" + operation, request.dump());
    }
    Json get_json(const std::string& target) {
        auto response = api->get(target);
        INFO(target << ": " << response.body);
        REQUIRE(response.status == 200);
        return Json::parse(response.body);
    }
    Json job(long long id) { return get_json("/api/jobs/" + std::to_string(id)); }
    /// Submits `request` and requires it to become a job; returns the job id.
    long long submit_job(const std::string& operation, const Json& request) {
        auto response = submit(operation, request);
        INFO(response.body);
        REQUIRE(response.status == 202);
        auto body = Json::parse(response.body);
        REQUIRE(body["mode"] == "job");
        auto id = body["id"].get<long long>();
        CHECK(response.header("Location") == "/api/jobs/" + std::to_string(id));
        return id;
    }
    Json wait_final(long long id, std::chrono::seconds timeout = 90s) {
        Json state;
        bool ended = eventually(
            [&] {
                state = job(id);
                return state["final"].get<bool>();
            },
            timeout);
        INFO(state.dump());
        REQUIRE(ended);
        return state;
    }
    /// The node at `path` as GET /api/repo/nodes shows it; null when 404.
    Json node(const std::string& path) {
        auto response = api->get("/api/repo/nodes?limit=1&path=" + wharf::host::url_encode(path));
        if (response.status == 404) return nullptr;
        INFO(response.body);
        REQUIRE(response.status == 200);
        return Json::parse(response.body)["node"];
    }
    /// report.csv as rows of cells (RFC 4180 quoting).
    std::vector<std::vector<std::string>> report(long long id) {
        auto response = api->get("/api/jobs/" + std::to_string(id) + "/report.csv");
        REQUIRE(response.status == 200);
        return parse_csv(response.body);
    }

    static std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
        std::vector<std::vector<std::string>> rows;
        std::vector<std::string> row;
        std::string cell;
        bool quoted = false, any = false;
        for (std::size_t i = 0; i < text.size(); ++i) {
            char c = text[i];
            if (quoted) {
                if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
                    cell += '"';
                    ++i;
                } else if (c == '"') {
                    quoted = false;
                } else {
                    cell += c;
                }
            } else if (c == '"') {
                quoted = any = true;
            } else if (c == ',') {
                row.push_back(std::move(cell));
                cell.clear();
                any = true;
            } else if (c == '\n' || c == '\r') {
                if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
                if (any || !cell.empty()) {
                    row.push_back(std::move(cell));
                    rows.push_back(std::move(row));
                }
                row.clear();
                cell.clear();
                any = false;
            } else {
                cell += c;
                any = true;
            }
        }
        if (any || !cell.empty()) {
            row.push_back(std::move(cell));
            rows.push_back(std::move(row));
        }
        return rows;
    }

    WharfdHost host;
    std::unique_ptr<wharf::host::HttpClient> api;
};

std::string first_value(const Json& node, const std::string& property) {
    const auto& p = node["properties"];
    if (!p.contains(property)) return "<none>";
    return p[property]["values"][0].get<std::string>();
}

std::size_t count_outcome(const std::vector<std::vector<std::string>>& report,
                          const std::string& outcome, const std::string& live_copy = {}) {
    return static_cast<std::size_t>(
        std::count_if(report.begin(), report.end(), [&](const std::vector<std::string>& r) {
            return r.size() == 5 && r[3] == outcome && (live_copy.empty() || r[2] == live_copy);
        }));
}

wharf::host::ContentGeneratorOptions small_site() {
    wharf::host::ContentGeneratorOptions o;
    o.assets = 20;
    o.assets_per_folder = 20;
    o.folders_per_group = 1;
    o.pages_root = kBlueprint;
    o.pages = 150;
    o.pages_per_section = 50;
    o.references_per_page = 4;
    o.min_binary_bytes = 16;
    o.max_binary_bytes = 32;
    return o;
}

}  // namespace

TEST_CASE(
    "live copies created over HTTP get the blueprint's pages with references pointing into "
    "them, and a rollout job brings blueprint edits to each of them",
    "[rollout][wharfd]") {
    TempDir dir("wharfd-rollout");
    RolloutHost site(dir / "site", "site", "threshold: 100\nbatch_size: 20\n");
    const auto gen = small_site();
    const auto linking = wharf::host::generated_page_path(gen, 10);
    const auto target = wharf::host::generated_page_path(gen, 120);
    const auto removed = wharf::host::generated_page_path(gen, 140);
    std::uint64_t blueprint_pages = 0, section_pages = 0;
    {
        auto repo = site.open_repository();
        wharf::host::generate_content(*repo, gen);
        for (const auto& p : {linking, target, removed}) REQUIRE(repo->get(p));
        wharf::WalkOptions pages_only;
        pages_only.assets = pages_only.folders = false;
        blueprint_pages = repo->count(kBlueprint, pages_only);
        section_pages = repo->count(kBlueprint + "/s001", pages_only);
        // One page linking inside the blueprint, by text and by a Path value.
        auto s = repo->open_session();
        s->set_text(linking, "<p>see <a href=\"" + kBlueprint + "/s002.html\">s2</a></p>");
        s->set_properties(linking, {{"see", wharf::Property::path(target)}});
        s->commit();
    }
    site.start();

    // Above the threshold of 100, the live copies of the whole blueprint are
    // jobs; one section at or below it runs at once.
    REQUIRE(blueprint_pages > 100);
    REQUIRE(section_pages <= 100);
    const std::vector<std::string> live_copies = {"/content/gen/lc1", "/content/gen/lc2",
                                                  "/content/gen/lc3"};
    std::vector<long long> creations;
    for (const auto& lc : live_copies)
        creations.push_back(
            site.submit_job("live-copy-create", {{"blueprint", kBlueprint}, {"target", lc}}));
    auto inline_create =
        site.submit("live-copy-create", {{"blueprint", kBlueprint + "/s001"},
                                         {"target", "/content/gen/s001-copy"},
                                         {"rollout_configs", Json::array({"standard"})}});
    INFO(inline_create.body);
    REQUIRE(inline_create.status == 200);
    auto inline_body = Json::parse(inline_create.body);
    CHECK(inline_body["mode"] == "sync");
    CHECK(inline_body["outcome"] == "succeeded");
    CHECK(inline_body["count"] == section_pages);
    CHECK(inline_body["report"].size() == 1 + section_pages);

    for (auto id : creations) {
        auto state = site.wait_final(id);
        INFO(state.dump());
        CHECK(state["state"] == "succeeded");
        CHECK(state["queue"] == "page-move-and-rollout");
        CHECK(state["progress"]["done"] == blueprint_pages);
        auto report = site.report(id);
        REQUIRE_FALSE(report.empty());
        CHECK(report[0] == std::vector<std::string>{"blueprint page", "live page", "live copy",
                                                    "outcome", "message"});
        CHECK(count_outcome(report, "created") == blueprint_pages);
    }
    auto blueprint_node = site.node(kBlueprint);
    REQUIRE(blueprint_node.is_object());
    CHECK(blueprint_node["live_copies"].size() == 3);
    for (const auto& lc : live_copies) {
        auto root = site.node(lc);
        REQUIRE(root.is_object());
        CHECK(root["live_relationship"]["blueprint"] == kBlueprint);
        CHECK(root["live_relationship"]["rollout_configs"] == Json::array({"standard"}));
        // References inside the blueprint now point into the live copy.
        auto page = site.node(wharf::test::swap_prefix(linking, kBlueprint, lc));
        REQUIRE(page.is_object());
        CHECK(page["text"] == "<p>see <a href=\"" + lc + "/s002.html\">s2</a></p>");
        CHECK(first_value(page, "see") == wharf::test::swap_prefix(target, kBlueprint, lc));
        CHECK(site.node(wharf::test::swap_prefix(removed, kBlueprint, lc)).is_object());
    }
    CHECK(site.node("/content/gen/s001-copy")["live_relationship"]["blueprint"] ==
          kBlueprint + "/s001");
    site.stop();

    // Blueprint edits: section s000 retitled, a new page linking into the
    // blueprint, a page deleted.
    std::uint64_t retitled = 0;
    {
        auto repo = site.open_repository();
        auto s = repo->open_session();
        repo->walk(kBlueprint + "/s000", wharf::WalkOptions{}, [&](const wharf::Node& n) {
            s->set_properties(
                n.path, {{"jcr:title", wharf::Property::string("v2 " + std::string(n.name()))}});
            ++retitled;
            return true;
        });
        wharf::Node fresh;
        fresh.path = kBlueprint + "/s001/fresh";
        fresh.kind = wharf::NodeKind::page;
        fresh.text = "<a href=\"" + kBlueprint + "/s000.html\">home</a>";
        s->create(fresh);
        s->remove(removed);
        s->commit();
    }
    REQUIRE(retitled > 1);

    site.start();
    auto id = site.submit_job("rollout", {{"blueprint", kBlueprint}});
    auto state = site.wait_final(id);
    INFO(state.dump());
    CHECK(state["state"] == "succeeded");
    CHECK(state["progress"]["done"] == state["progress"]["total"]);
    auto report = site.report(id);
    CHECK(report[0][0] == "blueprint page");
    for (const auto& lc : live_copies) {
        INFO(lc);
        CHECK(count_outcome(report, "created", lc) == 1);
        CHECK(count_outcome(report, "deleted", lc) == 1);
        CHECK(count_outcome(report, "updated", lc) == retitled);
        CHECK(count_outcome(report, "failed", lc) == 0);
        auto fresh = site.node(lc + "/s001/fresh");
        REQUIRE(fresh.is_object());
        CHECK(fresh["text"] == "<a href=\"" + lc + "/s000.html\">home</a>");
        auto section = site.node(lc + "/s000");
        REQUIRE(section.is_object());
        CHECK(first_value(section, "jcr:title") == "v2 s000");
        CHECK(site.node(wharf::test::swap_prefix(removed, kBlueprint, lc)).is_null());
    }
    CHECK(std::any_of(report.begin(), report.end(), [&](const std::vector<std::string>& r) {
        return r.size() == 5 && r[0] == removed && r[3] == "deleted";
    }));
    site.stop();

    auto repo = site.open_repository();
    for (const auto& lc : live_copies) {
        INFO(lc);
        auto differences = mirror_differences(*repo, kBlueprint, lc);
        std::string all;
        for (const auto& d : differences) all += d + "\n";
        INFO(all);
        CHECK(differences.empty());
    }
    CHECK(repository_errors(*repo) == 0);
}

TEST_CASE(
    "a rollout job SIGKILLed in wharfd half-way resumes after a restart and ends as an "
    "uninterrupted rollout of the same repository does",
    "[rollout][wharfd][crash]") {
    TempDir dir("wharfd-rollout-crash");
    // Small batches: hundreds of commits, so the kill lands between two.
    const std::string rollout_yaml = "threshold: 100\nbatch_size: 5\n";
    RolloutHost reference(dir / "reference", "reference", rollout_yaml);
    RolloutHost killed(dir / "killed", "killed", rollout_yaml);
    wharf::host::ContentGeneratorOptions gen;
    gen.assets = 50;
    gen.assets_per_folder = 50;
    gen.folders_per_group = 1;
    gen.pages_root = kBlueprint;
    // Large enough that the job reports progress many times (every 50 ms).
    gen.pages = 4000;
    gen.pages_per_section = 50;
    gen.references_per_page = 4;
    gen.live_copies = 3;
    gen.min_binary_bytes = 16;
    gen.max_binary_bytes = 32;
    {
        auto repo = reference.open_repository();
        wharf::host::generate_content(*repo, gen);
        // Edits the rollout brings over: every page retitled, new pages, a
        // deleted section.
        auto s = repo->open_session();
        repo->walk(kBlueprint, wharf::WalkOptions{}, [&](const wharf::Node& n) {
            s->set_properties(n.path, {{"jcr:title", wharf::Property::string("v2 " + n.path)}});
            return true;
        });
        for (int i = 0; i < 30; ++i) {
            wharf::Node n;
            n.path = kBlueprint + "/s003/new-" + std::to_string(i);
            n.kind = wharf::NodeKind::page;
            n.text = "<a href=\"" + kBlueprint + "/s004.html\">s4</a>";
            s->create(n);
        }
        s->remove(kBlueprint + "/s011");
        s->commit();
    }
    // The same bytes for the other host (the database closed, its WAL folded in).
    {
        const auto from = reference.host.repository_dir();
        const auto to = killed.host.repository_dir();
        fs::create_directories(to);
        fs::copy(from / "blobs", to / "blobs",
                 fs::copy_options::recursive | fs::copy_options::create_hard_links);
        for (const auto& entry : fs::directory_iterator(from))
            if (entry.is_regular_file()) fs::copy_file(entry.path(), to / entry.path().filename());
    }
    const Json request = {{"blueprint", kBlueprint}};

    reference.start();
    auto reference_id = reference.submit_job("rollout", request);
    auto reference_state = reference.wait_final(reference_id);
    INFO(reference_state.dump());
    REQUIRE(reference_state["state"] == "succeeded");
    auto reference_report = reference.report(reference_id);
    reference.stop();

    killed.start();
    auto id = killed.submit_job("rollout", request);
    Json before_kill;
    REQUIRE(eventually(
        [&] {
            before_kill = killed.job(id);
            auto done = before_kill["progress"]["done"].get<long long>();
            auto total = before_kill["progress"]["total"].get<long long>();
            return before_kill["final"].get<bool>() ||
                   (before_kill["state"] == "active" && total > 0 && done >= total / 10 &&
                    done <= total * 6 / 10);
        },
        60s));
    INFO(before_kill.dump());
    REQUIRE_FALSE(before_kill["final"].get<bool>());
    killed.api.reset();
    killed.host.kill();
    {
        // Half-way for real: some live pages rolled out, not all; consistent.
        auto repo = killed.open_repository();
        std::uint64_t live_pages = 0, rolled_out = 0;
        for (const auto& lc : {"/content/gen/lc1", "/content/gen/lc2", "/content/gen/lc3"})
            repo->walk(lc, wharf::WalkOptions{}, [&](const wharf::Node& n) {
                ++live_pages;
                auto title = n.properties.find("jcr:title");
                if (title != n.properties.end() &&
                    std::get<std::string>(title->second.values.front()).rfind("v2 ", 0) == 0)
                    ++rolled_out;
                return true;
            });
        CHECK(rolled_out > 0);
        CHECK(rolled_out < live_pages);
        CHECK(repository_errors(*repo) == 0);
    }

    killed.start();
    auto state = killed.wait_final(id, 100s);
    INFO(state.dump());
    CHECK(state["state"] == "succeeded");
    CHECK(state["retry_count"].get<int>() >= 1);
    CHECK(state["result_message"] == reference_state["result_message"]);
    CHECK(state["progress"]["done"] == state["progress"]["total"]);
    // The report holds every row once: the rows before the kill and after it
    // together are the uninterrupted run's rows.
    auto report = killed.report(id);
    auto sorted = [](std::vector<std::vector<std::string>> rows) {
        std::sort(rows.begin(), rows.end());
        return rows;
    };
    CHECK(report.size() == reference_report.size());
    CHECK(sorted(report) == sorted(reference_report));
    auto jobs = killed.get_json("/api/jobs?topic=wharf/msm/rollout");
    CHECK(jobs["jobs"].size() == 1);
    killed.stop();

    auto repo = killed.open_repository();
    auto reference_repo = reference.open_repository();
    CHECK(repository_fingerprint(*repo) == repository_fingerprint(*reference_repo));
    for (const auto& lc : {"/content/gen/lc1", "/content/gen/lc2", "/content/gen/lc3"}) {
        INFO(lc);
        CHECK(mirror_differences(*repo, kBlueprint, lc).empty());
    }
    CHECK(repository_errors(*repo) == 0);
}

TEST_CASE(
    "bad live copy and rollout requests over HTTP get a 400 JSON error naming the field and "
    "change nothing",
    "[rollout][wharfd]") {
    TempDir dir("wharfd-rollout-bad");
    RolloutHost site(dir / "site", "site", "threshold: 100\nbatch_size: 20\n");
    auto gen = small_site();
    gen.pages = 60;
    gen.live_copies = 1;  // /content/gen/lc1, a live copy of the blueprint
    std::vector<std::string> before;
    {
        auto repo = site.open_repository();
        wharf::host::generate_content(*repo, gen);
        before = repository_fingerprint(*repo);
    }
    site.start();

    struct Bad {
        std::string operation;
        Json request;
        std::string field;
        std::string says;
    };
    const std::vector<Bad> cases = {
        {"rollout", {{"blueprint", "/content/gen/nowhere"}}, "blueprint", "does not exist"},
        {"live-copy-create",
         {{"blueprint", "/content/gen/nowhere"}, {"target", "/content/gen/lc9"}},
         "blueprint",
         "does not exist"},
        {"live-copy-create",
         {{"blueprint", kBlueprint}, {"target", kBlueprint}},
         "target",
         "cannot be a live copy of itself"},
        {"live-copy-create",
         {{"blueprint", kBlueprint},
          {"target", "/content/gen/lc9"},
          {"rollout_configs", Json::array({"standard", "no-such-config"})}},
         "rollout_configs[1]",
         "'no-such-config' is not a rollout config"},
        // lc1 takes its content from the blueprint: a live copy of lc1 inside
        // the blueprint would feed the blueprint from itself.
        {"live-copy-create",
         {{"blueprint", "/content/gen/lc1"}, {"target", kBlueprint + "/s000/loop"}},
         "target",
         "would make a cycle"},
        {"rollout",
         {{"blueprint", kBlueprint},
          {"live_copies", Json::array({"/content/gen/lc1", "/content/gen/lc1"})}},
         "live_copies[1]",
         "listed twice"},
        {"rollout", {{"blueprint", kBlueprint}, {"copies", "all"}}, "copies", "is not a field"},
    };
    for (const auto& c : cases) {
        auto response = site.submit(c.operation, c.request);
        INFO(c.operation << " " << c.request.dump() << " -> " << response.status << " "
                         << response.body);
        CHECK(response.status == 400);
        CHECK_THAT(response.header("Content-Type"), Catch::StartsWith("application/json"));
        auto body = Json::parse(response.body);
        CHECK(body["error"]["code"] == "invalid_request");
        CHECK(body["error"]["field"] == c.field);
        CHECK_THAT(body["error"]["message"].get<std::string>(), Catch::Contains(c.says));
    }
    CHECK(site.get_json("/api/jobs?topic=wharf/msm/rollout")["jobs"].empty());
    CHECK(site.node("/content/gen/lc9").is_null());
    site.stop();

    auto repo = site.open_repository();
    CHECK(repository_fingerprint(*repo) == before);
}
