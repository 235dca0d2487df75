// Operation routes of the admin API: GET /api/operations lists the operations
// plugins provide (descriptor, request schema, threshold in force); POST
// /api/operations/{operation} submits one through OperationSubmission, which
// answers 200 with the result of an inline run, 202 with the job it enqueued,
// or 400 invalid_request naming the field a refusal is about.
#include "base/error.hpp"
#include "http/api_context.hpp"
#include "http/json_codec.hpp"

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

Json parse_request(const Request& req) {
    auto type = req.get_header_value("Content-Type");
    if (!type.empty() && type.find("json") == std::string::npos)
        throw ApiError{415, "unsupported_media_type",
                       "send the body as application/json, not " + type, ""};
    if (req.body.empty()) return Json::object();
    auto depth_guard = [](int depth, Json::parse_event_t, Json&) {
        if (depth > kMaxJsonDepth)
            throw ApiError{
                400, "malformed_json",
                "the JSON is nested deeper than " + std::to_string(kMaxJsonDepth) + " levels", ""};
        return true;
    };
    Json body;
    try {
        body = Json::parse(req.body, depth_guard);
    } catch (const Json::parse_error& e) {
        throw ApiError{400, "malformed_json",
                       "the body is not valid JSON (at byte " + std::to_string(e.byte) + ")", ""};
    }
    if (!body.is_object())
        throw ApiError{400, "invalid_request", "the request must be a JSON object", ""};
    return body;
}

void submit_operation(ApiContext& ctx, const Request& req, Response& res, const ApiUser& user) {
    for (const auto& [name, value] : req.params)
        throw ApiError{400, "invalid_argument", "unknown query parameter '" + name + "'", name};
    std::string name = req.matches.size() > 1 ? std::string(req.matches[1]) : "";
    auto unknown = [&] {
        return ApiError{404, "unknown_operation",
                        "unknown operation '" + name + "': GET /api/operations lists them",
                        "operation"};
    };
    if (!ctx.backends.operations) throw unknown();
    auto request = json_to_ptree(parse_request(req));
    SubmissionResult result;
    try {
        result = ctx.backends.operations->submit(name, request, user.name);
    } catch (const Error& e) {
        if (e.code() == ErrorCode::not_found) throw unknown();
        throw;
    }
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
         submit_operation},
    };
    return routes;
}

}  // namespace wharf::host
