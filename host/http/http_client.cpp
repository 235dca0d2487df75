#include "http/http_client.hpp"

#include <httplib.h>
#include <strings.h>

#include <cctype>

#include "base/error.hpp"

namespace wharf::host {

struct HttpClient::Impl {
    std::unique_ptr<httplib::Client> client;
};

std::string HttpResponse::header(std::string_view name) const {
    for (const auto& [key, value] : headers)
        if (key.size() == name.size() && ::strncasecmp(key.data(), name.data(), name.size()) == 0)
            return value;
    return {};
}

HttpClient::HttpClient(std::string base_url, HttpClientOptions options)
    : base_url_(std::move(base_url)), impl_(std::make_unique<Impl>()) {
    while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
    if (base_url_.find("://") == std::string::npos) base_url_ = "http://" + base_url_;
    impl_->client = std::make_unique<httplib::Client>(base_url_);
    if (!impl_->client->is_valid())
        throw Error(ErrorCode::invalid_argument, "not a server address: " + base_url_);
    impl_->client->set_keep_alive(true);
    impl_->client->set_tcp_nodelay(true);
    impl_->client->set_connection_timeout(options.connect_timeout);
    impl_->client->set_read_timeout(options.read_timeout);
    impl_->client->set_write_timeout(options.write_timeout);
    if (!options.bearer_token.empty()) impl_->client->set_bearer_token_auth(options.bearer_token);
}

HttpClient::~HttpClient() = default;

HttpResponse HttpClient::request(std::string_view method, const std::string& path,
                                 const std::string& body, const std::string& content_type,
                                 const std::multimap<std::string, std::string>& headers) {
    httplib::Request req;
    req.method = std::string(method);
    req.path = path;
    for (const auto& [k, v] : headers) req.headers.emplace(k, v);
    if (!content_type.empty()) req.headers.emplace("Content-Type", content_type);
    req.body = body;
    auto result = impl_->client->send(req);
    if (!result) {
        throw Error(ErrorCode::io,
                    "cannot reach " + base_url_ + ": " + httplib::to_string(result.error()));
    }
    HttpResponse out;
    out.status = result->status;
    out.body = std::move(result->body);
    for (const auto& [k, v] : result->headers) out.headers.emplace(k, v);
    return out;
}

std::string url_encode(std::string_view s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

}  // namespace wharf::host
