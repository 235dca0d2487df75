#pragma once
// The repository's SQLite schema and its versioned migrations.
//
// PRAGMA user_version holds the schema version. migrate() applies, in one
// transaction each, every migration above the stored version, and refuses a
// database written by a newer Wharf (a version it does not know).
//
//   nodes(id, path UNIQUE, parent_id, kind, ord, blob_sha, blob_size, mime,
//         created, modified, text)       -- one row per node; "/" is id 1
//   properties(node_id, name, type, multiple, value)   PK (node_id, name)
//   refs(from_id, property, to_path)      PK (from_id, property, to_path),
//                                         index (to_path): referrers are a range
//   live_relationships(live_copy PK, blueprint, configs, deep, excluded)
//   inheritance_cancel(node_id PK, page, children, properties)
//   checkpoints(name PK, value)           -- job checkpoints committed with a batch
//
// Threading: call on a connection no one else uses.

#include "repository/sqlite_connection.hpp"

namespace wharf::host::repo {

inline constexpr int kSchemaVersion = 1;

/// Brings the database up to kSchemaVersion. Throws RepositoryError{io}.
void migrate(Connection& connection);

}  // namespace wharf::host::repo
