// The `jobs:` section of wharf.yaml: validated by the host schema, read into
// HostSettings, and the values wharfd hands to the job store and engine.
#include <catch2/catch.hpp>

#include <fstream>

#include "base/error.hpp"
#include "config/host_settings.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace wharf::host;
using wharf::test::TempDir;

namespace {

void write_file(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

}  // namespace

TEST_CASE("the shipped wharf.yaml holds the job engine's defaults in its jobs section",
          "[jobs][config]") {
    auto settings = load_host_settings(fs::path(WHARF_SOURCE_DIR) / "configs");
    const HostJobSettings defaults;
    CHECK(settings.jobs.synchronous == "NORMAL");
    CHECK(settings.jobs.stop_grace == defaults.stop_grace);
    CHECK(settings.jobs.stuck_after == defaults.stuck_after);
    CHECK(settings.jobs.shutdown_grace == defaults.shutdown_grace);
    CHECK(settings.jobs.flush_interval == defaults.flush_interval);
    CHECK(settings.jobs.max_workers == defaults.max_workers);
    CHECK(settings.jobs.max_log_lines == defaults.max_log_lines);

    // Every key of the section is documented by a comment above it.
    std::ifstream in(fs::path(WHARF_SOURCE_DIR) / "configs/wharf.yaml");
    std::string line, previous;
    bool in_jobs = false;
    int keys = 0;
    while (std::getline(in, line)) {
        if (line == "jobs:") {
            in_jobs = true;
        } else if (!line.empty() && line[0] != ' ' && line[0] != '#') {
            in_jobs = false;  // the next section
        }
        if (in_jobs && line.rfind("  ", 0) == 0 && line[2] != '#' && line[2] != ' ') {
            INFO(line);
            CHECK(previous.rfind("  #", 0) == 0);
            ++keys;
        }
        previous = line;
    }
    CHECK(keys == 7);
}

TEST_CASE("a jobs section in wharf.yaml reaches HostSettings; absent keys keep their defaults",
          "[jobs][config]") {
    TempDir dir("wharf-jobs-settings");
    write_file(dir / "wharf.yaml",
               "jobs:\n"
               "  synchronous: FULL\n"
               "  stop_grace_ms: 5000\n"
               "  stuck_after_ms: 60000\n"
               "  max_workers: 8\n"
               "  max_log_lines: 500\n");
    auto settings = load_host_settings(dir.path());
    CHECK(settings.jobs.synchronous == "FULL");
    CHECK(settings.jobs.stop_grace == 5000ms);
    CHECK(settings.jobs.stuck_after == 60000ms);
    CHECK(settings.jobs.max_workers == 8);
    CHECK(settings.jobs.max_log_lines == 500);
    CHECK(settings.jobs.shutdown_grace == 10000ms);
    CHECK(settings.jobs.flush_interval == 1000ms);
}

TEST_CASE("a bad jobs section is refused with file, line, column and reason", "[jobs][config]") {
    TempDir dir("wharf-jobs-settings");
    write_file(dir / "wharf.yaml",
               "jobs:\n"
               "  synchronous: SOMETIMES\n"
               "  stuck_after_ms: 5\n"
               "  max_wokers: 3\n");
    try {
        load_host_settings(dir.path());
        FAIL("a bad jobs section was accepted");
    } catch (const wharf::host::Error& e) {
        CHECK(e.code() == wharf::host::ErrorCode::invalid_argument);
        std::string file = (dir / "wharf.yaml").string();
        CHECK_THAT(e.what(), Catch::Contains(file + ":2:16: 'jobs.synchronous' must be one of "
                                                    "OFF, NORMAL, FULL, EXTRA; got 'SOMETIMES'"));
        CHECK_THAT(e.what(), Catch::Contains(file + ":3:19: value 5 for 'jobs.stuck_after_ms' is "
                                                    "out of range (1000 to 604800000)"));
        CHECK_THAT(e.what(), Catch::Contains(file + ":4:3: unknown key 'max_wokers' in 'jobs' "
                                                    "(did you mean 'max_workers'?)"));
    }
}
