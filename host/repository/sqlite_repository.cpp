#include "repository/sqlite_repository.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <charconv>

#include "repository/links.hpp"
#include "repository/node_rules.hpp"
#include "repository/node_rows.hpp"
#include "repository/path.hpp"
#include "repository/rule_session.hpp"
#include "repository/schema.hpp"
#include "base/sha256.hpp"
#include "repository/value_codec.hpp"

namespace fs = std::filesystem;

namespace wharf::host {
namespace {

using Code = RepositoryError::Code;
using repo::Connection;
using repo::quote_path;

// The subtree condition on a column, with ?1 = root, ?2 = root + "/", ?3 = root + "0"
// (see path.hpp): one range scan that skips siblings like "/a-b".
std::string subtree_where(const char* column) {
    std::string c(column);
    return c + " >= ?1 AND " + c + " < ?3 AND (" + c + " = ?1 OR " + c + " >= ?2)";
}

void bind_range(repo::Statement& s, const repo::SubtreeRange& r) {
    s.bind(1, r.low);
    s.bind(2, r.children);
    s.bind(3, r.high);
}

using repo::article;
using repo::depth_of;
using repo::kind_wanted;
using repo::may_contain;
using repo::not_found;
using repo::now_millis;

LiveRelationship read_relationship(const repo::Statement& row) {
    LiveRelationship r;
    r.live_copy = row.string(0);
    r.blueprint = row.string(1);
    r.rollout_configs = repo::unpack_strings(row.blob(2));
    r.deep = row.int64(3) != 0;
    r.excluded_paths = repo::unpack_strings(row.blob(4));
    return r;
}

constexpr const char* kRelationshipColumns = "live_copy, blueprint, configs, deep, excluded";

using repo::NodeRef;

std::optional<NodeRef> find_node(Connection& c, std::string_view path) {
    auto q = c.query("SELECT id, kind FROM nodes WHERE path = ?1");
    q->bind(1, path);
    if (!q->step()) return std::nullopt;
    return NodeRef{q->int64(0), static_cast<NodeKind>(q->int64(1))};
}

// --- the session ----------------------------------------------------------------------

// The rows of a write session (the rules are RuleSession's): a batch is one
// BEGIN IMMEDIATE transaction on a pooled connection.
class SqliteSession final : public repo::RuleSession {
public:
    SqliteSession(std::shared_ptr<SqliteRepository> repository, ConnectionLease connection,
                  const SessionOptions& options)
        : RuleSession(repository->blobs(), options.batch_size),
          repository_(std::move(repository)),
          c_(std::move(connection)) {}

    ~SqliteSession() override { discard(); }

private:
    // IMMEDIATE takes the write lock now, so a batch never fails half-way
    // because another writer got there first.
    void begin_batch() override { c_->exec("BEGIN IMMEDIATE"); }

    void commit_batch() override { c_->exec("COMMIT"); }

    void abort_batch() noexcept override {
        if (sqlite3_get_autocommit(c_->handle())) return;  // no transaction open
        sqlite3_exec(c_->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    }

    std::optional<NodeRef> find(std::string_view path) override { return find_node(*c_, path); }

    std::int64_t next_order(std::int64_t parent_id) {
        auto q = c_->query("SELECT max(ord) FROM nodes WHERE parent_id = ?1");
        q->bind(1, parent_id);
        if (q->step() && !q->is_null(0)) return q->int64(0) + 1;
        return 0;
    }

    std::int64_t insert_row(const Node& node, std::int64_t parent_id) override {
        auto now = now_millis();
        auto q = c_->query(
            "INSERT INTO nodes(path, parent_id, kind, ord, blob_sha, blob_size, mime, created, "
            "modified, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
            "ON CONFLICT(path) DO NOTHING");
        q->bind(1, node.path);
        q->bind(2, parent_id);
        q->bind(3, static_cast<std::int64_t>(node.kind));
        q->bind(4, next_order(parent_id));
        if (node.binary) {
            q->bind(5, node.binary->sha256);
            q->bind(6, static_cast<std::int64_t>(node.binary->size));
            q->bind(7, node.binary->mime_type);
        }
        auto created = repo::to_millis(node.created);
        auto modified = repo::to_millis(node.modified);
        q->bind(8, created != 0 ? created : now);
        q->bind(9, modified != 0 ? modified : now);
        if (node.kind == NodeKind::page) q->bind(10, node.text);
        q->run();
        if (c_->changes() == 0)
            throw RepositoryError(Code::already_exists,
                                  "cannot create " + quote_path(node.path) + ": it exists");
        return c_->last_insert_rowid();
    }

    void insert_property(std::int64_t id, const std::string& name, const Property& p) override {
        auto q = c_->query(
            "INSERT INTO properties(node_id, name, type, multiple, value) "
            "VALUES (?1, ?2, ?3, ?4, ?5)");
        q->bind(1, id);
        q->bind(2, name);
        q->bind(3, static_cast<std::int64_t>(p.type));
        q->bind(4, static_cast<std::int64_t>(p.multiple));
        repo::bind_property_value(*q, 5, p);
        q->run();
    }

    void write_property(std::int64_t id, const std::string& name, const Property& p) override {
        auto q = c_->query(
            "INSERT INTO properties(node_id, name, type, multiple, value) "
            "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(node_id, name) DO UPDATE SET "
            "type = excluded.type, multiple = excluded.multiple, value = excluded.value");
        q->bind(1, id);
        q->bind(2, name);
        q->bind(3, static_cast<std::int64_t>(p.type));
        q->bind(4, static_cast<std::int64_t>(p.multiple));
        repo::bind_property_value(*q, 5, p);
        q->run();
    }

    void update_property_value(std::int64_t id, const std::string& name,
                               const Property& p) override {
        auto q = c_->query("UPDATE properties SET value = ?3 WHERE node_id = ?1 AND name = ?2");
        q->bind(1, id);
        q->bind(2, name);
        repo::bind_property_value(*q, 3, p);
        q->run();
    }

    void delete_property(std::int64_t id, const std::string& name) override {
        auto q = c_->query("DELETE FROM properties WHERE node_id = ?1 AND name = ?2");
        q->bind(1, id);
        q->bind(2, name);
        q->run();
    }

    std::vector<std::pair<std::string, Property>> path_properties(std::int64_t id) override {
        std::vector<std::pair<std::string, Property>> out;
        auto q = c_->query(
            "SELECT name, type, multiple, value FROM properties WHERE node_id = ?1 AND type = ?2");
        q->bind(1, id);
        q->bind(2, static_cast<std::int64_t>(PropertyType::path));
        while (q->step()) out.emplace_back(q->string(0), repo::read_property(*q, 1));
        return out;
    }

    std::string read_text(std::int64_t id) override {
        auto q = c_->query("SELECT text FROM nodes WHERE id = ?1");
        q->bind(1, id);
        return q->step() ? q->string(0) : std::string();
    }

    void update_text(std::int64_t id, std::string_view text) override {
        auto q = c_->query("UPDATE nodes SET text = ?2, modified = ?3 WHERE id = ?1");
        q->bind(1, id);
        q->bind(2, text);
        q->bind(3, now_millis());
        q->run();
    }

    void update_binary(std::int64_t id, const BinaryInfo& binary) override {
        auto q = c_->query(
            "UPDATE nodes SET blob_sha = ?2, blob_size = ?3, mime = ?4, modified = ?5 "
            "WHERE id = ?1");
        q->bind(1, id);
        q->bind(2, binary.sha256);
        q->bind(3, static_cast<std::int64_t>(binary.size));
        q->bind(4, binary.mime_type);
        q->bind(5, now_millis());
        q->run();
    }

    void update_order(std::int64_t id, std::int64_t order) override {
        auto q = c_->query("UPDATE nodes SET ord = ?2, modified = ?3 WHERE id = ?1");
        q->bind(1, id);
        q->bind(2, order);
        q->bind(3, now_millis());
        q->run();
    }

    void touch(std::int64_t id) override {
        auto q = c_->query("UPDATE nodes SET modified = ?2 WHERE id = ?1");
        q->bind(1, id);
        q->bind(2, now_millis());
        q->run();
    }

    void insert_ref(std::int64_t id, std::string_view property, std::string_view to) override {
        auto q =
            c_->query("INSERT OR IGNORE INTO refs(from_id, property, to_path) VALUES (?1, ?2, ?3)");
        q->bind(1, id);
        q->bind(2, property);
        q->bind(3, to);
        q->run();
    }

    void delete_refs(std::int64_t id, std::string_view property) override {
        auto q = c_->query("DELETE FROM refs WHERE from_id = ?1 AND property = ?2");
        q->bind(1, id);
        q->bind(2, property);
        q->run();
    }

    std::uint64_t delete_subtree(std::string_view path) override {
        auto range = repo::subtree_range(path);
        static const auto statements = repo::subtree_side_deletes(subtree_where);
        for (const auto& sql : statements) {
            auto q = c_->query(sql);
            bind_range(*q, range);
            q->run();
        }
        auto q = c_->query("DELETE FROM nodes WHERE " + subtree_where("path"));
        bind_range(*q, range);
        q->run();
        return static_cast<std::uint64_t>(c_->changes());
    }

    std::uint64_t rename_subtree(std::string_view from, std::string_view to) override {
        // substr() counts characters, as length() does, so the prefix cut is
        // right for any UTF-8 path.
        auto q = c_->query("UPDATE nodes SET path = ?4 || substr(path, length(?1) + 1) WHERE " +
                           subtree_where("path"));
        bind_range(*q, repo::subtree_range(from));
        q->bind(4, to);
        q->run();
        return static_cast<std::uint64_t>(c_->changes());
    }

    void reparent(std::int64_t id, std::int64_t parent_id) override {
        auto q = c_->query("UPDATE nodes SET parent_id = ?2, ord = ?3, modified = ?4 WHERE id = ?1");
        q->bind(1, id);
        q->bind(2, parent_id);
        q->bind(3, next_order(parent_id));
        q->bind(4, now_millis());
        q->run();
    }

    std::vector<LiveRelationship> relationships_under(std::string_view root) override {
        std::vector<LiveRelationship> out;
        auto q = c_->query(std::string("SELECT ") + kRelationshipColumns +
                           " FROM live_relationships WHERE " + subtree_where("live_copy") +
                           " UNION SELECT " + kRelationshipColumns +
                           " FROM live_relationships WHERE " + subtree_where("blueprint"));
        bind_range(*q, repo::subtree_range(root));
        while (q->step()) out.push_back(read_relationship(*q));
        return out;
    }

    void write_relationship(const LiveRelationship& r) override {
        auto q = c_->query(std::string("INSERT OR REPLACE INTO live_relationships(") +
                           kRelationshipColumns + ") VALUES (?1, ?2, ?3, ?4, ?5)");
        q->bind(1, r.live_copy);
        q->bind(2, r.blueprint);
        q->bind_blob(3, repo::pack_strings(r.rollout_configs));
        q->bind(4, static_cast<std::int64_t>(r.deep));
        q->bind_blob(5, repo::pack_strings(r.excluded_paths));
        q->run();
    }

    void delete_relationship(std::string_view live_copy) override {
        auto q = c_->query("DELETE FROM live_relationships WHERE live_copy = ?1");
        q->bind(1, live_copy);
        q->run();
    }

    void write_inheritance_cancel(std::int64_t id, const InheritanceCancel& cancel) override {
        auto q = c_->query(
            "INSERT OR REPLACE INTO inheritance_cancel(node_id, page, children, properties) "
            "VALUES (?1, ?2, ?3, ?4)");
        q->bind(1, id);
        q->bind(2, static_cast<std::int64_t>(cancel.page));
        q->bind(3, static_cast<std::int64_t>(cancel.children));
        q->bind_blob(4, repo::pack_strings(cancel.properties));
        q->run();
    }

    void delete_inheritance_cancel(std::int64_t id) override {
        auto q = c_->query("DELETE FROM inheritance_cancel WHERE node_id = ?1");
        q->bind(1, id);
        q->run();
    }

    void write_checkpoint(std::string_view name, const std::optional<std::string>& value) override {
        auto q = c_->query(value ? "INSERT OR REPLACE INTO checkpoints(name, value) VALUES (?1, ?2)"
                                 : "DELETE FROM checkpoints WHERE name = ?1");
        q->bind(1, name);
        if (value) q->bind(2, *value);
        q->run();
    }

    std::shared_ptr<SqliteRepository> repository_;
    ConnectionLease c_;
};

}  // namespace

// --- connections ----------------------------------------------------------------------

ConnectionLease::ConnectionLease(std::shared_ptr<const SqliteRepository> owner,
                                 std::unique_ptr<repo::Connection> connection)
    : owner_(std::move(owner)), connection_(std::move(connection)) {}

ConnectionLease::~ConnectionLease() {
    if (!connection_) return;
    // A connection goes back clean: no transaction left open by an error path.
    if (!sqlite3_get_autocommit(connection_->handle()))
        sqlite3_exec(connection_->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    owner_->give_back(std::move(connection_));
}

ConnectionLease SqliteRepository::lease() const {
    std::unique_ptr<repo::Connection> connection;
    {
        std::lock_guard lock(pool_mutex_);
        if (!idle_.empty()) {
            connection = std::move(idle_.back());
            idle_.pop_back();
        }
    }
    if (!connection) connection = std::make_unique<repo::Connection>(db_file_);
    return ConnectionLease(shared_from_this(), std::move(connection));
}

void SqliteRepository::give_back(std::unique_ptr<repo::Connection> connection) const {
    // A few idle connections are kept (each holds prepared statements and a
    // page cache); more than that were a burst and are closed.
    constexpr std::size_t kMaxIdle = 8;
    std::lock_guard lock(pool_mutex_);
    if (idle_.size() < kMaxIdle) idle_.push_back(std::move(connection));
}

// --- the repository -------------------------------------------------------------------

std::shared_ptr<SqliteRepository> SqliteRepository::open(const fs::path& data_dir) {
    auto repository = std::make_shared<SqliteRepository>(Passkey{}, data_dir);
    repo::migrate(*repository->lease());
    return repository;
}

SqliteRepository::SqliteRepository(Passkey, const fs::path& data_dir)
    : data_dir_(data_dir), db_file_(data_dir / "repository.db"), blobs_(data_dir / "blobs") {}

std::optional<Node> SqliteRepository::get(std::string_view path) const {
    repo::require_valid_path(path);
    auto c = lease();
    auto q = c->query(std::string("SELECT ") + repo::kNodeColumns + " FROM nodes WHERE path = ?1");
    q->bind(1, path);
    if (!q->step()) return std::nullopt;
    Node node;
    auto id = repo::read_node(*q, node, true);
    repo::load_properties(*c, id, node.properties);
    return node;
}

ChildPage SqliteRepository::children(std::string_view path, std::optional<std::string> cursor,
                                     std::size_t limit) const {
    repo::require_valid_path(path);
    limit = std::clamp<std::size_t>(limit, 1, 1000);
    auto after = cursor ? repo::parse_children_cursor(*cursor) : repo::ChildrenCursor{};
    ChildPage page;
    auto c = lease();
    auto parent = find_node(*c, path);
    if (!parent) return page;
    std::string sql = std::string("SELECT ") + repo::kNodeColumns +
                      " FROM nodes WHERE parent_id = ?1" +
                      (cursor ? " AND (ord > ?2 OR (ord = ?2 AND path > ?3))" : "") +
                      " ORDER BY ord, path LIMIT ?4";
    std::vector<std::int64_t> ids;
    {
        auto q = c->query(sql);
        q->bind(1, parent->id);
        if (cursor) {
            q->bind(2, after.order);
            q->bind(3, after.path);
        }
        q->bind(4, static_cast<std::int64_t>(limit + 1));
        while (q->step()) {
            if (page.nodes.size() == limit) {
                page.next_cursor = repo::children_cursor(page.nodes.back());
                break;
            }
            Node node;
            ids.push_back(repo::read_node(*q, node, true));
            page.nodes.push_back(std::move(node));
        }
    }
    for (std::size_t i = 0; i < ids.size(); ++i)
        repo::load_properties(*c, ids[i], page.nodes[i].properties);
    return page;
}

std::uint64_t SqliteRepository::walk(std::string_view root, const WalkOptions& options,
                                     const std::function<bool(const Node&)>& visit) const {
    repo::require_valid_path(root, "walk root");
    auto c = lease();
    auto range = repo::subtree_range(root);
    auto root_depth = depth_of(root);
    bool with_properties = options.with_properties;
    // With properties, one LEFT JOIN streams each node's property rows right
    // after it (the join follows the path index, then the properties primary
    // key), instead of one lookup per node.
    std::string sql =
        with_properties
            ? std::string(
                  "SELECT n.id, n.path, n.kind, n.ord, n.blob_sha, n.blob_size, n.mime, "
                  "n.created, n.modified, n.text, p.name, p.type, p.multiple, p.value "
                  "FROM nodes n LEFT JOIN properties p ON p.node_id = n.id WHERE ") +
                  subtree_where("n.path") + " ORDER BY n.path"
            : std::string("SELECT ") + repo::kNodeColumnsNoText + " FROM nodes WHERE " +
                  subtree_where("path") + " ORDER BY path";
    auto q = c->query(sql);
    bind_range(*q, range);
    // One Node is reused for every row: the walk allocates per node only what
    // the node's own strings need.
    Node node;
    std::int64_t current = -1;  // the node being assembled from join rows
    bool skipping = false;
    std::uint64_t visited = 0;
    auto emit = [&] {
        ++visited;
        return visit(node);
    };
    while (q->step()) {
        auto id = q->int64(0);
        if (id != current) {
            if (current >= 0 && !skipping && !emit()) return visited;
            current = id;
            auto kind = static_cast<NodeKind>(q->int64(2));
            auto path = q->text(1);
            bool is_root = path.size() == range.low.size();
            skipping = !kind_wanted(options, kind) || (is_root && !options.include_root) ||
                       (options.max_depth && depth_of(path) - root_depth > *options.max_depth);
            if (skipping) continue;
            repo::read_node(*q, node, with_properties);
            node.properties.clear();
        }
        if (skipping || !with_properties || q->is_null(10)) continue;
        node.properties.emplace(q->string(10), repo::read_property(*q, 11));
    }
    if (current >= 0 && !skipping) emit();
    return visited;
}

std::uint64_t SqliteRepository::count(std::string_view root, const WalkOptions& options) const {
    repo::require_valid_path(root, "count root");
    std::string kinds = repo::kind_list(options);
    if (kinds.empty()) return 0;
    std::string sql = "SELECT count(*) FROM nodes WHERE " + subtree_where("path") +
                      " AND kind IN (" + kinds + ")";
    if (!options.include_root) sql += " AND path <> ?1";
    if (options.max_depth) sql += std::string(" AND ") + repo::kDepthSql + " <= ?4";
    auto c = lease();
    auto q = c->query(sql);
    bind_range(*q, repo::subtree_range(root));
    if (options.max_depth)
        q->bind(4, static_cast<std::int64_t>(depth_of(root) + *options.max_depth));
    return q->step() ? static_cast<std::uint64_t>(q->int64(0)) : 0;
}

namespace {

// Visits the references the query's rows name (from path, property, to path)
// until `visit` returns false; returns how many it visited.
std::uint64_t visit_references(repo::Statement& q,
                               const std::function<bool(const Reference&)>& visit) {
    Reference ref;
    std::uint64_t visited = 0;
    while (q.step()) {
        ref.from_path.assign(q.text(0));
        ref.property.assign(q.text(1));
        ref.to_path.assign(q.text(2));
        ++visited;
        if (!visit(ref)) break;
    }
    return visited;
}

}  // namespace

std::uint64_t SqliteRepository::referrers(
    std::string_view path, const std::function<bool(const Reference&)>& visit) const {
    repo::require_valid_path(path);
    auto c = lease();
    auto q = c->query(
        "SELECT n.path, r.property, r.to_path FROM refs r JOIN nodes n ON n.id = r.from_id "
        "WHERE r.to_path = ?1");
    q->bind(1, path);
    return visit_references(*q, visit);
}

std::uint64_t SqliteRepository::referrers_under(
    std::string_view root, bool external_only,
    const std::function<bool(const Reference&)>& visit) const {
    repo::require_valid_path(root, "referrers root");
    auto c = lease();
    std::string sql =
        "SELECT n.path, r.property, r.to_path FROM refs r JOIN nodes n ON n.id = r.from_id "
        "WHERE " +
        subtree_where("r.to_path");
    if (external_only) sql += " AND NOT (" + subtree_where("n.path") + ")";
    auto q = c->query(sql);
    bind_range(*q, repo::subtree_range(root));
    return visit_references(*q, visit);
}

std::unique_ptr<BinaryReader> SqliteRepository::read_binary(std::string_view asset_path) const {
    repo::require_valid_path(asset_path, "asset path");
    std::optional<BinaryInfo> info;
    {
        auto c = lease();
        auto q = c->query("SELECT blob_sha, blob_size, mime FROM nodes WHERE path = ?1");
        q->bind(1, asset_path);
        if (!q->step() || q->is_null(0)) return nullptr;
        info = BinaryInfo{q->string(0), static_cast<std::uint64_t>(q->int64(1)), q->string(2)};
    }
    return blobs_.open(*info);
}

std::unique_ptr<BinaryWriter> SqliteRepository::write_binary() { return blobs_.begin_write(); }

std::unique_ptr<Session> SqliteRepository::open_session(const SessionOptions& options) {
    return std::make_unique<SqliteSession>(shared_from_this(), lease(), options);
}

std::vector<LiveRelationship> SqliteRepository::live_relationships(
    std::string_view blueprint) const {
    if (!blueprint.empty()) repo::require_valid_path(blueprint, "blueprint");
    auto c = lease();
    auto q = c->query(
        std::string("SELECT ") + kRelationshipColumns + " FROM live_relationships" +
        (blueprint.empty() ? " ORDER BY live_copy" : " WHERE blueprint = ?1 ORDER BY live_copy"));
    if (!blueprint.empty()) q->bind(1, blueprint);
    std::vector<LiveRelationship> out;
    while (q->step()) out.push_back(read_relationship(*q));
    return out;
}

std::optional<LiveRelationship> SqliteRepository::live_relationship_of(
    std::string_view live_copy_path) const {
    repo::require_valid_path(live_copy_path, "live copy path");
    auto c = lease();
    // The node itself, then each ancestor; a shallow relationship governs only
    // its own root.
    for (std::string_view p = live_copy_path; p != "/"; p = repo::parent_path(p)) {
        auto q = c->query(std::string("SELECT ") + kRelationshipColumns +
                          " FROM live_relationships WHERE live_copy = ?1");
        q->bind(1, p);
        if (!q->step()) continue;
        auto r = read_relationship(*q);
        if (p == live_copy_path || r.deep) return r;
    }
    return std::nullopt;
}

InheritanceCancel SqliteRepository::inheritance_cancel(std::string_view path) const {
    repo::require_valid_path(path);
    auto c = lease();
    auto q = c->query(
        "SELECT i.page, i.children, i.properties FROM inheritance_cancel i "
        "JOIN nodes n ON n.id = i.node_id WHERE n.path = ?1");
    q->bind(1, path);
    InheritanceCancel cancel;
    if (q->step()) {
        cancel.page = q->int64(0) != 0;
        cancel.children = q->int64(1) != 0;
        cancel.properties = repo::unpack_strings(q->blob(2));
    }
    return cancel;
}

std::optional<std::string> SqliteRepository::checkpoint(std::string_view name) const {
    auto c = lease();
    auto q = c->query("SELECT value FROM checkpoints WHERE name = ?1");
    q->bind(1, name);
    if (!q->step()) return std::nullopt;
    return q->string(0);
}

BlobGcStats SqliteRepository::collect_garbage(std::chrono::seconds grace) {
    BlobGcStats stats;
    auto cutoff = fs::file_time_type::clock::now() - grace;
    auto c = lease();
    blobs_.for_each([&](const std::string& sha, std::uint64_t size, fs::file_time_type mtime) {
        ++stats.binaries_seen;
        if (mtime >= cutoff) return;
        {
            auto q = c->query("SELECT 1 FROM nodes WHERE blob_sha = ?1 LIMIT 1");
            q->bind(1, sha);
            if (q->step()) return;
        }
        // remove_if_older looks at the mtime again: a writer or a session that
        // took the binary since the scan has refreshed it.
        if (blobs_.remove_if_older(sha, cutoff)) {
            ++stats.binaries_removed;
            stats.bytes_removed += size;
        }
    });
    stats.temporaries_removed = blobs_.remove_stale_temporaries(cutoff);
    return stats;
}

}  // namespace wharf::host
