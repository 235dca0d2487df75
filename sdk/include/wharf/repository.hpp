#pragma once
// The content repository as operation plugins see it.
//
// A tree of nodes addressed by absolute path: folders, assets (a binary plus a
// metadata property set) and pages (properties plus text that may link to
// other nodes). Properties are typed (String, Long, Double, Boolean, Date,
// Path), single or multi-valued. Binaries live in a content-addressed store
// (sha256) and are read and written as streams, never held whole in memory.
// A reference index records which node (and property) points at which path:
// Path properties and links in page text (`href="/content/..."`,
// `src="/content/dam/..."`), maintained on every write.
//
// Reads go straight to the repository. Writes go through a Session, which
// batches them: a transaction per batch, committed every `batch_size` changes
// and on commit(), rolled back on error or when the session is destroyed
// uncommitted. A failure inside a batch leaves the repository as before that
// batch; earlier batches stay. Bulk operations keep their own checkpoint (a
// job checkpoint) so that a killed job resumes after the last committed batch.
//
// Paths: absolute, '/'-separated, valid UTF-8, no empty segment, no '.' or
// '..', no control characters, no trailing '/', at most 1024 bytes, segments
// at most 150 bytes. "/" is the root: it always exists (a folder) and cannot
// be created, removed or moved. A bad path is refused with
// RepositoryError{invalid_path} naming it and saying why.
//
// Kinds: a folder may hold folders, assets and pages; a page holds pages; an
// asset holds nothing. Only pages have text, only assets have a binary (and
// every asset has one).
//
// Threading: a Repository may be used from any thread. A Session belongs to
// one thread at a time. Walk and referrer callbacks run on the calling thread
// and see a snapshot taken when the call started; they may read the
// repository and may write through a Session (a walk that deletes or moves
// what it visits sees the snapshot, not its own changes).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace wharf {

// --- values -------------------------------------------------------------------------

enum class NodeKind { folder, asset, page };
enum class PropertyType { string, long_, double_, boolean, date, path };

/// "folder", "asset", "page": as the API and reports name a kind.
inline const char* to_string(NodeKind kind) noexcept {
    switch (kind) {
        case NodeKind::folder:
            return "folder";
        case NodeKind::asset:
            return "asset";
        case NodeKind::page:
            return "page";
    }
    return "unknown";
}

/// "String", "Long", "Double", "Boolean", "Date", "Path": as the API and CSV
/// headers name a type.
inline const char* to_string(PropertyType type) noexcept {
    switch (type) {
        case PropertyType::string:
            return "String";
        case PropertyType::long_:
            return "Long";
        case PropertyType::double_:
            return "Double";
        case PropertyType::boolean:
            return "Boolean";
        case PropertyType::date:
            return "Date";
        case PropertyType::path:
            return "Path";
    }
    return "unknown";
}

/// Milliseconds since the epoch, UTC.
using Date = std::chrono::sys_time<std::chrono::milliseconds>;

/// A reference to another node, by absolute path.
struct PathRef {
    std::string path;
    bool operator==(const PathRef&) const = default;
};

using Scalar = std::variant<std::string, std::int64_t, double, bool, Date, PathRef>;

/// One typed property: single-valued (`values.size() == 1`) or multi-valued.
struct Property {
    PropertyType type = PropertyType::string;
    bool multiple = false;
    std::vector<Scalar> values;

    bool operator==(const Property&) const = default;

    static Property string(std::string v) { return {PropertyType::string, false, {std::move(v)}}; }
    static Property long_(std::int64_t v) { return {PropertyType::long_, false, {v}}; }
    static Property double_(double v) { return {PropertyType::double_, false, {v}}; }
    static Property boolean(bool v) { return {PropertyType::boolean, false, {v}}; }
    static Property date(Date v) { return {PropertyType::date, false, {v}}; }
    static Property path(std::string v) { return {PropertyType::path, false, {PathRef{std::move(v)}}}; }
    /// A multi-valued property; every value must be of `type`.
    static Property multi(PropertyType type, std::vector<Scalar> values) {
        return {type, true, std::move(values)};
    }
};

/// Property name -> value. Names: 1..255 bytes of UTF-8, no '/', no control
/// characters, not starting with ':' (reserved: ":text" marks text links in
/// the reference index).
using PropertyMap = std::map<std::string, Property>;

/// An asset's binary as stored.
struct BinaryInfo {
    std::string sha256;  ///< lower-case hex
    std::uint64_t size = 0;
    std::string mime_type;
};

struct Node {
    std::string path;
    NodeKind kind = NodeKind::folder;
    PropertyMap properties;            ///< metadata (assets) or page properties
    std::optional<BinaryInfo> binary;  ///< assets only
    std::string text;                  ///< pages only: body that may contain links
    /// Sort key among siblings (children() orders by it, then by name).
    /// Ignored by create(), which appends; see Session::set_order.
    std::int64_t order = 0;
    /// Set by the repository; create() keeps non-zero values given to it (copies,
    /// imports from another repository keep their dates).
    Date created{};
    Date modified{};  ///< updated by every change to the node

    std::string_view name() const {
        auto slash = path.rfind('/');
        return slash == std::string::npos ? std::string_view(path)
                                          : std::string_view(path).substr(slash + 1);
    }
};

/// One row of the reference index: `from_path`'s `property` points at `to_path`.
/// For links in page text the property is ":text". A node that points at the
/// same path twice from one property has one row.
struct Reference {
    std::string from_path;
    std::string property;
    std::string to_path;
};

/// A live-copy relationship (MSM): `live_copy` follows `blueprint`.
struct LiveRelationship {
    std::string blueprint;
    std::string live_copy;
    std::vector<std::string> rollout_configs;  ///< names of configs/rollout/<name>.yaml
    bool deep = true;                          ///< the whole subtree, or the root page only
    std::vector<std::string> excluded_paths;   ///< blueprint paths not rolled out
};

/// Cancelled inheritance on one live-copy node.
struct InheritanceCancel {
    bool page = false;                    ///< the page itself is not touched by rollouts
    bool children = false;                ///< nor are the pages under it
    std::vector<std::string> properties;  ///< these properties are not touched
};

// --- errors ---------------------------------------------------------------------------

class RepositoryError : public std::runtime_error {
public:
    enum class Code {
        invalid_path,       ///< malformed path
        invalid_property,   ///< bad name, type mismatch, wrong multiplicity
        not_found,          ///< a node the change needs does not exist
        already_exists,     ///< create / move onto an existing node
        invalid_move,       ///< into its own subtree, onto itself, wrong parent kind
        conflict,           ///< a concurrent change won; retry the batch
        io,                 ///< binary store or database failure
        invalid_kind,       ///< the node's kind does not allow it (text on an asset,
                            ///< a child under an asset, a folder through a page)
    };
    RepositoryError(Code code, const std::string& message)
        : std::runtime_error(message), code_(code) {}
    Code code() const noexcept { return code_; }

private:
    Code code_;
};

// --- streams --------------------------------------------------------------------------

/// Reads a binary in chunks. Not thread-safe.
class BinaryReader {
public:
    virtual ~BinaryReader() = default;
    virtual const BinaryInfo& info() const = 0;
    /// Reads up to `size` bytes at the current position; returns 0 at the end.
    virtual std::size_t read(char* buffer, std::size_t size) = 0;
    /// Moves to `offset` (for HTTP Range). REQUIRES: offset <= info().size.
    virtual void seek(std::uint64_t offset) = 0;
};

/// Writes a new binary in chunks into a temporary file; finish() verifies,
/// fsyncs and renames it into the content-addressed store. Dropping an
/// unfinished writer deletes the temporary file.
class BinaryWriter {
public:
    virtual ~BinaryWriter() = default;
    virtual void write(const char* data, std::size_t size) = 0;
    /// Bytes written so far (to resume a transfer with a Range request).
    virtual std::uint64_t size() const = 0;
    /// Completes the binary. If `expected_sha256` (hex, any case) is given and
    /// differs, throws RepositoryError{io} and stores nothing. The MIME type is
    /// sniffed from the content (libmagic) when empty. The binary is durable
    /// when finish() returns, but garbage until a committed node refers to it:
    /// create the asset within the garbage collector's grace period (an hour).
    /// Call once; write() and finish() after it throw.
    virtual BinaryInfo finish(std::string mime_type = {},
                              std::optional<std::string> expected_sha256 = {}) = 0;
};

// --- sessions -------------------------------------------------------------------------

struct SessionOptions {
    std::size_t batch_size = 500;  ///< changes per transaction (0 is taken as 1)
};

/// Batched changes. Each call below (except set_checkpoint, commit, rollback
/// and pending) is one change, however many nodes it touches. A batch holds
/// `batch_size` changes: when it is full, the next change commits it first
/// (so a checkpoint recorded right after a batch's last change commits with
/// it), and commit() commits it at any time. Every method may throw
/// RepositoryError; the whole current batch is then rolled back (pending()
/// drops to 0) and the session can go on with the next change. Arguments are
/// checked before anything is written, so a refused change names the path
/// and the reason. Destroying a session rolls back its uncommitted batch:
/// call commit() at the end. An open batch holds the repository's write lock
/// (other sessions wait): do slow work (network transfers) before the
/// changes, or keep batches small.
class Session {
public:
    virtual ~Session() = default;

    /// Creates a node as the last child of its parent, which must exist
    /// (folders may be created with create_folders). For an asset, `binary`
    /// must come from a finished BinaryWriter or an existing asset (it must be
    /// in the binary store with that size). Throws already_exists if the path
    /// is taken, not_found without a parent, invalid_kind for a parent that
    /// cannot hold it.
    virtual void create(const Node& node) = 0;
    /// Creates every missing folder on `path` (like mkdir -p); invalid_kind if
    /// a node on the way is not a folder.
    virtual void create_folders(std::string_view path) = 0;
    /// Sets (adds or replaces) the given properties; others stay.
    virtual void set_properties(std::string_view path, const PropertyMap& properties) = 0;
    /// Removes the named properties if present.
    virtual void remove_properties(std::string_view path,
                                   const std::vector<std::string>& names) = 0;
    /// Replaces a page's text (links re-indexed).
    virtual void set_text(std::string_view path, std::string text) = 0;
    /// Replaces an asset's binary.
    virtual void set_binary(std::string_view path, const BinaryInfo& binary) = 0;
    /// Moves a node among its siblings.
    virtual void set_order(std::string_view path, std::int64_t order) = 0;
    /// Deletes `path` and everything under it, with their properties, their
    /// outgoing index rows, cancelled-inheritance markers and the live-copy
    /// relationships of live copies inside it; returns how many nodes went (0
    /// if `path` does not exist, so a resumed job can repeat it).
    /// Binaries no longer referenced become garbage for the next collection.
    /// References pointing at deleted nodes stay in the index (dangling).
    virtual std::uint64_t remove(std::string_view path) = 0;
    /// Moves the subtree at `from` to `to` (the new path of `from` itself),
    /// appended as the last child of `to`'s parent. One statement renames the
    /// whole subtree. Index rows are keyed by node, so the moved nodes'
    /// outgoing references follow them; the index keeps the paths the
    /// properties and links hold, so references to the old paths (from
    /// anywhere, the moved nodes included) still read the old paths until
    /// rewrite_references() rewrites them: find them with
    /// referrers_under(from). Live-copy relationships whose blueprint or live
    /// copy lies in the subtree are moved with it. Throws not_found,
    /// already_exists, invalid_move (into itself, parent kind). Returns nodes moved.
    virtual std::uint64_t move(std::string_view from, std::string_view to) = 0;
    /// In node `referrer`, replaces every reference (Path property values and
    /// text links) to `old_prefix` or below it by the same path under
    /// `new_prefix`, and re-indexes that node. Returns how many values and
    /// links changed (0 when none pointed there: repeating it is harmless).
    /// Neither prefix may be the root.
    virtual std::uint64_t rewrite_references(std::string_view referrer,
                                             std::string_view old_prefix,
                                             std::string_view new_prefix) = 0;

    /// Records a live-copy relationship (replaces one for the same live copy).
    /// The blueprint must exist; the live copy need not yet. Refused
    /// (invalid_path) when one lies inside the other.
    virtual void set_live_relationship(const LiveRelationship& relationship) = 0;
    virtual void remove_live_relationship(std::string_view live_copy) = 0;
    /// Sets (or, with an all-false value, clears) cancelled inheritance on a
    /// node, which must exist. The marker moves and goes with the node.
    virtual void set_inheritance_cancel(std::string_view path, const InheritanceCancel& cancel) = 0;

    /// Commits the current batch now.
    virtual void commit() = 0;
    /// Discards the current (uncommitted) batch.
    virtual void rollback() = 0;
    /// Changes in the current batch, not yet committed.
    virtual std::size_t pending() const = 0;

    /// Records a job checkpoint in the current batch, so it commits (or rolls
    /// back) with the changes it describes: a killed job that resumes from
    /// Repository::checkpoint(name) never applies a batch twice. std::nullopt
    /// removes it. `name` is the caller's (e.g. "job/<id>"). Not a change.
    virtual void set_checkpoint(std::string_view name, std::optional<std::string> value) = 0;
};

// --- the repository -------------------------------------------------------------------

struct WalkOptions {
    bool include_root = true;
    std::optional<std::size_t> max_depth = std::nullopt;  ///< 0 = the root only; none = unlimited
    bool assets = true, folders = true, pages = true;
    bool with_properties = true;  ///< false: path, kind, binary and order only (faster)
};

struct ChildPage {
    std::vector<Node> nodes;
    std::optional<std::string> next_cursor;  ///< pass to children() for the next page
};

class Repository {
public:
    static constexpr const char* kInterfaceName = "wharf.Repository";
    virtual ~Repository() = default;

    /// The node at `path`, or std::nullopt. Throws on a malformed path.
    virtual std::optional<Node> get(std::string_view path) const = 0;

    /// Children of `path` in order (Node::order, then name), `limit` per page
    /// (clamped to 1..1000). Empty when `path` does not exist. A cursor from
    /// another call or a changed tree is safe: the next page starts after the
    /// cursor's position. A malformed cursor is invalid_path.
    virtual ChildPage children(std::string_view path, std::optional<std::string> cursor,
                               std::size_t limit) const = 0;

    /// Visits `root` and its subtree in byte-wise path order (so every node
    /// comes before its descendants; `/a/b-c` sorts between `/a/b` and
    /// `/a/b/c`), streaming from the database (memory does not grow with the
    /// subtree). Stops early when `visit` returns false. Returns how many
    /// nodes were visited (0 when `root` does not exist).
    virtual std::uint64_t walk(std::string_view root, const WalkOptions& options,
                               const std::function<bool(const Node&)>& visit) const = 0;

    /// Counts nodes under `root` (inclusive) by kind, without loading them.
    virtual std::uint64_t count(std::string_view root, const WalkOptions& options) const = 0;

    /// References pointing at `path` exactly, streamed; stops when `visit`
    /// returns false. Returns how many were visited.
    virtual std::uint64_t referrers(std::string_view path,
                                    const std::function<bool(const Reference&)>& visit) const = 0;

    /// References pointing at `root` or anything under it, streamed, in
    /// to_path order. With `external_only`, only those whose referrer is
    /// outside the subtree. Dangling references (to deleted nodes) are included.
    virtual std::uint64_t referrers_under(std::string_view root, bool external_only,
                                          const std::function<bool(const Reference&)>& visit) const = 0;

    /// Opens a binary for reading; nullptr when there is no node at
    /// `asset_path` or it has no binary. Throws io if the stored file is gone.
    virtual std::unique_ptr<BinaryReader> read_binary(std::string_view asset_path) const = 0;

    /// Starts a new binary.
    virtual std::unique_ptr<BinaryWriter> write_binary() = 0;

    /// Starts a batched change.
    virtual std::unique_ptr<Session> open_session(const SessionOptions& options = {}) = 0;

    /// Live-copy relationships whose blueprint is `blueprint` (or all, if empty).
    virtual std::vector<LiveRelationship> live_relationships(std::string_view blueprint) const = 0;
    /// The relationship governing `live_copy_path`: its own, or the nearest
    /// ancestor's deep one.
    virtual std::optional<LiveRelationship> live_relationship_of(
        std::string_view live_copy_path) const = 0;
    virtual InheritanceCancel inheritance_cancel(std::string_view path) const = 0;

    /// The checkpoint a Session recorded under `name`, if committed.
    virtual std::optional<std::string> checkpoint(std::string_view name) const = 0;
};

/// A checkpoint name for one request of a bulk operation: `prefix` followed by
/// a 64-bit FNV-1a hash of the request's canonical text in 16 hex digits.
/// Stable across builds and processes (unlike std::hash), so a job run again
/// after a kill or a stop finds what its earlier run recorded. The offset
/// basis is the one move and rollout have always used (1469598103934665603,
/// not FNV's 14695981039346656037): names stay those of earlier versions, so
/// a job interrupted by an upgrade still resumes.
inline std::string request_checkpoint_name(std::string_view prefix,
                                           std::string_view canonical_request) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : canonical_request) {
        h ^= c;
        h *= 1099511628211ull;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string name(prefix);
    for (int shift = 60; shift >= 0; shift -= 4) name += kHex[(h >> shift) & 0xf];
    return name;
}

}  // namespace wharf
