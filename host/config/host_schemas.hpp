#pragma once
// The schemas of the host's own configuration files, declared in code by the
// host the way plugins declare theirs in their manifests:
//   wharf.yaml           the host (wharf_schema)
//   queues/<name>.yaml   one per job queue (queue_schema, queue_config.hpp)
//   purge.yaml           the built-in purge job (purge_schema)
//   notifications.yaml   e-mail for finished jobs (notifications_schema)
// configs/ in the repository ships one documented file for each.
//
// Pure functions; thread-safe.

#include <string>
#include <vector>

#include "config/schema_validator.hpp"
#include "wharf/config.hpp"

namespace wharf::host {

inline constexpr const char* kWharfSchema = "wharf";
inline constexpr const char* kPurgeSchema = "purge";
inline constexpr const char* kNotificationsSchema = "notifications";
/// Owner name of the host's schemas in a SchemaCatalog.
inline constexpr const char* kHostOwner = "host";

wharf::ConfigSchema wharf_schema();
wharf::ConfigSchema purge_schema();
wharf::ConfigSchema notifications_schema();
/// notifications.yaml rules across keys: retry delays in order, user names unique.
std::vector<CheckProblem> check_notifications(const boost::property_tree::ptree& values);

struct HostSchema {
    wharf::ConfigSchema schema;
    ConfigCheck check;  ///< may be empty
};

/// Every schema the host owns, with its extra rules.
std::vector<HostSchema> host_schemas();

}  // namespace wharf::host
