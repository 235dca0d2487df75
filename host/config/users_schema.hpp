#pragma once
// The schema of users.yaml: the HTTP API's users, each with a role and the
// SHA-256 of its bearer token (never the token). Declared by the configuration
// subsystem with the host's other schemas, so that the file is validated like
// every other one and `wharf config validate` checks it offline; the HTTP
// server (http/users.hpp) is its consumer.

#include <boost/property_tree/ptree.hpp>
#include <vector>

#include "config/schema_validator.hpp"
#include "wharf/config.hpp"

namespace wharf::host {

inline constexpr const char* kUsersSchema = "users";

wharf::ConfigSchema users_schema();

/// Checks that go beyond the schema: unique names, unique 64-hex-digit hashes.
std::vector<CheckProblem> check_users(const boost::property_tree::ptree& values);

}  // namespace wharf::host
