#include "repository/repository_check.hpp"

#include <algorithm>
#include <filesystem>

#include "repository/node_rows.hpp"
#include "repository/path.hpp"
#include "base/sha256.hpp"
#include "repository/sqlite_repository.hpp"
#include "repository/value_codec.hpp"

namespace wharf::host {
namespace {

using Kind = RepositoryProblem::Kind;
using Severity = RepositoryProblem::Severity;
using RefRow = std::pair<std::string, std::string>;  // property, to_path

class Problems {
public:
    Problems(RepositoryCheckReport& report, std::size_t max) : report_(report), max_(max) {}
    void add(Severity severity, Kind kind, std::string path, std::string detail) {
        if (report_.problems.size() >= max_) {
            ++report_.problems_not_listed;
            return;
        }
        report_.problems.push_back({severity, kind, std::move(path), std::move(detail)});
    }
    void error(Kind kind, std::string path, std::string detail) {
        add(Severity::error, kind, std::move(path), std::move(detail));
    }

private:
    RepositoryCheckReport& report_;
    std::size_t max_;
};

bool may_contain(NodeKind parent, NodeKind child) {
    return parent == NodeKind::folder || (parent == NodeKind::page && child == NodeKind::page);
}

std::string describe(const RefRow& r) { return "property " + r.first + " -> " + r.second; }

}  // namespace

std::uint64_t RepositoryCheckReport::errors() const {
    auto listed = std::count_if(problems.begin(), problems.end(),
                                [](const auto& p) { return p.severity == Severity::error; });
    return static_cast<std::uint64_t>(listed) + problems_not_listed;
}

const char* to_string(RepositoryProblem::Kind kind) noexcept {
    switch (kind) {
        case Kind::database:
            return "database";
        case Kind::bad_node:
            return "bad_node";
        case Kind::bad_property:
            return "bad_property";
        case Kind::index_missing:
            return "index_missing";
        case Kind::index_extra:
            return "index_extra";
        case Kind::index_orphan:
            return "index_orphan";
        case Kind::missing_binary:
            return "missing_binary";
        case Kind::orphaned_binary:
            return "orphaned_binary";
        case Kind::stale_temporary:
            return "stale_temporary";
    }
    return "unknown";
}

std::string format(const RepositoryProblem& p) {
    return std::string(p.severity == Severity::error ? "error " : "warning ") + to_string(p.kind) +
           " " + p.path + ": " + p.detail;
}

RepositoryCheckReport check_repository(const SqliteRepository& repository,
                                       const RepositoryCheckOptions& options) {
    RepositoryCheckReport report;
    Problems problems(report, options.max_problems);
    auto c = repository.lease();
    // One read transaction: every query below sees the same state.
    c->exec("BEGIN");

    if (options.database_integrity) {
        auto q = c->query("PRAGMA quick_check");
        while (q->step())
            if (q->text(0) != "ok") problems.error(Kind::database, "repository.db", q->string(0));
    }

    // Nodes in id order, merged with the index in its primary-key order
    // (from_id, property, to_path): both streams, no sort, bounded memory.
    auto refs = c->query(
        "SELECT from_id, property, to_path FROM refs ORDER BY from_id, property, "
        "to_path");
    bool refs_more = refs->step();
    auto next_ref = [&] {
        ++report.references;
        refs_more = refs->step();
    };
    auto nodes = c->query(
        "SELECT n.id, n.path, n.kind, n.parent_id, p.path, p.kind, n.blob_sha, n.blob_size, "
        "n.text FROM nodes n LEFT JOIN nodes p ON p.id = n.parent_id ORDER BY n.id");
    std::vector<RefRow> actual;
    while (nodes->step()) {
        ++report.nodes;
        auto id = nodes->int64(0);
        std::string path = nodes->string(1);
        auto kind = static_cast<NodeKind>(nodes->int64(2));
        while (refs_more && refs->int64(0) < id) {
            problems.error(Kind::index_orphan, "node id " + std::to_string(refs->int64(0)),
                           "index row of no node: " + describe({refs->string(1), refs->string(2)}));
            next_ref();
        }
        actual.clear();
        while (refs_more && refs->int64(0) == id) {
            actual.emplace_back(refs->string(1), refs->string(2));
            next_ref();
        }

        if (path == "/") {
            if (id != 1 || kind != NodeKind::folder)
                problems.error(Kind::bad_node, path, "the root is not folder 1");
        } else {
            if (auto problem = repo::path_problem(path); !problem.empty())
                problems.error(Kind::bad_node, path, "invalid path: " + problem);
            if (nodes->is_null(4)) {
                problems.error(Kind::bad_node, path, "parent row missing");
            } else if (nodes->text(4) != repo::parent_path(path)) {
                problems.error(Kind::bad_node, path,
                               "parent row is " + nodes->string(4) + ", not the path's parent");
            } else if (!may_contain(static_cast<NodeKind>(nodes->int64(5)), kind)) {
                problems.error(Kind::bad_node, path,
                               std::string("a ") + repo::to_string(kind) + " under a " +
                                   repo::to_string(static_cast<NodeKind>(nodes->int64(5))));
            }
        }
        if (kind == NodeKind::asset) {
            if (nodes->is_null(6)) {
                problems.error(Kind::missing_binary, path, "asset without a binary");
            } else {
                auto sha = nodes->string(6);
                auto size = repository.blobs().size_of(sha);
                if (!size)
                    problems.error(Kind::missing_binary, path, "binary " + sha + " not in store");
                else if (*size != static_cast<std::uint64_t>(nodes->int64(7)))
                    problems.error(Kind::missing_binary, path,
                                   "binary " + sha + " has " + std::to_string(*size) +
                                       " bytes, the node says " + std::to_string(nodes->int64(7)));
            }
        } else if (!nodes->is_null(6)) {
            problems.error(Kind::bad_node, path, "only assets have a binary");
        }
        auto text = nodes->text(8);
        if (kind != NodeKind::page && !text.empty())
            problems.error(Kind::bad_node, path, "only pages have text");

        PropertyMap properties;
        try {
            repo::load_properties(*c, id, properties);
        } catch (const RepositoryError& e) {
            problems.error(Kind::bad_property, path, e.what());
        }
        for (const auto& [name, property] : properties) {
            auto problem = repo::property_name_problem(name);
            if (problem.empty()) problem = repo::property_problem(property);
            if (!problem.empty()) problems.error(Kind::bad_property, path, name + ": " + problem);
        }
        auto expected = repo::expected_references(properties, text);
        std::vector<RefRow> missing, extra;
        std::set_difference(expected.begin(), expected.end(), actual.begin(), actual.end(),
                            std::back_inserter(missing));
        std::set_difference(actual.begin(), actual.end(), expected.begin(), expected.end(),
                            std::back_inserter(extra));
        for (const auto& r : missing) problems.error(Kind::index_missing, path, describe(r));
        for (const auto& r : extra) problems.error(Kind::index_extra, path, describe(r));
    }
    while (refs_more) {
        problems.error(Kind::index_orphan, "node id " + std::to_string(refs->int64(0)),
                       "index row of no node: " + describe({refs->string(1), refs->string(2)}));
        next_ref();
    }

    {
        auto q = c->query(
            "SELECT node_id, name FROM properties WHERE node_id NOT IN (SELECT id FROM nodes)");
        while (q->step())
            problems.error(Kind::bad_property, "node id " + std::to_string(q->int64(0)),
                           "property " + q->string(1) + " of no node");
    }
    {
        auto q = c->query(
            "SELECT node_id FROM inheritance_cancel WHERE node_id NOT IN (SELECT id FROM nodes)");
        while (q->step())
            problems.error(Kind::bad_node, "node id " + std::to_string(q->int64(0)),
                           "cancelled-inheritance marker of no node");
    }

    auto cutoff = std::filesystem::file_time_type::clock::now() - options.gc_grace;
    repository.blobs().for_each([&](const std::string& sha, std::uint64_t size,
                                    std::filesystem::file_time_type mtime) {
        ++report.binaries;
        auto q = c->query("SELECT 1 FROM nodes WHERE blob_sha = ?1 LIMIT 1");
        q->bind(1, sha);
        if (q->step()) return;
        problems.add(
            Severity::warning, Kind::orphaned_binary, sha,
            std::to_string(size) + " bytes, no node refers to it" +
                (mtime < cutoff ? " (gc will remove it)" : " (younger than the gc grace period)"));
    });
    if (auto stale = repository.blobs().count_temporaries(cutoff); stale > 0)
        problems.add(Severity::warning, Kind::stale_temporary, "blobs/tmp",
                     std::to_string(stale) + " temporary files of interrupted writers");
    c->exec("COMMIT");
    return report;
}

}  // namespace wharf::host
