// Cluster mode with real processes: three wharfd instances share one
// throwaway PostgreSQL server (store.backend: postgresql). Jobs are enqueued
// over HTTP through every instance, one instance is SIGKILLed while it runs a
// long job, and in the end every job ended exactly once in a final state: the
// dead instance's running job was requeued by a survivor once its lease ran
// out (retry counted) and ran there until stopped; no job succeeded on two
// live instances.
// A purge scheduled every second fired once per fire time across the three.
// A bulk move on the shared repository (PostgreSQL, binaries in a shared
// directory) whose instance is SIGKILLed mid-rewrite completes on the other
// instance, and `wharf repo check` passes on the cluster's repository.
#include <pqxx/pqxx>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "integration/pg_test_support.hpp"
#include "integration/wharfd_pair_support.hpp"
#include "repository/pg_repository.hpp"
#include "repository/repository_check.hpp"
#include "support/move_content.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Json = nlohmann::json;
using wharf::test::eventually;
using wharf::test::TempDir;
using wharf::test::WharfdHost;

namespace {

const std::string kToken = "cluster-operator-token";

// One run of the recorder plugin (tests/chaos/chaos_recorder.cpp).
struct RecordedRun {
    std::string event;  // begin | ok
    long pid = 0;
    std::int64_t job = 0;
    int retry = 0;
};

std::vector<RecordedRun> recorded_runs(const fs::path& data_dir) {
    std::vector<RecordedRun> out;
    std::ifstream in(data_dir / "plugins/chaos.recorder/runs.log");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        RecordedRun r;
        int version = 0;
        long long ms = 0;
        if (fields >> r.event >> r.pid >> r.job >> r.retry >> version >> ms) out.push_back(r);
    }
    return out;
}

// The lease is 3 s: short enough that failover comes quickly, long enough
// that a live instance on a loaded 2-core machine is not taken for dead (it
// renews every second).
void configure(WharfdHost& host, const std::string& url, const std::string& id,
               const fs::path& blob_dir = {}) {
    host.write_config("wharf.yaml", "data_dir: ../var\nplugins_dir: ../plugins\nlisten: 127.0.0.1:" +
                                        std::to_string(host.port()) +
                                        "\nlog_level: info\njobs:\n  flush_interval_ms: 50\n"
                                        "  shutdown_grace_ms: 2000\n"
                                        "store:\n  backend: postgresql\n  url: " +
                                        url + "\n  pool_size: 4\n  lease_ms: 3000\n" +
                                        "  instance_id: " + id + "\n" +
                                        (blob_dir.empty() ? std::string()
                                                          : "  blob_dir: " + blob_dir.string() +
                                                                "\n"));
    host.write_config("queues/cluster.yaml",
                      "title: cluster test queue\ntopics:\n  - chaos/**\ntype: parallel\n"
                      "max_parallel: 3\nretries: 5\nretry_delay_ms: 50\nkeep_jobs: true\n");
    // Every second, on every instance; max_jobs high so the test's jobs stay.
    host.write_config("purge.yaml",
                      "enabled: true\nschedule: \"* * * * * ?\"\nthreshold_days: 30\n"
                      "max_jobs: 100000000\n");
    host.set_users({{{"ops", "operator", kToken}}});
    fs::copy_file(fs::path(WHARF_RECORDER_PLUGIN), host.root() / "plugins/chaos_recorder.so",
                  fs::copy_options::overwrite_existing);
}

std::int64_t enqueue(wharf::host::HttpClient& client, const Json& payload) {
    auto response = client.post_json("/api/jobs", Json{{"topic", "chaos/cluster/run"},
                                                       {"payload", payload}}
                                                      .dump());
    if (response.status != 201)
        throw std::runtime_error("POST /api/jobs: " + std::to_string(response.status) + " " +
                                 response.body);
    return Json::parse(response.body)["id"].get<std::int64_t>();
}

}  // namespace

TEST_CASE("three wharfd instances on one PostgreSQL run every job exactly once through a SIGKILL",
          "[cluster][wharfd]") {
    std::string why_not;
    auto* server = wharf::test::PgServer::shared(&why_not);
    if (!server) {
        WARN(why_not);
        return;
    }
    const std::string url = server->create_database();
    TempDir dir;
    std::vector<std::unique_ptr<WharfdHost>> hosts;
    for (int i = 0; i < 3; ++i) {
        auto name = "instance-" + std::to_string(i);
        hosts.push_back(std::make_unique<WharfdHost>(dir.path() / name, name));
        configure(*hosts.back(), url, name);
    }
    for (auto& h : hosts) h->start();
    std::vector<std::unique_ptr<wharf::host::HttpClient>> clients;
    for (auto& h : hosts) clients.push_back(h->client(kToken));

    // Every instance sees the whole cluster.
    for (auto& c : clients) {
        auto response = c->get("/api/cluster");
        REQUIRE(response.status == 200);
        auto body = Json::parse(response.body);
        CHECK(body["backend"] == "postgresql");
        REQUIRE(body["instances"].size() == 3);
    }

    // Three long jobs first (they run until the test stops them, so one is
    // surely running when the victim is chosen, however slow the machine),
    // then 10,000 short ones enqueued through the three instances in turn.
    constexpr int kShort = 10000;
    std::set<std::int64_t> ids;
    std::vector<std::int64_t> long_jobs;
    for (int i = 0; i < 3; ++i) long_jobs.push_back(enqueue(*clients[i], {{"ms", 600000}}));
    ids.insert(long_jobs.begin(), long_jobs.end());
    for (int i = 0; i < kShort; ++i) ids.insert(enqueue(*clients[i % 3], {{"ms", 1}}));
    REQUIRE(ids.size() == kShort + 3);

    pqxx::connection db(url);
    auto count_final = [&] {
        pqxx::nontransaction n(db);
        return n.exec("SELECT COUNT(*) FROM jobs WHERE topic = 'chaos/cluster/run' AND state IN "
                      "('succeeded', 'error', 'stopped', 'given_up')")[0][0]
            .as<long>();
    };
    // Mid-run: the victim is an instance running one of the long jobs.
    REQUIRE(eventually([&] { return count_final() >= 500; }, 120s));
    std::size_t victim_index = hosts.size();
    std::int64_t victim_long_job = 0;
    long victim_pid = 0;
    for (std::size_t i = 0; i < hosts.size() && victim_index == hosts.size(); ++i) {
        std::map<std::int64_t, bool> ended;  // long job begun here -> ended here
        for (const auto& r : recorded_runs(hosts[i]->root() / "var")) {
            victim_pid = r.pid;
            if (std::find(long_jobs.begin(), long_jobs.end(), r.job) == long_jobs.end()) continue;
            ended[r.job] = ended[r.job] || r.event == "ok";
        }
        for (auto [job, done] : ended)
            if (!done) {
                victim_index = i;
                victim_long_job = job;
            }
    }
    REQUIRE(victim_index < hosts.size());
    hosts[victim_index]->kill();

    // The survivors drain the short jobs; the victim's lease runs out and its
    // running long job comes back (retry counted) and runs on a survivor.
    REQUIRE(eventually([&] { return count_final() == kShort; }, 180s));
    auto retry_of = [&](std::int64_t id) {
        pqxx::nontransaction n(db);
        return n.exec_params("SELECT retry_count FROM jobs WHERE id = $1", id)[0][0].as<int>();
    };
    REQUIRE(eventually([&] { return retry_of(victim_long_job) == 1; }, 30s));
    // The long jobs end as stopped (asked through a survivor).
    auto& survivor = *clients[(victim_index + 1) % 3];
    for (auto id : long_jobs) {
        auto response = survivor.post_json("/api/jobs/" + std::to_string(id) + "/stop", "{}");
        INFO(response.body);
        if (response.status / 100 != 2) {
            pqxx::nontransaction n(db);
            auto row = n.exec_params(
                "SELECT state, retry_count, result_message, claimed_by FROM jobs WHERE id = $1",
                id)[0];
            UNSCOPED_INFO("job " << id << ": " << row[0].c_str() << ", retry " << row[1].c_str()
                                 << ", '" << row[2].c_str() << "', claimed by "
                                 << row[3].c_str() << "; victim instance-" << victim_index
                                 << " ran job " << victim_long_job);
            // What the instances said about the job and about leases.
            const std::string needle = "id=" + std::to_string(id) + " ";
            for (auto& h : hosts) {
                std::istringstream out(h->output());
                for (std::string line; std::getline(out, line);)
                    if (line.find(needle) != std::string::npos ||
                        line.find("lease") != std::string::npos ||
                        line.find("requeue") != std::string::npos)
                        UNSCOPED_INFO(h->root().filename().string() << ": " << line);
            }
        }
        REQUIRE(response.status / 100 == 2);
    }
    REQUIRE(eventually([&] { return count_final() == kShort + 3; }, 60s));

    pqxx::nontransaction n(db);
    auto rows = n.exec("SELECT id, state, retry_count FROM jobs WHERE topic = 'chaos/cluster/run'");
    REQUIRE(rows.size() == ids.size());
    std::map<std::int64_t, int> retries;
    for (const auto& row : rows) {
        auto id = row[0].as<std::int64_t>();
        REQUIRE(ids.count(id) == 1);
        INFO("job " << id);
        bool is_long = std::find(long_jobs.begin(), long_jobs.end(), id) != long_jobs.end();
        REQUIRE(row[1].as<std::string>() == (is_long ? "stopped" : "succeeded"));
        retries[id] = row[2].as<int>();
    }
    // The long job the victim was running was requeued with one retry counted.
    CHECK(retries.at(victim_long_job) == 1);

    // Runs as the consumers saw them: every short job succeeded at least once; a
    // second success exists only where the first was on the killed instance
    // (a run that ended between its last flush and the kill: at least once).
    std::map<std::int64_t, std::vector<long>> ok_by;  // job -> pids that said ok
    std::set<long> pids;
    for (auto& h : hosts)
        for (const auto& r : recorded_runs(h->root() / "var")) {
            pids.insert(r.pid);
            if (r.event == "ok") ok_by[r.job].push_back(r.pid);
        }
    REQUIRE(pids.size() == 3);  // all three instances ran jobs
    std::size_t at_least_once = 0;
    for (auto id : ids) {
        if (std::find(long_jobs.begin(), long_jobs.end(), id) != long_jobs.end()) continue;
        INFO("job " << id);
        const auto& by = ok_by[id];
        REQUIRE(!by.empty());
        std::size_t live = std::count_if(by.begin(), by.end(), [&](long p) { return p != victim_pid; });
        REQUIRE(live <= 1);
        if (by.size() > 1) ++at_least_once;
    }
    WARN("jobs that also succeeded on the killed instance before it died: " << at_least_once);
    for (auto id : long_jobs) CHECK(ok_by[id].empty());  // stopped, never succeeded

    // The cluster forgot the dead instance.
    REQUIRE(eventually(
        [&] {
            auto body = Json::parse(clients[(victim_index + 1) % 3]->get("/api/cluster").body);
            return body["instances"].size() == 2;
        },
        30s));

    // The purge, scheduled every second on every instance, ran once per fire time.
    auto purges =
        n.exec("SELECT fire_at, COUNT(*), MIN(state) FROM jobs WHERE topic = "
               "'wharf/system/purge' AND fire_at IS NOT NULL GROUP BY fire_at ORDER BY fire_at");
    REQUIRE(purges.size() >= 3);
    for (const auto& row : purges) {
        INFO("purge fire time " << row[0].as<std::int64_t>());
        REQUIRE(row[1].as<long>() == 1);
    }

    for (auto& h : hosts)
        if (h->running()) CHECK(h->stop() == 0);
}

TEST_CASE("a bulk move on the shared repository, its instance SIGKILLed mid-rewrite, completes on "
          "another instance with the repository check passing",
          "[cluster][wharfd][move]") {
    std::string why_not;
    auto* server = wharf::test::PgServer::shared(&why_not);
    if (!server) {
        WARN(why_not);
        return;
    }
    const std::string url = server->create_database();
    TempDir dir;
    const fs::path blobs = dir.path() / "shared-blobs";
    const std::string source = "/content/dam/src", destination = "/content/dam/target",
                      moved = "/content/dam/target/src";

    const auto gen = wharf::test::referenced_assets(source);
    // The repository is closed again at the end of the statement.
    const auto seeded = wharf::test::seed_move_source(
        *wharf::host::PgRepository::open({url, 2, blobs}), gen, destination);
    const std::uint64_t nodes_in_source = seeded.nodes, references_in = seeded.references;
    REQUIRE(references_in > 10'000);

    std::vector<std::unique_ptr<WharfdHost>> hosts;
    for (int i = 0; i < 2; ++i) {
        auto name = "mover-" + std::to_string(i);
        hosts.push_back(std::make_unique<WharfdHost>(dir.path() / name, name));
        configure(*hosts.back(), url, name, blobs);
        // A job far above the thresholds, in small batches: hundreds of
        // commits, so that the kill lands between two of them.
        hosts.back()->write_config("operations/move.yaml",
                                   "threshold: 10\nthreshold_references: 10\nbatch_size: 4\n");
        hosts.back()->add_plugin("move");
    }
    for (auto& h : hosts) h->start();
    auto first = hosts[0]->client(kToken);
    auto submitted = first->post_json(
        "/api/operations/asset-move",
        Json{{"sources", Json::array({source})}, {"destination", destination}}.dump());
    INFO(submitted.body);
    REQUIRE(submitted.status == 202);
    auto id = Json::parse(submitted.body)["id"].get<std::int64_t>();
    auto job = [&](wharf::host::HttpClient& c) {
        auto response = c.get("/api/jobs/" + std::to_string(id));
        REQUIRE(response.status == 200);
        return Json::parse(response.body);
    };

    // Mid-rewrite: the subtree has moved and some, not all, references are rewritten.
    Json state;
    REQUIRE(eventually(
        [&] {
            state = job(*first);
            auto done = state["progress"]["done"].get<long long>();
            auto total = state["progress"]["total"].get<long long>();
            return state["final"].get<bool>() ||
                   (state["state"] == "active" &&
                    done > static_cast<long long>(nodes_in_source) + 100 && done < total / 2);
        },
        60s));
    INFO(state.dump());
    REQUIRE_FALSE(state["final"].get<bool>());
    pqxx::connection db(url);
    std::string runner;
    {
        pqxx::nontransaction n(db);
        runner = n.exec_params("SELECT claimed_by FROM jobs WHERE id = $1", id)[0][0]
                     .as<std::string>();
    }
    std::size_t killed = runner == "mover-0" ? 0 : 1;
    REQUIRE(runner == "mover-" + std::to_string(killed));
    hosts[killed]->kill();
    auto survivor = hosts[1 - killed]->client(kToken);

    REQUIRE(eventually([&] { return job(*survivor)["final"].get<bool>(); }, 120s));
    state = job(*survivor);
    INFO(state.dump());
    CHECK(state["state"] == "succeeded");
    CHECK(state["retry_count"] == 1);
    {
        pqxx::nontransaction n(db);
        CHECK(n.exec_params("SELECT COUNT(*) FROM jobs WHERE topic = 'wharf/asset/move'")[0][0]
                  .as<int>() == 1);
    }
    for (auto& h : hosts)
        if (h->running()) CHECK(h->stop() == 0);

    auto repository = wharf::host::PgRepository::open({url, 2, blobs});
    CHECK_FALSE(repository->get(source).has_value());
    wharf::WalkOptions only_assets;
    only_assets.folders = false;
    only_assets.pages = false;
    CHECK(repository->count(moved, only_assets) == gen.assets);
    CHECK(repository->count(moved, wharf::WalkOptions{}) == nodes_in_source);
    CHECK(repository->referrers_under(source, false,
                                      [](const wharf::Reference&) { return true; }) == 0);
    CHECK(repository->referrers_under(moved, false,
                                      [](const wharf::Reference&) { return true; }) ==
          references_in);
    auto report = wharf::host::check_repository(*repository);
    for (const auto& p : report.problems) UNSCOPED_INFO(wharf::host::format(p));
    CHECK(report.errors() == 0);

    // The operator's check, from an instance's configuration: the shared
    // database and binary directory.
    std::string command = std::string(WHARF_CLI_EXECUTABLE) + " repo check --config " +
                          hosts[0]->config_dir().string() + " 2>&1";
    std::string output;
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    char buffer[4096];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
    int status = ::pclose(pipe);
    INFO(output);
    CHECK(WEXITSTATUS(status) == 0);
    CHECK_THAT(output, Catch::Contains("wharf repo check: ok: nodes=") &&
                           Catch::Contains("errors=0"));
}
