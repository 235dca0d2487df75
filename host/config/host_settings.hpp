#pragma once
// HostSettings: the host's own configuration, `wharf.yaml`, as the rest of the
// host uses it. The file is validated against wharf_schema() (host_schemas.hpp)
// with the same code as every other config file, so a bad wharf.yaml is
// refused with file:line:col and reason. Relative paths in the file are
// resolved against the directory that holds wharf.yaml.
//
// Pure functions; thread-safe.

#include <boost/property_tree/ptree.hpp>
#include <chrono>
#include <filesystem>
#include <string>

namespace wharf::host {

struct HostSettings {
    std::filesystem::path config_dir;   ///< the directory given to --config
    std::filesystem::path data_dir;     ///< SQLite files, blobs, plugin cache
    std::filesystem::path plugins_dir;  ///< watched for plugin .so files
    std::string listen = "127.0.0.1:8420";
    std::string log_level = "info";
    std::chrono::milliseconds plugin_start_timeout{10000};
    std::chrono::milliseconds drain_timeout{30000};
    unsigned cores = 0;  ///< 0 = detect
};

/// Reads `<config_dir>/wharf.yaml` (its defaults when the file does not
/// exist). Throws Error(invalid_argument) whose message lists every problem as
/// `file:line:col: reason`, one per line; Error(io) when `config_dir` is not a
/// directory.
HostSettings load_host_settings(const std::filesystem::path& config_dir);

/// HostSettings from validated values of the `wharf` schema (as ConfigAdmin
/// delivers them on a change).
HostSettings host_settings_from(const std::filesystem::path& config_dir,
                                const boost::property_tree::ptree& values);

}  // namespace wharf::host
