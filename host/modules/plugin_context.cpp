#include "modules/plugin_context.hpp"

#include <algorithm>
#include <stdexcept>
#include <system_error>

namespace wharf::host {
namespace {

// Keeps the library loaded while the object lives; destroys the object first.
struct Anchored {
    std::shared_ptr<void> library;
    std::shared_ptr<void> object;
};

class DefaultsConfig final : public wharf::Config {
public:
    explicit DefaultsConfig(std::vector<wharf::ConfigSchema> schemas)
        : schemas_(std::move(schemas)), directory_(working_directory()) {}

    boost::property_tree::ptree current(std::string_view name) const override {
        return schema_defaults(find(name).fields);
    }
    std::vector<std::pair<std::string, boost::property_tree::ptree>> instances(
        std::string_view name) const override {
        find(name);
        return {};
    }
    std::unique_ptr<wharf::ConfigSubscription> subscribe(
        std::string_view name,
        std::function<wharf::ConfigVerdict(const std::string&,
                                           const std::optional<boost::property_tree::ptree>&)>)
        override {
        find(name);
        return std::make_unique<wharf::ConfigSubscription>();
    }
    std::filesystem::path directory() const override { return directory_; }

private:
    // No config directory: relative paths mean what they mean to the process.
    static std::filesystem::path working_directory() {
        std::error_code ec;
        auto dir = std::filesystem::current_path(ec);
        return ec ? std::filesystem::path("/") : dir.lexically_normal();
    }

    const wharf::ConfigSchema& find(std::string_view name) const {
        auto it = std::find_if(schemas_.begin(), schemas_.end(),
                               [&](const auto& s) { return s.name == name; });
        if (it == schemas_.end())
            throw std::invalid_argument("configuration '" + std::string(name) +
                                        "' is not declared in the plugin's manifest");
        return *it;
    }
    std::vector<wharf::ConfigSchema> schemas_;
    std::filesystem::path directory_;
};

}  // namespace

PluginContextImpl::PluginContextImpl(ServiceRegistryImpl& registry, Owner owner,
                                     std::shared_ptr<void> library, std::string version,
                                     std::shared_ptr<wharf::Logger> logger,
                                     std::unique_ptr<wharf::Config> config,
                                     std::filesystem::path data_dir)
    : registry_(registry, std::move(owner), library),
      library_(std::move(library)),
      version_(std::move(version)),
      logger_(std::move(logger)),
      config_(std::move(config)),
      data_dir_(std::move(data_dir)) {}

std::filesystem::path PluginContextImpl::data_dir() const {
    std::error_code ec;
    std::filesystem::create_directories(data_dir_, ec);
    return data_dir_;
}

std::shared_ptr<void> PluginContextImpl::keep_loaded(std::shared_ptr<void> object) {
    if (!object) return object;
    void* raw = object.get();
    auto holder = std::make_shared<Anchored>(Anchored{library_, std::move(object)});
    return std::shared_ptr<void>(std::move(holder), raw);
}

std::unique_ptr<wharf::Config> make_defaults_config(std::vector<wharf::ConfigSchema> schemas) {
    return std::make_unique<DefaultsConfig>(std::move(schemas));
}

boost::property_tree::ptree schema_defaults(const std::vector<wharf::ConfigField>& fields) {
    boost::property_tree::ptree out;
    for (const auto& f : fields) {
        if (f.type == wharf::ConfigType::object) {
            out.add_child(boost::property_tree::ptree::path_type(f.name, '\0'),
                          schema_defaults(f.fields));
        } else if (f.default_value) {
            out.put(boost::property_tree::ptree::path_type(f.name, '\0'), *f.default_value);
        }
    }
    return out;
}

}  // namespace wharf::host
