#pragma once
// PluginManager: installs, starts, upgrades, stops and uninstalls plugins, and
// deploys them hot from a watched directory.
//
// One record per plugin file in the plugins directory. A new or changed file is
// first probed in a short-lived child process (wharf-plugin-probe): a binary
// that crashes, hangs or has no entry point there is quarantined with the
// reason and not loaded until its content changes. A binary that passes is
// copied to a private file named by its content hash under the cache directory
// and loaded from there, so reloading the same path always runs the new code
// and the old version can stay mapped beside it.
//
// Lifecycle: installed -> resolved -> starting -> active -> stopping ->
// stopped -> uninstalled, or failed (with a reason) / quarantined. A plugin
// starts when all its required services are registered, is stopped when one of
// them goes away and started again when it returns.
//
// Upgrade: the old version is stopped (its services unregistered, so it takes
// no new work), the new one started; calls in flight keep the old library
// mapped through the service pointers they hold, and it is unloaded when the
// last of them is gone. If the new version fails to start, the old one is
// started again and the failure is reported as `last_error`.
//
// Threading: all lifecycle work runs on the manager's own thread, one step at a
// time; public methods may be called from any thread. deploy/remove/stop_all
// wait for their step to finish. Plugin code (start, stop) is called on a
// separate thread with a timeout for start.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "modules/service_registry.hpp"
#include "wharf/plugin.hpp"

namespace wharf::host {

enum class PluginState {
    installed,    ///< loaded and checked; waiting for required services
    resolved,     ///< every required service present; about to start
    starting,
    active,
    stopping,
    stopped,      ///< stopped (reason says why; restarted when deps return)
    uninstalled,  ///< its file was removed
    failed,       ///< see reason
    quarantined,  ///< the probe crashed, hung or found no entry point
};

const char* to_string(PluginState state) noexcept;

/// Everything known about one plugin file, for the API and the log.
struct PluginInfo {
    std::filesystem::path file;  ///< in the plugins directory
    std::string content_hash;    ///< sha256 of the file as last seen
    std::string id;              ///< from the manifest (empty if never read)
    std::string version;
    std::string description;
    std::uint32_t abi_major = 0;
    std::uint32_t abi_minor = 0;
    PluginState state = PluginState::installed;
    std::string reason;          ///< why failed / quarantined / stopped / waiting
    std::string last_error;      ///< a refused upgrade, while an older version runs
    std::vector<std::string> provides;
    std::vector<wharf::ServiceDependency> requires_services;
    std::vector<std::string> missing;  ///< required services not registered now
    std::vector<std::shared_ptr<const wharf::ServiceReference>> services;  ///< registered now
    std::vector<wharf::ConfigSchema> configs;
    std::size_t loaded_libraries = 0;  ///< versions still mapped (old ones draining)
};

/// Where plugins get their configuration. The configuration subsystem provides
/// the real one; without it plugins see their schemas' defaults.
class PluginConfigSource {
public:
    virtual ~PluginConfigSource() = default;
    /// Accepts the plugin's schemas (or returns why not, e.g. a name owned by
    /// another consumer). Called before the plugin is started.
    virtual std::optional<std::string> declare(const std::string& plugin_id,
                                               const std::vector<wharf::ConfigSchema>& schemas) = 0;
    /// Forgets the plugin's schemas (it was uninstalled).
    virtual void retract(const std::string& plugin_id) = 0;
    /// The Config a running plugin gets; lives until the plugin stops.
    virtual std::unique_ptr<wharf::Config> open(const std::string& plugin_id) = 0;
};

struct PluginManagerOptions {
    std::filesystem::path plugins_dir;      ///< watched; *.so files are plugins
    std::filesystem::path cache_dir;        ///< private copies of loaded binaries
    std::filesystem::path plugin_data_dir;  ///< per-plugin data (`<dir>/<id>/`)
    std::filesystem::path probe_executable; ///< wharf-plugin-probe
    std::chrono::milliseconds start_timeout{10000};
    std::chrono::milliseconds drain_timeout{30000};
    std::chrono::milliseconds probe_timeout{5000};
    std::chrono::milliseconds settle{20};   ///< quiet time before a file event is acted on
    bool watch = true;                      ///< watch plugins_dir for changes
    PluginConfigSource* config_source = nullptr;  ///< not owned; may be null
};

class PluginManager {
public:
    PluginManager(ServiceRegistryImpl& registry, PluginManagerOptions options);
    /// Stops every plugin (stop_all) and the manager's thread.
    ~PluginManager();
    PluginManager(const PluginManager&) = delete;
    PluginManager& operator=(const PluginManager&) = delete;

    /// Installs every *.so already in the plugins directory, then (if enabled)
    /// watches it. Returns when the initial installs have been attempted.
    void start();

    /// Installs or upgrades the plugin in `file`; returns when done (the
    /// outcome is in plugins()). Never throws for a bad plugin.
    void deploy(const std::filesystem::path& file);

    /// Stops and uninstalls the plugin of `file`.
    void remove(const std::filesystem::path& file);

    /// Stops the watcher, then every plugin in reverse start order.
    void stop_all();

    std::vector<PluginInfo> plugins() const;
    std::optional<PluginInfo> plugin(const std::string& id) const;

    /// Waits until `predicate(plugins())` holds or `timeout` passes; returns
    /// whether it held. Re-checked on every state change.
    bool wait_until(const std::function<bool(const std::vector<PluginInfo>&)>& predicate,
                    std::chrono::milliseconds timeout) const;

    /// Called (on the manager's thread) after every state change.
    void on_change(std::function<void(const PluginInfo&)> observer);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace wharf::host
