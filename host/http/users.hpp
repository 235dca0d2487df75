#pragma once
// API users: who may call the admin API, with which role, proven by a bearer
// token. `configs/users.yaml` lists users with the SHA-256 of their token
// (never the token itself); the schema is users_schema(), validated with the
// same code as every other config file, so a bad file is refused with
// `file:line:col: reason` and the users in force stay as they were.
//
// Roles are ordered: viewer (read) < operator (submit, stop, delete jobs) <
// admin (plugins, config, queues). A role includes the ones below it.
//
// Tokens are compared by their SHA-256 in constant time (CRYPTO_memcmp) over
// every enabled user, so the time taken does not say which user (or how much
// of a hash) matched. Tokens are never logged or kept.
//
// In wharfd, ConfigAdmin owns the `users` schema (config/users_schema.hpp)
// and delivers every validated version through apply(). Standalone (tests,
// embedders without ConfigAdmin) UserDirectory reads the file itself: load()
// at start and reload_if_changed() on use (at most once per `recheck`
// interval, by modification time and size).
//
// Thread-safety: every method may be called from any thread; authenticate()
// reads an immutable snapshot.

#include <atomic>
#include <boost/property_tree/ptree.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_error.hpp"
#include "config/schema_validator.hpp"
#include "config/users_schema.hpp"
#include "wharf/config.hpp"

namespace wharf::host {

enum class Role { none = 0, viewer = 1, operator_ = 2, admin = 3 };

/// "viewer", "operator", "admin" ("none" for Role::none).
const char* to_string(Role role) noexcept;
std::optional<Role> role_from_string(std::string_view name) noexcept;

struct ApiUser {
    std::string name;
    Role role = Role::viewer;
};

/// The `users` schema (configs/users.yaml) and its extra rules: hashes are 64
/// hex digits, user names and hashes are unique.

/// Hex SHA-256 of a token, as users.yaml stores it.
std::string token_sha256(std::string_view token);

class UserDirectory {
public:
    /// No users: every authenticate() fails until a file is loaded or applied.
    explicit UserDirectory(std::filesystem::path file = {},
                           std::chrono::milliseconds recheck = std::chrono::milliseconds(1000));

    /// Reads the file. A missing file means no users. Returns the problems
    /// (file:line:col: reason); on any, the users in force do not change.
    std::vector<ConfigError> load();

    /// load() if the file changed since the last look and `recheck` has passed.
    void reload_if_changed();

    /// Replaces the users with validated `users` schema values (from
    /// ConfigAdmin). Returns a reason when refused.
    wharf::ConfigVerdict apply(const boost::property_tree::ptree& values);

    /// The enabled user whose token hash matches, or std::nullopt.
    std::optional<ApiUser> authenticate(std::string_view token) const;

    /// Number of enabled users.
    std::size_t size() const;

private:
    struct Entry {
        ApiUser user;
        unsigned char digest[32];
    };
    using Snapshot = std::vector<Entry>;

    static std::shared_ptr<const Snapshot> snapshot_from(const boost::property_tree::ptree& values);
    std::shared_ptr<const Snapshot> current() const;

    std::filesystem::path file_;
    std::chrono::milliseconds recheck_;
    mutable std::mutex mutex_;
    std::shared_ptr<const Snapshot> users_;
    std::chrono::steady_clock::time_point last_check_{};
    std::filesystem::file_time_type seen_mtime_{};
    std::uintmax_t seen_size_ = 0;
    bool seen_exists_ = false;
    std::atomic<bool> config_owned_{false};
};

}  // namespace wharf::host
