#include "repository/schema.hpp"

#include <array>

#include "wharf/repository.hpp"

namespace wharf::host::repo {
namespace {

// Migration N brings the schema from version N-1 to N. Append only: a released
// migration never changes.
constexpr std::array kMigrations = {
    // 1: the initial schema.
    R"sql(
CREATE TABLE nodes(
    id        INTEGER PRIMARY KEY,
    path      TEXT NOT NULL UNIQUE,
    parent_id INTEGER,
    kind      INTEGER NOT NULL,
    ord       INTEGER NOT NULL DEFAULT 0,
    blob_sha  TEXT,
    blob_size INTEGER,
    mime      TEXT,
    created   INTEGER NOT NULL,
    modified  INTEGER NOT NULL,
    text      TEXT
);
CREATE INDEX nodes_children ON nodes(parent_id, ord);
CREATE INDEX nodes_blob ON nodes(blob_sha) WHERE blob_sha IS NOT NULL;
CREATE TABLE properties(
    node_id  INTEGER NOT NULL,
    name     TEXT NOT NULL,
    type     INTEGER NOT NULL,
    multiple INTEGER NOT NULL,
    value,
    PRIMARY KEY(node_id, name)
) WITHOUT ROWID;
CREATE TABLE refs(
    from_id  INTEGER NOT NULL,
    property TEXT NOT NULL,
    to_path  TEXT NOT NULL,
    PRIMARY KEY(from_id, property, to_path)
) WITHOUT ROWID;
CREATE INDEX refs_to ON refs(to_path);
CREATE TABLE live_relationships(
    live_copy TEXT PRIMARY KEY,
    blueprint TEXT NOT NULL,
    configs   BLOB NOT NULL,
    deep      INTEGER NOT NULL,
    excluded  BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX live_relationships_blueprint ON live_relationships(blueprint);
CREATE TABLE inheritance_cancel(
    node_id    INTEGER PRIMARY KEY,
    page       INTEGER NOT NULL,
    children   INTEGER NOT NULL,
    properties BLOB NOT NULL
);
CREATE TABLE checkpoints(
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO nodes(id, path, parent_id, kind, ord, created, modified)
    VALUES (1, '/', NULL, 0, 0, 0, 0);
)sql",
};

int read_version(Connection& connection) {
    auto q = connection.query("PRAGMA user_version");
    return q->step() ? static_cast<int>(q->int64(0)) : 0;
}

}  // namespace

void migrate(Connection& connection) {
    // The version is read again under the write lock, so two processes opening
    // a new repository at once do not both apply a migration.
    for (;;) {
        connection.exec("BEGIN IMMEDIATE");
        try {
            int version = read_version(connection);
            if (version > kSchemaVersion)
                throw RepositoryError(RepositoryError::Code::io,
                                      "repository database has schema version " +
                                          std::to_string(version) + ", newer than this Wharf (" +
                                          std::to_string(kSchemaVersion) + ")");
            if (version == kSchemaVersion) {
                connection.exec("COMMIT");
                return;
            }
            connection.exec(kMigrations[static_cast<std::size_t>(version)]);
            connection.exec(("PRAGMA user_version=" + std::to_string(version + 1)).c_str());
            connection.exec("COMMIT");
        } catch (...) {
            sqlite3_exec(connection.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    }
}

}  // namespace wharf::host::repo
