// Job routes of the admin API: list (JSON and CSV), details, log, report,
// enqueue, stop and delete (operations: operation_routes.cpp).
#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>

#include "base/error.hpp"
#include "http/api_context.hpp"
#include "http/http_client.hpp"
#include "http/json_codec.hpp"
#include "jobs/operation_submission.hpp"

namespace wharf::host {
namespace {

using Json = nlohmann::json;
using httplib::Request;
using httplib::Response;

constexpr std::size_t kMaxPageSize = 1000;
constexpr std::size_t kCsvPageSize = 1000;
constexpr int kMaxJsonDepth = 32;

void allow_params(const Request& req, std::initializer_list<std::string_view> allowed) {
    for (const auto& [name, value] : req.params) {
        if (std::find(allowed.begin(), allowed.end(), name) == allowed.end())
            throw ApiError{400, "invalid_argument", "unknown query parameter '" + name + "'", name};
    }
}

std::optional<std::string> param(const Request& req, const std::string& name) {
    if (!req.has_param(name.c_str())) return std::nullopt;
    return req.get_param_value(name.c_str());
}

std::int64_t integer_param(const std::string& name, const std::string& text, std::int64_t min,
                           std::int64_t max) {
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max)
        throw ApiError{400, "invalid_argument",
                       "'" + name + "' must be an integer from " + std::to_string(min) + " to " +
                           std::to_string(max) + ", not '" + text + "'",
                       name};
    return value;
}

JobTime time_param(const std::string& name, const std::string& text) {
    auto time = parse_time(text);
    if (!time)
        throw ApiError{400, "invalid_argument",
                       "'" + name +
                           "' must be an RFC 3339 time such as 2024-05-01T12:00:00Z, not '" + text +
                           "'",
                       name};
    return *time;
}

// The filter of GET /api/jobs and /api/jobs.csv.
JobFilter filter_from(const Request& req) {
    allow_params(req, {"state", "topic", "queue", "user", "from", "to", "text", "cursor", "limit"});
    JobFilter filter;
    filter.limit = 50;
    std::set<JobState> states;
    for (std::size_t i = 0; i < req.get_param_value_count("state"); ++i) {
        std::string list = req.get_param_value("state", i);
        std::size_t start = 0;
        while (start <= list.size()) {
            auto comma = list.find(',', start);
            auto name =
                list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            start = comma == std::string::npos ? list.size() + 1 : comma + 1;
            if (name.empty()) continue;
            auto named = states_named(name);
            if (named.empty())
                throw ApiError{400, "invalid_argument",
                               "unknown state '" + name +
                                   "': use queued, scheduled, active, succeeded, failed, error, "
                                   "stopped, given_up or a label (Active, Success, Fail, Error, "
                                   "Scheduled, Queued, Stopped)",
                               "state"};
            states.insert(named.begin(), named.end());
        }
    }
    filter.states.assign(states.begin(), states.end());
    if (auto v = param(req, "topic")) filter.topic = *v;
    if (auto v = param(req, "queue")) filter.queue = *v;
    if (auto v = param(req, "user")) filter.user = *v;
    if (auto v = param(req, "text")) filter.text = *v;
    if (auto v = param(req, "from")) filter.created_from = time_param("from", *v);
    if (auto v = param(req, "to")) filter.created_to = time_param("to", *v);
    if (filter.created_from && filter.created_to && *filter.created_to < *filter.created_from)
        throw ApiError{400, "invalid_argument", "'to' is before 'from'", "to"};
    if (auto v = param(req, "cursor"))
        filter.cursor = integer_param("cursor", *v, 1, std::numeric_limits<std::int64_t>::max());
    if (auto v = param(req, "limit"))
        filter.limit = static_cast<std::size_t>(
            integer_param("limit", *v, 1, static_cast<std::int64_t>(kMaxPageSize)));
    return filter;
}

// The query string of `req` with cursor replaced: the link to the next page.
std::string next_link(const Request& req, JobId cursor) {
    // Appended piece by piece: GCC 12 warns (-Wrestrict, falsely) on "?" + string.
    std::string link = req.path;
    char separator = '?';
    for (const auto& [name, value] : req.params) {
        if (name == "cursor") continue;
        link.push_back(separator);
        link.append(url_encode(name)).append("=").append(url_encode(value));
        separator = '&';
    }
    link.push_back(separator);
    link.append("cursor=").append(job_id_to_string(cursor));
    return link;
}

Job require_job(ApiContext& ctx, JobId id) {
    auto job = ctx.backends.jobs->find(id);
    if (!job) throw ApiError{404, "not_found", "no job with id " + job_id_to_string(id), "id"};
    return *job;
}

void list_jobs(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    auto filter = filter_from(req);
    auto page = ctx.backends.jobs->list(filter);
    Json jobs = Json::array();
    for (const auto& job : page.jobs) jobs.push_back(job_to_json(job));
    Json body;
    body["jobs"] = std::move(jobs);
    body["limit"] = filter.limit;
    body["next_cursor"] = page.next_cursor ? Json(*page.next_cursor) : Json(nullptr);
    body["next"] = page.next_cursor ? Json(next_link(req, *page.next_cursor)) : Json(nullptr);
    send_json(res, 200, body);
}

// Streams every matching job (or one page when `limit` is given), a page of
// the store at a time, so a download of a long history holds one page in memory.
void list_jobs_csv(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    auto filter = filter_from(req);
    bool one_page = req.has_param("limit");
    if (!one_page) filter.limit = kCsvPageSize;
    struct State {
        JobFilter filter;
        bool header_sent = false;
        bool done = false;
    };
    auto state = std::make_shared<State>(State{filter});
    auto* jobs = ctx.backends.jobs;
    auto log = ctx.log;
    res.set_header("Content-Disposition", "attachment; filename=\"jobs.csv\"");
    res.set_chunked_content_provider(
        "text/csv; charset=utf-8",
        [state, jobs, log, one_page](std::size_t, httplib::DataSink& sink) {
            try {
                std::string chunk;
                if (!state->header_sent) {
                    chunk += csv_record(job_csv_header());
                    state->header_sent = true;
                }
                auto page = jobs->list(state->filter);
                for (const auto& job : page.jobs) chunk += csv_record(job_csv_row(job));
                if (!chunk.empty() && !sink.write(chunk.data(), chunk.size())) return false;
                if (one_page || !page.next_cursor) {
                    sink.done();
                } else {
                    state->filter.cursor = page.next_cursor;
                }
                return true;
            } catch (const std::exception& e) {
                log->error("http jobs.csv failed error=\"{}\"", e.what());
                return false;  // ends the response: the client sees a truncated transfer
            }
        });
}

void get_job(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    allow_params(req, {});
    send_json(res, 200, job_to_json(require_job(ctx, job_id_param(req))));
}

void job_log(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    allow_params(req, {"after", "limit", "format"});
    auto id = job_id_param(req);
    auto job = require_job(ctx, id);
    std::int64_t after = 0;
    std::size_t limit = 500;
    if (auto v = param(req, "after"))
        after = integer_param("after", *v, 0, std::numeric_limits<std::int64_t>::max());
    if (auto v = param(req, "limit"))
        limit = static_cast<std::size_t>(integer_param("limit", *v, 1, 10000));
    auto format = param(req, "format").value_or("json");
    if (format != "json" && format != "text")
        throw ApiError{400, "invalid_argument", "'format' must be json or text", "format"};
    auto lines = ctx.backends.store->log(id, after, limit);
    std::int64_t next_after = lines.empty() ? after : lines.back().seq;
    if (format == "text") {
        std::string text;
        for (const auto& l : lines) text += format_time(l.at) + " " + l.line + "\n";
        res.set_header("X-Wharf-Next-After", std::to_string(next_after));
        res.status = 200;
        res.set_content(text, "text/plain; charset=utf-8");
        return;
    }
    Json out = Json::array();
    for (const auto& l : lines)
        out.push_back({{"seq", l.seq}, {"at", format_time(l.at)}, {"line", l.line}});
    Json body;
    body["job_id"] = id;
    body["state"] = to_string(job.state);
    body["status"] = aem_label(job.state);
    body["lines"] = std::move(out);
    body["next_after"] = next_after;
    // The log can still grow unless the job is final and this page was not full.
    body["complete"] = is_final(job.state) && lines.size() < limit;
    send_json(res, 200, body);
}

void job_report(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    allow_params(req, {});
    auto id = job_id_param(req);
    require_job(ctx, id);
    auto offset = std::make_shared<std::int64_t>(0);
    auto* store = ctx.backends.store;
    auto log = ctx.log;
    res.set_header("Content-Disposition",
                   "attachment; filename=\"job-" + job_id_to_string(id) + "-report.csv\"");
    res.set_chunked_content_provider(
        "text/csv; charset=utf-8", [offset, store, log, id](std::size_t, httplib::DataSink& sink) {
            try {
                auto rows = store->report(id, *offset, kCsvPageSize);
                std::string chunk;
                for (const auto& row : rows) chunk += csv_record(row);
                if (!chunk.empty() && !sink.write(chunk.data(), chunk.size())) return false;
                *offset += static_cast<std::int64_t>(rows.size());
                if (rows.size() < kCsvPageSize) sink.done();
                return true;
            } catch (const std::exception& e) {
                log->error("http report failed job={} error=\"{}\"", id, e.what());
                return false;
            }
        });
}

// The file a consumer attached (JobContext::attach_result), streamed in
// chunks: never read whole into memory.
void job_result(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    allow_params(req, {});
    auto id = job_id_param(req);
    require_job(ctx, id);
    auto checkpoints = ctx.backends.store->checkpoints(id);
    auto it = checkpoints.find(kResultCheckpoint);
    auto file = it == checkpoints.end() ? std::nullopt : decode_result_file(it->second);
    if (!file)
        throw ApiError{404, "no_result",
                       "job " + job_id_to_string(id) +
                           " has no result file (yet): only some operations attach one, when "
                           "their output is complete",
                       "id"};
    std::error_code ec;
    auto size = std::filesystem::file_size(file->path, ec);
    auto in = std::make_shared<std::ifstream>(file->path, std::ios::binary);
    if (ec || !*in) {
        ctx.log->error("http job result missing job={} file={}", id, file->path.string());
        throw ApiError{404, "no_result",
                       "the result file of job " + job_id_to_string(id) + " is gone", "id"};
    }
    res.set_header("Content-Disposition", "attachment; filename=\"" + file->download_name + "\"");
    auto log = ctx.log;
    res.set_content_provider(
        static_cast<std::size_t>(size), file->content_type,
        [in, log, id](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
            char buffer[64 * 1024];
            in->seekg(static_cast<std::streamoff>(offset));
            auto n = std::min(length, sizeof buffer);
            in->read(buffer, static_cast<std::streamsize>(n));
            auto got = static_cast<std::size_t>(in->gcount());
            if (got == 0) {
                log->error("http job result truncated job={} offset={}", id, offset);
                return false;
            }
            return sink.write(buffer, got);
        });
}

Json parse_body(const Request& req) {
    auto type = req.get_header_value("Content-Type");
    if (!type.empty() && type.find("json") == std::string::npos)
        throw ApiError{415, "unsupported_media_type",
                       "send the body as application/json, not " + type, ""};
    if (req.body.empty())
        throw ApiError{400, "invalid_argument", "the request needs a JSON object as its body", ""};
    // Deep nesting costs stack in every later step; refuse it while parsing.
    auto depth_guard = [](int depth, Json::parse_event_t, Json&) {
        if (depth > kMaxJsonDepth)
            throw ApiError{
                400, "malformed_json",
                "the JSON is nested deeper than " + std::to_string(kMaxJsonDepth) + " levels", ""};
        return true;
    };
    try {
        return Json::parse(req.body, depth_guard);
    } catch (const Json::parse_error& e) {
        throw ApiError{400, "malformed_json",
                       "the body is not valid JSON (at byte " + std::to_string(e.byte) + ")", ""};
    }
}

void enqueue_job(ApiContext& ctx, const Request& req, Response& res, const ApiUser& user) {
    allow_params(req, {});
    auto body = parse_body(req);
    if (!body.is_object())
        throw ApiError{400, "invalid_argument", "the body must be a JSON object", ""};
    static const std::set<std::string> known = {"topic", "payload", "at", "cron", "schedule_name"};
    for (const auto& [key, value] : body.items()) {
        if (!known.count(key))
            throw ApiError{
                400, "invalid_argument",
                "unknown field '" + key + "' (known: topic, payload, at, cron, schedule_name)",
                key};
    }
    auto string_field = [&](const char* name, bool required) -> std::string {
        if (!body.contains(name)) {
            if (required)
                throw ApiError{400, "invalid_argument", std::string("'") + name + "' is required",
                               name};
            return {};
        }
        const auto& v = body[name];
        if (!v.is_string())
            throw ApiError{400, "invalid_argument",
                           std::string("'") + name + "' must be a string, not " + v.type_name(),
                           name};
        return v.get<std::string>();
    };
    auto topic = string_field("topic", true);
    if (topic.empty()) throw ApiError{400, "invalid_argument", "'topic' is empty", "topic"};
    wharf::EnqueueOptions options;
    options.user = user.name;
    auto at = string_field("at", false);
    options.cron = string_field("cron", false);
    options.schedule_name = string_field("schedule_name", false);
    if (!at.empty() && !options.cron.empty())
        throw ApiError{400, "invalid_argument", "give either 'at' or 'cron', not both", "cron"};
    if (!options.schedule_name.empty() && options.cron.empty())
        throw ApiError{400, "invalid_argument", "'schedule_name' needs 'cron'", "schedule_name"};
    if (!at.empty()) options.at = time_param("at", at);
    boost::property_tree::ptree payload;
    if (body.contains("payload")) {
        const auto& p = body["payload"];
        if (!p.is_object())
            throw ApiError{400, "invalid_argument",
                           std::string("'payload' must be an object, not ") + p.type_name(),
                           "payload"};
        payload = json_to_ptree(p);
    }
    wharf::Job job;
    try {
        job = ctx.backends.jobs->enqueue(topic, std::move(payload), options);
    } catch (const std::exception& e) {
        bool bad_input = dynamic_cast<const std::invalid_argument*>(&e) != nullptr;
        if (auto* host_error = dynamic_cast<const Error*>(&e))
            bad_input = host_error->code() == ErrorCode::invalid_argument;
        if (!bad_input) throw;
        std::string message = e.what();
        std::string field = "topic";
        if (!options.cron.empty() && message.find("cron") != std::string::npos) {
            field = "cron";
        } else if (options.at && (message.find("past") != std::string::npos ||
                                  message.find("time") != std::string::npos)) {
            field = "at";
        } else if (message.find("payload") != std::string::npos) {
            field = "payload";
        }
        throw ApiError{400, "invalid_argument", message, field};
    }
    res.set_header("Location", "/api/jobs/" + job_id_to_string(job.id));
    send_json(res, 201, job_to_json(job));
}

void stop_job(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    allow_params(req, {});
    auto id = job_id_param(req);
    auto result = ctx.backends.jobs->stop(id);
    using Status = wharf::JobActionResult::Status;
    if (result.status == Status::not_found)
        throw ApiError{404, "not_found", "no job with id " + job_id_to_string(id), "id"};
    if (result.status == Status::refused) throw ApiError{409, "conflict", result.reason, "id"};
    send_json(res, 200, job_to_json(require_job(ctx, id)));
}

void delete_job(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    allow_params(req, {});
    auto id = job_id_param(req);
    auto before = ctx.backends.jobs->find(id);
    auto result = ctx.backends.jobs->remove(id);
    using Status = wharf::JobActionResult::Status;
    if (result.status == Status::not_found)
        throw ApiError{404, "not_found", "no job with id " + job_id_to_string(id), "id"};
    if (result.status == Status::refused) {
        std::string label = before ? std::string(aem_label(before->state)) + ": " : "";
        throw ApiError{409, "conflict", label + result.reason, "id"};
    }
    res.status = 204;
}

}  // namespace

const std::vector<RouteEntry>& job_routes() {
    static const std::vector<RouteEntry> routes = {
        {"GET", R"(/api/jobs)", "/api/jobs", Role::viewer, list_jobs},
        {"GET", R"(/api/jobs\.csv)", "/api/jobs.csv", Role::viewer, list_jobs_csv},
        {"GET", R"(/api/jobs/([^/]+))", "/api/jobs/{id}", Role::viewer, get_job},
        {"GET", R"(/api/jobs/([^/]+)/log)", "/api/jobs/{id}/log", Role::viewer, job_log},
        {"GET", R"(/api/jobs/([^/]+)/report\.csv)", "/api/jobs/{id}/report.csv", Role::viewer,
         job_report},
        {"GET", R"(/api/jobs/([^/]+)/result)", "/api/jobs/{id}/result", Role::viewer, job_result},
        {"POST", R"(/api/jobs)", "/api/jobs", Role::operator_, enqueue_job},
        {"POST", R"(/api/jobs/([^/]+)/stop)", "/api/jobs/{id}/stop", Role::operator_, stop_job},
        {"DELETE", R"(/api/jobs/([^/]+))", "/api/jobs/{id}", Role::operator_, delete_job},
    };
    return routes;
}

}  // namespace wharf::host
