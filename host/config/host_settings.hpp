#pragma once
// HostSettings: the host's own configuration, `wharf.yaml`, as the rest of the
// host uses it. Relative paths in the file are resolved against the directory
// that holds wharf.yaml.

#include <chrono>
#include <filesystem>
#include <string>

namespace wharf::host {

struct HostSettings {
    std::filesystem::path config_dir;     ///< the directory given to --config
    std::filesystem::path data_dir;       ///< SQLite files, blobs, plugin cache
    std::filesystem::path plugins_dir;    ///< watched for plugin .so files
    std::string listen = "127.0.0.1:8420";
    std::string log_level = "info";
    std::chrono::milliseconds plugin_start_timeout{10000};
    std::chrono::milliseconds drain_timeout{30000};
    unsigned cores = 0;                   ///< 0 = detect
};

/// Reads `<config_dir>/wharf.yaml`. Throws Error(invalid_argument) naming
/// file:line:col and the reason when it is not valid.
HostSettings load_host_settings(const std::filesystem::path& config_dir);

}  // namespace wharf::host
