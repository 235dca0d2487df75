#pragma once
// A SQLite connection of the repository with a cache of prepared statements,
// and the RAII handle through which code runs one of them.
//
// SQLiteCpp owns the connection (open flags, busy timeout, exec). Statements
// are a thin wrapper over sqlite3_stmt because hot paths bind paths from
// string_views and read text columns without copies, which SQLiteCpp 3.2's
// Statement cannot do. A Query resets its statement when it goes out of
// scope, so a cached statement never holds a read snapshot open by accident;
// if a cached statement is already in use (a nested call), a Query gets a
// fresh one of its own.
//
// SQLite errors become RepositoryError: SQLITE_BUSY/LOCKED -> conflict,
// anything else -> io, with the SQL's purpose and SQLite's message.
//
// Threading: a Connection is used by one thread at a time; the repository
// hands connections out from a pool.

#include <SQLiteCpp/Database.h>
#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace wharf::host::repo {

/// Throws the RepositoryError for SQLite result `rc` on `db`.
[[noreturn]] void throw_sqlite(sqlite3* db, int rc, std::string_view context);

class Statement {
public:
    Statement(sqlite3* db, std::string_view sql, bool persistent);
    ~Statement();
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    void bind(int index, std::string_view text);
    void bind_blob(int index, std::string_view bytes);
    void bind(int index, std::int64_t value);
    void bind(int index, double value);
    void bind_null(int index);

    /// True while rows come; false at the end. Throws RepositoryError.
    bool step();
    /// Steps to the end (for statements without rows).
    void run();
    void reset() noexcept;

    int column_type(int col) const { return sqlite3_column_type(stmt_, col); }
    bool is_null(int col) const { return column_type(col) == SQLITE_NULL; }
    std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
    double real(int col) const { return sqlite3_column_double(stmt_, col); }
    /// Valid until the next step() or reset().
    std::string_view text(int col) const;
    std::string_view blob(int col) const;
    std::string string(int col) const { return std::string(text(col)); }

    bool in_use = false;  ///< held by a Query

private:
    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
};

/// Runs one statement; resets it (and releases its cache slot) on scope exit.
class Query {
public:
    Query(Statement& cached) : stmt_(&cached) { stmt_->in_use = true; }
    explicit Query(std::unique_ptr<Statement> own) : own_(std::move(own)), stmt_(own_.get()) {}
    ~Query() {
        stmt_->reset();
        stmt_->in_use = false;
    }
    Query(const Query&) = delete;
    Query& operator=(const Query&) = delete;
    Statement* operator->() const { return stmt_; }
    Statement& operator*() const { return *stmt_; }

private:
    std::unique_ptr<Statement> own_;
    Statement* stmt_;
};

class Connection {
public:
    /// Opens (creating if needed) the database with the repository's pragmas.
    explicit Connection(const std::filesystem::path& file);

    SQLite::Database& database() { return db_; }
    sqlite3* handle() const { return db_.getHandle(); }

    /// A Query over the cached statement for `sql` (prepared on first use).
    Query query(const std::string& sql);

    /// Runs SQL without results (several statements allowed). Throws RepositoryError.
    void exec(const char* sql);

    std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(handle()); }
    std::int64_t changes() const { return sqlite3_changes64(handle()); }

private:
    SQLite::Database db_;
    std::unordered_map<std::string, std::unique_ptr<Statement>> cache_;
};

}  // namespace wharf::host::repo
