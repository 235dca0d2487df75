#pragma once
// PluginContextImpl: what one activation of a plugin is given (registry view,
// logger, configuration, data directory, library anchoring).
//
// Owned by the PluginManager for the duration of one activation. All
// registrations and trackers made through it belong to the activation's owner
// key and are removed by the manager when the plugin stops. Thread-safe as its
// parts are.

#include <filesystem>
#include <memory>
#include <string>

#include "modules/service_registry.hpp"
#include "wharf/plugin.hpp"

namespace wharf::host {

class PluginContextImpl final : public wharf::PluginContext {
public:
    PluginContextImpl(ServiceRegistryImpl& registry, Owner owner, std::shared_ptr<void> library,
                      std::string version, std::shared_ptr<wharf::Logger> logger,
                      std::unique_ptr<wharf::Config> config, std::filesystem::path data_dir);

    const std::string& id() const override { return registry_.owner().name; }
    const std::string& version() const override { return version_; }
    wharf::ServiceRegistry& services() override { return registry_; }
    wharf::Logger& logger() override { return *logger_; }
    wharf::Config& config() override { return *config_; }
    std::filesystem::path data_dir() const override;
    std::shared_ptr<void> keep_loaded(std::shared_ptr<void> object) override;
    using wharf::PluginContext::keep_loaded;

private:
    OwnedRegistry registry_;
    std::shared_ptr<void> library_;
    std::string version_;
    std::shared_ptr<wharf::Logger> logger_;
    std::unique_ptr<wharf::Config> config_;
    std::filesystem::path data_dir_;
};

/// A Config that serves each declared schema's defaults and never changes:
/// what plugins see when no configuration subsystem is attached. Its
/// directory() is the working directory when it was made.
std::unique_ptr<wharf::Config> make_defaults_config(std::vector<wharf::ConfigSchema> schemas);

/// The ptree of a schema's defaults (objects recursively; lists and maps empty).
boost::property_tree::ptree schema_defaults(const std::vector<wharf::ConfigField>& fields);

}  // namespace wharf::host
