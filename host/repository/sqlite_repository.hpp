#pragma once
// SqliteRepository: wharf::Repository over SQLite (WAL, synchronous=NORMAL)
// plus a content-addressed BlobStore, in one data directory:
//   <data_dir>/repository.db   nodes, properties, reference index, MSM tables
//   <data_dir>/blobs/          binaries (see blob_store.hpp)
//
// Reads lease a connection from a small pool for the duration of the call (a
// walk holds its connection, and so its read snapshot, until it returns).
// Each Session owns one connection and one transaction per batch (BEGIN
// IMMEDIATE ... COMMIT); sessions from several threads or processes take
// turns batch by batch. See sdk/include/wharf/repository.hpp for the contract
// and schema.hpp for the tables.
//
// Ownership: create with open(); sessions keep the repository alive. Binary
// readers and writers own their files and may outlive it.
// Threading: every const method and open_session() may be called from any
// thread; collect_garbage() too (it only removes binaries no node refers to
// and that are older than the grace period).

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <vector>

#include "repository/blob_store.hpp"
#include "repository/sqlite_connection.hpp"
#include "wharf/repository.hpp"

namespace wharf::host {

/// What a garbage collection did.
struct BlobGcStats {
    std::uint64_t binaries_seen = 0;
    std::uint64_t binaries_removed = 0;
    std::uint64_t bytes_removed = 0;
    std::uint64_t temporaries_removed = 0;
};

class SqliteRepository;

/// A pooled connection, returned to the pool (with any open transaction
/// rolled back) when the lease ends.
class ConnectionLease {
public:
    ConnectionLease(std::shared_ptr<const SqliteRepository> owner,
                    std::unique_ptr<repo::Connection> connection);
    ~ConnectionLease();
    ConnectionLease(ConnectionLease&&) noexcept = default;
    ConnectionLease& operator=(ConnectionLease&&) = delete;
    repo::Connection& operator*() const { return *connection_; }
    repo::Connection* operator->() const { return connection_.get(); }

private:
    std::shared_ptr<const SqliteRepository> owner_;
    std::unique_ptr<repo::Connection> connection_;
};

class SqliteRepository final : public Repository,
                               public std::enable_shared_from_this<SqliteRepository> {
    struct Passkey {};

public:
    /// Opens the repository in `data_dir`, creating it (and migrating an older
    /// schema) as needed. Throws RepositoryError{io}.
    static std::shared_ptr<SqliteRepository> open(const std::filesystem::path& data_dir);

    SqliteRepository(Passkey, const std::filesystem::path& data_dir);

    std::optional<Node> get(std::string_view path) const override;
    ChildPage children(std::string_view path, std::optional<std::string> cursor,
                       std::size_t limit) const override;
    std::uint64_t walk(std::string_view root, const WalkOptions& options,
                       const std::function<bool(const Node&)>& visit) const override;
    std::uint64_t count(std::string_view root, const WalkOptions& options) const override;
    std::uint64_t referrers(std::string_view path,
                            const std::function<bool(const Reference&)>& visit) const override;
    std::uint64_t referrers_under(
        std::string_view root, bool external_only,
        const std::function<bool(const Reference&)>& visit) const override;
    std::unique_ptr<BinaryReader> read_binary(std::string_view asset_path) const override;
    std::unique_ptr<BinaryWriter> write_binary() override;
    std::unique_ptr<Session> open_session(const SessionOptions& options = {}) override;
    std::vector<LiveRelationship> live_relationships(std::string_view blueprint) const override;
    std::optional<LiveRelationship> live_relationship_of(
        std::string_view live_copy_path) const override;
    InheritanceCancel inheritance_cancel(std::string_view path) const override;
    std::optional<std::string> checkpoint(std::string_view name) const override;

    /// Removes binaries no node refers to whose files are older than `grace`
    /// (so a binary written but not yet committed survives), and temporary
    /// files of killed writers older than `grace`.
    BlobGcStats collect_garbage(std::chrono::seconds grace = std::chrono::hours(1));

    const std::filesystem::path& data_dir() const { return data_dir_; }
    const repo::BlobStore& blobs() const { return blobs_; }

    /// A connection for host tools that need SQL the interface does not offer
    /// (check, benchmarks). Not for plugins.
    ConnectionLease lease() const;

private:
    friend class ConnectionLease;
    void give_back(std::unique_ptr<repo::Connection> connection) const;

    std::filesystem::path data_dir_;
    std::filesystem::path db_file_;
    repo::BlobStore blobs_;
    mutable std::mutex pool_mutex_;
    mutable std::vector<std::unique_ptr<repo::Connection>> idle_;
};

}  // namespace wharf::host
