// `wharf op OPERATION [key=value ...]`: submits an operation through POST
// /api/operations/OPERATION. The server runs it at once (200, the result is
// printed) or makes it a job (202, the job id is printed; --wait follows it
// to its end: a progress line on a terminal, plain lines otherwise).
#include <unistd.h>

#include <iostream>
#include <thread>

#include "api_client.hpp"
#include "commands.hpp"

namespace wharf::cli {
namespace {

using Json = nlohmann::json;

struct OpOptions {
    std::string operation;
    std::vector<std::string> values;
    std::string body_json;
    bool wait = false;
};

int wait_for(ApiSession& api, std::int64_t id) {
    bool tty = ::isatty(STDOUT_FILENO) != 0;
    std::string last;
    for (;;) {
        auto job = api.call_json("GET", "/api/jobs/" + std::to_string(id));
        const auto& p = job["progress"];
        std::string line = "job " + std::to_string(id) + " " + text_of(job["status"]);
        if (p["total"].get<std::int64_t>() > 0)
            line += " " + std::to_string(static_cast<int>(p["percent"].get<double>())) + "% (" +
                    text_of(p["done"]) + "/" + text_of(p["total"]) + ")";
        if (!job["eta"].is_null()) line += " eta " + text_of(job["eta"]);
        if (line != last) {
            std::cout << (tty ? "\r\033[K" : "") << line << (tty ? "" : "\n") << std::flush;
            last = line;
        }
        if (job["final"].get<bool>()) {
            if (tty) std::cout << "\n";
            auto message = text_of(job["result_message"]);
            if (!message.empty()) std::cout << message << "\n";
            return job["state"] == "succeeded" ? kExitOk : kExitFailed;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
}

int op(const OpOptions& o) {
    Json body = Json::object();
    if (!o.body_json.empty()) {
        body = Json::parse(o.body_json, nullptr, false);
        if (!body.is_object()) throw CommandError{kExitUsage, "--body must be a JSON object"};
    }
    for (const auto& kv : o.values) {
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0)
            throw CommandError{kExitUsage, "'" + kv + "' is not key=value"};
        body[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    ApiSession api;
    auto response =
        api.call("POST", "/api/operations/" + host::url_encode(o.operation), body.dump());
    auto j = Json::parse(response.body, nullptr, false);
    if (global_options().json && !o.wait) {
        std::cout << (j.is_discarded() ? Json(response.body) : j).dump(2) << "\n";
        return kExitOk;
    }
    if (response.status == 202 && j.is_object() && j.contains("id")) {
        auto id = j["id"].get<std::int64_t>();
        std::cout << "job " << id << " " << text_of(j.value("status", Json("Queued"))) << "\n";
        return o.wait ? wait_for(api, id) : kExitOk;
    }
    std::cout << (j.is_discarded() ? response.body : j.dump(2)) << "\n";
    // An inline run that failed is a failed command, as a failed job is with --wait.
    if (j.is_object() && j.contains("outcome") && j["outcome"] != "succeeded") return kExitFailed;
    return kExitOk;
}

}  // namespace

void add_op_commands(CLI::App& app, int& exit_code) {
    auto o = std::make_shared<OpOptions>();
    auto* cmd = app.add_subcommand("op", "submit an operation (runs at once or becomes a job)");
    cmd->add_option("OPERATION", o->operation, "operation name, e.g. delete")->required();
    cmd->add_option("VALUES", o->values, "request fields as key=value");
    cmd->add_option("--body", o->body_json, "the request as a JSON object");
    cmd->add_flag("--wait", o->wait, "follow the job to its end");
    cmd->callback([&exit_code, o] {
        int code = kExitOk;
        exit_code = run_command([&] { code = op(*o); });
        if (exit_code == kExitOk) exit_code = code;
    });
}

}  // namespace wharf::cli
