#include "config/users_schema.hpp"

#include "base/sha256.hpp"

#include <cctype>
#include <set>
#include <string>

namespace wharf::host {
namespace {

using wharf::ConfigField;
using wharf::make_field;
using wharf::ConfigType;

std::string lower(std::string text) {
    for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

}  // namespace

wharf::ConfigSchema users_schema() {
    wharf::ConfigSchema s;
    s.name = kUsersSchema;
    s.description = "API users: name, role and the SHA-256 of their bearer token";
    auto users = make_field("users", ConfigType::list, "who may call the HTTP API");
    users.default_value = "[]";
    auto user = make_field("", ConfigType::object, "one user");
    auto name = make_field("name", ConfigType::string, "shown as the submitter of the jobs it enqueues");
    name.required = true;
    auto role = make_field("role", ConfigType::string,
                      "viewer (read), operator (also submit, stop, delete jobs), admin (also "
                      "plugins, config, queues)");
    role.required = true;
    role.one_of = {"viewer", "operator", "admin"};
    auto token = make_field("token_sha256", ConfigType::string,
                       "hex SHA-256 of the token (printf %s TOKEN | sha256sum)");
    token.required = true;
    auto enabled = make_field("enabled", ConfigType::boolean, "false keeps the entry but refuses it");
    enabled.default_value = "true";
    user.fields = {name, role, token, enabled};
    users.item.push_back(user);
    s.fields.push_back(users);
    return s;
}

std::vector<CheckProblem> check_users(const boost::property_tree::ptree& values) {
    std::vector<CheckProblem> problems;
    std::set<std::string> names;
    std::set<std::string> hashes;
    std::size_t index = 0;
    if (auto users = values.get_child_optional("users")) {
        for (const auto& [key, user] : *users) {
            std::string path = "users." + std::to_string(index++);
            auto name = user.get<std::string>("name", "");
            auto hash = lower(user.get<std::string>("token_sha256", ""));
            if (name.empty()) {
                problems.push_back({path + ".name", "the user name must not be empty"});
            } else if (!names.insert(name).second) {
                problems.push_back({path + ".name", "user '" + name + "' is listed twice"});
            }
            if (!is_sha256_hex(hash)) {
                problems.push_back({path + ".token_sha256",
                                    "token_sha256 must be 64 hex digits (the SHA-256 of the "
                                    "token, e.g. from sha256sum), not the token itself"});
            } else if (!hashes.insert(hash).second) {
                problems.push_back(
                    {path + ".token_sha256", "two users have the same token; give each its own"});
            }
        }
    }
    return problems;
}

}  // namespace wharf::host
