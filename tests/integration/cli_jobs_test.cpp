// The `wharf` CLI binary against a real API server (in-process host on
// 127.0.0.1): job commands, queues, plugins, op, --json, where the server and
// token come from, and the documented exit codes.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>

#include "integration/http_test_support.hpp"

using namespace std::chrono_literals;
using wharf::JobState;
using wharf::test::ApiHost;
using wharf::test::kOperatorToken;
using wharf::test::kViewerToken;
using wharf::test::parse_json;

namespace {

struct Run {
    int code = -1;
    std::string out;
    std::string err;
};

// Runs `wharf ARGS` with a clean environment plus `env` (NAME=value ...).
Run wharf_cli(const ApiHost& host, const std::string& args, const std::string& env = "") {
    auto err_file = host.dir / ("cli-stderr-" + std::to_string(::getpid()));
    std::string command = "env -i HOME=" + (host.dir / "home").string() + " " + env + " " +
                          WHARF_CLI_EXECUTABLE + " " + args + " 2>" + err_file.string();
    Run r;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) return r;
    char buf[4096];
    while (auto n = std::fread(buf, 1, sizeof buf, pipe)) r.out.append(buf, n);
    int status = ::pclose(pipe);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(err_file);
    r.err.assign(std::istreambuf_iterator<char>(in), {});
    return r;
}

std::string env_for(const ApiHost& host, const std::string& token) {
    return "WHARF_SERVER=" + host.url() + " WHARF_TOKEN=" + token;
}

}  // namespace

TEST_CASE("wharf jobs list, show, log and report read jobs from the server", "[cli][http]") {
    ApiHost host;
    auto done = host.job_in_state("test/cli", R"({"rows":"2","wharf:description":"Move 2 assets"})",
                                  JobState::succeeded);
    host.job_in_state("test/noretry/cli", R"({"outcome":"failed"})", JobState::given_up);
    auto env = env_for(host, kViewerToken);
    auto id = std::to_string(done.id);

    auto list = wharf_cli(host, "jobs list", env);
    INFO(list.err);
    REQUIRE(list.code == 0);
    CHECK(list.out.rfind("ID", 0) == 0);
    CHECK(list.out.find("Success") != std::string::npos);
    CHECK(list.out.find("Fail") != std::string::npos);
    CHECK(list.out.find("test/cli") != std::string::npos);

    auto json = wharf_cli(host, "jobs list --state Success --json", env);
    REQUIRE(json.code == 0);
    auto page = parse_json(json.out);
    REQUIRE(page["jobs"].size() == 1);
    CHECK(page["jobs"][0]["id"] == done.id);

    auto paged = wharf_cli(host, "jobs list --limit 1", env);
    CHECK(paged.code == 0);
    CHECK(paged.err.find("more: add --cursor") != std::string::npos);
    auto all = wharf_cli(host, "jobs list --limit 1 --all --json", env);
    CHECK(parse_json(all.out)["jobs"].size() == 2);

    auto show = wharf_cli(host, "jobs show " + id, env);
    REQUIRE(show.code == 0);
    CHECK(show.out.find("status:") != std::string::npos);
    CHECK(show.out.find("Move 2 assets") != std::string::npos);

    auto log = wharf_cli(host, "jobs log " + id, env);
    REQUIRE(log.code == 0);
    CHECK(log.out.find("started test/cli") != std::string::npos);
    CHECK(log.out.find("done") != std::string::npos);

    auto report = wharf_cli(host, "jobs report " + id, env);
    REQUIRE(report.code == 0);
    CHECK(report.out.rfind("path,outcome\r\n", 0) == 0);
    auto file = host.dir / "report.csv";
    auto to_file = wharf_cli(host, "jobs report " + id + " -o " + file.string(), env);
    CHECK(to_file.code == 0);
    std::ifstream in(file);
    std::string content((std::istreambuf_iterator<char>(in)), {});
    CHECK(content == report.out);
}

TEST_CASE("wharf jobs submit, stop and delete, with the documented exit codes", "[cli][http]") {
    ApiHost host;
    auto op = env_for(host, kOperatorToken);
    auto submitted = wharf_cli(host, "jobs submit test/cli/new path=/content/dam/x --json", op);
    INFO(submitted.err);
    REQUIRE(submitted.code == 0);
    auto job = parse_json(submitted.out);
    auto id = job["id"].get<wharf::JobId>();
    CHECK(host.store->find(id)->payload.get<std::string>("path") == "/content/dam/x");
    CHECK(host.store->find(id)->submitted_by == "otto");

    auto active = host.job_in_state("test/cli", R"({"block":"true"})", JobState::active);
    auto delete_active = wharf_cli(host, "jobs delete " + std::to_string(active.id), op);
    CHECK(delete_active.code == 6);
    CHECK(delete_active.err.find("Active") != std::string::npos);
    CHECK(host.store->find(active.id));

    auto stop = wharf_cli(host, "jobs stop " + std::to_string(active.id), op);
    CHECK(stop.code == 0);
    CHECK(stop.out.find("asked to stop") != std::string::npos);
    REQUIRE(wharf::test::eventually(
        [&] { return host.store->find(active.id)->state == JobState::stopped; }));
    auto deleted = wharf_cli(host, "jobs delete " + std::to_string(active.id), op);
    CHECK(deleted.code == 0);
    CHECK(deleted.out == "job " + std::to_string(active.id) + " deleted\n");
    CHECK(!host.store->find(active.id));

    CHECK(wharf_cli(host, "jobs show 987654", op).code == 5);
    auto weak = wharf_cli(host, "jobs delete " + std::to_string(id), env_for(host, kViewerToken));
    CHECK(weak.code == 4);
    CHECK(weak.err.find("operator") != std::string::npos);
    CHECK(wharf_cli(host, "jobs list", env_for(host, "bad-token")).code == 4);
    CHECK(wharf_cli(host, "jobs list", "WHARF_SERVER=http://127.0.0.1:1 WHARF_TOKEN=x").code == 3);
    CHECK(wharf_cli(host, "jobs show notanumber", op).code == 2);
    CHECK(wharf_cli(host, "jobs submit test/x novalue", op).code == 2);
    auto bad_topic = wharf_cli(host, "jobs submit ../etc", op);
    CHECK(bad_topic.code == 1);
    CHECK(bad_topic.err.find("topic") != std::string::npos);
}

TEST_CASE("wharf finds server and token in flags, then the environment, then cli.yaml",
          "[cli][http]") {
    ApiHost host;
    host.job_in_state("test/cli", "{}", JobState::succeeded);
    // Nothing given: the default address has no server in the test.
    auto nothing = wharf_cli(host, "--server http://127.0.0.1:1 jobs list");
    CHECK(nothing.code == 3);
    CHECK(nothing.err.find("cannot reach http://127.0.0.1:1") != std::string::npos);

    auto config = host.dir / "home/.config/wharf/cli.yaml";
    wharf::test::write_text(config, "server: " + host.url() + "\ntoken: " + kViewerToken + "\n");
    CHECK(wharf_cli(host, "jobs list").code == 0);
    // Flags win over the environment, which wins over the file.
    CHECK(wharf_cli(host, "jobs list", "WHARF_TOKEN=bad").code == 4);
    CHECK(wharf_cli(host, "jobs list --token " + kViewerToken, "WHARF_TOKEN=bad").code == 0);
    auto token_file = host.dir / "token";
    wharf::test::write_text(token_file, kViewerToken + "\n");
    CHECK(wharf_cli(host, "--token-file " + token_file.string() + " queues", "WHARF_TOKEN=bad")
              .code == 0);

    wharf::test::write_text(config, "server: " + host.url() + "\ntokn: x\n");
    auto bad = wharf_cli(host, "jobs list");
    CHECK(bad.code == 2);
    CHECK(bad.err.find("cli.yaml:2:1: unknown key 'tokn'") != std::string::npos);
}

TEST_CASE("wharf queues, plugins and op talk to the server", "[cli][http]") {
    ApiHost host;
    auto env = env_for(host, kViewerToken);
    auto queues = wharf_cli(host, "queues", env);
    REQUIRE(queues.code == 0);
    CHECK(queues.out.find("default") != std::string::npos);
    CHECK(queues.out.find("test-noretry") != std::string::npos);
    auto queues_json = wharf_cli(host, "queues --json", env);
    CHECK(parse_json(queues_json.out)["queues"].is_array());

    REQUIRE(host.plugins->wait_until([](const auto& all) { return all.size() == 2; }, 10s));
    auto plugins = wharf_cli(host, "plugins", env);
    REQUIRE(plugins.code == 0);
    CHECK(plugins.out.find("fixture.greeter") != std::string::npos);
    CHECK(plugins.out.find("start failed") != std::string::npos);

    auto op = wharf_cli(host, "op delete path=/content/dam/x", env_for(host, kOperatorToken));
    CHECK(op.code == 5);
    CHECK(op.err.find("unknown operation 'delete'") != std::string::npos);
}
