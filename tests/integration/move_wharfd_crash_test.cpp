// An asset move running as a job inside a real wharfd, SIGKILLed half-way
// through rewriting references: after a restart the job engine runs the job
// again, the move plugin resumes from its checkpoint, and the end state is the
// one an uninterrupted move of a copy of the same repository gives.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "http/http_client.hpp"
#include "http/users.hpp"
#include "move_crash/move_harness.hpp"
#include "repository/repository_check.hpp"
#include "repository/sqlite_repository.hpp"
#include "support/child_process.hpp"
#include "support/move_content.hpp"
#include "support/temp_dir.hpp"
#include "support/wharfd_child.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Json = nlohmann::json;
using wharf::host::SqliteRepository;
using wharf::test::ChildProcess;
using wharf::test::eventually;
using wharf::test::TempDir;

namespace {

const std::string kOperatorToken = "operator-token-0123456789";
const std::string kSource = "/content/dam/src";
const std::string kDestination = "/content/dam/target";
const std::string kMoved = "/content/dam/target/src";

void write_file(const fs::path& file, const std::string& text) {
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::trunc) << text;
}

// A wharfd child on a free port, with an HTTP client for its API.
struct Wharfd {
    ChildProcess process;
    std::unique_ptr<wharf::host::HttpClient> client;

    Wharfd(const fs::path& configs, const fs::path& log)
        : process({WHARF_WHARFD_EXECUTABLE, "--config", configs.string()}, log) {
        REQUIRE(
            eventually([&] { return wharf::test::wharfd_ready(process.output(), "move"); }, 30s));
        auto address = wharf::test::listening_address(process.output());
        REQUIRE_FALSE(address.empty());
        wharf::host::HttpClientOptions o;
        o.bearer_token = kOperatorToken;
        client = std::make_unique<wharf::host::HttpClient>("http://" + address, o);
    }

    Json job(long long id) const {
        auto response = client->get("/api/jobs/" + std::to_string(id));
        REQUIRE(response.status == 200);
        return Json::parse(response.body);
    }
};

// Every node (path, kind, text) and every reference row: two repositories
// with the same fingerprint hold the same tree pointing at the same paths.
std::vector<std::string> fingerprint(const wharf::Repository& repo) {
    std::vector<std::string> out;
    repo.walk("/", wharf::WalkOptions{}, [&](const wharf::Node& n) {
        out.push_back("node " + n.path + " " + std::to_string(static_cast<int>(n.kind)) + " " +
                      n.text);
        return true;
    });
    repo.referrers_under("/", false, [&](const wharf::Reference& r) {
        out.push_back("ref " + r.from_path + " " + r.property + " " + r.to_path);
        return true;
    });
    std::sort(out.begin(), out.end());
    return out;
}

std::uint64_t assets_under(const wharf::Repository& repo, const std::string& root) {
    wharf::WalkOptions only_assets;
    only_assets.folders = false;
    only_assets.pages = false;
    return repo.count(root, only_assets);
}

}  // namespace

TEST_CASE("a move job SIGKILLed in wharfd mid-rewrite resumes after a restart and ends as an "
          "uninterrupted move would",
          "[move][wharfd][crash]") {
    TempDir dir("wharfd-move-crash");
    write_file(dir / "configs/wharf.yaml",
               "data_dir: ../var\nplugins_dir: ../plugins\nlisten: 127.0.0.1:0\nlog_level: info\n");
    write_file(dir / "configs/users.yaml",
               "users:\n  - name: otto\n    role: operator\n    token_sha256: " +
                   wharf::host::token_sha256(kOperatorToken) + "\n");
    // Far above the thresholds (a job), and small batches: hundreds of
    // commits, so that the kill lands between two of them.
    write_file(dir / "configs/operations/move.yaml",
               "threshold: 10\nthreshold_references: 10\nbatch_size: 4\n");

    const auto gen = wharf::test::referenced_assets(kSource);
    // The repository is closed again at the end of the statement.
    const auto seeded = wharf::test::seed_move_source(
        *SqliteRepository::open(dir / "var/repository"), gen, kDestination);
    const std::uint64_t nodes_in_source = seeded.nodes, references_in = seeded.references;
    REQUIRE(references_in > 10'000);
    // The same bytes (the database closed, so its WAL is folded in), for the
    // uninterrupted move to compare with; binaries hard-linked.
    fs::create_directories(dir / "expected");
    fs::copy(dir / "var/repository/blobs", dir / "expected/blobs",
             fs::copy_options::recursive | fs::copy_options::create_hard_links);
    for (const auto& entry : fs::directory_iterator(dir / "var/repository"))
        if (entry.is_regular_file())
            fs::copy_file(entry.path(), dir / "expected" / entry.path().filename());
    fs::create_directories(dir / "plugins");
    fs::copy_file(fs::path(WHARF_PLUGIN_DIR) / "move.so", dir / "plugins/move.so");

    const auto request = Json{{"sources", Json::array({kSource})}, {"destination", kDestination}};
    long long id = 0;
    {
        Wharfd host(dir / "configs", dir / "wharfd-1.log");
        auto submitted = host.client->post_json("/api/operations/asset-move", request.dump());
        INFO(submitted.body);
        REQUIRE(submitted.status == 202);
        id = Json::parse(submitted.body)["id"].get<long long>();

        // Mid-rewrite: the subtree has moved (its nodes are counted as done)
        // and some, not all, references are rewritten.
        Json state;
        REQUIRE(eventually(
            [&] {
                state = host.job(id);
                auto done = state["progress"]["done"].get<long long>();
                auto total = state["progress"]["total"].get<long long>();
                return state["final"].get<bool>() ||
                       (state["state"] == "active" &&
                        done > static_cast<long long>(nodes_in_source) + 100 &&
                        done < total / 2);
            },
            60s));
        INFO(state.dump());
        REQUIRE_FALSE(state["final"].get<bool>());
        host.process.signal(SIGKILL);
        auto status = host.process.wait(10s);
        REQUIRE(status);
        REQUIRE(WIFSIGNALED(*status));
    }
    {
        // The kill really was half-way: the nodes are at their new place, and
        // references to the old paths remain.
        auto repository = SqliteRepository::open(dir / "var/repository");
        CHECK_FALSE(repository->get(kSource).has_value());
        CHECK(assets_under(*repository, kMoved) == gen.assets);
        auto left = repository->referrers_under(kSource, false,
                                                [](const wharf::Reference&) { return true; });
        CHECK(left > 0);
        CHECK(left < references_in);
    }

    Json final_state;
    std::string report;
    {
        Wharfd host(dir / "configs", dir / "wharfd-2.log");
        REQUIRE(eventually([&] { return host.job(id)["final"].get<bool>(); }, 120s));
        final_state = host.job(id);
        report = host.client->get("/api/jobs/" + std::to_string(id) + "/report.csv").body;
        auto jobs = Json::parse(host.client->get("/api/jobs?topic=wharf/asset/move").body);
        CHECK(jobs["jobs"].size() == 1);
        host.process.signal(SIGTERM);
        auto status = host.process.wait(30s);
        REQUIRE(status);
        CHECK(WEXITSTATUS(*status) == 0);
    }
    INFO(final_state.dump());
    CHECK(final_state["state"] == "succeeded");
    CHECK(final_state["retry_count"] == 1);  // the run after the kill

    // The same move, uninterrupted, on the copy.
    auto expected = SqliteRepository::open(dir / "expected");
    wharf::JobResult uninterrupted;
    {
        wharf::test::MovePluginHost plugin_host(expected, dir / "expected-host",
                                                fs::path(WHARF_PLUGIN_DIR) / "move.so",
                                                WHARF_PROBE_EXECUTABLE);
        auto operation = plugin_host.operation("asset-move");
        REQUIRE(operation);
        wharf::test::MemoryContext context(wharf::test::move_request({kSource}, kDestination));
        uninterrupted = operation->run(context);
    }
    REQUIRE(uninterrupted.outcome == wharf::JobResult::Outcome::succeeded);
    // Same counts of moved nodes and rewritten references: nothing repeated,
    // nothing lost across the kill.
    CHECK(final_state["result_message"] == uninterrupted.message);
    // One header and one row for the one source, not repeated by the re-run.
    std::istringstream lines(report);
    std::vector<std::string> rows;
    for (std::string line; std::getline(lines, line);)
        if (!line.empty()) rows.push_back(line);
    REQUIRE(rows.size() == 2);
    CHECK_THAT(rows[1], Catch::StartsWith(kSource + "," + kMoved + ","));
    CHECK_THAT(rows[1], Catch::Contains(",moved,"));

    auto repository = SqliteRepository::open(dir / "var/repository");
    CHECK(fingerprint(*repository) == fingerprint(*expected));
    // Every asset at exactly one place, every reference to an existing node.
    CHECK(assets_under(*repository, kMoved) == gen.assets);
    CHECK(assets_under(*repository, "/") == gen.assets);
    CHECK_FALSE(repository->get(kSource).has_value());
    std::uint64_t dangling = 0;
    repository->referrers_under("/", false, [&](const wharf::Reference& r) {
        if (!repository->get(r.to_path)) ++dangling;
        return true;
    });
    CHECK(dangling == 0);
    CHECK(wharf::host::check_repository(*repository).ok());

    ChildProcess check({WHARF_CLI_EXECUTABLE, "repo", "check", "--repository",
                        (dir / "var/repository").string()},
                       dir / "repo-check.log");
    auto status = check.wait(60s);
    REQUIRE(status);
    INFO(check.output());
    CHECK(WEXITSTATUS(*status) == 0);
    CHECK_THAT(check.output(), Catch::Contains("wharf repo check: ok"));
}
