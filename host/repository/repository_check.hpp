#pragma once
// check_repository(): verifies a repository's integrity offline or while it
// runs, streaming over every table (memory is bounded by the largest single
// node, not the repository). Used by `wharf repo check` and by tests after
// crashes.
//
// Errors: an index row that no property or link implies, or one missing; an
// index row or property of a node that does not exist; a node whose parent
// row is missing or not its path's parent, or of a kind that cannot hold it;
// an asset whose binary is missing or of the wrong size; an undecodable
// value; SQLite's quick_check complaints.
// Warnings: binaries no node refers to (garbage the next gc() removes once
// they are older than its grace period) and temporary files of killed writers.
//
// Threading: runs on a leased connection in one read snapshot; the
// repository may be used meanwhile (binaries written after the snapshot may
// show up as unreferenced warnings).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace wharf::host {

class SqliteRepository;

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

}  // namespace wharf::host
