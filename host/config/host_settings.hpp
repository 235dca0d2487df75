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
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace wharf::host {

/// The `jobs:` section: the job store and engine. Read at start.
struct HostJobSettings {
    std::string synchronous = "NORMAL";  ///< SQLite synchronous: OFF, NORMAL, FULL or EXTRA
    std::chrono::milliseconds stop_grace{30000};      ///< stop request -> overdue
    std::chrono::milliseconds stuck_after{300000};    ///< no heartbeat this long -> stuck
    std::chrono::milliseconds shutdown_grace{10000};  ///< on stop, wait this long for runs
    std::chrono::milliseconds flush_interval{1000};   ///< running job's progress/log to store
    std::size_t max_workers = 0;       ///< jobs running at once over all queues; 0 = no cap
    std::int64_t max_log_lines = 10000;  ///< per job; older lines are dropped
};

/// The `store:` section: where the job store lives. Read at start. SQLite is
/// the default; `backend: postgresql` with a `url` runs the host as one
/// instance of a cluster sharing that database.
struct HostStoreSettings {
    std::string backend = "sqlite";  ///< sqlite or postgresql
    std::string url;                 ///< postgresql: libpq URL or connection string
    std::size_t pool_size = 8;       ///< postgresql: connections at most
    std::chrono::milliseconds lease{30000};  ///< postgresql: instance heartbeat lease
    std::string instance_id;  ///< postgresql: unique per instance; "" = host-pid-random
    /// postgresql: binaries, in a directory every instance shares; empty =
    /// data_dir/repository/blobs (fine for instances on one machine).
    std::filesystem::path blob_dir;
};

/// The `http:` section: limits of the admin API server. Read at start (the
/// server fixes them when it binds): a change applies at the next start.
/// Defaults as in HttpServerOptions.
struct HostHttpSettings {
    std::size_t max_body_bytes = 1024 * 1024;         ///< JSON and other bodies; 413 above
    std::size_t max_upload_bytes = 256 * 1024 * 1024;  ///< text/csv operation uploads; 413 above
    std::chrono::milliseconds read_timeout{5000};
    std::chrono::milliseconds write_timeout{5000};
    std::size_t worker_threads = 8;
};

struct HostSettings {
    std::filesystem::path config_dir;   ///< the directory given to --config
    std::filesystem::path data_dir;     ///< SQLite files, blobs, plugin cache
    std::filesystem::path plugins_dir;  ///< watched for plugin .so files
    std::string listen = "127.0.0.1:8420";
    std::string log_level = "info";
    std::chrono::milliseconds plugin_start_timeout{10000};
    std::chrono::milliseconds drain_timeout{30000};
    unsigned cores = 0;  ///< 0 = detect
    HostHttpSettings http;
    HostJobSettings jobs;
    HostStoreSettings store;
};

/// Reads `<config_dir>/wharf.yaml` (its defaults when the file does not
/// exist). Throws Error(invalid_argument) whose message lists every problem as
/// `file:line:col: reason`, one per line; Error(io) when `config_dir` is not a
/// directory.
HostSettings load_host_settings(const std::filesystem::path& config_dir);

/// HostSettings from validated values of the `wharf` schema (as ConfigAdmin
/// delivers them on a change). Throws Error(invalid_argument) naming the file
/// and key when the `store:` keys do not fit together (an unknown backend,
/// postgresql without a url, a pool of 0).
HostSettings host_settings_from(const std::filesystem::path& config_dir,
                                const boost::property_tree::ptree& values);

}  // namespace wharf::host
