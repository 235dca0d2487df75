#include "repository/repository_check.hpp"

#include <algorithm>
#include <filesystem>

#include "base/sha256.hpp"
#include "repository/node_rows.hpp"
#include "repository/path.hpp"
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

namespace repo {

RepositoryCheckReport check_repository(CheckSource& source, const RepositoryCheckOptions& options) {
    RepositoryCheckReport report;
    Problems problems(report, options.max_problems);

    if (options.database_integrity)
        for (const auto& problem : source.database_problems())
            problems.error(Kind::database, source.database_name(), problem);

    // Nodes in id order, merged with the index in its primary-key order
    // (from_id, property, to_path): both streams, no sort, bounded memory.
    CheckRef ref;
    bool refs_more = source.next_ref(ref);
    auto next_ref = [&] {
        ++report.references;
        refs_more = source.next_ref(ref);
    };
    CheckNode node;
    std::vector<RefRow> actual;
    while (source.next_node(node)) {
        ++report.nodes;
        auto id = node.id;
        const std::string& path = node.path;
        auto kind = node.kind;
        while (refs_more && ref.from_id < id) {
            problems.error(Kind::index_orphan, "node id " + std::to_string(ref.from_id),
                           "index row of no node: " + describe({ref.property, ref.to_path}));
            next_ref();
        }
        actual.clear();
        while (refs_more && ref.from_id == id) {
            actual.emplace_back(ref.property, ref.to_path);
            next_ref();
        }

        if (path == "/") {
            if (id != 1 || kind != NodeKind::folder)
                problems.error(Kind::bad_node, path, "the root is not folder 1");
        } else {
            if (auto problem = path_problem(path); !problem.empty())
                problems.error(Kind::bad_node, path, "invalid path: " + problem);
            if (!node.parent_path) {
                problems.error(Kind::bad_node, path, "parent row missing");
            } else if (*node.parent_path != parent_path(path)) {
                problems.error(Kind::bad_node, path,
                               "parent row is " + *node.parent_path + ", not the path's parent");
            } else if (!may_contain(node.parent_kind, kind)) {
                problems.error(Kind::bad_node, path,
                               std::string("a ") + to_string(kind) + " under a " +
                                   to_string(node.parent_kind));
            }
        }
        if (kind == NodeKind::asset) {
            if (!node.blob_sha) {
                problems.error(Kind::missing_binary, path, "asset without a binary");
            } else {
                const auto& sha = *node.blob_sha;
                auto size = source.blobs().size_of(sha);
                if (!size)
                    problems.error(Kind::missing_binary, path, "binary " + sha + " not in store");
                else if (*size != static_cast<std::uint64_t>(node.blob_size))
                    problems.error(Kind::missing_binary, path,
                                   "binary " + sha + " has " + std::to_string(*size) +
                                       " bytes, the node says " + std::to_string(node.blob_size));
            }
        } else if (node.blob_sha) {
            problems.error(Kind::bad_node, path, "only assets have a binary");
        }
        if (kind != NodeKind::page && !node.text.empty())
            problems.error(Kind::bad_node, path, "only pages have text");

        for (const auto& error : node.property_errors)
            problems.error(Kind::bad_property, path, error);
        for (const auto& [name, property] : node.properties) {
            auto problem = property_name_problem(name);
            if (problem.empty()) problem = property_problem(property);
            if (!problem.empty()) problems.error(Kind::bad_property, path, name + ": " + problem);
        }
        auto expected = expected_references(node.properties, node.text);
        std::vector<RefRow> missing, extra;
        std::set_difference(expected.begin(), expected.end(), actual.begin(), actual.end(),
                            std::back_inserter(missing));
        std::set_difference(actual.begin(), actual.end(), expected.begin(), expected.end(),
                            std::back_inserter(extra));
        for (const auto& r : missing) problems.error(Kind::index_missing, path, describe(r));
        for (const auto& r : extra) problems.error(Kind::index_extra, path, describe(r));
    }
    while (refs_more) {
        problems.error(Kind::index_orphan, "node id " + std::to_string(ref.from_id),
                       "index row of no node: " + describe({ref.property, ref.to_path}));
        next_ref();
    }

    source.orphan_properties([&](std::int64_t id, const std::string& name) {
        problems.error(Kind::bad_property, "node id " + std::to_string(id),
                       "property " + name + " of no node");
    });
    source.orphan_cancels([&](std::int64_t id) {
        problems.error(Kind::bad_node, "node id " + std::to_string(id),
                       "cancelled-inheritance marker of no node");
    });

    auto cutoff = std::filesystem::file_time_type::clock::now() - options.gc_grace;
    source.blobs().for_each([&](const std::string& sha, std::uint64_t size,
                                std::filesystem::file_time_type mtime) {
        ++report.binaries;
        if (source.binary_referenced(sha)) return;
        problems.add(
            Severity::warning, Kind::orphaned_binary, sha,
            std::to_string(size) + " bytes, no node refers to it" +
                (mtime < cutoff ? " (gc will remove it)" : " (younger than the gc grace period)"));
    });
    if (auto stale = source.blobs().count_temporaries(cutoff); stale > 0)
        problems.add(Severity::warning, Kind::stale_temporary, "blobs/tmp",
                     std::to_string(stale) + " temporary files of interrupted writers");
    return report;
}

}  // namespace repo

namespace {

// The check's view of a SQLite repository, on a connection inside one read
// transaction the caller opened.
class SqliteCheckSource final : public repo::CheckSource {
public:
    SqliteCheckSource(const SqliteRepository& repository, repo::Connection& c)
        : repository_(repository),
          c_(c),
          refs_(c.query("SELECT from_id, property, to_path FROM refs ORDER BY from_id, property, "
                        "to_path")),
          nodes_(c.query(
              "SELECT n.id, n.path, n.kind, n.parent_id, p.path, p.kind, n.blob_sha, "
              "n.blob_size, n.text FROM nodes n LEFT JOIN nodes p ON p.id = n.parent_id ORDER BY "
              "n.id")) {}

    std::string database_name() const override { return "repository.db"; }

    std::vector<std::string> database_problems() override {
        std::vector<std::string> out;
        auto q = c_.query("PRAGMA quick_check");
        while (q->step())
            if (q->text(0) != "ok") out.push_back(q->string(0));
        return out;
    }

    bool next_node(repo::CheckNode& node) override {
        if (!nodes_->step()) return false;
        node.id = nodes_->int64(0);
        node.path = nodes_->string(1);
        node.kind = static_cast<NodeKind>(nodes_->int64(2));
        node.parent_path.reset();
        if (!nodes_->is_null(4)) {
            node.parent_path = nodes_->string(4);
            node.parent_kind = static_cast<NodeKind>(nodes_->int64(5));
        }
        node.blob_sha.reset();
        if (!nodes_->is_null(6)) {
            node.blob_sha = nodes_->string(6);
            node.blob_size = nodes_->int64(7);
        }
        node.text.assign(nodes_->text(8));
        node.properties.clear();
        node.property_errors.clear();
        try {
            repo::load_properties(c_, node.id, node.properties);
        } catch (const RepositoryError& e) {
            node.property_errors.push_back(e.what());
        }
        return true;
    }

    bool next_ref(repo::CheckRef& ref) override {
        if (!refs_->step()) return false;
        ref.from_id = refs_->int64(0);
        ref.property = refs_->string(1);
        ref.to_path = refs_->string(2);
        return true;
    }

    void orphan_properties(
        const std::function<void(std::int64_t, const std::string&)>& visit) override {
        auto q = c_.query(
            "SELECT node_id, name FROM properties WHERE node_id NOT IN (SELECT id FROM nodes)");
        while (q->step()) visit(q->int64(0), q->string(1));
    }

    void orphan_cancels(const std::function<void(std::int64_t)>& visit) override {
        auto q = c_.query(
            "SELECT node_id FROM inheritance_cancel WHERE node_id NOT IN (SELECT id FROM nodes)");
        while (q->step()) visit(q->int64(0));
    }

    bool binary_referenced(const std::string& sha) override {
        auto q = c_.query("SELECT 1 FROM nodes WHERE blob_sha = ?1 LIMIT 1");
        q->bind(1, sha);
        return q->step();
    }

    const repo::BlobStore& blobs() const override { return repository_.blobs(); }

private:
    const SqliteRepository& repository_;
    repo::Connection& c_;
    repo::Query refs_;
    repo::Query nodes_;
};

}  // namespace

RepositoryCheckReport check_repository(const SqliteRepository& repository,
                                       const RepositoryCheckOptions& options) {
    auto c = repository.lease();
    // One read transaction: every query sees the same state.
    c->exec("BEGIN");
    RepositoryCheckReport report;
    {
        SqliteCheckSource source(repository, *c);
        report = repo::check_repository(source, options);
    }
    c->exec("COMMIT");
    return report;
}

}  // namespace wharf::host
