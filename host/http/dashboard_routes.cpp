// The Async Job Status dashboard: the static HTML, JavaScript and CSS in
// host/http/dashboard/ (compiled in by embed.cmake, so the binary carries
// them), served at `/` and `/dashboard/<file>`, and GET /api/me, which tells
// the dashboard who the token belongs to.
//
// The files are public (they hold no data); everything they show comes from
// the API with the user's bearer token. Every answer carries a strict
// Content-Security-Policy (scripts, styles and connections from this origin
// only, no inline code, no framing), nosniff and no-referrer. Files are
// revalidated on every load (`Cache-Control: no-cache` with a strong ETag of
// their content), so an upgraded wharfd never serves a stale dashboard and an
// unchanged one costs a 304.
#include <array>
#include <cstdio>
#include <string_view>
#include <vector>

#include "http/api_context.hpp"

namespace wharf::host {

struct DashboardAsset {
    std::string_view name;
    const unsigned char* data;
    std::size_t size;
};

// Defined in the file embed.cmake generates.
const std::vector<DashboardAsset>& dashboard_assets();

namespace {

using Json = nlohmann::json;
using httplib::Request;
using httplib::Response;

constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const char* content_type_for(std::string_view name) {
    auto ends_with = [&](std::string_view suffix) {
        return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
    };
    if (ends_with(".html")) return "text/html; charset=utf-8";
    if (ends_with(".js")) return "text/javascript; charset=utf-8";
    if (ends_with(".css")) return "text/css; charset=utf-8";
    if (ends_with(".svg")) return "image/svg+xml";
    return "application/octet-stream";
}

// FNV-1a over the content: enough to tell two builds' files apart.
std::string etag_of(const DashboardAsset& asset) {
    std::uint64_t hash = 14695981039346656037ull;
    for (std::size_t i = 0; i < asset.size; ++i) {
        hash ^= asset.data[i];
        hash *= 1099511628211ull;
    }
    std::array<char, 24> text{};
    std::snprintf(text.data(), text.size(), "\"%016llx\"", static_cast<unsigned long long>(hash));
    return text.data();
}

struct ServedAsset {
    const DashboardAsset* asset;
    std::string etag;
};

const ServedAsset* find_asset(std::string_view name) {
    static const std::vector<ServedAsset> served = [] {
        std::vector<ServedAsset> out;
        for (const auto& a : dashboard_assets()) out.push_back({&a, etag_of(a)});
        return out;
    }();
    for (const auto& s : served)
        if (s.asset->name == name) return &s;
    return nullptr;
}

void security_headers(Response& res) {
    res.set_header("Content-Security-Policy", kContentSecurityPolicy);
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_header("X-Frame-Options", "DENY");
}

void send_asset(const Request& req, Response& res, std::string_view name) {
    const auto* served = find_asset(name);
    if (!served)
        throw ApiError{404, "not_found", "no dashboard file '" + std::string(name) + "'", ""};
    security_headers(res);
    res.set_header("Cache-Control", "no-cache");
    res.set_header("ETag", served->etag);
    if (req.get_header_value("If-None-Match") == served->etag) {
        res.status = 304;
        return;
    }
    res.status = 200;
    res.set_content(reinterpret_cast<const char*>(served->asset->data), served->asset->size,
                    content_type_for(name));
}

void dashboard_index(ApiContext&, const Request& req, Response& res, const ApiUser&) {
    if (!req.params.empty())
        throw ApiError{400, "invalid_argument", "the dashboard takes no query parameters", ""};
    send_asset(req, res, "index.html");
}

void dashboard_file(ApiContext&, const Request& req, Response& res, const ApiUser&) {
    std::string name = req.matches.size() > 1 ? std::string(req.matches[1]) : std::string();
    // index.html is served at `/` only, so the dashboard has one address.
    if (name == "index.html")
        throw ApiError{404, "not_found", "the dashboard is served at /", ""};
    send_asset(req, res, name);
}

void who_am_i(ApiContext&, const Request& req, Response& res, const ApiUser& user) {
    if (!req.params.empty()) {
        const auto& name = req.params.begin()->first;
        throw ApiError{400, "invalid_argument", "unknown query parameter '" + name + "'", name};
    }
    send_json(res, 200, Json{{"user", user.name}, {"role", to_string(user.role)}});
}

}  // namespace

const std::vector<RouteEntry>& dashboard_routes() {
    static const std::vector<RouteEntry> routes = {
        {"GET", R"(/api/me)", "/api/me", Role::viewer, who_am_i},
    };
    return routes;
}

const std::vector<RouteEntry>& dashboard_asset_routes() {
    static const std::vector<RouteEntry> routes = {
        {"GET", R"(/)", "/", Role::none, dashboard_index},
        {"GET", R"(/dashboard/([A-Za-z0-9_-]+\.[a-z]+))", "/dashboard/{file}", Role::none,
         dashboard_file},
    };
    return routes;
}

}  // namespace wharf::host
