#pragma once
// Private to host/http: what the route handlers share (the backends, the
// users, the metrics) and how they answer (JSON bodies, JSON errors).
//
// Handlers run on the server's worker threads, several at once; everything
// here is safe to use from them.

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "http/http_server.hpp"
#include "http/metrics.hpp"
#include "http/users.hpp"

namespace wharf::host {

/// A refusal a handler throws; the route wrapper turns it into a JSON error.
struct ApiError {
    int status = 400;
    std::string code;
    std::string message;
    std::string field;  ///< the request field at fault, or ""
};

/// Readiness costs a trip through the store's writer; one answer serves every
/// probe for a second.
struct ReadinessCache {
    std::mutex mutex;
    std::chrono::steady_clock::time_point checked{};
    bool store_ok = false;
    std::string store_error;
};

/// The open GET /api/jobs/{id}/log?follow=1 streams. Each holds a worker
/// thread until it ends, so job_routes.cpp caps them; HttpServer::stop() sets
/// `stopping` and wakes them, and they end at once.
struct LogStreams {
    std::mutex mutex;
    std::condition_variable changed;  ///< `stopping` set, or a stream ended
    std::size_t open = 0;
    bool stopping = false;
};

struct ApiContext {
    HttpServerOptions options;
    HttpBackends backends;
    UserDirectory users;
    HttpMetrics http_metrics;
    std::shared_ptr<JobMetrics> job_metrics = std::make_shared<JobMetrics>();
    ConfigRefusalCounter refusals;
    ReadinessCache readiness;
    LogStreams log_streams;
    std::shared_ptr<spdlog::logger> log;

    ApiContext(HttpServerOptions o, HttpBackends b)
        : options(std::move(o)), backends(std::move(b)), users(options.users_file) {}
};

using ApiHandler = void (*)(ApiContext&, const httplib::Request&, httplib::Response&,
                            const ApiUser&);
/// A handler that reads the request body itself as it arrives (`body`), so
/// that a large upload goes to a file rather than into memory. It enforces the
/// body limits; a body it leaves unread closes the connection.
using ApiBodyHandler = void (*)(ApiContext&, const httplib::Request&,
                                const httplib::ContentReader& body, httplib::Response&,
                                const ApiUser&);

/// One route: the httplib pattern (a regex), the OpenAPI path, the role.
struct RouteEntry {
    const char* method;
    const char* pattern;
    const char* path;
    Role role;
    ApiHandler handler;
    /// Set: serves the route instead of `handler`, with the body unread
    /// (POST only); text/csv bodies may then reach max_upload_bytes.
    ApiBodyHandler body_handler = nullptr;
};

void send_json(httplib::Response& res, int status, const nlohmann::json& body);
void send_error(httplib::Response& res, int status, const std::string& code,
                const std::string& message, const std::string& field = {});

/// The job id in the first regex group; ApiError 404 when it cannot be one.
JobId job_id_param(const httplib::Request& req);

/// Refuses (400, naming it) a query parameter not in `allowed`.
void only_params(const httplib::Request& req, std::initializer_list<std::string_view> allowed);

/// The integer query parameter `name` in [min, max], or `fallback` when it is
/// absent; ApiError 400 naming it otherwise.
std::int64_t int_param(const httplib::Request& req, const char* name, std::int64_t min,
                       std::int64_t max, std::int64_t fallback);

/// Routes of job_routes.cpp, status_routes.cpp and operation_routes.cpp.
const std::vector<RouteEntry>& job_routes();
const std::vector<RouteEntry>& status_routes();
const std::vector<RouteEntry>& operation_routes();
/// The inbox and notification status (inbox_routes.cpp), repository reads (repo_routes.cpp).
const std::vector<RouteEntry>& inbox_routes();
const std::vector<RouteEntry>& repo_routes();
/// GET /api/me (dashboard_routes.cpp); listed with the API's routes.
const std::vector<RouteEntry>& dashboard_routes();
/// The dashboard's files at / and /dashboard/{file}: served, but not API routes.
const std::vector<RouteEntry>& dashboard_asset_routes();

}  // namespace wharf::host
