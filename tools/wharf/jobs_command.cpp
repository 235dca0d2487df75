// `wharf jobs list|show|log|stop|delete|report|submit`: the job commands,
// over GET/POST/DELETE /api/jobs... of a running wharfd.
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
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

// Prints one page of up to kLogPage lines after `after` and moves `after`
// on; returns how many lines it printed.
constexpr std::size_t kLogPage = 1000;
std::size_t print_log_page(ApiSession& api, std::int64_t id, std::int64_t& after) {
    auto page = api.call_json("GET", "/api/jobs/" + std::to_string(id) +
                                         "/log?limit=" + std::to_string(kLogPage) +
                                         "&after=" + std::to_string(after));
    for (const auto& line : page["lines"]) {
        if (global_options().json) {
            std::cout << line.dump() << "\n";
        } else {
            std::cout << text_of(line["at"]) << "  " << text_of(line["line"]) << "\n";
        }
    }
    std::cout.flush();
    after = page["next_after"].get<std::int64_t>();
    return page["lines"].size();
}

// `jobs log ID --follow`: the log as it grows (GET .../log?follow=1, an
// event stream), to the job's end. Exits 0 when the job succeeded, 1 naming
// the final state otherwise, 5 when the job is deleted meanwhile. A stream
// that ends early (its maximum duration, the server restarting, a broken
// connection) is resumed from the last line printed, so no line is printed
// twice or lost; when the server stays away for kReconnectFor, 3.
int follow_log(ApiSession& api, std::int64_t id) {
    constexpr auto kReconnectFor = std::chrono::seconds(30);
    constexpr auto kReconnectDelay = std::chrono::seconds(1);
    std::int64_t after = 0;
    std::optional<std::chrono::steady_clock::time_point> reconnecting_since;
    for (;;) {
        Json end;
        try {
            api.stream_events(
                "/api/jobs/" + std::to_string(id) + "/log?follow=1&after=" + std::to_string(after),
                [&](const StreamEvent& e) {
                    if (e.event == "end") {
                        end = Json::parse(e.data, nullptr, false);
                        return;
                    }
                    if (!e.event.empty()) return;
                    auto space = e.data.find(' ');
                    auto at = e.data.substr(0, space);
                    auto line = space == std::string::npos ? "" : e.data.substr(space + 1);
                    std::int64_t seq = std::stoll(e.id);
                    if (global_options().json) {
                        std::cout << Json{{"seq", seq}, {"at", at}, {"line", line}}.dump() << "\n";
                    } else {
                        std::cout << at << "  " << line << "\n";
                    }
                    std::cout.flush();
                    after = seq;
                });
            reconnecting_since.reset();
        } catch (const CommandError& e) {
            // The first request says at once what is wrong; a reconnection
            // waits for a restarting server (or a free stream) a while.
            bool transient =
                e.exit_code == kExitUnreachable || e.message.find("HTTP 503") != std::string::npos;
            if (!reconnecting_since || !transient ||
                std::chrono::steady_clock::now() - *reconnecting_since > kReconnectFor)
                throw;
            std::this_thread::sleep_for(kReconnectDelay);
            continue;
        }
        std::string reason = end.is_object() ? end.value("reason", "") : "";
        if (reason == "final") {
            if (global_options().json) std::cout << end.dump() << "\n";
            if (end["state"] == "succeeded") return kExitOk;
            auto message = text_of(end["result_message"]);
            std::cerr << "wharf: job " << id << " ended " << text_of(end["status"]) << " ("
                      << text_of(end["state"]) << ")" << (message.empty() ? "" : ": " + message)
                      << "\n";
            return kExitFailed;
        }
        if (reason == "deleted")
            throw CommandError{kExitNotFound, "job " + std::to_string(id) +
                                                  " was deleted while its log was followed"};
        if (reason == "timeout") continue;  // the stream's maximum duration: resume at once
        // "shutdown", or the stream broke off: the server may be restarting.
        if (!reconnecting_since) reconnecting_since = std::chrono::steady_clock::now();
        std::this_thread::sleep_for(kReconnectDelay);
    }
}

int log(std::int64_t id, bool follow) {
    ApiSession api;
    if (follow) return follow_log(api, id);
    std::int64_t after = 0;
    while (print_log_page(api, id, after) == kLogPage) {
    }
    return kExitOk;
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
    log_cmd->add_flag("-f,--follow", *follow,
                      "print lines as they come until the job ends; exit 0 if it succeeded, 1 "
                      "naming its final state otherwise");
    log_cmd->callback([&exit_code, id, follow] {
        int code = kExitOk;
        exit_code = run_command([&] { code = log(*id, *follow); });
        if (exit_code == kExitOk) exit_code = code;
    });

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
