#pragma once
// PgRepository: wharf::Repository on a PostgreSQL database, for several
// wharfd instances sharing one repository (cluster mode). Same contract, same
// rules and the same error messages as SqliteRepository
// (sqlite_repository.hpp); the conformance tests run one suite against both.
//
// Nodes, properties, the reference index, MSM tables and job checkpoints are
// tables in PostgreSQL (the schema is in pg_repository.cpp; paths are TEXT
// COLLATE "C", so they sort byte-wise as in SQLite and a subtree is one index
// range). Property values, page text and checkpoint values are stored as
// BYTEA in the value codec's packed form (value_codec.hpp), so every value
// round-trips bit for bit, NUL bytes and NaN included. Binaries are NOT in
// the database: they are files in a content-addressed BlobStore on a
// directory every instance mounts (`blob_dir`, see blob_store.hpp).
//
// Cluster safety:
//   - the schema is migrated under a transaction-scoped advisory lock, so
//     instances starting at once apply each migration once;
//   - each Session batch is one transaction that first takes the
//     repository's write lock, a transaction-scoped advisory lock: batches
//     from every session of every instance run one after the other, exactly
//     as SQLite's BEGIN IMMEDIATE makes them (the SDK contract: "an open batch
//     holds the repository's write lock"). The statements of a batch run at
//     READ COMMITTED after the lock is taken, so each sees every batch
//     committed before it. An instance that dies mid-batch loses its
//     connection; the server rolls the batch back and frees the lock;
//   - reads are single statements, or one REPEATABLE READ read-only
//     transaction for a walk and a referrer scan (they stream through a
//     server-side cursor, so memory does not grow with the subtree).
//
// Ownership: create with open(); sessions keep the repository alive. A
// session holds a pooled connection only while a batch is open. Binary
// readers and writers own their files and may outlive it.
// Threading: as SqliteRepository. At most `pool_size` connections are open
// (a thread reading inside a walk's callback gets an extra one, see
// base/pg_pool.hpp); a call waits for a free connection when all are in use.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "base/pg_pool.hpp"
#include "repository/blob_store.hpp"
#include "repository/sqlite_repository.hpp"
#include "wharf/repository.hpp"

namespace wharf::host {

struct PgRepositoryOptions {
    /// libpq connection string or URI, e.g. "postgresql://wharf@db:5432/wharf".
    std::string url;
    std::size_t pool_size = 4;  ///< connections at most (>= 1)
    /// The shared binary store directory (created if missing).
    std::filesystem::path blob_dir;
    /// How long a batch waits for the repository's write lock (held by a
    /// batch of this or another instance) before it fails with
    /// RepositoryError{conflict}, as SQLite's 30 s busy timeout. >= 1 ms.
    std::chrono::milliseconds write_lock_timeout{30'000};
};

class PgRepository final : public Repository, public std::enable_shared_from_this<PgRepository> {
    struct Passkey {};

public:
    /// Connects, and creates or migrates the schema. Throws
    /// RepositoryError{io} for an empty URL or blob_dir, a pool size of 0, a
    /// server that cannot be reached (the message names the URL without its
    /// password) or a database written by a newer Wharf.
    static std::shared_ptr<PgRepository> open(const PgRepositoryOptions& options);

    PgRepository(Passkey, const PgRepositoryOptions& options);

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

    /// As SqliteRepository::collect_garbage. Any instance may run it; a binary
    /// is removed only when no committed node refers to it and its file is
    /// older than `grace` (a session refreshes the file's age when it uses a
    /// binary, and the removal looks at the age again).
    BlobGcStats collect_garbage(std::chrono::seconds grace = std::chrono::hours(1));

    const repo::BlobStore& blobs() const { return blobs_; }
    const std::string& url() const { return pool_.url(); }

    /// The schema version this build creates.
    static constexpr int kSchemaVersion = 1;

    /// A pooled connection for host tools that need SQL the interface does not
    /// offer (check, tests). Not for plugins.
    PgPool::Lease lease() const { return pool_.lease(); }

    std::chrono::milliseconds write_lock_timeout() const { return write_lock_timeout_; }

private:
    void migrate();

    mutable PgPool pool_;
    repo::BlobStore blobs_;
    std::chrono::milliseconds write_lock_timeout_;
};

}  // namespace wharf::host
