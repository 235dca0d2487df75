// `wharf queues` and `wharf plugins`: what the server runs, from GET
// /api/queues and GET /api/plugins.
#include <iostream>

#include "api_client.hpp"
#include "commands.hpp"

namespace wharf::cli {
namespace {

using Json = nlohmann::json;

std::string joined(const Json& list) {
    std::string out;
    if (!list.is_array()) return out;
    for (const auto& item : list) out += (out.empty() ? "" : ",") + text_of(item);
    return out;
}

void queues() {
    ApiSession api;
    auto body = api.call_json("GET", "/api/queues");
    if (global_options().json) {
        std::cout << body.dump(2) << "\n";
        return;
    }
    std::vector<std::vector<std::string>> rows = {{"NAME", "STATE", "TYPE", "MAX_PARALLEL",
                                                   "RUNNING", "QUEUED", "SCHEDULED", "FAILED",
                                                   "DONE", "TOPICS"}};
    for (const auto& q : body["queues"]) {
        const auto& jobs = q["jobs"];
        auto done = jobs.value("succeeded", 0) + jobs.value("error", 0) + jobs.value("stopped", 0) +
                    jobs.value("given_up", 0);
        rows.push_back({text_of(q["name"]), text_of(q["state"]), text_of(q.value("type", Json())),
                        text_of(q.value("max_parallel", Json())),
                        text_of(q.value("running", Json(jobs.value("active", 0)))),
                        std::to_string(jobs.value("queued", 0)),
                        std::to_string(jobs.value("scheduled", 0)),
                        std::to_string(jobs.value("failed", 0)), std::to_string(done),
                        joined(q.value("topics", Json::array()))});
    }
    print_table(rows);
}

void plugins() {
    ApiSession api;
    auto body = api.call_json("GET", "/api/plugins");
    if (global_options().json) {
        std::cout << body.dump(2) << "\n";
        return;
    }
    std::vector<std::vector<std::string>> rows = {
        {"ID", "VERSION", "ABI", "STATE", "FILE", "REASON"}};
    for (const auto& p : body["plugins"]) {
        auto reason = text_of(p["reason"]);
        if (reason.empty()) reason = text_of(p["last_error"]);
        rows.push_back({text_of(p["id"]), text_of(p["version"]), text_of(p["abi"]),
                        text_of(p["state"]), text_of(p["file"]), reason});
    }
    print_table(rows);
}

}  // namespace

void add_status_commands(CLI::App& app, int& exit_code) {
    app.add_subcommand("queues", "queues: limits in force and job counts")->callback([&exit_code] {
        exit_code = run_command(queues);
    });
    app.add_subcommand("plugins", "plugins: state, version, ABI, failures")->callback([&exit_code] {
        exit_code = run_command(plugins);
    });
}

}  // namespace wharf::cli
