#pragma once
// Rows of the nodes / properties / refs tables to and from the SDK's types,
// shared by the repository, its sessions and check().
//
// Pure functions over a Statement; the caller owns the connection.

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "repository/sqlite_connection.hpp"
#include "wharf/repository.hpp"

namespace wharf::host::repo {

/// Columns selected for a node, in the order read_node() expects. The text
/// column comes last so scans that do not need it can leave it out.
inline constexpr const char* kNodeColumns =
    "id, path, kind, ord, blob_sha, blob_size, mime, created, modified, text";
inline constexpr const char* kNodeColumnsNoText =
    "id, path, kind, ord, blob_sha, blob_size, mime, created, modified";

/// The pseudo-property of index rows for links in page text.
inline constexpr const char* kTextProperty = ":text";

/// Fills `node` (properties untouched) from a row of kNodeColumns[NoText];
/// returns the node id.
std::int64_t read_node(const Statement& row, Node& node, bool with_text);

/// Adds the properties of node `id` to `properties`.
void load_properties(Connection& connection, std::int64_t id, PropertyMap& properties);

/// A property from columns type, multiple, value starting at `first`.
Property read_property(const Statement& row, int first);

/// Binds a property's stored value (native or packed) at `index`.
void bind_property_value(Statement& statement, int index, const Property& property);

/// Index rows (property, to_path) a node's content implies, sorted and unique.
std::vector<std::pair<std::string, std::string>> expected_references(const PropertyMap& properties,
                                                                     std::string_view text);

/// The index rows one property implies (Path properties only).
void append_property_references(const std::string& name, const Property& property,
                                std::vector<std::pair<std::string, std::string>>& out);

inline std::int64_t to_millis(Date d) { return d.time_since_epoch().count(); }
inline Date from_millis(std::int64_t ms) { return Date(std::chrono::milliseconds(ms)); }

}  // namespace wharf::host::repo
