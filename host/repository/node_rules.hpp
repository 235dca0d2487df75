#pragma once
// The repository model's small rules, shared by both backends
// (sqlite_repository.cpp, pg_repository.cpp) so that they refuse the same
// things with the same words: which kind may hold which, how a kind is named
// in a message, what a missing node is told as, which kinds a walk wants,
// how a page of children says where the next one starts.

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "repository/path.hpp"
#include "repository/value_codec.hpp"
#include "wharf/repository.hpp"

namespace wharf::host::repo {

/// Milliseconds since the epoch (created/modified times of nodes).
inline std::int64_t now_millis() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// Segments in a normalised path: "/" 0, "/content" 1.
inline std::size_t depth_of(std::string_view path) {
    return path == "/" ? 0 : static_cast<std::size_t>(std::count(path.begin(), path.end(), '/'));
}

/// Folders hold anything, pages hold pages, assets hold nothing.
inline bool may_contain(NodeKind parent, NodeKind child) {
    switch (parent) {
        case NodeKind::folder:
            return true;
        case NodeKind::page:
            return child == NodeKind::page;
        case NodeKind::asset:
            return false;
    }
    return false;
}

/// "a folder", "an asset", "a page".
inline std::string article(NodeKind kind) {
    return std::string(kind == NodeKind::asset ? "an " : "a ") + to_string(kind);
}

/// Throws RepositoryError{not_found}: "<what> '<path>' does not exist".
[[noreturn]] inline void not_found(std::string_view what, std::string_view path) {
    throw RepositoryError(RepositoryError::Code::not_found,
                          std::string(what) + " " + quote_path(path) + " does not exist");
}

/// Whether a walk with `o` visits nodes of kind `k`.
inline bool kind_wanted(const WalkOptions& o, NodeKind k) {
    switch (k) {
        case NodeKind::folder:
            return o.folders;
        case NodeKind::asset:
            return o.assets;
        case NodeKind::page:
            return o.pages;
    }
    return false;
}

/// Throws RepositoryError when `node` cannot be created as it is: text on a
/// node that is not a page, an asset without a binary, a binary on a node
/// that is not an asset. (Whether the binary is stored is the backend's.)
inline void require_node_shape(const Node& node) {
    using Code = RepositoryError::Code;
    if (node.kind != NodeKind::page && !node.text.empty())
        throw RepositoryError(Code::invalid_kind, "cannot create " + article(node.kind) + " " +
                                                      quote_path(node.path) +
                                                      " with text: only pages have text");
    if (node.kind == NodeKind::asset && !node.binary)
        throw RepositoryError(Code::invalid_property,
                              "cannot create asset " + quote_path(node.path) + " without a binary");
    if (node.kind != NodeKind::asset && node.binary)
        throw RepositoryError(Code::invalid_kind, "cannot create " + article(node.kind) + " " +
                                                      quote_path(node.path) +
                                                      " with a binary: only assets have one");
}

/// The kinds a count with `o` counts, as an SQL list of their numbers
/// ("0,1,2"); empty when it counts none.
inline std::string kind_list(const WalkOptions& o) {
    std::string kinds;
    auto add = [&](bool on, NodeKind k) {
        if (!on) return;
        if (!kinds.empty()) kinds += ",";
        kinds += std::to_string(static_cast<int>(k));
    };
    add(o.folders, NodeKind::folder);
    add(o.assets, NodeKind::asset);
    add(o.pages, NodeKind::page);
    return kinds;
}

/// SQL for the depth of the node in column `path` (as depth_of()).
inline constexpr const char* kDepthSql =
    "(CASE WHEN path = '/' THEN 0 ELSE length(path) - length(replace(path, '/', '')) END)";

/// The statements that delete what belongs to the nodes of a subtree
/// (properties, references, cancelled inheritance, relationships of live
/// copies in it), to run before the nodes go; `where(column)` is the
/// backend's subtree condition on a column, with its own placeholders.
template <class Where>
std::vector<std::string> subtree_side_deletes(Where where) {
    const std::string in_subtree = "(SELECT id FROM nodes WHERE " + where("path") + ")";
    return {
        "DELETE FROM properties WHERE node_id IN " + in_subtree,
        "DELETE FROM refs WHERE from_id IN " + in_subtree,
        "DELETE FROM inheritance_cancel WHERE node_id IN " + in_subtree,
        "DELETE FROM live_relationships WHERE " + where("live_copy"),
    };
}

/// Where a page of children continues: after this (order, path).
struct ChildrenCursor {
    std::int64_t order = 0;
    std::string path;
};

/// The cursor after `last`, the last child of a page: "<order>:<path>".
inline std::string children_cursor(const Node& last) {
    return std::to_string(last.order) + ":" + last.path;
}

/// Reads a cursor made by children_cursor(); RepositoryError{invalid_path}
/// naming it when it is not one.
inline ChildrenCursor parse_children_cursor(const std::string& cursor) {
    ChildrenCursor out;
    auto colon = cursor.find(':');
    if (colon != std::string::npos) {
        const char* digits_end = cursor.data() + colon;
        auto [end, ec] = std::from_chars(cursor.data(), digits_end, out.order);
        if (ec == std::errc() && end == digits_end) {
            out.path = cursor.substr(colon + 1);
            return out;
        }
    }
    throw RepositoryError(RepositoryError::Code::invalid_path,
                          "malformed children cursor " + quote_path(cursor));
}

}  // namespace wharf::host::repo
