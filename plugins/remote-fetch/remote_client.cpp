#include "remote_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <boost/property_tree/json_parser.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string_view>
#include <thread>

namespace wharf_remote_fetch {
namespace {

constexpr std::size_t kMaxErrorBody = 16 * 1024;
constexpr std::size_t kMaxJsonBody = 64 * 1024 * 1024;

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

std::string trim(std::string s) {
    auto not_space = [](unsigned char c) { return !std::isspace(c); };
    s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
    s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
    return s;
}

// The message of an API error body ({"error":{"message":...}}), else the body.
std::string error_message(const std::string& body) {
    try {
        std::istringstream in(body);
        boost::property_tree::ptree tree;
        boost::property_tree::read_json(in, tree);
        if (auto m = tree.get_optional<std::string>("error.message")) return *m;
    } catch (const std::exception&) {
    }
    auto text = trim(body.substr(0, 200));
    return text.empty() ? std::string("no message") : text;
}

bool transient_status(long status) {
    return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
           status == 504;
}

}  // namespace

// What one request saw: status, the headers a download checks, and the
// decisions the write callback took.
struct RemoteClient::Attempt {
    long status = 0;
    std::string content_range;
    std::string etag;
    std::string sha256_header;
    std::string error_body;  // body of a non-2xx answer (capped)
    std::string json_body;   // body of a JSON request
    bool json = false;
    bool checked = false;  // the first body chunk of a download was checked
    bool restart = false;  // the remote sent the whole binary: start again from 0
    bool changed = false;  // the remote's digest is not the expected one
    bool too_large = false;
    std::uint64_t offset = 0;
    std::string expected_sha256;
    wharf::BinaryWriter* writer = nullptr;
    std::atomic<std::int64_t>* received = nullptr;
    std::uint64_t written = 0;  // by this attempt
    const std::atomic<bool>* cancel = nullptr;
    bool cancelled = false;
    std::string write_error;
};

namespace {

size_t on_header(char* data, size_t size, size_t count, void* user) {
    auto* a = static_cast<RemoteClient::Attempt*>(user);
    std::string line(data, size * count);
    if (line.rfind("HTTP/", 0) == 0) {
        // A new response (after a redirect or a 100): forget the last one's.
        a->content_range.clear();
        a->etag.clear();
        a->sha256_header.clear();
        return size * count;
    }
    auto colon = line.find(':');
    if (colon == std::string::npos) return size * count;
    auto name = lower(line.substr(0, colon));
    auto value = trim(line.substr(colon + 1));
    if (name == "content-range") a->content_range = value;
    if (name == "etag") a->etag = value;
    if (name == "x-wharf-sha256") a->sha256_header = lower(value);
    return size * count;
}

}  // namespace

// Outside the anonymous namespace: it needs the Attempt type by name.
static size_t on_body(char* data, size_t size, size_t count, void* user, CURL* curl) {
    auto* a = static_cast<RemoteClient::Attempt*>(user);
    const auto n = size * count;
    if (a->cancel && a->cancel->load()) {
        a->cancelled = true;
        return 0;
    }
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    a->status = status;
    if (status < 200 || status >= 300) {
        if (a->error_body.size() < kMaxErrorBody)
            a->error_body.append(data, std::min(n, kMaxErrorBody - a->error_body.size()));
        return n;
    }
    if (a->json) {
        if (a->json_body.size() + n > kMaxJsonBody) {
            a->too_large = true;
            return 0;
        }
        a->json_body.append(data, n);
        return n;
    }
    if (!a->checked) {
        a->checked = true;
        auto digest = !a->sha256_header.empty() ? a->sha256_header : lower(a->etag);
        digest.erase(std::remove(digest.begin(), digest.end(), '"'), digest.end());
        if (digest.rfind("w/", 0) == 0) digest = digest.substr(2);
        if (!digest.empty() && digest != a->expected_sha256) {
            a->changed = true;
            return 0;
        }
        if (a->offset > 0) {
            unsigned long long start = 0;
            bool ok = status == 206 &&
                      std::sscanf(a->content_range.c_str(), "bytes %llu-", &start) == 1 &&
                      start == a->offset;
            if (!ok) {
                a->restart = true;
                return 0;
            }
        } else if (status != 200) {
            a->restart = true;  // a range we did not ask for
            return 0;
        }
    }
    try {
        a->writer->write(data, n);
    } catch (const std::exception& e) {
        a->write_error = e.what();
        return 0;
    }
    a->written += n;
    a->received->fetch_add(static_cast<std::int64_t>(n));
    return n;
}

namespace {

struct BodySink {
    RemoteClient::Attempt* attempt;
    CURL* curl;
};

size_t on_body_trampoline(char* data, size_t size, size_t count, void* user) {
    auto* sink = static_cast<BodySink*>(user);
    return on_body(data, size, count, sink->attempt, sink->curl);
}

}  // namespace

RemoteClient::RemoteClient(RemoteSettings remote, const FetchSettings& settings, std::string token,
                           const std::atomic<bool>* cancel,
                           std::function<void(const std::string&)> on_retry)
    : remote_(std::move(remote)),
      settings_(settings),
      token_(std::move(token)),
      cancel_(cancel),
      on_retry_(std::move(on_retry)),
      curl_(curl_easy_init()) {
    if (!curl_) throw std::runtime_error("cannot create a libcurl handle");
}

RemoteClient::~RemoteClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

std::string RemoteClient::label() const {
    return "remote '" + remote_.name + "' (" + remote_.url + ")";
}

std::string RemoteClient::escape(const std::string& value) const {
    char* out =
        curl_easy_escape(static_cast<CURL*>(curl_), value.data(), static_cast<int>(value.size()));
    std::string text = out ? out : "";
    curl_free(out);
    return text;
}

void RemoteClient::prepare(const std::string& target) {
    auto* curl = static_cast<CURL*>(curl_);
    curl_easy_reset(curl);
    auto url = remote_.url + target;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, remote_.connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, remote_.transfer_timeout_ms);
    if (settings_.low_speed_limit > 0) {
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, settings_.low_speed_limit);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
                         std::max(1L, (settings_.low_speed_time_ms + 999) / 1000));
    }
    if (remote_.max_bytes_per_second > 0)
        curl_easy_setopt(curl, CURLOPT_MAX_RECV_SPEED_LARGE,
                         static_cast<curl_off_t>(remote_.max_bytes_per_second));
    curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 256L * 1024);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
}

void RemoteClient::wait_before_retry(int attempt, const std::string& reason) {
    auto delay = settings_.retry_delay(attempt);
    if (on_retry_)
        on_retry_(label() + ": " + reason + "; retry " + std::to_string(attempt) + " of " +
                  std::to_string(settings_.retries) + " in " + std::to_string(delay) + " ms");
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay);
    while (std::chrono::steady_clock::now() < until) {
        if (cancel_ && cancel_->load()) throw FetchError(FetchError::Kind::stopped, "stopped");
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

boost::property_tree::ptree RemoteClient::get_json(const std::string& target) {
    auto* curl = static_cast<CURL*>(curl_);
    for (int attempt = 0;; ++attempt) {
        if (cancel_ && cancel_->load()) throw FetchError(FetchError::Kind::stopped, "stopped");
        Attempt a;
        a.json = true;
        a.cancel = cancel_;
        BodySink sink{&a, curl};
        prepare(target);
        curl_slist* headers = nullptr;
        auto auth = "Authorization: Bearer " + token_;
        headers = curl_slist_append(headers, auth.c_str());
        headers = curl_slist_append(headers, "Accept: application/json");
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, &a);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body_trampoline);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
        auto rc = curl_easy_perform(curl);
        curl_slist_free_all(headers);
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (a.cancelled) throw FetchError(FetchError::Kind::stopped, "stopped");
        if (a.too_large)
            throw FetchError(FetchError::Kind::protocol,
                             label() + ": the answer to " + target + " is larger than 64 MiB");
        std::string reason;
        if (rc != CURLE_OK) {
            reason = curl_easy_strerror(rc);
        } else if (status == 401) {
            throw FetchError(FetchError::Kind::unauthorized,
                             label() + " refused the token from '" + remote_.token_file.string() +
                                 "' (HTTP 401: " + error_message(a.error_body) + ")");
        } else if (transient_status(status)) {
            reason = "HTTP " + std::to_string(status);
        } else if (status != 200) {
            throw FetchError(FetchError::Kind::asset,
                             "HTTP " + std::to_string(status) + ": " + error_message(a.error_body),
                             status);
        } else {
            try {
                std::istringstream in(a.json_body);
                boost::property_tree::ptree tree;
                boost::property_tree::read_json(in, tree);
                return tree;
            } catch (const std::exception& e) {
                throw FetchError(FetchError::Kind::protocol, label() + " answered " + target +
                                                                 " with something that is not "
                                                                 "JSON: " +
                                                                 e.what());
            }
        }
        if (attempt >= settings_.retries)
            throw FetchError(FetchError::Kind::unreachable,
                             label() + ": " + reason + " (gave up after " +
                                 std::to_string(attempt + 1) + " attempts)");
        wait_before_retry(attempt + 1, reason);
    }
}

boost::property_tree::ptree RemoteClient::node(const std::string& path, const std::string& cursor,
                                               int limit) {
    auto target = "/api/repo/nodes?path=" + escape(path) + "&limit=" + std::to_string(limit);
    if (!cursor.empty()) target += "&cursor=" + escape(cursor);
    return get_json(target);
}

boost::property_tree::ptree RemoteClient::listing(const std::string& path,
                                                  const std::string& cursor, int limit) {
    if (listing_properties_) {
        auto target = "/api/repo/nodes?path=" + escape(path) + "&limit=" + std::to_string(limit) +
                      "&properties=1";
        if (!cursor.empty()) target += "&cursor=" + escape(cursor);
        try {
            return get_json(target);
        } catch (const FetchError& e) {
            // A wharfd from before the parameter: "unknown query parameter 'properties'".
            if (e.kind() != FetchError::Kind::asset || e.http_status() != 400 ||
                std::string_view(e.what()).find("'properties'") == std::string_view::npos)
                throw;
            listing_properties_ = false;
        }
    }
    return node(path, cursor, limit);
}

std::unique_ptr<wharf::BinaryWriter> RemoteClient::download(
    const std::string& path, const std::string& sha256,
    const std::function<std::unique_ptr<wharf::BinaryWriter>()>& new_writer,
    std::atomic<std::int64_t>& received) {
    auto* curl = static_cast<CURL*>(curl_);
    const auto target = "/api/repo/binary?path=" + escape(path);
    const auto expected = lower(sha256);
    auto writer = new_writer();
    int failures = 0;  // consecutive attempts that moved no byte
    int restarts = 0;
    auto discard = [&](long status) {
        // A remote that never answers as asked would have us loop forever.
        if (++restarts > 3)
            throw FetchError(FetchError::Kind::asset,
                             "the remote did not serve the binary from the requested offset "
                             "(HTTP " +
                                 std::to_string(status) + "), 3 times in a row");
        received.fetch_sub(static_cast<std::int64_t>(writer->size()));
        writer = new_writer();
    };
    for (;;) {
        if (cancel_ && cancel_->load()) throw FetchError(FetchError::Kind::stopped, "stopped");
        Attempt a;
        a.offset = writer->size();
        a.expected_sha256 = expected;
        a.writer = writer.get();
        a.received = &received;
        a.cancel = cancel_;
        BodySink sink{&a, curl};
        prepare(target);
        curl_slist* headers = nullptr;
        auto auth = "Authorization: Bearer " + token_;
        headers = curl_slist_append(headers, auth.c_str());
        std::string range, if_range;
        if (a.offset > 0) {
            range = "Range: bytes=" + std::to_string(a.offset) + "-";
            if_range = "If-Range: \"" + expected + "\"";
            headers = curl_slist_append(headers, range.c_str());
            headers = curl_slist_append(headers, if_range.c_str());
        }
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, &a);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body_trampoline);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
        auto rc = curl_easy_perform(curl);
        curl_slist_free_all(headers);
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (a.cancelled) throw FetchError(FetchError::Kind::stopped, "stopped");
        if (!a.write_error.empty())
            throw FetchError(FetchError::Kind::asset,
                             "writing the binary failed: " + a.write_error);
        if (a.changed)
            throw FetchError(FetchError::Kind::asset,
                             "the asset changed on the remote during the transfer (its digest is "
                             "no longer " +
                                 expected + "); submit again to fetch the new version",
                             status, true);
        if (a.restart) {
            // The remote did not continue where we stopped: start over.
            if (on_retry_)
                on_retry_(label() + ": " + path + ": the remote did not resume at byte " +
                          std::to_string(a.offset) + " (HTTP " + std::to_string(status) +
                          "); starting the transfer again from byte 0");
            discard(status);
            continue;
        }
        std::string reason;
        if (rc == CURLE_OK && (status == 200 || status == 206)) {
            return writer;
        } else if (rc != CURLE_OK) {
            reason = curl_easy_strerror(rc);
            if (a.offset + a.written > 0)
                reason += " after " + std::to_string(a.offset + a.written) + " bytes";
        } else if (status == 401) {
            throw FetchError(FetchError::Kind::unauthorized,
                             label() + " refused the token from '" + remote_.token_file.string() +
                                 "' (HTTP 401: " + error_message(a.error_body) + ")");
        } else if (status == 416) {
            discard(status);  // what we hold is longer than the remote's binary
            continue;
        } else if (transient_status(status)) {
            reason = "HTTP " + std::to_string(status);
        } else {
            throw FetchError(FetchError::Kind::asset,
                             "HTTP " + std::to_string(status) + ": " + error_message(a.error_body),
                             status);
        }
        // A dropped connection that moved bytes is progress: the retries
        // count attempts in a row that moved nothing.
        failures = a.written > 0 ? 1 : failures + 1;
        if (failures > settings_.retries)
            throw FetchError(FetchError::Kind::unreachable,
                             label() + ": " + reason + " (gave up after " +
                                 std::to_string(failures) + " attempts)");
        wait_before_retry(failures, reason);
    }
}

}  // namespace wharf_remote_fetch
