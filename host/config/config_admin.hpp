#pragma once
// ConfigAdmin: the host's configuration service (OSGi ConfigAdmin plus Felix
// FileInstall). It owns the schemas (the host's own and those plugins declare
// through PluginConfigSource), loads the config directory at start, watches
// it with inotify, and applies every valid change while the host runs.
//
// Applying a file: its bytes are parsed and validated completely (see
// schema_catalog.hpp); only then are the new values delivered, as one ptree,
// to every subscriber of its schema. A subscriber may refuse (ConfigVerdict):
// the update is then taken back from those that already accepted it, and the
// file counts as refused. A refused file leaves the last good configuration in
// force; its status keeps the errors (file:line:col: reason) for the API and
// the log. A file whose content did not change is not delivered again.
//
// Queues: each applied `queues/<name>.yaml` is a wharf::Queue service in the
// registry (owner "host"), modified when the file changes and unregistered
// when it goes away (see wharf/queues.hpp for the properties).
//
// Files nobody declares (`operations/foo.yaml` before its plugin is
// installed) are kept as pending with the reason and applied as soon as a
// plugin declares the schema. Removing a single file (purge.yaml) delivers
// the schema's defaults; removing an instance file delivers std::nullopt.
//
// Watching: the whole tree, recursively; editors' write-then-rename saves,
// swap and backup files (ignored by name), bursts (settled, last content
// wins) and a file that disappears only for an instant during a save (a
// removal is acted on only after it has stayed away for `remove_grace`).
//
// Threading: all changes (file events, declare, retract, rescan) are applied
// one at a time under one lock; subscriber callbacks and registry events run
// on the thread applying the change (the watcher's thread for file events),
// one at a time. Callbacks may call back into the ConfigAdmin. Dropping a
// subscription waits for a callback in progress on another thread. The
// ConfigAdmin must outlive every subscription and wharf::Config it handed out.

#include <boost/property_tree/ptree.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_error.hpp"
#include "config/file_watcher.hpp"
#include "config/schema_catalog.hpp"
#include "config/yaml_document.hpp"
#include "modules/plugin_manager.hpp"
#include "modules/service_registry.hpp"
#include "wharf/config.hpp"

namespace wharf::host {

namespace detail {
struct ConfigAdminState;
}

struct ConfigAdminOptions {
    std::filesystem::path config_dir;
    /// Where queue services are registered; not owned; may be null (no queues).
    ServiceRegistryImpl* registry = nullptr;
    /// Cores for max_parallel; 0 = wharf.yaml's `cores`, or detect when that is 0.
    unsigned cores = 0;
    /// Quiet time before a burst of file events is acted on.
    std::chrono::milliseconds settle{10};
    /// How long a removed file must stay away before it counts as removed.
    std::chrono::milliseconds remove_grace{50};
    bool watch = true;
    YamlLimits limits;
};

enum class ConfigFileState {
    applied,  ///< the file's current content is in force
    refused,  ///< the last change was refused; the previous version (if any) stays
    pending,  ///< no schema declares this file (yet)
};

const char* to_string(ConfigFileState state) noexcept;

/// One configuration file as the API shows it.
struct ConfigFileStatus {
    std::string file;      ///< relative to the config directory, '/'-separated
    std::string schema;    ///< owning schema; empty while pending
    std::string instance;  ///< factory instance name; empty for a single file
    ConfigFileState state = ConfigFileState::pending;
    std::string applied_sha256;         ///< content in force; empty if none ever was
    std::uint64_t applied_version = 0;  ///< 1 for the first applied content, then +1
    std::optional<std::chrono::system_clock::time_point> applied_at;
    std::vector<ConfigError> errors;  ///< why the last change was refused
    std::optional<std::chrono::system_clock::time_point> refused_at;
    std::string reason;  ///< why pending
};

/// A subscriber: (instance, values) for a change, (instance, std::nullopt) for
/// a removed instance. The instance is empty for a single-file schema.
using ConfigCallback = std::function<wharf::ConfigVerdict(
    const std::string& instance, const std::optional<boost::property_tree::ptree>& values)>;

class ConfigAdmin final : public PluginConfigSource {
public:
    /// Declares the host's schemas. Does not touch the file system yet.
    explicit ConfigAdmin(ConfigAdminOptions options);
    /// Stops watching and unregisters the queue services.
    ~ConfigAdmin() override;
    ConfigAdmin(const ConfigAdmin&) = delete;
    ConfigAdmin& operator=(const ConfigAdmin&) = delete;

    /// Loads every file (wharf.yaml first), registers the queues, then starts
    /// watching. Throws Error(io) when the config directory does not exist.
    /// Invalid files do not make start fail: they are refused like any edit.
    void start();

    /// Stops watching; the configuration in force stays readable.
    void stop();

    /// Subscribes a host consumer to schema `name` (every later change).
    /// Throws Error(not_found) for an unknown schema.
    std::unique_ptr<wharf::ConfigSubscription> subscribe(std::string_view name,
                                                         ConfigCallback callback);

    /// Values in force for single-file schema `name` (its defaults if it has no
    /// file). Throws Error(not_found) for an unknown name, Error(invalid_argument)
    /// for a factory.
    boost::property_tree::ptree current(std::string_view name) const;

    /// Instances in force for factory schema `name`, by instance name.
    std::vector<std::pair<std::string, boost::property_tree::ptree>> instances(
        std::string_view name) const;

    std::vector<ConfigFileStatus> status() const;
    std::optional<ConfigFileStatus> status(std::string_view file) const;

    /// Re-reads the whole tree now, as after an inotify overflow.
    void rescan();

    /// Cores used to resolve max_parallel now.
    unsigned cores() const;

    /// The schemas in force (host's and plugins'), for the API.
    std::vector<wharf::ConfigSchema> schemas() const;

    // PluginConfigSource
    std::optional<std::string> declare(const std::string& plugin_id,
                                       const std::vector<wharf::ConfigSchema>& schemas) override;
    void retract(const std::string& plugin_id) override;
    std::unique_ptr<wharf::Config> open(const std::string& plugin_id) override;

private:
    std::shared_ptr<detail::ConfigAdminState> impl_;
};

}  // namespace wharf::host
