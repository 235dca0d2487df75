#pragma once
// PostgreSQL connections for the host's PostgreSQL stores (the job store and
// the repository): a connection that prepares each statement once, a bounded
// pool of them, and the URL with its password hidden for messages.
//
// PgConnection: one libpqxx connection plus the names of the statements
// prepared on it (at most 256; past that the cache starts over). Used by one
// thread at a time.
//
// PgPool: at most `size` connections, opened on demand (one is opened by the
// constructor, to check the URL). lease() hands out an idle connection, opens
// one, or waits for one to come back; a lease returns it when it ends, unless
// it was marked broken (or the connection closed), in which case it is dropped
// and a new one is opened the next time. A thread that already holds a lease
// of the pool does not wait: it gets an extra connection, closed when it comes
// back. This keeps a caller that reads inside a callback of a streamed read
// (the repository's walk) from waiting on itself.
//
// Errors: a failed connect is handed to the pool's `connect_failed` function,
// which throws the owner's error type (Error(storage) for the job store,
// RepositoryError(io) for the repository).
//
// Ownership: the pool owns its idle connections; a lease owns its connection
// until it ends. The pool must outlive its leases. Thread-safety: lease() may
// be called from any thread.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace wharf::host {

/// `url` with any password replaced by "***", for messages and logs (URI
/// form `scheme://user:password@host...` and keyword form `password=...`).
std::string redacted_pg_url(const std::string& url);

/// `what: <the server's message>`, without the trailing newline libpq adds.
std::string pg_error_message(const std::string& what, const std::exception& e);

class PgConnection {
public:
    explicit PgConnection(const std::string& url) : c_(url) {}

    /// The name `sql` is prepared under on this connection (prepared on first use).
    const std::string& prepared(const std::string& sql);

    pqxx::connection& raw() { return c_; }

private:
    static constexpr std::size_t kMaxPrepared = 256;
    pqxx::connection c_;
    std::unordered_map<std::string, std::string> names_;
    std::uint64_t next_ = 0;
};

class PgPool {
public:
    /// Called with the exception of a failed connect; must throw.
    using ConnectFailed = std::function<void(const std::exception&)>;

    /// Opens the first connection. REQUIRES: size >= 1.
    PgPool(std::string url, std::size_t size, ConnectFailed connect_failed);
    PgPool(const PgPool&) = delete;
    PgPool& operator=(const PgPool&) = delete;

    class Lease {
    public:
        Lease(PgPool& pool, std::unique_ptr<PgConnection> c);
        Lease(Lease&& other) noexcept;
        Lease& operator=(Lease&&) = delete;
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        ~Lease();

        PgConnection& operator*() const { return *c_; }
        PgConnection* operator->() const { return c_.get(); }
        /// The connection is not returned to the pool (lost, or left in an
        /// unknown state).
        void mark_broken() { broken_ = true; }

    private:
        PgPool* pool_;
        std::unique_ptr<PgConnection> c_;
        std::thread::id owner_;
        bool broken_ = false;
    };

    /// A connection for the caller (see the header comment for waiting).
    Lease lease();

    const std::string& url() const { return url_; }

private:
    std::unique_ptr<PgConnection> connect();
    void release(std::unique_ptr<PgConnection> c, bool broken);

    std::string url_;
    std::size_t size_;
    ConnectFailed connect_failed_;
    std::mutex mutex_;
    std::condition_variable released_;
    std::vector<std::unique_ptr<PgConnection>> idle_;
    std::size_t opened_ = 0;
};

}  // namespace wharf::host
