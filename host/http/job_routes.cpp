// Job routes of the admin API: list (JSON and CSV), details, log (paged, or
// followed as Server-Sent Events), report, enqueue, stop and delete
// (operations: operation_routes.cpp).
//
// A followed log polls the job store, not in-process events, so it follows a
// job that another instance of a cluster runs just as well.
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

// Followed logs: how often the store is asked for new lines, how many lines
// one read takes, how long a quiet stream waits before a comment keeps
// proxies (and the client's read timeout) from taking it for dead, and the
// Retry-After of a 503 when every stream is taken.
constexpr auto kLogPollInterval = std::chrono::milliseconds(150);
constexpr std::size_t kLogStreamBatch = 500;
constexpr auto kLogKeepAlive = std::chrono::seconds(10);
constexpr int kLogStreamRetryAfterSeconds = 5;

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

// The event of one log line: `id:` is the line's seq (the cursor to resume
// from, which a browser's EventSource sends back as Last-Event-ID), `data:`
// the time and the text as the paged text form shows them. A line break
// inside a log line starts another data: field, which clients join with "\n".
std::string log_line_event(const JobLogLine& line) {
    std::string out = "id: " + std::to_string(line.seq) + "\n";
    const std::string text = format_time(line.at) + " " + line.line;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= text.size(); ++i) {
        if (i < text.size() && text[i] != '\n' && text[i] != '\r') continue;
        out.append("data: ").append(text, start, i - start).push_back('\n');
        if (i + 1 < text.size() && text[i] == '\r' && text[i + 1] == '\n') ++i;
        start = i + 1;
    }
    out.push_back('\n');
    return out;
}

// One GET /api/jobs/{id}/log?follow=1 response: sends the lines after the
// cursor, then new lines as the store gets them, and ends with an `end` event
// once the job is final and its last lines are out (or it was deleted, the
// stream reached its maximum duration, or the server stops). It holds one of
// ctx.log_streams' places from open() until it ends (before its end event
// goes out, so that a client reconnecting at once finds the place free), the
// client has gone, or the store failed.
class LogStream {
public:
    // nullptr when every place is taken or the server is stopping.
    static std::shared_ptr<LogStream> open(ApiContext& ctx, JobId id, std::int64_t after,
                                           std::string& refusal) {
        const auto& o = ctx.options;
        const std::size_t cap = o.max_log_streams > 0
                                    ? o.max_log_streams
                                    : std::max<std::size_t>(1, o.worker_threads / 2);
        std::lock_guard lock(ctx.log_streams.mutex);
        if (ctx.log_streams.stopping) {
            refusal = "the server is stopping";
            return nullptr;
        }
        if (ctx.log_streams.open >= cap) {
            refusal = std::to_string(cap) +
                      " job logs are followed already, the most this server allows at once; try "
                      "again later, or read the log in pages (without follow)";
            return nullptr;
        }
        ++ctx.log_streams.open;
        return std::shared_ptr<LogStream>(new LogStream(ctx, id, after));
    }

    ~LogStream() { release(); }

    LogStream(const LogStream&) = delete;
    LogStream& operator=(const LogStream&) = delete;

    // One call of httplib's chunked content provider: false ends the
    // response at once (the client has gone, or the store failed).
    bool next(httplib::DataSink& sink) {
        bool more = false;
        try {
            more = step(sink);
        } catch (...) {
            release();
            throw;
        }
        if (!more || ended_) release();
        return more;
    }

    JobId id() const noexcept { return id_; }

private:
    LogStream(ApiContext& ctx, JobId id, std::int64_t after)
        : ctx_(ctx),
          id_(id),
          after_(after),
          deadline_(std::chrono::steady_clock::now() + ctx.options.log_stream_max_duration),
          last_write_(std::chrono::steady_clock::now()) {}

    void release() {
        if (released_) return;
        released_ = true;
        {
            std::lock_guard lock(ctx_.log_streams.mutex);
            --ctx_.log_streams.open;
        }
        ctx_.log_streams.changed.notify_all();
    }

    bool step(httplib::DataSink& sink) {
        if (stopping()) return end(sink, "shutdown");
        auto job = ctx_.backends.store->find(id_);
        if (!job) return end(sink, "deleted");
        state_ = job->state;
        result_message_ = job->result_message;
        // The state is read before the lines: a job that was final then has
        // all its lines stored (the engine writes them before it finishes).
        auto lines = ctx_.backends.store->log(id_, after_, kLogStreamBatch);
        if (!lines.empty()) {
            std::string chunk;
            for (const auto& line : lines) chunk += log_line_event(line);
            after_ = lines.back().seq;
            if (!write(sink, chunk)) return false;
            if (lines.size() == kLogStreamBatch) return true;  // more are waiting
        }
        if (is_final(job->state)) return end(sink, "final");
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline_) return end(sink, "timeout");
        if (now - last_write_ >= kLogKeepAlive && !write(sink, ": keep-alive\n\n")) return false;
        if (!sink.is_writable()) return false;  // the client has closed the connection
        std::unique_lock lock(ctx_.log_streams.mutex);
        if (ctx_.log_streams.changed.wait_for(lock, kLogPollInterval,
                                              [&] { return ctx_.log_streams.stopping; })) {
            lock.unlock();
            return end(sink, "shutdown");
        }
        return true;
    }

    bool stopping() {
        std::lock_guard lock(ctx_.log_streams.mutex);
        return ctx_.log_streams.stopping;
    }

    bool write(httplib::DataSink& sink, const std::string& text) {
        last_write_ = std::chrono::steady_clock::now();
        return sink.write(text.data(), text.size());
    }

    // The last event: why the stream ends, the job's state and the cursor to
    // resume from. "final" and "deleted" are for good; after "timeout" or
    // "shutdown" the client reconnects with the cursor.
    bool end(httplib::DataSink& sink, const char* reason) {
        ended_ = true;
        release();
        Json data;
        data["reason"] = reason;
        data["job_id"] = id_;
        const bool known = state_ && std::string_view(reason) != "deleted";
        data["state"] = known ? Json(to_string(*state_)) : Json(nullptr);
        data["status"] = known ? Json(aem_label(*state_)) : Json(nullptr);
        data["result_message"] = known ? Json(result_message_) : Json(nullptr);
        data["next_after"] = after_;
        std::string event = "event: end\nid: " + std::to_string(after_) +
                            "\ndata: " + data.dump(-1, ' ', false, Json::error_handler_t::replace) +
                            "\n\n";
        if (!write(sink, event)) return false;
        sink.done();
        return true;
    }

    ApiContext& ctx_;
    const JobId id_;
    std::int64_t after_;
    const std::chrono::steady_clock::time_point deadline_;
    std::chrono::steady_clock::time_point last_write_;
    std::optional<JobState> state_;
    std::string result_message_;
    bool ended_ = false;
    bool released_ = false;
};

// GET /api/jobs/{id}/log?follow=1: the log as text/event-stream.
void follow_job_log(ApiContext& ctx, const Request& req, Response& res, JobId id) {
    for (const char* name : {"limit", "format"})
        if (req.has_param(name))
            throw ApiError{400, "invalid_argument",
                           std::string("'") + name +
                               "' does not apply with follow=1: the stream sends every line, as "
                               "text/event-stream",
                           name};
    std::int64_t after = 0;
    if (auto v = param(req, "after"))
        after = integer_param("after", *v, 0, std::numeric_limits<std::int64_t>::max());
    // An EventSource that reconnects sends the last id it saw: resume there.
    if (req.has_header("Last-Event-ID"))
        after = integer_param("Last-Event-ID", req.get_header_value("Last-Event-ID"), 0,
                              std::numeric_limits<std::int64_t>::max());
    require_job(ctx, id);
    std::string refusal;
    auto stream = LogStream::open(ctx, id, after, refusal);
    if (!stream) {
        res.set_header("Retry-After", std::to_string(kLogStreamRetryAfterSeconds));
        throw ApiError{503, "too_many_streams", refusal, ""};
    }
    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");  // nor may a proxy hold the events back
    // A stream's worker goes back to the pool when it ends, rather than wait
    // on the connection for a next request that seldom comes.
    res.set_header("Connection", "close");
    auto log = ctx.log;
    // Exactly "text/event-stream": httplib compresses other text/ types when
    // the client accepts it, and a compressor holds small chunks back.
    res.set_chunked_content_provider(
        "text/event-stream", [stream, log](std::size_t, httplib::DataSink& sink) {
            try {
                return stream->next(sink);
            } catch (const std::exception& e) {
                log->error("http log stream failed job={} error=\"{}\"", stream->id(), e.what());
                return false;  // the client sees the stream cut without an end event
            }
        });
}

void job_log(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    allow_params(req, {"after", "limit", "format", "follow"});
    auto id = job_id_param(req);
    if (auto v = param(req, "follow")) {
        if (*v != "0" && *v != "1" && *v != "true" && *v != "false")
            throw ApiError{400, "invalid_argument",
                           "'follow' must be 1 or 0 (true or false), not '" + *v + "'", "follow"};
        if (*v == "1" || *v == "true") return follow_job_log(ctx, req, res, id);
    }
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
