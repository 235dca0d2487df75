#include "http/users.hpp"

#include <openssl/crypto.h>

#include <cctype>
#include <set>

#include "base/log.hpp"
#include "base/sha256.hpp"
#include "config/schema_catalog.hpp"
#include "config/users_schema.hpp"
#include "config/yaml_document.hpp"

namespace wharf::host {
namespace {

namespace fs = std::filesystem;

// `hex` may be upper or lower case (users.yaml is written by people).
bool hex_to_digest(std::string hex, unsigned char (&out)[32]) {
    for (auto& c : hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!is_sha256_hex(hex)) return false;
    auto nibble = [](char c) {
        return static_cast<unsigned char>(c <= '9' ? c - '0' : c - 'a' + 10);
    };
    for (std::size_t i = 0; i < 32; ++i)
        out[i] = static_cast<unsigned char>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
    return true;
}

}  // namespace

const char* to_string(Role role) noexcept {
    switch (role) {
        case Role::none:
            return "none";
        case Role::viewer:
            return "viewer";
        case Role::operator_:
            return "operator";
        case Role::admin:
            return "admin";
    }
    return "none";
}

std::optional<Role> role_from_string(std::string_view name) noexcept {
    if (name == "viewer") return Role::viewer;
    if (name == "operator") return Role::operator_;
    if (name == "admin") return Role::admin;
    return std::nullopt;
}


std::string token_sha256(std::string_view token) { return sha256_hex(token); }

UserDirectory::UserDirectory(fs::path file, std::chrono::milliseconds recheck)
    : file_(std::move(file)), recheck_(recheck), users_(std::make_shared<const Snapshot>()) {}

std::shared_ptr<const UserDirectory::Snapshot> UserDirectory::snapshot_from(
    const boost::property_tree::ptree& values) {
    auto users = std::make_shared<Snapshot>();
    if (auto list = values.get_child_optional("users")) {
        for (const auto& [key, item] : *list) {
            if (item.get<std::string>("enabled", "true") != "true") continue;
            auto role = role_from_string(item.get<std::string>("role", ""));
            Entry entry;
            entry.user.name = item.get<std::string>("name", "");
            if (!role || entry.user.name.empty() ||
                !hex_to_digest(item.get<std::string>("token_sha256", ""), entry.digest))
                return nullptr;
            entry.user.role = *role;
            users->push_back(entry);
        }
    }
    return users;
}

std::vector<ConfigError> UserDirectory::load() {
    // Without a file of its own, the users come from apply() (ConfigAdmin).
    if (file_.empty()) return {};
    auto log = logger("http");
    std::error_code ec;
    const std::string display = file_.string();
    bool exists = !file_.empty() && fs::exists(file_, ec);
    {
        std::lock_guard lock(mutex_);
        last_check_ = std::chrono::steady_clock::now();
        seen_exists_ = exists;
        seen_mtime_ = exists ? fs::last_write_time(file_, ec) : fs::file_time_type{};
        seen_size_ = exists ? fs::file_size(file_, ec) : 0;
    }
    if (!exists) {
        std::lock_guard lock(mutex_);
        users_ = std::make_shared<const Snapshot>();
        if (!file_.empty()) log->info("users file absent file={} users=0", display);
        return {};
    }
    SchemaCatalog catalog;
    if (auto problem = catalog.declare("http", {users_schema()}, {check_users}))
        return {ConfigError{display, {}, "the users schema is invalid: " + *problem}};
    auto match = catalog.match(kUsersSchema);
    auto bytes = read_config_bytes(file_, display, YamlLimits{}.max_bytes);
    if (auto* error = std::get_if<ConfigError>(&bytes)) {
        log->error("users refused file={} error=\"{}\"", display, error->to_string());
        return {*error};
    }
    auto result = check_config_bytes(std::get<std::string>(bytes), display, *match, YamlLimits{});
    if (!result.ok()) {
        for (const auto& e : result.errors)
            log->error("users refused file={} error=\"{}\"", display, e.to_string());
        return result.errors;
    }
    auto snapshot = snapshot_from(result.values);
    if (!snapshot) return {ConfigError{display, {}, "invalid user entry"}};
    std::lock_guard lock(mutex_);
    users_ = snapshot;
    log->info("users loaded file={} users={}", display, snapshot->size());
    return {};
}

void UserDirectory::reload_if_changed() {
    if (file_.empty() || config_owned_.load()) return;
    {
        std::lock_guard lock(mutex_);
        auto now = std::chrono::steady_clock::now();
        if (now - last_check_ < recheck_) return;
        last_check_ = now;
        std::error_code ec;
        bool exists = fs::exists(file_, ec);
        auto mtime = exists ? fs::last_write_time(file_, ec) : fs::file_time_type{};
        auto size = exists ? fs::file_size(file_, ec) : 0;
        if (exists == seen_exists_ && mtime == seen_mtime_ && size == seen_size_) return;
    }
    load();
}

wharf::ConfigVerdict UserDirectory::apply(const boost::property_tree::ptree& values) {
    auto problems = check_users(values);
    if (!problems.empty()) return problems.front().key + ": " + problems.front().message;
    auto snapshot = snapshot_from(values);
    if (!snapshot) return std::string("invalid user entry");
    std::lock_guard lock(mutex_);
    users_ = snapshot;
    config_owned_ = true;  // ConfigAdmin watches the file from now on
    return std::nullopt;
}

std::shared_ptr<const UserDirectory::Snapshot> UserDirectory::current() const {
    std::lock_guard lock(mutex_);
    return users_;
}

std::optional<ApiUser> UserDirectory::authenticate(std::string_view token) const {
    if (token.empty()) return std::nullopt;
    unsigned char digest[32];
    if (!hex_to_digest(sha256_hex(token), digest)) return std::nullopt;
    auto users = current();
    std::optional<ApiUser> found;
    // Every entry is compared, matched or not, so timing does not tell which one matched.
    for (const auto& entry : *users) {
        if (CRYPTO_memcmp(entry.digest, digest, sizeof digest) == 0 && !found) found = entry.user;
    }
    return found;
}

std::size_t UserDirectory::size() const { return current()->size(); }

}  // namespace wharf::host
