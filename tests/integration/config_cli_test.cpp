// `wharf config validate` as an admin runs it: the real binary on real trees.
#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

#include "fixtures/config/config_test_support.hpp"

using namespace wharf::test_config;

namespace {

const fs::path kWharf = WHARF_CLI_EXECUTABLE;

struct Run {
    int exit_code;
    std::string out;
};

Run run(const std::string& args) {
    std::string command = kWharf.string() + " " + args + " 2>/dev/null";
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe);
    std::string out;
    char buf[4096];
    while (auto n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
    int status = ::pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace

TEST_CASE("wharf config validate accepts the shipped configs", "[config]") {
    REQUIRE(fs::exists(kWharf));
    auto configs = (fs::path(WHARF_SOURCE_DIR) / "configs").string();
    // Against the plugins that ship: every file checked, nothing to say.
    auto r = run("config validate " + configs + " --plugins " + WHARF_PLUGIN_DIR);
    CHECK(r.out.empty());
    CHECK(r.exit_code == 0);

    // Without plugins (wharf.yaml's plugins_dir missing), the operations
    // files are only warned about: wharfd keeps them pending.
    TempTree tree;  // a copy of the shipped configs
    write_in_place(tree / "wharf.yaml", "plugins_dir: no-plugins-here\n");
    r = run("config validate " + tree.path().string());
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains(tree.path().string() +
                                      "/operations/delete.yaml:1:1: warning: no plugin declares "
                                      "operations/delete (not checked: no plugins directory"));

    // wharf.yaml's plugins_dir is used when --plugins is not given.
    write_in_place(tree / "wharf.yaml", std::string("plugins_dir: ") + WHARF_PLUGIN_DIR + "\n");
    write_in_place(tree / "operations/delete.yaml", "threshold: many\n");
    r = run("config validate " + tree.path().string());
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Catch::Contains(tree.path().string() +
                                      "/operations/delete.yaml:1:12: wrong type for 'threshold'"));
    write_in_place(tree / "operations/delet.yaml", "threshold: 5\n");
    r = run("config validate " + tree.path().string());
    CHECK_THAT(r.out, Catch::Contains(tree.path().string() +
                                      "/operations/delet.yaml:1:1: no plugin declares "
                                      "operations/delet"));
}

TEST_CASE("wharf config validate prints every problem as file:line:col and exits 1", "[config]") {
    TempTree tree;
    write_in_place(tree / "purge.yaml", "schedule: 0 0 1 * * *\nthreshold_days: -2\n");
    write_in_place(tree / "queues/fast.yaml", "topics: [wharf/a]\nmax_paralel: 4\n");
    write_in_place(tree / "operations/delete.yaml", "threshold: 10\n");
    auto r = run("config validate " + tree.path().string());
    CHECK(r.exit_code == 1);
    auto dir = tree.path().string();
    CHECK_THAT(r.out, Catch::Contains(dir + "/purge.yaml:1:21: invalid cron for 'schedule'"));
    CHECK_THAT(r.out, Catch::Contains(dir + "/purge.yaml:2:17: value -2 for 'threshold_days'"));
    CHECK_THAT(r.out, Catch::Contains(dir + "/queues/fast.yaml:2:1: unknown key 'max_paralel' "
                                            "(did you mean 'max_parallel'?)"));
    // No plugins at hand: the operations file is unchecked, said as a warning.
    CHECK_THAT(r.out, Catch::Contains(dir + "/operations/delete.yaml:1:1: warning: no plugin "
                                            "declares operations/delete"));
}

TEST_CASE("wharf config validate checks operations files against the plugins' schemas",
          "[config]") {
    TempTree tree(false);
    auto plugins = (fs::path(WHARF_FIXTURE_DIR) / "config").string();
    write_in_place(tree / "operations/fixture.yaml", "threshold: 50\nemail_enabled: true\n");
    CHECK(run("config validate " + tree.path().string() + " --plugins " + plugins).exit_code == 0);

    write_in_place(tree / "operations/fixture.yaml", "threshold: big\n");
    auto r = run("config validate " + tree.path().string() + " --plugins " + plugins);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Catch::Contains("/operations/fixture.yaml:1:12: wrong type for 'threshold': "
                                      "expected an integer, got 'big'"));

    CHECK(run("config validate /nonexistent/dir").exit_code == 2);
    CHECK(run("config").exit_code == 2);
}
