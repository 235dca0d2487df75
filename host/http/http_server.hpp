#pragma once
// HttpServer: the admin API of wharfd (cpp-httplib underneath, JSON with
// nlohmann::json). It serves the job list and details, logs and reports,
// enqueue, stop and delete, queues, plugins, configuration status, Prometheus
// metrics, a health check and its own OpenAPI document (openapi.json beside
// this header, compiled in).
//
// Every route names the least role it needs (users.hpp); a request without a
// valid bearer token gets 401, one whose user's role is too weak gets 403
// naming the role. Errors are JSON: {"error": {"code", "message", "field"}}.
// A refused request changes nothing.
//
// Resources: a request body is refused with 413 above `max_body_bytes` (one
// that comes chunked, with no declared length, is read no further), except
// a CSV upload (a text/csv body to POST /api/operations/{operation}), which is
// streamed to a temporary file in the repository's binary store as it arrives
// and refused with 413 above `max_upload_bytes` (the temporary file removed);
// reads and writes time out; connections are served by a fixed pool of worker
// threads, and when every worker is busy and `max_pending_connections` wait,
// the accept thread waits too (the kernel's backlog holds the rest), so load
// never grows memory without bound. A followed job log (Server-Sent Events)
// holds its worker until the job ends, so such streams are capped at
// `max_log_streams` and last at most `log_stream_max_duration`; stop() ends
// them first. The server has its own threads: nothing it does runs on, or
// waits for, the job dispatcher, except the JobManager and JobStore calls it
// makes.
//
// Ownership: the backends are not owned and must outlive the server (stop()
// or the destructor ends every request in flight first).
// Threading: start/stop from one thread; everything else from any thread.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config_admin.hpp"
#include "http/metrics.hpp"
#include "http/users.hpp"
#include "jobs/cluster_lease.hpp"
#include "jobs/job_engine.hpp"
#include "jobs/job_store.hpp"
#include "jobs/operation_submission.hpp"
#include "modules/plugin_manager.hpp"
#include "modules/service_registry.hpp"
#include "notify/notifier.hpp"
#include "wharf/repository.hpp"
#include "wharf/jobs.hpp"

namespace wharf::host {

struct HttpServerOptions {
    /// host:port (IPv4, a name, or [IPv6]); port 0 picks a free port.
    std::string listen = "127.0.0.1:8420";
    /// configs/users.yaml; empty or missing = no users (protected routes say 401).
    std::filesystem::path users_file;
    std::size_t max_body_bytes = 1024 * 1024;
    /// A text/csv upload to an operation (metadata-import) is refused with 413
    /// above this; it is never held in memory.
    std::size_t max_upload_bytes = 256 * 1024 * 1024;
    std::chrono::milliseconds read_timeout{5000};
    std::chrono::milliseconds write_timeout{5000};
    std::chrono::seconds keep_alive_timeout{5};
    std::size_t worker_threads = 8;
    std::size_t max_pending_connections = 64;
    /// GET /api/jobs/{id}/log?follow=1 streams open at once (each holds a
    /// worker thread while it lasts); 0 = half the workers, at least 1. One
    /// more gets 503 with Retry-After.
    std::size_t max_log_streams = 0;
    /// A log stream ends after this long (the client reconnects with its cursor).
    std::chrono::milliseconds log_stream_max_duration{std::chrono::hours(1)};
};

/// GET /api/cluster: the instances sharing this host's store.
struct ClusterStatus {
    std::string backend = "sqlite";  ///< sqlite (one host) or postgresql
    std::string instance_id;         ///< the instance answering
    std::vector<ClusterInstance> instances;  ///< oldest first
};

/// What the API reads and acts on. `jobs` and `store` are required; the rest
/// may be left empty (their endpoints then answer with empty lists).
struct HttpBackends {
    wharf::JobManager* jobs = nullptr;        ///< enqueue, find, stop, remove, list
    JobStore* store = nullptr;                ///< log, report, statistics, readiness
    ServiceRegistryImpl* registry = nullptr;  ///< wharf.Queue services
    /// The engine's view of its queues (slots in use, overdue, held by a retry).
    std::function<std::vector<QueueView>()> queue_views;
    std::function<std::vector<PluginInfo>()> plugins;
    std::function<std::vector<ConfigFileStatus>()> config_status;
    std::function<std::vector<wharf::ConfigSchema>()> config_schemas;
    std::function<void()> config_rescan;  ///< POST /api/config/rescan (admin)
    /// POST /api/operations/{operation} and GET /api/operations; null = no
    /// operations (404 unknown_operation, an empty list).
    OperationSubmission* operations = nullptr;
    /// GET/POST /api/inbox..., GET /api/notifications/status and the notify
    /// lines of /metrics; null = no notifications (503 unavailable).
    Notifier* notifier = nullptr;
    /// GET /api/repo/...; null = no repository (503 unavailable).
    std::shared_ptr<const wharf::Repository> repository;
    /// GET /api/cluster; null = no cluster information (503 unavailable).
    std::function<ClusterStatus()> cluster;
};

/// One route, as the server and its OpenAPI document name it.
struct HttpRoute {
    std::string method;
    std::string path;  ///< OpenAPI template: /api/jobs/{id}
    Role role = Role::viewer;
};

class HttpServer {
public:
    HttpServer(HttpServerOptions options, HttpBackends backends);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    /// Loads the users, binds and starts serving; returns once it accepts
    /// connections and has logged `http listening address=HOST:PORT`. Throws
    /// Error(invalid_argument) for a bad listen address, Error(io) when it
    /// cannot bind.
    void start();

    /// Stops accepting, finishes requests in flight, joins the threads. Idempotent.
    void stop();

    /// The bound port (after start).
    std::uint16_t port() const noexcept;
    /// "host:port" as bound.
    std::string address() const;

    /// Register as a wharf::JobListener to get job durations and waits in /metrics.
    std::shared_ptr<JobMetrics> job_metrics() const;

    /// The users in force; apply() takes ConfigAdmin's `users` values.
    UserDirectory& users();

    /// Every route served, for the OpenAPI document and tests.
    static std::vector<HttpRoute> routes();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// The OpenAPI 3 document served at /api/openapi.json.
const char* openapi_json();

}  // namespace wharf::host
