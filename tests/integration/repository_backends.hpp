#pragma once
// Test support: the repository backends the conformance tests run against.
// Each gives a repository on storage of its own (a temp data directory, or a
// fresh database on the throwaway PostgreSQL server with a temp blob
// directory); open() again reaches the same repository, as a restarted or a
// second instance would.
//
// PgRepoBackend is not available when PostgreSQL is not installed:
// WHARF_REPO_BACKEND then skips the test with a warning that says so.
#include <filesystem>
#include <memory>
#include <string>

#include "integration/pg_test_support.hpp"
#include "repository/pg_repository.hpp"
#include "repository/sqlite_repository.hpp"
#include "support/temp_dir.hpp"

namespace wharf::test {

class SqliteRepoBackend {
public:
    using Repo = host::SqliteRepository;

    bool available() const { return true; }
    std::string why_not() const { return {}; }

    std::shared_ptr<host::SqliteRepository> open() const {
        return host::SqliteRepository::open(dir_.path() / "data");
    }
    std::filesystem::path blob_dir() const { return dir_.path() / "data" / "blobs"; }

private:
    TempDir dir_{"wharf-repo"};
};

class PgRepoBackend {
public:
    using Repo = host::PgRepository;

    PgRepoBackend() : server_(PgServer::shared(&why_not_)) {
        if (server_) url_ = server_->create_database();
    }

    bool available() const { return server_ != nullptr; }
    const std::string& why_not() const { return why_not_; }
    const std::string& url() const { return url_; }

    std::shared_ptr<host::PgRepository> open(std::size_t pool_size = 4) const {
        return host::PgRepository::open({url_, pool_size, blob_dir()});
    }
    std::filesystem::path blob_dir() const { return dir_.path() / "blobs"; }

    /// Runs SQL on the database directly (tests that damage or inspect it).
    void exec(const std::string& sql) const {
        pqxx::connection c(url_);
        pqxx::nontransaction n(c);
        n.exec(sql);
    }
    std::int64_t count(const std::string& sql) const {
        pqxx::connection c(url_);
        pqxx::nontransaction n(c);
        return n.exec(sql)[0][0].as<std::int64_t>();
    }

private:
    std::string why_not_;
    PgServer* server_ = nullptr;
    std::string url_;
    TempDir dir_{"wharf-pgrepo"};
};

}  // namespace wharf::test

// Declares `name`, the test's backend; a backend that is not installed
// (PostgreSQL missing) skips the test with a warning that says so.
#define WHARF_REPO_BACKEND(name) \
    TestType name;               \
    if (!name.available()) {     \
        WARN(name.why_not());    \
        return;                  \
    }
