#pragma once
// The write session's rules, the same for every backend (sqlite_repository.cpp,
// pg_repository.cpp): argument checks, the node model (what may hold what,
// which kinds have text or a binary), batching (a full batch commits before
// the next change; any error rolls the whole batch back and propagates),
// references kept in step with properties and text, and live relationships
// that follow a move. A backend supplies a transaction and the row statements
// below, each run inside it; it decides nothing the user could see differ.
#include <wharf/repository.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "repository/blob_store.hpp"

namespace wharf::host::repo {

/// A node's identity as a session needs it to check a change.
struct NodeRef {
    std::int64_t id;
    NodeKind kind;
};

class RuleSession : public Session {
public:
    void create(const Node& node) final;
    void create_folders(std::string_view path) final;
    void set_properties(std::string_view path, const PropertyMap& properties) final;
    void remove_properties(std::string_view path, const std::vector<std::string>& names) final;
    void set_text(std::string_view path, std::string text) final;
    void set_binary(std::string_view path, const BinaryInfo& binary) final;
    void set_order(std::string_view path, std::int64_t order) final;
    std::uint64_t remove(std::string_view path) final;
    std::uint64_t move(std::string_view from, std::string_view to) final;
    std::uint64_t rewrite_references(std::string_view referrer, std::string_view old_prefix,
                                     std::string_view new_prefix) final;
    void set_live_relationship(const LiveRelationship& r) final;
    void remove_live_relationship(std::string_view live_copy) final;
    void set_inheritance_cancel(std::string_view path, const InheritanceCancel& cancel) final;
    void set_checkpoint(std::string_view name, std::optional<std::string> value) final;
    void commit() final;
    void rollback() final { discard(); }
    std::size_t pending() const final { return pending_; }

protected:
    /// `blobs` must outlive the session (the repository owns both).
    RuleSession(const BlobStore& blobs, std::size_t batch_size);

    /// Rolls back what is open and forgets the batch; never throws. A backend's
    /// destructor calls it (a base destructor cannot reach the backend).
    void discard() noexcept;

    // --- the batch ----------------------------------------------------------------
    /// Starts a transaction holding the repository's write lock.
    virtual void begin_batch() = 0;
    /// Commits the open transaction.
    virtual void commit_batch() = 0;
    /// Rolls back whatever is open, also a begin_batch that failed half-way.
    virtual void abort_batch() noexcept = 0;
    /// Throws the exception in flight as a RepositoryError (as it is by default).
    [[noreturn]] virtual void rethrow_error() { throw; }

    // --- rows, each run inside the open batch -------------------------------------
    virtual std::optional<NodeRef> find(std::string_view path) = 0;
    /// Inserts the node's row (not its properties) as the last child of
    /// `parent_id`; RepositoryError{already_exists} if the path is taken.
    virtual std::int64_t insert_row(const Node& node, std::int64_t parent_id) = 0;
    /// Inserts a property of a node created in this batch (a plain insert:
    /// node creation is the import's hot path).
    virtual void insert_property(std::int64_t id, const std::string& name, const Property& p) = 0;
    /// Inserts or replaces one property.
    virtual void write_property(std::int64_t id, const std::string& name, const Property& p) = 0;
    /// Replaces the value of an existing property (its type stays).
    virtual void update_property_value(std::int64_t id, const std::string& name,
                                       const Property& p) = 0;
    virtual void delete_property(std::int64_t id, const std::string& name) = 0;
    /// The node's properties of type path.
    virtual std::vector<std::pair<std::string, Property>> path_properties(std::int64_t id) = 0;
    virtual std::string read_text(std::int64_t id) = 0;
    /// Sets the text and the modified time.
    virtual void update_text(std::int64_t id, std::string_view text) = 0;
    /// Sets the binary and the modified time.
    virtual void update_binary(std::int64_t id, const BinaryInfo& binary) = 0;
    /// Sets the order and the modified time.
    virtual void update_order(std::int64_t id, std::int64_t order) = 0;
    /// Sets the modified time.
    virtual void touch(std::int64_t id) = 0;
    /// Adds a reference (a repeated one is kept once).
    virtual void insert_ref(std::int64_t id, std::string_view property, std::string_view to) = 0;
    virtual void delete_refs(std::int64_t id, std::string_view property) = 0;
    /// Deletes the subtree at `path` with its properties, references,
    /// cancelled inheritance and the relationships of live copies in it;
    /// returns the nodes deleted.
    virtual std::uint64_t delete_subtree(std::string_view path) = 0;
    /// Renames every path of the subtree at `from` to start with `to`;
    /// returns the nodes renamed.
    virtual std::uint64_t rename_subtree(std::string_view from, std::string_view to) = 0;
    /// Makes `id` the last child of `parent_id` and sets its modified time.
    virtual void reparent(std::int64_t id, std::int64_t parent_id) = 0;
    /// Relationships whose live copy or blueprint is in the subtree at `root`.
    virtual std::vector<LiveRelationship> relationships_under(std::string_view root) = 0;
    /// Inserts or replaces the relationship of `r.live_copy`.
    virtual void write_relationship(const LiveRelationship& r) = 0;
    virtual void delete_relationship(std::string_view live_copy) = 0;
    /// Inserts or replaces the node's cancelled inheritance.
    virtual void write_inheritance_cancel(std::int64_t id, const InheritanceCancel& cancel) = 0;
    virtual void delete_inheritance_cancel(std::int64_t id) = 0;
    /// Stores the checkpoint, or deletes it when `value` is empty.
    virtual void write_checkpoint(std::string_view name,
                                  const std::optional<std::string>& value) = 0;

private:
    template <class F>
    auto change(F&& apply) -> decltype(apply());
    void begin();
    [[noreturn]] void fail();

    NodeRef require_node(std::string_view path);
    NodeRef require_parent(std::string_view path);
    void require_stored(std::string_view path, const BinaryInfo& binary) const;
    void insert_node(const Node& node);
    void write_text(std::int64_t id, std::string_view text);
    void insert_property_refs(std::int64_t id, const std::string& name, const Property& p);
    void move_relationships(std::string_view from, std::string_view to);

    const BlobStore& blobs_;
    std::size_t batch_size_;
    std::size_t pending_ = 0;
    bool open_ = false;
    // Parents repeat in bulk creates (an import fills one folder at a time),
    // so the last one is remembered until anything could change it.
    std::optional<std::pair<std::string, NodeRef>> parent_cache_;
};

}  // namespace wharf::host::repo
