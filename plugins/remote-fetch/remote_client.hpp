#pragma once
// RemoteClient: one connection (a libcurl easy handle, kept alive between
// requests) to a remote wharfd's repository read API, with the plugin's
// timeouts, retries and back-off.
//
// get_json() reads /api/repo/nodes (listing() asks for the children's
// properties too, falling back when the remote does not offer it);
// download() streams /api/repo/binary into a BinaryWriter, never holding the
// binary in memory, and resumes a dropped
// transfer with `Range: bytes=<written>-` and `If-Range: "<sha256>"` (the
// remote's ETag): a 206 from the right offset continues the same writer; a
// 200 (the range was not honoured) starts a new writer from byte 0; an ETag
// or X-Wharf-Sha256 other than the expected digest means the asset changed on
// the remote, and the asset fails. The caller verifies the digest with
// BinaryWriter::finish(mime, sha256).
//
// Errors are FetchError, by what the caller must do: `unreachable` (network
// errors and 5xx answers after every retry: the job fails and is retried
// later), `unauthorized` (401: the job errors, naming the remote), `asset`
// (404, 403, another 4xx, a changed asset: that asset's row fails), `stopped`
// (the cancel flag was set: stop soon), `protocol` (the answer is not the
// repository API's).
//
// Threading: one thread at a time per client; each transfer thread has its
// own. The cancel flag is read between chunks.

#include <atomic>
#include <boost/property_tree/ptree.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <wharf/repository.hpp>

#include "remote_fetch_settings.hpp"

namespace wharf_remote_fetch {

class FetchError : public std::runtime_error {
public:
    enum class Kind { unreachable, unauthorized, asset, stopped, protocol };
    /// `http_status`: the remote's answer when it was a refusal (4xx), else 0.
    /// `changed`: the asset's digest on the remote is not the one expected.
    FetchError(Kind kind, const std::string& message, long http_status = 0, bool changed = false)
        : std::runtime_error(message), kind_(kind), http_status_(http_status), changed_(changed) {}
    Kind kind() const noexcept { return kind_; }
    long http_status() const noexcept { return http_status_; }
    bool changed() const noexcept { return changed_; }

private:
    Kind kind_;
    long http_status_;
    bool changed_;
};

class RemoteClient {
public:
    /// `on_retry` receives one line per retry (for the job log); `cancel` is
    /// polled between chunks and during retry delays.
    RemoteClient(RemoteSettings remote, const FetchSettings& settings, std::string token,
                 const std::atomic<bool>* cancel, std::function<void(const std::string&)> on_retry);
    ~RemoteClient();
    RemoteClient(const RemoteClient&) = delete;
    RemoteClient& operator=(const RemoteClient&) = delete;

    /// GET `target` (path and query, e.g. "/api/repo/nodes?path=..."), parsed.
    /// A 404 is FetchError{asset} with the remote's message.
    boost::property_tree::ptree get_json(const std::string& target);

    /// The node at `path` with a page of its children (`cursor` from the
    /// previous page's next_cursor, or empty).
    boost::property_tree::ptree node(const std::string& path, const std::string& cursor = {},
                                     int limit = 1000);

    /// Like node(), with each child's properties (and a page's text) when the
    /// remote offers `properties=1`. A remote that does not know the parameter
    /// refuses it with 400 naming it: it is then asked without, now and for the
    /// rest of this client's life. Children without "properties" must have
    /// their metadata read with node().
    boost::property_tree::ptree listing(const std::string& path, const std::string& cursor = {},
                                        int limit = 1000);

    /// Streams the binary of `path`, whose digest must be `sha256`, into a
    /// writer from `new_writer` (called again when a transfer must start over)
    /// and returns it, complete but not finished. `received` grows with every
    /// byte written and shrinks by what a restart discards.
    std::unique_ptr<wharf::BinaryWriter> download(
        const std::string& path, const std::string& sha256,
        const std::function<std::unique_ptr<wharf::BinaryWriter>()>& new_writer,
        std::atomic<std::int64_t>& received);

    /// "remote 'dam-eu' (http://host:port)".
    std::string label() const;
    /// Percent-encodes a query value.
    std::string escape(const std::string& value) const;

    /// One request's state, shared with libcurl's callbacks (internal).
    struct Attempt;

private:
    void prepare(const std::string& target);
    void wait_before_retry(int attempt, const std::string& reason);

    RemoteSettings remote_;
    FetchSettings settings_;
    std::string token_;
    const std::atomic<bool>* cancel_;
    std::function<void(const std::string&)> on_retry_;
    void* curl_ = nullptr;            // CURL*, kept out of the header
    bool listing_properties_ = true;  // the remote may offer properties=1
};

}  // namespace wharf_remote_fetch
