#pragma once
// HttpClient: a small blocking HTTP/1.1 client with one keep-alive
// connection, for the `wharf` CLI, the tests and the benchmarks (cpp-httplib
// underneath; none of its types appear here, so users need not build against
// it). Not for plugins: they talk HTTP with libcurl.
//
// Thread-safety: one request at a time per client.

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace wharf::host {

struct HttpResponse {
    int status = 0;
    std::string body;
    std::multimap<std::string, std::string> headers;  ///< names as sent
    /// The first value of header `name` (case-insensitive), or "".
    std::string header(std::string_view name) const;
};

struct HttpClientOptions {
    std::string bearer_token;  ///< sent as Authorization: Bearer; never logged
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds read_timeout{30000};
    std::chrono::milliseconds write_timeout{30000};
};

class HttpClient {
public:
    /// `base_url`: http://host:port (https:// too), or host:port.
    /// Throws Error(invalid_argument) for an unusable URL.
    explicit HttpClient(std::string base_url, HttpClientOptions options = {});
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    /// Sends one request. `path` includes the query. Throws Error(io) naming
    /// the server when it cannot be reached or the connection fails.
    HttpResponse request(std::string_view method, const std::string& path,
                         const std::string& body = {}, const std::string& content_type = {},
                         const std::multimap<std::string, std::string>& headers = {});

    HttpResponse get(const std::string& path) { return request("GET", path); }
    HttpResponse post_json(const std::string& path, const std::string& json) {
        return request("POST", path, json, "application/json");
    }
    HttpResponse del(const std::string& path) { return request("DELETE", path); }

    const std::string& base_url() const noexcept { return base_url_; }

private:
    struct Impl;
    std::string base_url_;
    std::unique_ptr<Impl> impl_;
};

/// `s` with everything but unreserved characters percent-encoded (for query values).
std::string url_encode(std::string_view s);

}  // namespace wharf::host
