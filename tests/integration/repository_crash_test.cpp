// A child process SIGKILLed in the middle of a large batched change leaves a
// repository that check() passes and that holds whole batches only; run
// again, it resumes from its committed checkpoint and finishes.
#include <catch2/catch.hpp>
#include <csignal>
#include <set>

#include "repository/generator.hpp"
#include "repository/repository_check.hpp"
#include "repository/sqlite_repository.hpp"
#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace wharf;
using wharf::host::SqliteRepository;
using wharf::test::ChildProcess;
using wharf::test::eventually;
using wharf::test::TempDir;

namespace {

std::string helper() {
    auto path = fs::path(WHARF_FIXTURE_DIR) / "wharf_repo_crash_helper";
    INFO("build wharf_repo_crash_helper (tests/repository_crash) first: " << path);
    REQUIRE(fs::exists(path));
    return path.string();
}

std::uint64_t checkpoint(const SqliteRepository& repo, const std::string& name) {
    return std::stoull(repo.checkpoint(name).value_or("0"));
}

std::uint64_t check_errors(const SqliteRepository& repo) {
    auto report = host::check_repository(repo);
    for (const auto& p : report.problems)
        if (p.severity == host::RepositoryProblem::Severity::error) UNSCOPED_INFO(host::format(p));
    return report.errors();
}

bool killed(std::optional<int> status) {
    return status && WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL;
}

}  // namespace

TEST_CASE("a SIGKILLed bulk create leaves whole batches only and a repository check passes",
          "[repository][crash]") {
    TempDir dir("repo-crash");
    auto data = (dir / "data").string();
    constexpr std::uint64_t kCount = 400'000, kBatch = 250;
    auto repo = SqliteRepository::open(data);
    {
        ChildProcess child(
            {helper(), "create", data, std::to_string(kCount), std::to_string(kBatch)},
            dir / "helper.log");
        // Kill it well inside the run: after some batches, long before the end.
        REQUIRE(eventually([&] { return checkpoint(*repo, "crash/create") >= 3 * kBatch; }, 60s));
        child.signal(SIGKILL);
        REQUIRE(killed(child.wait(10s)));
    }
    auto committed = checkpoint(*repo, "crash/create");
    auto assets = repo->count("/content/dam/crash", {.include_root = false});
    INFO("committed " << committed << " assets");
    CHECK(committed < kCount);
    CHECK(committed % kBatch == 0);
    CHECK(assets == committed);
    CHECK(check_errors(*repo) == 0);

    // Resume to the end (a smaller target, so the test stays quick).
    auto target = committed + 2 * kBatch + 17;
    ChildProcess again({helper(), "create", data, std::to_string(target), std::to_string(kBatch)},
                       dir / "helper2.log");
    auto status = again.wait(60s);
    REQUIRE(status);
    INFO(again.output());
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
    CHECK(repo->count("/content/dam/crash", {.include_root = false}) == target);
    CHECK(checkpoint(*repo, "crash/create") == target);
    CHECK(check_errors(*repo) == 0);
}

TEST_CASE("a SIGKILLed move with reference rewriting resumes and ends with no old reference",
          "[repository][crash]") {
    TempDir dir("repo-crash");
    auto data = (dir / "data").string();
    auto repo = SqliteRepository::open(data);
    host::ContentGeneratorOptions gen;
    gen.assets = 2000;
    gen.pages = 3000;
    gen.references_per_page = 8;
    host::generate_content(*repo, gen);
    std::uint64_t referrers_before = 0;
    {
        std::set<std::string> r;
        repo->referrers_under("/content/dam/gen", false, [&](const Reference& ref) {
            r.insert(ref.from_path);
            return true;
        });
        referrers_before = r.size();
    }
    REQUIRE(referrers_before > 1000);
    {
        ChildProcess child({helper(), "move", data, "50"}, dir / "helper.log");
        REQUIRE(eventually([&] { return checkpoint(*repo, "crash/rewritten") >= 200; }, 60s));
        child.signal(SIGKILL);
        REQUIRE(killed(child.wait(10s)));
    }
    auto rewritten = checkpoint(*repo, "crash/rewritten");
    INFO("rewritten " << rewritten << " of " << referrers_before);
    CHECK(rewritten % 50 == 0);
    CHECK(rewritten < referrers_before);
    CHECK_FALSE(repo->get("/content/dam/gen"));
    CHECK(repo->get("/content/dam/moved"));
    CHECK(check_errors(*repo) == 0);
    std::set<std::string> remaining;
    repo->referrers_under("/content/dam/gen", false, [&](const Reference& ref) {
        remaining.insert(ref.from_path);
        return true;
    });
    CHECK(remaining.size() == referrers_before - rewritten);

    ChildProcess again({helper(), "move", data, "50"}, dir / "helper2.log");
    auto status = again.wait(120s);
    REQUIRE(status);
    INFO(again.output());
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
    CHECK(repo->referrers_under("/content/dam/gen", false, [](const Reference&) { return true; }) ==
          0);
    CHECK(repo->count("/content/dam/moved", {.folders = false}) == gen.assets);
    CHECK(check_errors(*repo) == 0);
}
