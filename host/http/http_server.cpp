#include "http/http_server.hpp"

#include <httplib.h>
#include <strings.h>

#include <algorithm>
#include <charconv>
#include <regex>
#include <set>
#include <thread>

#include "base/error.hpp"
#include "base/log.hpp"
#include "http/api_context.hpp"
#include "http/bounded_task_queue.hpp"

namespace wharf::host {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// What the access log and the request metrics need to know about the request
// this worker thread is answering. httplib calls the pre-routing handler, the
// route and the logger on one thread, in that order, for each request; a
// request refused before routing (bad request line, URI too long) finds the
// values the logger reset.
thread_local const char* t_route = "invalid";
thread_local Clock::time_point t_start{};
thread_local std::string t_user;

int http_status_for(ErrorCode code) {
    switch (code) {
        case ErrorCode::invalid_argument:
            return 400;
        case ErrorCode::not_found:
            return 404;
        case ErrorCode::conflict:
            return 409;
        case ErrorCode::storage:
        case ErrorCode::io:
            return 503;
        default:
            return 500;
    }
}

const char* code_for_status(int status) {
    switch (status) {
        case 400:
            return "bad_request";
        case 401:
            return "unauthorized";
        case 403:
            return "forbidden";
        case 404:
            return "not_found";
        case 405:
            return "method_not_allowed";
        case 408:
            return "request_timeout";
        case 409:
            return "conflict";
        case 413:
            return "payload_too_large";
        case 414:
            return "uri_too_long";
        case 415:
            return "unsupported_media_type";
        case 416:
            return "range_not_satisfiable";
        case 503:
            return "unavailable";
        default:
            return status >= 500 ? "internal" : "bad_request";
    }
}

std::optional<std::string> bearer_token(const httplib::Request& req) {
    auto value = req.get_header_value("Authorization");
    constexpr std::string_view scheme = "Bearer ";
    if (value.size() <= scheme.size() ||
        ::strncasecmp(value.c_str(), scheme.data(), scheme.size()) != 0)
        return std::nullopt;
    auto token = value.substr(scheme.size());
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.erase(0, 1);
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.pop_back();
    if (token.empty()) return std::nullopt;
    return token;
}

// host:port, [v6]:port. Port 0 = any free port.
std::pair<std::string, int> split_listen(const std::string& listen) {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size())
        throw Error(ErrorCode::invalid_argument,
                    "listen address '" + listen + "' is not host:port");
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    int port = -1;
    auto text = std::string_view(listen).substr(colon + 1);
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (ec != std::errc() || end != text.data() + text.size() || port < 0 || port > 65535)
        throw Error(ErrorCode::invalid_argument,
                    "listen address '" + listen + "' has no valid port (0-65535)");
    return {host, port};
}

// Reads the body of a request to a route that takes JSON into req.body, up
// to `limit` bytes whether its length is declared or not (a chunked body has
// none for the pre-routing check to refuse).
void read_json_body(const httplib::Request& req, const httplib::ContentReader& reader,
                    std::size_t limit) {
    std::string body;
    bool over = false;
    bool complete = reader([&](const char* data, std::size_t size) {
        if (body.size() + size > limit) {
            over = true;
            return false;
        }
        body.append(data, size);
        return true;
    });
    if (over)
        throw ApiError{
            413, "payload_too_large",
            "the request body is too large (at most " + std::to_string(limit) + " bytes)", ""};
    if (!complete) throw ApiError{400, "bad_request", "the request body did not arrive whole", ""};
    // httplib hands handlers a const Request, but the object is its own and
    // not const: the handlers read the body where httplib would have put it.
    const_cast<httplib::Request&>(req).body = std::move(body);
}

// Answers a request on `route`: authentication, the role, then the handler.
// `reader` is the unread body of a route that takes one (POST, PUT, DELETE):
// a body handler reads it itself, any other handler finds it in req.body.
void dispatch(ApiContext& ctx, const RouteEntry& route, const httplib::Request& req,
              httplib::Response& res, const httplib::ContentReader* reader = nullptr) {
    t_route = route.path;
    ApiUser user{"", Role::none};
    if (route.role != Role::none) {
        ctx.users.reload_if_changed();
        auto token = bearer_token(req);
        if (!token) {
            res.set_header("WWW-Authenticate", "Bearer realm=\"wharf\"");
            send_error(res, 401, "unauthorized",
                       "this needs a bearer token: send 'Authorization: Bearer <token>'");
            return;
        }
        auto found = ctx.users.authenticate(*token);
        if (!found) {
            res.set_header("WWW-Authenticate", "Bearer realm=\"wharf\", error=\"invalid_token\"");
            send_error(res, 401, "unauthorized", "the bearer token is not valid");
            return;
        }
        user = *found;
        t_user = user.name;
        if (user.role < route.role) {
            Json body;
            body["error"] = {{"code", "forbidden"},
                             {"message", std::string("this needs the ") + to_string(route.role) +
                                             " role; user '" + user.name + "' has the " +
                                             to_string(user.role) + " role"},
                             {"field", nullptr},
                             {"required_role", to_string(route.role)}};
            send_json(res, 403, body);
            return;
        }
    }
    try {
        if (reader && route.body_handler) {
            route.body_handler(ctx, req, *reader, res, user);
        } else {
            if (reader) read_json_body(req, *reader, ctx.options.max_body_bytes);
            route.handler(ctx, req, res, user);
        }
    } catch (const ApiError& e) {
        send_error(res, e.status, e.code, e.message, e.field);
    } catch (const Error& e) {
        int status = http_status_for(e.code());
        if (status >= 500)
            ctx.log->error("http request failed route={} method={} error=\"{}\"", route.path,
                           req.method, e.what());
        send_error(res, status, status >= 500 ? code_for_status(status) : to_string(e.code()),
                   e.what());
    } catch (const std::invalid_argument& e) {
        send_error(res, 400, "invalid_argument", e.what());
    } catch (const std::exception& e) {
        ctx.log->error("http request failed route={} method={} error=\"{}\"", route.path,
                       req.method, e.what());
        send_error(res, 500, "internal", std::string("internal error: ") + e.what());
    }
}

}  // namespace

void send_json(httplib::Response& res, int status, const Json& body) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& code,
                const std::string& message, const std::string& field) {
    Json error = {{"code", code},
                  {"message", message},
                  {"field", field.empty() ? Json(nullptr) : Json(field)}};
    send_json(res, status, Json{{"error", error}});
}

JobId job_id_param(const httplib::Request& req) {
    std::string text = req.matches.size() > 1 ? std::string(req.matches[1]) : std::string();
    JobId id = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (ec != std::errc() || end != text.data() + text.size() || id <= 0)
        throw ApiError{404, "not_found", "no job with id '" + text + "'", "id"};
    return id;
}

void only_params(const httplib::Request& req, std::initializer_list<std::string_view> allowed) {
    for (const auto& [name, value] : req.params) {
        bool known = false;
        for (auto a : allowed) known = known || a == name;
        if (!known)
            throw ApiError{400, "invalid_argument", "unknown query parameter '" + name + "'", name};
    }
}

std::int64_t int_param(const httplib::Request& req, const char* name, std::int64_t min,
                       std::int64_t max, std::int64_t fallback) {
    if (!req.has_param(name)) return fallback;
    auto text = req.get_param_value(name);
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max)
        throw ApiError{400, "invalid_argument",
                       std::string("'") + name + "' must be an integer from " +
                           std::to_string(min) + " to " + std::to_string(max) + ", not '" + text +
                           "'",
                       name};
    return value;
}

struct HttpServer::Impl {
    ApiContext ctx;
    httplib::Server server;
    std::thread thread;
    std::string host;
    int port = 0;
    bool started = false;
    std::vector<RouteEntry> routes;

    Impl(HttpServerOptions o, HttpBackends b) : ctx(std::move(o), std::move(b)) {
        ctx.log = logger("http");
        routes = job_routes();
        const auto& status = status_routes();
        routes.insert(routes.end(), status.begin(), status.end());
        const auto& operations = operation_routes();
        routes.insert(routes.end(), operations.begin(), operations.end());
        for (const auto* table : {&inbox_routes(), &repo_routes()})
            routes.insert(routes.end(), table->begin(), table->end());
        for (const auto* table : {&dashboard_routes(), &dashboard_asset_routes()})
            routes.insert(routes.end(), table->begin(), table->end());
    }
};

HttpServer::HttpServer(HttpServerOptions options, HttpBackends backends)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(backends))) {
    if (!impl_->ctx.backends.jobs || !impl_->ctx.backends.store)
        throw Error(ErrorCode::invalid_argument, "HttpServer needs a JobManager and a JobStore");
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
    auto& impl = *impl_;
    auto& ctx = impl.ctx;
    auto& server = impl.server;
    auto [host, port] = split_listen(ctx.options.listen);
    impl.host = host;

    for (const auto& problem : ctx.users.load())
        ctx.log->error("users file refused, no API user can log in error=\"{}\"",
                       problem.to_string());

    {
        std::lock_guard lock(ctx.log_streams.mutex);
        ctx.log_streams.stopping = false;
    }
    const auto& options = ctx.options;
    server.new_task_queue = [threads = options.worker_threads,
                             pending = options.max_pending_connections] {
        return new BoundedTaskQueue(threads, pending);
    };
    // httplib refuses a declared length above this on every route; the
    // pre-routing check below holds routes other than uploads to max_body_bytes.
    server.set_payload_max_length(std::max(options.max_body_bytes, options.max_upload_bytes));
    server.set_read_timeout(options.read_timeout);
    server.set_write_timeout(options.write_timeout);
    server.set_keep_alive_timeout(options.keep_alive_timeout.count());
    server.set_keep_alive_max_count(10000);
    server.set_tcp_nodelay(true);

    std::vector<std::regex> upload_routes;
    std::vector<std::pair<std::string, std::regex>> all_routes;
    for (const auto& route : impl.routes) {
        if (route.body_handler) upload_routes.emplace_back(route.pattern);
        all_routes.emplace_back(route.method, route.pattern);
    }
    server.set_pre_routing_handler([json_max = options.max_body_bytes,
                                    upload_max = options.max_upload_bytes, upload_routes,
                                    all_routes](const httplib::Request& req,
                                                httplib::Response& res) {
        t_route = "unmatched";
        t_start = Clock::now();
        t_user.clear();
        // A request with neither Content-Length nor Transfer-Encoding has no
        // body (RFC 9112, 6.3); httplib would wait for one until the client
        // closes (`curl -X POST` sends neither). The request is httplib's own
        // object, not const.
        if ((req.method == "POST" || req.method == "PUT" || req.method == "PATCH" ||
             req.method == "DELETE") &&
            !req.has_header("Content-Length") && !req.has_header("Transfer-Encoding"))
            const_cast<httplib::Request&>(req).headers.emplace("Content-Length", "0");
        // httplib reads a chunked body whole, however long, unless a route
        // takes it unread (POST and PUT routes do: dispatch holds it to the
        // limit). Refuse the others before reading a byte, and close.
        if (req.has_header("Transfer-Encoding")) {
            const bool routed =
                std::any_of(all_routes.begin(), all_routes.end(), [&](const auto& route) {
                    return route.first == req.method && std::regex_match(req.path, route.second);
                });
            if (!routed || (req.method != "POST" && req.method != "PUT")) {
                res.set_header("Connection", "close");
                if (routed) {
                    send_error(res, 400, "bad_request",
                               req.method + " " + req.path + " takes no request body");
                } else {
                    send_error(res, 404, "not_found",
                               "no route for " + req.method + " " + req.path);
                }
                return httplib::Server::HandlerResponse::Handled;
            }
        }
        // A CSV upload to a route that streams its body has its own limit.
        const bool upload =
            req.method == "POST" && req.get_header_value("Content-Type").rfind("text/csv", 0) == 0 &&
            std::any_of(upload_routes.begin(), upload_routes.end(),
                        [&](const std::regex& r) { return std::regex_match(req.path, r); });
        const std::size_t max = upload ? upload_max : json_max;
        // httplib would read (and discard) an oversized body before saying 413;
        // a declared length over the limit is refused before reading a byte.
        auto length = req.get_header_value("Content-Length");
        if (!length.empty()) {
            std::uint64_t n = 0;
            auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), n);
            if (ec == std::errc::result_out_of_range ||
                (ec == std::errc() && end == length.data() + length.size() && n > max)) {
                res.set_header("Connection", "close");
                send_error(
                    res, 413, "payload_too_large",
                    "the request body is too large (at most " + std::to_string(max) + " bytes)");
                return httplib::Server::HandlerResponse::Handled;
            }
        }
        return httplib::Server::HandlerResponse::Unhandled;
    });
    // Statuses httplib sets by itself (404 without a route, 413, 400) come
    // without a body; give them the API's error shape. Bodies a handler wrote stay.
    server.set_error_handler(httplib::Server::HandlerWithResponse(
        [](const httplib::Request& req, httplib::Response& res) {
            if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
            std::string message;
            if (res.status == 404) {
                message = "no route for " + req.method + " " + req.path;
            } else if (res.status == 413) {
                message = "the request body is too large";
            } else {
                message = "request refused (HTTP " + std::to_string(res.status) + ")";
            }
            send_error(res, res.status, code_for_status(res.status), message);
            return httplib::Server::HandlerResponse::Handled;
        }));
    server.set_exception_handler(
        [&ctx](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
            std::string what = "unknown exception";
            try {
                if (ep) std::rethrow_exception(ep);
            } catch (const std::exception& e) {
                what = e.what();
            } catch (...) {
            }
            ctx.log->error("http request failed method={} path={} error=\"{}\"", req.method,
                           req.path, what);
            send_error(res, 500, "internal", "internal error");
        });
    server.set_logger([&ctx](const httplib::Request& req, const httplib::Response& res) {
        double seconds = t_start == Clock::time_point{}
                             ? 0.0
                             : std::chrono::duration<double>(Clock::now() - t_start).count();
        // Methods are free text in a request line: keep the label set bounded.
        static const std::set<std::string> known = {"GET",    "HEAD",    "POST", "PUT",
                                                    "DELETE", "OPTIONS", "PATCH"};
        const std::string& method = known.count(req.method) ? req.method : "other";
        ctx.http_metrics.record(t_route, method, res.status, seconds);
        ctx.log->debug("http request method={} route={} status={} user={} ms={:.3f}", method,
                       t_route, res.status, t_user.empty() ? "-" : t_user, seconds * 1000);
        t_route = "invalid";
        t_start = {};
        t_user.clear();
    });

    for (const auto& route : impl.routes) {
        // Routes that may get a body take it unread, so that its size is held
        // to the limit as it arrives (dispatch, read_json_body).
        auto with_body = [&ctx, &route](const httplib::Request& req, httplib::Response& res,
                                        const httplib::ContentReader& reader) {
            // A body left unread, or read in part, would be taken for the
            // next request on this connection: close it instead.
            bool complete = false;
            httplib::ContentReader tracked(
                [&](httplib::ContentReceiver receiver) {
                    return complete = reader(std::move(receiver));
                },
                [&](httplib::MultipartContentHeader header, httplib::ContentReceiver receiver) {
                    return complete = reader(std::move(header), std::move(receiver));
                });
            dispatch(ctx, route, req, res, &tracked);
            auto length = req.get_header_value("Content-Length");
            bool has_body =
                (!length.empty() && length != "0") || req.has_header("Transfer-Encoding");
            if (has_body && !complete) res.set_header("Connection", "close");
        };
        std::string method = route.method;
        if (method == "GET") {
            server.Get(route.pattern,
                       [&ctx, &route](const httplib::Request& req, httplib::Response& res) {
                           dispatch(ctx, route, req, res);
                       });
        } else if (method == "POST") {
            server.Post(route.pattern, with_body);
        } else if (method == "DELETE") {
            server.Delete(route.pattern, with_body);
        } else if (method == "PUT") {
            server.Put(route.pattern, with_body);
        }
    }

    // SO_REUSEADDR only: a restart binds at once despite connections in
    // TIME_WAIT, but a second server on a port that is listened on fails.
    // (httplib's default adds SO_REUSEPORT, with which two hosts would
    // silently share the port and split the requests between them.)
    server.set_socket_options([](socket_t sock) {
        int yes = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    if (port == 0) {
        port = server.bind_to_any_port(host);
        if (port < 0) throw Error(ErrorCode::io, "cannot listen on " + ctx.options.listen);
    } else if (!server.bind_to_port(host, port)) {
        throw Error(ErrorCode::io, "cannot listen on " + ctx.options.listen +
                                       " (address in use, or not an address of this host)");
    }
    impl.port = port;
    impl.thread = std::thread([&server] { server.listen_after_bind(); });
    impl.started = true;
    // 0.11.4 has no wait_until_ready(); is_running() turns true right before accept().
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!server.is_running() && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ctx.log->info(
        "http listening address={} users={} workers={} max_body_bytes={} max_upload_bytes={}",
        address(), ctx.users.size(), options.worker_threads, options.max_body_bytes,
        options.max_upload_bytes);
}

void HttpServer::stop() {
    if (!impl_ || !impl_->started) return;
    // Followed logs end first, each with its `end` event, while their
    // connections can still carry it; httplib's stop would cut them short.
    auto& streams = impl_->ctx.log_streams;
    {
        std::unique_lock lock(streams.mutex);
        streams.stopping = true;
        streams.changed.notify_all();
        // A stream blocked on a slow client gives up after the write timeout.
        streams.changed.wait_for(lock, impl_->ctx.options.write_timeout + std::chrono::seconds(1),
                                 [&] { return streams.open == 0; });
    }
    impl_->server.stop();
    if (impl_->thread.joinable()) impl_->thread.join();
    impl_->started = false;
    impl_->ctx.log->info("http stopped address={}", address());
}

std::uint16_t HttpServer::port() const noexcept { return static_cast<std::uint16_t>(impl_->port); }

std::string HttpServer::address() const {
    bool v6 = impl_->host.find(':') != std::string::npos;
    return (v6 ? "[" + impl_->host + "]" : impl_->host) + ":" + std::to_string(impl_->port);
}

std::shared_ptr<JobMetrics> HttpServer::job_metrics() const { return impl_->ctx.job_metrics; }

UserDirectory& HttpServer::users() { return impl_->ctx.users; }

std::vector<HttpRoute> HttpServer::routes() {
    std::vector<HttpRoute> out;
    for (const auto* table : {&job_routes(), &status_routes(), &operation_routes(), &inbox_routes(),
                              &repo_routes(), &dashboard_routes()})
        for (const auto& r : *table) out.push_back({r.method, r.path, r.role});
    return out;
}

}  // namespace wharf::host
