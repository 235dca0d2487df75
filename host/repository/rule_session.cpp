#include "repository/rule_session.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <exception>
#include <type_traits>

#include "base/sha256.hpp"
#include "repository/links.hpp"
#include "repository/node_rows.hpp"
#include "repository/node_rules.hpp"
#include "repository/path.hpp"
#include "repository/value_codec.hpp"

namespace wharf::host::repo {

using Code = RepositoryError::Code;

RuleSession::RuleSession(const BlobStore& blobs, std::size_t batch_size)
    : blobs_(blobs), batch_size_(std::max<std::size_t>(batch_size, 1)) {}

// --- the session's calls ----------------------------------------------------------------

void RuleSession::create(const Node& node) {
    require_non_root_path(node.path, "node path");
    require_valid_properties(node.path, node.properties);
    require_node_shape(node);
    if (node.binary) require_stored(node.path, *node.binary);
    change([&] { insert_node(node); });
}

void RuleSession::create_folders(std::string_view path) {
    require_non_root_path(path, "folder path");
    change([&] {
        // Find the deepest existing node on the path, then create downwards.
        std::vector<std::string_view> missing;
        std::string_view p = path;
        NodeRef existing{1, NodeKind::folder};
        for (;;) {
            if (auto found = find(p)) {
                existing = *found;
                break;
            }
            missing.push_back(p);
            p = parent_path(p);
            if (p == "/") break;
        }
        if (existing.kind != NodeKind::folder)
            throw RepositoryError(Code::invalid_kind, "cannot create folders " + quote_path(path) +
                                                          ": " + quote_path(p) + " is " +
                                                          article(existing.kind));
        std::int64_t parent = existing.id;
        for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
            Node folder;
            folder.path = std::string(*it);
            folder.kind = NodeKind::folder;
            parent = insert_row(folder, parent);
        }
    });
}

void RuleSession::set_properties(std::string_view path, const PropertyMap& properties) {
    require_valid_path(path, "node path");
    require_valid_properties(path, properties);
    change([&] {
        auto node = require_node(path);
        for (const auto& [name, property] : properties) {
            write_property(node.id, name, property);
            delete_refs(node.id, name);
            insert_property_refs(node.id, name, property);
        }
        touch(node.id);
    });
}

void RuleSession::remove_properties(std::string_view path, const std::vector<std::string>& names) {
    require_valid_path(path, "node path");
    require_valid_property_names(path, names);
    change([&] {
        auto node = require_node(path);
        for (const auto& name : names) {
            delete_property(node.id, name);
            delete_refs(node.id, name);
        }
        touch(node.id);
    });
}

void RuleSession::set_text(std::string_view path, std::string text) {
    require_valid_path(path, "page path");
    change([&] {
        auto node = require_node(path);
        if (node.kind != NodeKind::page)
            throw RepositoryError(Code::invalid_kind, "cannot set text on " + article(node.kind) +
                                                          " " + quote_path(path) +
                                                          ": only pages have text");
        write_text(node.id, text);
    });
}

void RuleSession::set_binary(std::string_view path, const BinaryInfo& binary) {
    require_valid_path(path, "asset path");
    require_stored(path, binary);
    change([&] {
        auto node = require_node(path);
        if (node.kind != NodeKind::asset)
            throw RepositoryError(Code::invalid_kind, "cannot set a binary on " +
                                                          article(node.kind) + " " +
                                                          quote_path(path) +
                                                          ": only assets have one");
        update_binary(node.id, binary);
    });
}

void RuleSession::set_order(std::string_view path, std::int64_t order) {
    require_non_root_path(path, "node path");
    change([&] { update_order(require_node(path).id, order); });
}

std::uint64_t RuleSession::remove(std::string_view path) {
    require_non_root_path(path, "node path");
    return change([&]() -> std::uint64_t {
        parent_cache_.reset();
        return delete_subtree(path);
    });
}

std::uint64_t RuleSession::move(std::string_view from, std::string_view to) {
    require_non_root_path(from, "move source");
    require_non_root_path(to, "move destination");
    if (is_same_or_under(to, from))
        throw RepositoryError(Code::invalid_move, "cannot move " + quote_path(from) + " to " +
                                                      quote_path(to) +
                                                      ": the destination is inside the source");
    return change([&]() -> std::uint64_t {
        parent_cache_.reset();
        auto source = find(from);
        if (!source) not_found("move source", from);
        if (find(to))
            throw RepositoryError(Code::already_exists, "cannot move " + quote_path(from) + " to " +
                                                            quote_path(to) +
                                                            ": the destination exists");
        auto destination_parent = parent_path(to);
        auto parent = find(destination_parent);
        if (!parent) not_found("destination parent", destination_parent);
        if (!may_contain(parent->kind, source->kind))
            throw RepositoryError(Code::invalid_move, "cannot move " + article(source->kind) + " " +
                                                          quote_path(from) + " under " +
                                                          article(parent->kind) + " " +
                                                          quote_path(destination_parent));
        auto moved = rename_subtree(from, to);
        reparent(source->id, parent->id);
        move_relationships(from, to);
        return moved;
    });
}

std::uint64_t RuleSession::rewrite_references(std::string_view referrer,
                                              std::string_view old_prefix,
                                              std::string_view new_prefix) {
    require_valid_path(referrer, "referrer");
    require_non_root_path(old_prefix, "old reference prefix");
    require_non_root_path(new_prefix, "new reference prefix");
    return change([&]() -> std::uint64_t {
        auto node = require_node(referrer);
        std::uint64_t changed = 0;
        for (auto& [name, property] : path_properties(node.id)) {
            std::uint64_t n = 0;
            for (auto& v : property.values) {
                auto& p = std::get<PathRef>(v).path;
                if (!is_same_or_under(p, old_prefix)) continue;
                p = replace_prefix(p, old_prefix, new_prefix);
                ++n;
            }
            if (n == 0) continue;
            changed += n;
            update_property_value(node.id, name, property);
            delete_refs(node.id, name);
            insert_property_refs(node.id, name, property);
        }
        if (node.kind == NodeKind::page) {
            std::string text = read_text(node.id);
            if (auto n = rewrite_links(text, old_prefix, new_prefix); n > 0) {
                changed += n;
                write_text(node.id, text);
            }
        }
        if (changed > 0) touch(node.id);
        return changed;
    });
}

void RuleSession::set_live_relationship(const LiveRelationship& r) {
    require_non_root_path(r.blueprint, "blueprint");
    require_non_root_path(r.live_copy, "live copy");
    for (const auto& p : r.excluded_paths) require_valid_path(p, "excluded path");
    if (is_same_or_under(r.live_copy, r.blueprint) || is_same_or_under(r.blueprint, r.live_copy))
        throw RepositoryError(Code::invalid_path, "live copy " + quote_path(r.live_copy) +
                                                      " and blueprint " + quote_path(r.blueprint) +
                                                      " must not contain each other");
    change([&] {
        if (!find(r.blueprint)) not_found("blueprint", r.blueprint);
        write_relationship(r);
    });
}

void RuleSession::remove_live_relationship(std::string_view live_copy) {
    require_non_root_path(live_copy, "live copy");
    change([&] { delete_relationship(live_copy); });
}

void RuleSession::set_inheritance_cancel(std::string_view path, const InheritanceCancel& cancel) {
    require_non_root_path(path, "node path");
    require_valid_property_names(path, cancel.properties);
    change([&] {
        auto node = require_node(path);
        if (!cancel.page && !cancel.children && cancel.properties.empty()) {
            delete_inheritance_cancel(node.id);
        } else {
            write_inheritance_cancel(node.id, cancel);
        }
    });
}

// A checkpoint joins the batch without counting as a change, so that one
// recorded after a full batch's last change still commits with it.
void RuleSession::set_checkpoint(std::string_view name, std::optional<std::string> value) {
    try {
        begin();
        write_checkpoint(name, value);
    } catch (...) {
        fail();
    }
}

void RuleSession::commit() {
    if (!open_) return;
    try {
        commit_batch();
    } catch (...) {
        fail();
    }
    open_ = false;
    pending_ = 0;
}

// --- the batch ------------------------------------------------------------------------

// One change: commit the previous batch if it is full, begin one if needed,
// apply, count. A full batch waits for the next change so that a checkpoint
// recorded after its last change still joins it. Any exception rolls the
// whole batch back (the contract) and propagates as a RepositoryError.
template <class F>
auto RuleSession::change(F&& apply) -> decltype(apply()) {
    if (pending_ >= batch_size_) commit();
    try {
        begin();
        if constexpr (std::is_void_v<decltype(apply())>) {
            apply();
            ++pending_;
        } else {
            auto result = apply();
            ++pending_;
            return result;
        }
    } catch (...) {
        fail();
    }
}

void RuleSession::begin() {
    if (open_) return;
    begin_batch();
    open_ = true;
}

void RuleSession::fail() {
    std::exception_ptr error;
    try {
        rethrow_error();
    } catch (...) {
        error = std::current_exception();
    }
    discard();
    std::rethrow_exception(error);
}

void RuleSession::discard() noexcept {
    parent_cache_.reset();
    pending_ = 0;
    open_ = false;
    abort_batch();
}

// --- rules over rows --------------------------------------------------------------------

NodeRef RuleSession::require_node(std::string_view path) {
    auto node = find(path);
    if (!node) not_found("node", path);
    return *node;
}

NodeRef RuleSession::require_parent(std::string_view path) {
    auto parent = parent_path(path);
    if (parent_cache_ && parent_cache_->first == parent) return parent_cache_->second;
    auto node = find(parent);
    if (!node)
        throw RepositoryError(Code::not_found, "cannot create " + quote_path(path) + ": parent " +
                                                   quote_path(parent) + " does not exist");
    parent_cache_.emplace(std::string(parent), *node);
    return *node;
}

void RuleSession::require_stored(std::string_view path, const BinaryInfo& binary) const {
    if (!is_sha256_hex(binary.sha256))
        throw RepositoryError(Code::invalid_property, "asset " + quote_path(path) +
                                                          ": binary digest " +
                                                          quote_path(binary.sha256) +
                                                          " is not a sha256 in hex");
    auto file = blobs_.path_of(binary.sha256);
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0)
        throw RepositoryError(Code::invalid_property, "asset " + quote_path(path) + ": binary " +
                                                          binary.sha256 +
                                                          " is not in the binary store");
    if (static_cast<std::uint64_t>(st.st_size) != binary.size)
        throw RepositoryError(Code::invalid_property,
                              "asset " + quote_path(path) + ": binary " + binary.sha256 + " has " +
                                  std::to_string(st.st_size) + " bytes, not " +
                                  std::to_string(binary.size));
    // Refresh its age so that a concurrent gc() (on any instance) keeps it
    // until this batch commits.
    ::utimensat(AT_FDCWD, file.c_str(), nullptr, 0);
}

void RuleSession::insert_node(const Node& node) {
    auto parent = require_parent(node.path);
    if (!may_contain(parent.kind, node.kind))
        throw RepositoryError(Code::invalid_kind, "cannot create " + article(node.kind) + " " +
                                                      quote_path(node.path) + " under " +
                                                      article(parent.kind) + " " +
                                                      quote_path(parent_path(node.path)));
    auto id = insert_row(node, parent.id);
    for (const auto& [name, property] : node.properties) insert_property(id, name, property);
    for (const auto& [property, to] : expected_references(node.properties, node.text))
        insert_ref(id, property, to);
}

void RuleSession::write_text(std::int64_t id, std::string_view text) {
    update_text(id, text);
    delete_refs(id, kTextProperty);
    for (const auto& link : find_links(text))
        insert_ref(id, kTextProperty, text.substr(link.begin, link.end - link.begin));
}

void RuleSession::insert_property_refs(std::int64_t id, const std::string& name,
                                       const Property& p) {
    if (p.type != PropertyType::path) return;
    for (const auto& v : p.values) insert_ref(id, name, std::get<PathRef>(v).path);
}

// Relationships are few; rewriting them one by one keeps the excluded paths
// (packed) consistent with the moved blueprint.
void RuleSession::move_relationships(std::string_view from, std::string_view to) {
    auto moved = [&](std::string& p) {
        if (is_same_or_under(p, from)) p = replace_prefix(p, from, to);
    };
    for (auto& r : relationships_under(from)) {
        delete_relationship(r.live_copy);
        moved(r.live_copy);
        moved(r.blueprint);
        for (auto& p : r.excluded_paths) moved(p);
        write_relationship(r);
    }
}

}  // namespace wharf::host::repo
