// `wharf jobs list|show|log|stop|delete|report|submit`: the job commands,
// over GET/POST/DELETE /api/jobs... of a running wharfd.
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "api_client.hpp"
#include "commands.hpp"

namespace wharf::cli {
namespace {

using Json = nlohmann::json;

struct ListOptions {
    std::vector<std::string> states;
    std::string topic, queue, user, text, from, to;
    std::int64_t limit = 50;
    std::int64_t cursor = 0;
    bool all = false;
};

std::string list_query(const ListOptions& o) {
    std::string q;
    auto add = [&](const char* name, const std::string& value) {
        if (value.empty()) return;
        q += (q.empty() ? "?" : "&") + std::string(name) + "=" + host::url_encode(value);
    };
    std::string states;
    for (const auto& s : o.states) states += (states.empty() ? "" : ",") + s;
    add("state", states);
    add("topic", o.topic);
    add("queue", o.queue);
    add("user", o.user);
    add("text", o.text);
    add("from", o.from);
    add("to", o.to);
    add("limit", std::to_string(o.limit));
    if (o.cursor > 0) add("cursor", std::to_string(o.cursor));
    return q;
}

std::string progress_of(const Json& job) {
    const auto& p = job["progress"];
    if (p["total"].get<std::int64_t>() <= 0) return job["state"] == "active" ? "..." : "";
    return std::to_string(static_cast<int>(p["percent"].get<double>())) + "% (" +
           std::to_string(p["done"].get<std::int64_t>()) + "/" +
           std::to_string(p["total"].get<std::int64_t>()) + ")";
}

void list(const ListOptions& options) {
    ApiSession api;
    auto o = options;
    std::vector<std::vector<std::string>> rows = {
        {"ID", "STATUS", "PROGRESS", "QUEUE", "TOPIC", "USER", "CREATED"}};
    Json all = Json::array();
    for (;;) {
        auto page = api.call_json("GET", "/api/jobs" + list_query(o));
        for (const auto& job : page["jobs"]) {
            all.push_back(job);
            rows.push_back({text_of(job["id"]), text_of(job["status"]), progress_of(job),
                            text_of(job["queue"]), text_of(job["topic"]),
                            text_of(job["submitted_by"]), text_of(job["created"])});
        }
        if (!o.all || page["next_cursor"].is_null()) {
            if (global_options().json) {
                std::cout << (o.all ? Json{{"jobs", all}, {"next_cursor", nullptr}} : page).dump(2)
                          << "\n";
            } else {
                print_table(rows);
                if (!page["next_cursor"].is_null())
                    std::cerr << "more: add --cursor " << page["next_cursor"].dump()
                              << " (or --all)\n";
            }
            return;
        }
        o.cursor = page["next_cursor"].get<std::int64_t>();
    }
}

void show(std::int64_t id) {
    ApiSession api;
    auto job = api.call_json("GET", "/api/jobs/" + std::to_string(id));
    if (global_options().json) {
        std::cout << job.dump(2) << "\n";
        return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const char* key : {"id",        "status",      "state",          "description",
                            "topic",     "queue",       "submitted_by",   "created",
                            "scheduled", "started",     "finished",       "eta",
                            "cron",      "retry_count", "max_retries",    "result_message",
                            "log_lines", "report_rows", "stop_requested", "stuck",
                            "overdue"}) {
        auto value = text_of(job[key]);
        if (value.empty()) continue;
        rows.push_back({std::string(key) + ":", value});
    }
    rows.push_back({"progress:", progress_of(job)});
    rows.push_back({"payload:", job["payload"].dump()});
    print_table(rows);
}

bool print_log_page(ApiSession& api, std::int64_t id, std::int64_t& after) {
    auto page = api.call_json("GET", "/api/jobs/" + std::to_string(id) +
                                         "/log?limit=1000&after=" + std::to_string(after));
    for (const auto& line : page["lines"]) {
        if (global_options().json) {
            std::cout << line.dump() << "\n";
        } else {
            std::cout << text_of(line["at"]) << "  " << text_of(line["line"]) << "\n";
        }
    }
    std::cout.flush();
    after = page["next_after"].get<std::int64_t>();
    return page["complete"].get<bool>();
}

void log(std::int64_t id, bool follow) {
    ApiSession api;
    std::int64_t after = 0;
    for (;;) {
        bool complete = print_log_page(api, id, after);
        if (!follow || complete) return;
        // The API has no push yet; two polls a second keep up with a growing log.
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
}

void stop(std::int64_t id) {
    ApiSession api;
    auto job = api.call_json("POST", "/api/jobs/" + std::to_string(id) + "/stop");
    if (global_options().json) {
        std::cout << job.dump(2) << "\n";
    } else if (job["state"] == "stopped") {
        std::cout << "job " << id << " stopped\n";
    } else {
        std::cout << "job " << id << " asked to stop (" << text_of(job["status"])
                  << "): it ends when its consumer sees the request\n";
    }
}

void remove(std::int64_t id) {
    ApiSession api;
    api.call("DELETE", "/api/jobs/" + std::to_string(id));
    if (global_options().json) {
        std::cout << Json{{"deleted", id}}.dump() << "\n";
    } else {
        std::cout << "job " << id << " deleted\n";
    }
}

void report(std::int64_t id, const std::string& output) {
    ApiSession api;
    auto response = api.call("GET", "/api/jobs/" + std::to_string(id) + "/report.csv");
    if (output.empty() || output == "-") {
        std::cout << response.body;
        return;
    }
    std::ofstream out(output, std::ios::binary | std::ios::trunc);
    out << response.body;
    if (!out) throw CommandError{kExitFailed, "cannot write " + output};
    std::cerr << "wrote " << output << "\n";
}

struct SubmitOptions {
    std::string topic;
    std::vector<std::string> values;  // key=value
    std::string payload_json;
    std::string at;
    std::string cron;
};

void submit(const SubmitOptions& o) {
    Json payload = Json::object();
    if (!o.payload_json.empty()) {
        payload = Json::parse(o.payload_json, nullptr, false);
        if (!payload.is_object()) throw CommandError{kExitUsage, "--payload must be a JSON object"};
    }
    for (const auto& kv : o.values) {
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0)
            throw CommandError{kExitUsage, "'" + kv + "' is not key=value"};
        payload[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    Json body = {{"topic", o.topic}, {"payload", payload}};
    if (!o.at.empty()) body["at"] = o.at;
    if (!o.cron.empty()) body["cron"] = o.cron;
    ApiSession api;
    auto job = api.call_json("POST", "/api/jobs", body.dump());
    if (global_options().json) {
        std::cout << job.dump(2) << "\n";
    } else {
        std::cout << "job " << job["id"].dump() << " " << text_of(job["status"]) << " on queue "
                  << text_of(job["queue"]) << "\n";
    }
}

}  // namespace

void add_jobs_commands(CLI::App& app, int& exit_code) {
    auto* jobs = app.add_subcommand("jobs", "list, inspect, stop, delete and submit jobs");
    jobs->require_subcommand(1);

    auto lo = std::make_shared<ListOptions>();
    auto* list_cmd = jobs->add_subcommand("list", "jobs, newest first");
    list_cmd->add_option("--state", lo->states,
                         "state or label (active, Success, Fail...); repeat for several");
    list_cmd->add_option("--topic", lo->topic, "exact topic");
    list_cmd->add_option("--queue", lo->queue, "exact queue");
    list_cmd->add_option("--user", lo->user, "submitted by");
    list_cmd->add_option("--text", lo->text, "text in topic, payload, message or user");
    list_cmd->add_option("--from", lo->from, "created at or after (RFC 3339)");
    list_cmd->add_option("--to", lo->to, "created before (RFC 3339)");
    list_cmd->add_option("--limit", lo->limit, "jobs per page (1-1000)")
        ->check(CLI::Range(1, 1000));
    list_cmd->add_option("--cursor", lo->cursor, "continue after this page cursor");
    list_cmd->add_flag("--all", lo->all, "follow every page");
    list_cmd->callback([&exit_code, lo] { exit_code = run_command([&] { list(*lo); }); });

    auto id = std::make_shared<std::int64_t>(0);
    auto follow = std::make_shared<bool>(false);
    auto output = std::make_shared<std::string>();

    auto* show_cmd = jobs->add_subcommand("show", "one job's details");
    show_cmd->add_option("ID", *id, "job id")->required();
    show_cmd->callback([&exit_code, id] { exit_code = run_command([&] { show(*id); }); });

    auto* log_cmd = jobs->add_subcommand("log", "a job's log");
    log_cmd->add_option("ID", *id, "job id")->required();
    log_cmd->add_flag("-f,--follow", *follow, "keep printing until the job ends");
    log_cmd->callback(
        [&exit_code, id, follow] { exit_code = run_command([&] { log(*id, *follow); }); });

    auto* stop_cmd = jobs->add_subcommand("stop", "stop a job");
    stop_cmd->add_option("ID", *id, "job id")->required();
    stop_cmd->callback([&exit_code, id] { exit_code = run_command([&] { stop(*id); }); });

    auto* delete_cmd = jobs->add_subcommand("delete", "delete a job (not Active or Queued ones)");
    delete_cmd->add_option("ID", *id, "job id")->required();
    delete_cmd->callback([&exit_code, id] { exit_code = run_command([&] { remove(*id); }); });

    auto* report_cmd = jobs->add_subcommand("report", "a job's report as CSV");
    report_cmd->add_option("ID", *id, "job id")->required();
    report_cmd->add_option("-o,--output", *output, "write to this file instead of stdout");
    report_cmd->callback(
        [&exit_code, id, output] { exit_code = run_command([&] { report(*id, *output); }); });

    auto so = std::make_shared<SubmitOptions>();
    auto* submit_cmd = jobs->add_subcommand("submit", "enqueue a job on a topic");
    submit_cmd->add_option("TOPIC", so->topic, "e.g. wharf/asset/delete")->required();
    submit_cmd->add_option("VALUES", so->values, "payload entries as key=value");
    submit_cmd->add_option("--payload", so->payload_json, "the payload as a JSON object");
    submit_cmd->add_option("--at", so->at, "run once at this time (RFC 3339)");
    submit_cmd->add_option("--cron", so->cron, "run by this Quartz cron expression (UTC)");
    submit_cmd->callback([&exit_code, so] { exit_code = run_command([&] { submit(*so); }); });
}

}  // namespace wharf::cli
