// Operation routes of the admin API: GET /api/operations lists the operations
// plugins provide (descriptor, request schema, threshold in force); POST
// /api/operations/{operation} submits one through OperationSubmission, which
// answers 200 with the result of an inline run, 202 with the job it enqueued,
// or 400 invalid_request naming the field a refusal is about. An operation
// whose request has a `csv` field (a repository path to a CSV binary, as
// metadata-import) also takes the CSV itself as a `text/csv` body, with the
// other fields in the query string. That body is streamed into the
// repository's binary store as it arrives (a temporary file in the data
// directory until it is complete), up to max_upload_bytes; a JSON body is read
// whole, up to max_body_bytes.
#include <chrono>
#include <random>

#include "base/error.hpp"
#include "http/api_context.hpp"
#include "http/json_codec.hpp"
#include "wharf/repository.hpp"

namespace wharf::host {
namespace {

using Json = nlohmann::json;
using httplib::Request;
using httplib::Response;

constexpr int kMaxJsonDepth = 32;

Json field_to_json(const wharf::ConfigField& field) {
    Json j = {{"name", field.name},
              {"type", wharf::detail::to_string(field.type)},
              {"required", field.required}};
    if (!field.description.empty()) j["description"] = field.description;
    if (field.default_value) j["default"] = *field.default_value;
    if (field.minimum) j["minimum"] = *field.minimum;
    if (field.maximum) j["maximum"] = *field.maximum;
    if (!field.one_of.empty()) j["one_of"] = field.one_of;
    if (!field.format.empty()) j["format"] = field.format;
    if (!field.fields.empty()) {
        Json fields = Json::array();
        for (const auto& f : field.fields) fields.push_back(field_to_json(f));
        j["fields"] = std::move(fields);
    }
    if (!field.item.empty()) j["item"] = field_to_json(field.item.front());
    return j;
}

Json operation_to_json(const OperationInfo& info) {
    const auto& d = info.descriptor;
    Json schema = Json::array();
    for (const auto& f : d.request_schema) schema.push_back(field_to_json(f));
    return {{"name", d.name},
            {"title", d.title},
            {"topic", d.topic},
            {"config", d.config},
            {"unit", d.unit},
            {"plugin", info.owner},
            {"threshold", info.threshold ? Json(*info.threshold) : Json(nullptr)},
            {"email_enabled", info.email_enabled},
            {"request_schema", std::move(schema)}};
}

void list_operations(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    for (const auto& [name, value] : req.params)
        throw ApiError{400, "invalid_argument", "unknown query parameter '" + name + "'", name};
    Json list = Json::array();
    if (ctx.backends.operations)
        for (const auto& info : ctx.backends.operations->list())
            list.push_back(operation_to_json(info));
    send_json(res, 200, Json{{"operations", std::move(list)}});
}

ApiError too_large(std::size_t limit, const char* what) {
    return ApiError{413, "payload_too_large",
                    std::string(what) + " is too large (at most " + std::to_string(limit) +
                        " bytes)",
                    ""};
}

// The whole body, refused past `limit` (a chunked body declares no length).
std::string read_body(const httplib::ContentReader& body, std::size_t limit) {
    std::string out;
    bool over = false;
    bool complete = body([&](const char* data, std::size_t size) {
        if (out.size() + size > limit) {
            over = true;
            return false;
        }
        out.append(data, size);
        return true;
    });
    if (over) throw too_large(limit, "the request body");
    if (!complete) throw ApiError{400, "bad_request", "the request body did not arrive whole", ""};
    return out;
}

Json parse_request(const Request& req, const std::string& text) {
    auto type = req.get_header_value("Content-Type");
    if (!type.empty() && type.find("json") == std::string::npos)
        throw ApiError{415, "unsupported_media_type",
                       "send the body as application/json, not " + type, ""};
    if (text.empty()) return Json::object();
    auto depth_guard = [](int depth, Json::parse_event_t, Json&) {
        if (depth > kMaxJsonDepth)
            throw ApiError{
                400, "malformed_json",
                "the JSON is nested deeper than " + std::to_string(kMaxJsonDepth) + " levels", ""};
        return true;
    };
    Json body;
    try {
        body = Json::parse(text, depth_guard);
    } catch (const Json::parse_error& e) {
        throw ApiError{400, "malformed_json",
                       "the body is not valid JSON (at byte " + std::to_string(e.byte) + ")", ""};
    }
    if (!body.is_object())
        throw ApiError{400, "invalid_request", "the request must be a JSON object", ""};
    return body;
}

// Where uploaded CSV files are kept in the repository until the operation
// that reads them is done with them.
constexpr const char* kUploadFolder = "/var/uploads";

bool is_csv_upload(const Request& req) {
    auto type = req.get_header_value("Content-Type");
    return type.rfind("text/csv", 0) == 0;
}

// Streams a text/csv body into the binary store (the writer's temporary file,
// removed if the upload is refused) and stores it as an asset under
// kUploadFolder; returns its path.
std::string store_upload(ApiContext& ctx, const std::string& operation,
                         const httplib::ContentReader& body) {
    if (!ctx.backends.registry) throw ApiError{503, "unavailable", "no repository", ""};
    auto found = ctx.backends.registry->find(wharf::interfaces::kRepository, {});
    if (!found) throw ApiError{503, "unavailable", "the repository is not available", ""};
    auto repository = std::static_pointer_cast<wharf::Repository>(found->service);
    const std::size_t limit = ctx.options.max_upload_bytes;
    auto writer = repository->write_binary();
    std::uint64_t size = 0;
    bool over = false;
    bool complete = body([&](const char* data, std::size_t n) {
        if (size + n > limit) {
            over = true;
            return false;
        }
        writer->write(data, n);
        size += n;
        return true;
    });
    if (over) throw too_large(limit, "the uploaded CSV");
    if (!complete)
        throw ApiError{400, "bad_request", "the uploaded CSV did not arrive whole", "csv"};
    if (size == 0) throw ApiError{400, "invalid_request", "the uploaded CSV is empty", "csv"};
    auto binary = writer->finish("text/csv");
    static std::mutex mutex;
    static std::mt19937_64 random{std::random_device{}()};
    std::uint64_t suffix = 0;
    {
        std::lock_guard lock(mutex);
        suffix = random();
    }
    auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    std::string folder = std::string(kUploadFolder) + "/" + operation;
    wharf::Node node;
    node.path = folder + "/" + std::to_string(millis) + "-" + std::to_string(suffix % 1000000000) +
                ".csv";
    node.kind = wharf::NodeKind::asset;
    node.binary = binary;
    auto session = repository->open_session();
    session->create_folders(folder);
    session->create(node);
    session->commit();
    return node.path;
}

void remove_upload(ApiContext& ctx, const std::string& path) {
    try {
        auto found = ctx.backends.registry->find(wharf::interfaces::kRepository, {});
        if (!found) return;
        auto session = std::static_pointer_cast<wharf::Repository>(found->service)->open_session();
        session->remove(path);
        session->commit();
    } catch (const std::exception& e) {
        ctx.log->warn("uploaded csv not removed path={} error=\"{}\"", path, e.what());
    }
}

void submit_operation(ApiContext& ctx, const Request& req, const httplib::ContentReader& content,
                      Response& res, const ApiUser& user) {
    const bool upload = is_csv_upload(req);
    if (!upload) {
        for (const auto& [name, value] : req.params)
            throw ApiError{400, "invalid_argument", "unknown query parameter '" + name + "'", name};
    }
    std::string name = req.matches.size() > 1 ? std::string(req.matches[1]) : "";
    auto unknown = [&] {
        return ApiError{404, "unknown_operation",
                        "unknown operation '" + name + "': GET /api/operations lists them",
                        "operation"};
    };
    if (!ctx.backends.operations) throw unknown();
    boost::property_tree::ptree request;
    std::string uploaded;
    if (upload) {
        // The CSV is the body; the other fields come in the query string.
        const OperationInfo* info = nullptr;
        auto operations = ctx.backends.operations->list();
        for (const auto& o : operations)
            if (o.descriptor.name == name) info = &o;
        if (!info) throw unknown();
        bool takes_csv = false;
        for (const auto& f : info->descriptor.request_schema) takes_csv |= f.name == "csv";
        if (!takes_csv)
            throw ApiError{415, "unsupported_media_type",
                           "operation '" + name + "' takes no CSV: send application/json", ""};
        for (const auto& [key, value] : req.params) {
            if (key == "csv" || key == "csv_uploaded")
                throw ApiError{400, "invalid_request",
                               "'" + key + "' cannot be given with an uploaded CSV", key};
            request.put(key, value);
        }
        uploaded = store_upload(ctx, name, content);
        request.put("csv", uploaded);
        request.put("csv_uploaded", "true");
    } else {
        request = json_to_ptree(parse_request(req, read_body(content, ctx.options.max_body_bytes)));
    }
    SubmissionResult result;
    try {
        result = ctx.backends.operations->submit(name, request, user.name);
    } catch (const Error& e) {
        if (!uploaded.empty()) remove_upload(ctx, uploaded);
        if (e.code() == ErrorCode::not_found) throw unknown();
        throw;
    }
    if (!uploaded.empty() && result.mode == SubmissionResult::Mode::refused)
        remove_upload(ctx, uploaded);
    Json body = {{"operation", result.operation},
                 {"description", result.description},
                 {"count", result.count},
                 {"threshold", result.threshold ? Json(*result.threshold) : Json(nullptr)}};
    switch (result.mode) {
        case SubmissionResult::Mode::refused: {
            Json error = {{"code", "invalid_request"},
                          {"field", result.refusal.field},
                          {"value", result.refusal.value},
                          {"message", result.refusal.message}};
            send_json(res, 400, Json{{"error", std::move(error)}});
            return;
        }
        case SubmissionResult::Mode::sync: {
            const auto& run = result.run;
            body["mode"] = "sync";
            body["outcome"] = run.outcome;
            body["message"] = run.message;
            body["progress"] = {{"done", run.progress_done}, {"total", run.progress_total}};
            body["duration_ms"] = run.duration.count();
            body["log"] = run.log;
            body["report"] = run.report;
            body["report_rows_dropped"] = run.report_rows_dropped;
            if (run.result) {
                // The result file of an inline run comes back in the answer.
                body["result"] = {{"file_name", run.result->download_name},
                                  {"content_type", run.result->content_type},
                                  {"size", run.result->size},
                                  {"truncated", run.result->truncated},
                                  {"content", run.result->content}};
            }
            send_json(res, 200, body);
            return;
        }
        case SubmissionResult::Mode::job: {
            body["mode"] = "job";
            body["id"] = result.job.id;
            body["status"] = aem_label(result.job.state);
            body["job"] = job_to_json(result.job);
            res.set_header("Location", "/api/jobs/" + job_id_to_string(result.job.id));
            send_json(res, 202, body);
            return;
        }
    }
}

}  // namespace

const std::vector<RouteEntry>& operation_routes() {
    static const std::vector<RouteEntry> routes = {
        {"GET", R"(/api/operations)", "/api/operations", Role::viewer, list_operations},
        {"POST", R"(/api/operations/([^/]+))", "/api/operations/{operation}", Role::operator_,
         nullptr, submit_operation},
    };
    return routes;
}

}  // namespace wharf::host
