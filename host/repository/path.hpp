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

#include "wharf/paths.hpp"

namespace wharf::host::repo {

// Validation and path arithmetic are the SDK's (wharf/paths.hpp), so that
// plugins refuse exactly what the repository refuses.
using wharf::is_same_or_under;
using wharf::kMaxPathBytes;
using wharf::kMaxPropertyNameBytes;
using wharf::kMaxSegmentBytes;
using wharf::parent_path;
using wharf::path_problem;
using wharf::property_name_problem;
using wharf::quote_path;
using wharf::replace_prefix;

/// Throws RepositoryError{invalid_path} naming `path` and the reason.
/// `what` says which argument it is ("source", "node" ...).
void require_valid_path(std::string_view path, std::string_view what = "path");

/// As require_valid_path, and refuses the root "/" (it cannot be created,
/// removed or moved).
void require_non_root_path(std::string_view path, std::string_view what = "path");

struct SubtreeRange {
    std::string low;       ///< the root itself (inclusive lower bound)
    std::string children;  ///< root + "/": first possible descendant
    std::string high;      ///< root + "0": exclusive upper bound
};

/// The bounds for `root` (a valid path; "/" covers everything).
SubtreeRange subtree_range(std::string_view root);

}  // namespace wharf::host::repo
