#pragma once
// check_repository(): verifies a repository's integrity offline or while it
// runs, streaming over every table (memory is bounded by the largest single
// node, not the repository). Used by `wharf repo check` and by tests after
// crashes. One check for both backends: each gives the rows through a
// repo::CheckSource (SQLite's in repository_check.cpp, PostgreSQL's in
// pg_repository.cpp) and repo::check_repository() judges them.
//
// Errors: an index row that no property or link implies, or one missing; an
// index row or property of a node that does not exist; a node whose parent
// row is missing or not its path's parent, or of a kind that cannot hold it;
// an asset whose binary is missing or of the wrong size; an undecodable
// value; SQLite's quick_check complaints (PostgreSQL checks its own pages).
// Warnings: binaries no node refers to (garbage the next gc() removes once
// they are older than its grace period) and temporary files of killed writers.
//
// Threading: runs on a leased connection in one read snapshot (PostgreSQL:
// one REPEATABLE READ transaction, so instances may go on writing); the
// repository may be used meanwhile (binaries written after the snapshot may
// show up as unreferenced warnings).

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "wharf/repository.hpp"

namespace wharf::host {

class SqliteRepository;
class PgRepository;
namespace repo {
class BlobStore;
}

struct RepositoryProblem {
    enum class Severity { error, warning };
    enum class Kind {
        database,         ///< SQLite quick_check
        bad_node,         ///< path, parent, kind or text/binary not as the model says
        bad_property,     ///< a property that cannot be read, or of no node
        index_missing,    ///< a Path value or link without its index row
        index_extra,      ///< an index row without the value or link it claims
        index_orphan,     ///< an index row of no node
        missing_binary,   ///< an asset's binary is not in the store (or has another size)
        orphaned_binary,  ///< a stored binary no node refers to
        stale_temporary,  ///< a writer's temporary file older than the grace period
    };
    Severity severity = Severity::error;
    Kind kind = Kind::database;
    std::string path;    ///< the node, binary digest or file concerned
    std::string detail;  ///< what is wrong, for people
};

struct RepositoryCheckOptions {
    std::chrono::seconds gc_grace = std::chrono::hours(1);  ///< as collect_garbage()
    bool database_integrity = true;                         ///< run PRAGMA quick_check
    std::size_t max_problems = 10'000;                      ///< stop listing after this many
};

struct RepositoryCheckReport {
    std::vector<RepositoryProblem> problems;
    std::uint64_t problems_not_listed = 0;  ///< beyond max_problems
    std::uint64_t nodes = 0;
    std::uint64_t references = 0;
    std::uint64_t binaries = 0;

    std::uint64_t errors() const;
    bool ok() const { return errors() == 0; }
};

const char* to_string(RepositoryProblem::Kind kind) noexcept;

/// One line per problem: "error index_missing /content/a: ...".
std::string format(const RepositoryProblem& problem);

RepositoryCheckReport check_repository(const SqliteRepository& repository,
                                       const RepositoryCheckOptions& options = {});

/// The same check on a PostgreSQL repository (pg_repository.cpp). Throws
/// RepositoryError{io} when the database cannot be read.
RepositoryCheckReport check_repository(const PgRepository& repository,
                                       const RepositoryCheckOptions& options = {});

namespace repo {

/// A node as the check sees it: its row, its parent's, its properties.
struct CheckNode {
    std::int64_t id = 0;
    std::string path;
    NodeKind kind = NodeKind::folder;
    std::optional<std::string> parent_path;  ///< none: the parent row is missing
    NodeKind parent_kind = NodeKind::folder;
    std::optional<std::string> blob_sha;
    std::int64_t blob_size = 0;
    std::string text;
    PropertyMap properties;                    ///< those that could be read
    std::vector<std::string> property_errors;  ///< why others could not
};

/// An index row.
struct CheckRef {
    std::int64_t from_id = 0;
    std::string property;
    std::string to_path;
};

/// A backend's rows for the check, all from one read snapshot. Used by one
/// thread.
class CheckSource {
public:
    virtual ~CheckSource() = default;
    /// What the database problems are reported against ("repository.db").
    virtual std::string database_name() const = 0;
    /// The database engine's own integrity complaints.
    virtual std::vector<std::string> database_problems() = 0;
    /// The next node in id order; false at the end.
    virtual bool next_node(CheckNode& node) = 0;
    /// The next index row in (from_id, property, to_path) order, byte-wise.
    virtual bool next_ref(CheckRef& ref) = 0;
    /// Property rows (node id, name) of no node.
    virtual void orphan_properties(
        const std::function<void(std::int64_t, const std::string&)>& visit) = 0;
    /// Cancelled-inheritance rows (node id) of no node.
    virtual void orphan_cancels(const std::function<void(std::int64_t)>& visit) = 0;
    /// Whether some node has binary `sha`.
    virtual bool binary_referenced(const std::string& sha) = 0;
    virtual const BlobStore& blobs() const = 0;
};

/// Judges what `source` gives.
RepositoryCheckReport check_repository(CheckSource& source, const RepositoryCheckOptions& options);

}  // namespace repo

}  // namespace wharf::host
