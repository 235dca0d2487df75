// Inbox routes of the admin API: a user's notifications (one per finished job
// they submitted), marking them read, and the e-mail sender's status. A user
// only ever sees and changes their own entries; someone else's id is 404.
#include <charconv>
#include <limits>

#include "http/api_context.hpp"
#include "http/json_codec.hpp"

namespace wharf::host {
namespace {

using Json = nlohmann::json;
using httplib::Request;
using httplib::Response;

constexpr std::int64_t kMaxInboxPage = 200;

Notifier& notifier_of(ApiContext& ctx) {
    if (!ctx.backends.notifier)
        throw ApiError{503, "unavailable", "this host has no notification service", ""};
    return *ctx.backends.notifier;
}

Json entry_json(const InboxEntry& e) {
    return {{"id", e.id},
            {"job_id", e.job_id},
            {"topic", e.topic},
            {"operation", e.operation},
            {"outcome", e.outcome},
            {"title", e.title},
            {"message", e.message},
            {"created", format_time(e.created)},
            {"read", e.read}};
}

void list_inbox(ApiContext& ctx, const Request& req, Response& res, const ApiUser& user) {
    only_params(req, {"unread", "limit", "cursor"});
    auto& notifier = notifier_of(ctx);
    InboxQuery query;
    query.user = user.name;
    if (req.has_param("unread")) {
        auto v = req.get_param_value("unread");
        if (v != "true" && v != "false")
            throw ApiError{400, "invalid_argument", "'unread' must be true or false, not '" + v + "'",
                           "unread"};
        query.unread_only = v == "true";
    }
    query.limit = static_cast<std::size_t>(int_param(req, "limit", 1, kMaxInboxPage, 50));
    if (req.has_param("cursor"))
        query.cursor =
            int_param(req, "cursor", 1, std::numeric_limits<std::int64_t>::max(), 0);
    auto page = notifier.store().inbox(query);
    Json items = Json::array();
    for (const auto& e : page.items) items.push_back(entry_json(e));
    send_json(res, 200,
              Json{{"items", std::move(items)},
                   {"unread", notifier.store().unread(user.name)},
                   {"next_cursor", page.next_cursor ? Json(*page.next_cursor)
                                                    : Json(nullptr)}});
}

void mark_read(ApiContext& ctx, const Request& req, Response& res, const ApiUser& user) {
    only_params(req, {});
    auto& notifier = notifier_of(ctx);
    std::string text = req.matches.size() > 1 ? std::string(req.matches[1]) : std::string();
    std::int64_t id = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (ec != std::errc() || end != text.data() + text.size() || id <= 0 ||
        !notifier.store().mark_read(user.name, id))
        throw ApiError{404, "not_found", "no inbox entry '" + text + "' for user '" + user.name + "'",
                       "id"};
    send_json(res, 200, Json{{"id", id}, {"read", true}, {"unread", notifier.store().unread(user.name)}});
}

void mark_all_read(ApiContext& ctx, const Request& req, Response& res, const ApiUser& user) {
    only_params(req, {});
    auto& notifier = notifier_of(ctx);
    auto changed = notifier.store().mark_all_read(user.name);
    send_json(res, 200, Json{{"marked", changed}, {"unread", notifier.store().unread(user.name)}});
}

Json optional_time(const std::optional<JobTime>& t) {
    return t ? Json(format_time(*t)) : Json(nullptr);
}

void notification_status(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    only_params(req, {});
    auto st = notifier_of(ctx).status();
    Json body = {
        {"email",
         {{"enabled", st.email_enabled},
          {"smtp", {{"host", st.smtp_host}, {"port", st.smtp_port}, {"tls", st.smtp_tls},
                    {"auth", st.smtp_auth}}},
          {"from", st.from},
          {"dashboard_url", st.base_url}}},
        {"outbox",
         {{"pending", st.outbox.pending},
          {"sent", st.outbox.sent},
          {"given_up", st.outbox.given_up},
          {"next_attempt", optional_time(st.outbox.next_attempt)}}},
        {"since_start",
         {{"sent", st.sent},
          {"failed_attempts", st.failed_attempts},
          {"given_up", st.given_up},
          {"inbox_entries", st.inbox_entries}}},
        {"last_sent", optional_time(st.last_sent)},
        {"last_failure", optional_time(st.last_failure)},
        {"last_error", st.last_error.empty() ? Json(nullptr) : Json(st.last_error)}};
    send_json(res, 200, body);
}

}  // namespace

const std::vector<RouteEntry>& inbox_routes() {
    static const std::vector<RouteEntry> routes = {
        {"GET", R"(/api/inbox)", "/api/inbox", Role::viewer, list_inbox},
        {"POST", R"(/api/inbox/read-all)", "/api/inbox/read-all", Role::viewer, mark_all_read},
        {"POST", R"(/api/inbox/([^/]+)/read)", "/api/inbox/{id}/read", Role::viewer, mark_read},
        {"GET", R"(/api/notifications/status)", "/api/notifications/status", Role::viewer,
         notification_status},
    };
    return routes;
}

}  // namespace wharf::host
