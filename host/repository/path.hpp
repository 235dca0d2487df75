#pragma once
// Repository paths: validation and the byte-range arithmetic that makes a
// subtree one index range scan.
//
// Paths are stored as TEXT compared byte-wise (SQLite's BINARY collation), so
// everything under `/a` lies in ['/a/', '/a0'): '0' is the byte after '/'.
// SubtreeRange turns a root into the three bounds the SQL uses:
//   col >= low AND col < high AND (col = low OR col >= children)
// which is a single range scan that includes the root, its descendants, and
// excludes siblings such as `/a-b` that sort between `/a` and `/a/`.
//
// Pure functions; thread-safe.

#include <string>
#include <string_view>

namespace wharf::host::repo {

inline constexpr std::size_t kMaxPathBytes = 1024;
inline constexpr std::size_t kMaxSegmentBytes = 150;
inline constexpr std::size_t kMaxPropertyNameBytes = 255;

/// Why `path` is not a valid repository path, or empty if it is. The root "/"
/// is valid.
std::string path_problem(std::string_view path);

/// Throws RepositoryError{invalid_path} naming `path` and the reason.
/// `what` says which argument it is ("source", "node" ...).
void require_valid_path(std::string_view path, std::string_view what = "path");

/// As require_valid_path, and refuses the root "/" (it cannot be created,
/// removed or moved).
void require_non_root_path(std::string_view path, std::string_view what = "path");

/// Why `name` is not a valid property name, or empty. Names starting with ':'
/// are reserved for the repository (":text" marks text links in the index).
std::string property_name_problem(std::string_view name);

/// "/a/b" -> "/a"; "/a" -> "/". REQUIRES: a valid, non-root path.
std::string_view parent_path(std::string_view path);

/// True when `path` is `root` or lies below it.
bool is_same_or_under(std::string_view path, std::string_view root);

/// `path` printed for an error message: quoted, control bytes escaped, cut at 200 bytes.
std::string quote_path(std::string_view path);

struct SubtreeRange {
    std::string low;       ///< the root itself (inclusive lower bound)
    std::string children;  ///< root + "/": first possible descendant
    std::string high;      ///< root + "0": exclusive upper bound
};

/// The bounds for `root` (a valid path; "/" covers everything).
SubtreeRange subtree_range(std::string_view root);

/// Replaces the prefix `old_prefix` of `path` (REQUIRES: is_same_or_under) by `new_prefix`.
std::string replace_prefix(std::string_view path, std::string_view old_prefix,
                           std::string_view new_prefix);

}  // namespace wharf::host::repo
