#include "repository/sqlite_connection.hpp"

#include "base/sqlite_library.hpp"
#include "wharf/repository.hpp"

namespace wharf::host::repo {

void throw_sqlite(sqlite3* db, int rc, std::string_view context) {
    int primary = rc & 0xff;
    auto code = (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
                    ? RepositoryError::Code::conflict
                    : RepositoryError::Code::io;
    std::string message = "repository database: " + std::string(context) + ": " +
                          (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)) + " (sqlite " +
                          std::to_string(rc) + ")";
    throw RepositoryError(code, message);
}

Statement::Statement(sqlite3* db, std::string_view sql, bool persistent) : db_(db) {
    int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                persistent ? SQLITE_PREPARE_PERSISTENT : 0, &stmt_, nullptr);
    if (rc != SQLITE_OK) throw_sqlite(db, rc, "prepare " + std::string(sql.substr(0, 80)));
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::bind(int index, std::string_view text) {
    // SQLITE_TRANSIENT: callers bind temporaries; SQLite's copy is cheap next to the I/O.
    int rc =
        sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    if (rc != SQLITE_OK) throw_sqlite(db_, rc, "bind");
}

void Statement::bind_blob(int index, std::string_view bytes) {
    // A zero-length blob must still be a BLOB (not NULL): give SQLite a non-null pointer.
    static const char kEmpty = 0;
    int rc = sqlite3_bind_blob64(stmt_, index, bytes.empty() ? &kEmpty : bytes.data(), bytes.size(),
                                 SQLITE_TRANSIENT);
    if (rc != SQLITE_OK) throw_sqlite(db_, rc, "bind");
}

void Statement::bind(int index, std::int64_t value) {
    int rc = sqlite3_bind_int64(stmt_, index, value);
    if (rc != SQLITE_OK) throw_sqlite(db_, rc, "bind");
}

void Statement::bind(int index, double value) {
    int rc = sqlite3_bind_double(stmt_, index, value);
    if (rc != SQLITE_OK) throw_sqlite(db_, rc, "bind");
}

void Statement::bind_null(int index) {
    int rc = sqlite3_bind_null(stmt_, index);
    if (rc != SQLITE_OK) throw_sqlite(db_, rc, "bind");
}

bool Statement::step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    std::string sql = sqlite3_sql(stmt_) ? sqlite3_sql(stmt_) : "";
    throw_sqlite(db_, rc, sql.substr(0, 80));
}

void Statement::run() {
    while (step()) {
    }
}

void Statement::reset() noexcept {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

std::string_view Statement::text(int col) const {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    if (!p) return {};
    return {p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))};
}

std::string_view Statement::blob(int col) const {
    auto p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    if (!p) return {};
    return {p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))};
}

Connection::Connection(const std::filesystem::path& file)
    : db_(file.string(), sqlite_open_flags()) {
    // Writers wait for each other (a session holds the write lock for one batch).
    // Temporary tables go to a file: a statement that changes a whole subtree
    // (a move renames every path in one UPDATE) keeps a row per node in one,
    // and in memory that grew with the subtree (a 200,000-asset move peaked at
    // 96 MiB instead of 45); on file it spills past its page cache.
    db_.setBusyTimeout(30'000);
    exec(
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=NORMAL;"
        "PRAGMA foreign_keys=OFF;"
        "PRAGMA temp_store=FILE;"
        "PRAGMA cache_size=-16000;");
}

Query Connection::query(const std::string& sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end())
        it = cache_.emplace(sql, std::make_unique<Statement>(handle(), sql, true)).first;
    if (it->second->in_use) return Query(std::make_unique<Statement>(handle(), sql, false));
    return Query(*it->second);
}

void Connection::exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(handle(), sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
        std::string message = err ? err : sqlite3_errstr(rc);
        sqlite3_free(err);
        throw_sqlite(nullptr, rc, std::string(sql).substr(0, 60) + ": " + message);
    }
}

}  // namespace wharf::host::repo
