// Crash recovery with a real wharfd process: jobs are written into the data
// directory's jobs.db while the host is down, the host runs them with a real
// fixture consumer plugin, is killed with SIGKILL mid-run (three times) and
// restarted; in the end every job has ended exactly once in a final state.
#include <SQLiteCpp/SQLiteCpp.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>

#include "jobs/sqlite_job_store.hpp"
#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using wharf::test::ChildProcess;
using wharf::test::eventually;
using wharf::test::TempDir;

namespace {

constexpr int kJobs = 80;

// State -> count for the test's jobs, read from the file the host writes
// (WAL: readers do not block it).
std::map<std::string, int> states(const fs::path& db) {
    std::map<std::string, int> out;
    if (!fs::exists(db)) return out;
    SQLite::Database d(db.string(), SQLite::OPEN_READONLY, 2000);
    SQLite::Statement s(d, "SELECT state, COUNT(*) FROM jobs WHERE topic='test/sleep' GROUP BY 1");
    while (s.executeStep()) out[s.getColumn(0).getString()] = s.getColumn(1).getInt();
    return out;
}

int finals(const std::map<std::string, int>& s) {
    int n = 0;
    for (const char* f : {"succeeded", "error", "stopped", "given_up"})
        if (s.count(f)) n += s.at(f);
    return n;
}

}  // namespace

TEST_CASE("wharfd killed with SIGKILL mid-run and restarted ends every job exactly once",
          "[wharfd][jobs]") {
    TempDir dir("wharf-jobs-crash");
    fs::create_directories(dir / "configs/queues");
    fs::create_directories(dir / "plugins");
    std::ofstream(dir / "configs/wharf.yaml") << "data_dir: ../var\n"
                                                 "plugins_dir: ../plugins\n"
                                                 "listen: 127.0.0.1:0\n"
                                                 "log_level: info\n";
    std::ofstream(dir / "configs/queues/default.yaml")
        << "topics: ['*']\nmax_parallel: 4\nretries: 10\nretry_delay_ms: 10\n";
    fs::copy_file(fs::path(WHARF_FIXTURE_DIR) / "jobs_sleeper.so", dir / "plugins/sleeper.so");
    auto db = dir / "var/jobs.db";
    {
        // Jobs in before the first start, through the store wharfd uses.
        wharf::host::SqliteJobStoreOptions o;
        o.path = db;
        wharf::host::SqliteJobStore store(o);
        store.migrate();
        for (int i = 0; i < kJobs; ++i) {
            wharf::host::NewJob job;
            job.topic = "test/sleep";
            job.queue = "default";
            job.max_retries = 10;
            job.payload.put("ms", 40);
            job.payload.put("tag", i);
            store.insert(job);
        }
    }
    std::vector<std::string> argv = {WHARF_WHARFD_EXECUTABLE, "--config",
                                     (dir / "configs").string()};
    int kills = 0;
    int killed_while_active = 0;
    for (int round = 0; round < 3; ++round) {
        ChildProcess host(argv, dir / "wharfd.log");
        int before = finals(states(db));
        // Kill it once it made progress and has jobs in flight.
        bool busy = eventually(
            [&] {
                auto s = states(db);
                return finals(s) >= before + 10 && s.count("active") && s.at("active") > 0;
            },
            30s);
        if (!busy) break;  // nearly done: let the last round finish them
        host.signal(SIGKILL);
        REQUIRE(host.wait(10s));
        ++kills;
        auto s = states(db);
        if (s.count("active")) killed_while_active += s.at("active");
    }
    REQUIRE(kills >= 2);
    CHECK(killed_while_active > 0);

    ChildProcess host(argv, dir / "wharfd.log");
    REQUIRE(eventually([&] { return finals(states(db)) == kJobs; }, 60s));
    host.signal(SIGTERM);
    auto status = host.wait(30s);
    REQUIRE(status);
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);

    auto s = states(db);
    CHECK(s["succeeded"] == kJobs);  // at most 4 kills, 10 retries: nobody gives up
    SQLite::Database d(db.string(), SQLite::OPEN_READONLY);
    SQLite::Statement rows(d,
                           "SELECT COUNT(*), COUNT(DISTINCT json_extract(payload, '$.tag')), "
                           "MAX(retry_count), SUM(finished_at IS NOT NULL) FROM jobs "
                           "WHERE topic='test/sleep'");
    REQUIRE(rows.executeStep());
    CHECK(rows.getColumn(0).getInt() == kJobs);  // no job lost, none duplicated
    CHECK(rows.getColumn(1).getInt() == kJobs);
    CHECK(rows.getColumn(2).getInt() <= kills);
    CHECK(rows.getColumn(3).getInt() == kJobs);
    CHECK_THAT(host.output(), Catch::Contains("recovered requeued="));
}
