#pragma once
// What the rollout tests share: the real rollout plugin loaded through a
// PluginManager whose configuration comes from a ConfigAdmin on a temp copy
// of the shipped configs/rollout/ and configs/operations/rollout.yaml (plus
// any rollout configs a test adds), with a SqliteRepository registered as
// wharf.Repository; small builders for pages and requests; and a check that
// a live copy mirrors its blueprint.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config_admin.hpp"
#include "modules/plugin_manager.hpp"
#include "modules/service_registry.hpp"
#include "move_crash/move_harness.hpp"
#include "repository/repository_check.hpp"
#include "repository/sqlite_repository.hpp"
#include "support/job_host.hpp"
#include "wharf/operations.hpp"

namespace wharf::test {

inline std::filesystem::path rollout_plugin_file() {
    auto path = std::filesystem::path(WHARF_PLUGIN_DIR) / "rollout.so";
    if (!std::filesystem::exists(path))
        throw std::runtime_error("build the rollout plugin (plugins/rollout) first: " +
                                 path.string());
    return path;
}

class RolloutPluginHost {
public:
    /// `extra_configs`: rollout config name -> YAML, written beside standard.yaml.
    RolloutPluginHost(std::shared_ptr<host::SqliteRepository> repository,
                      const std::filesystem::path& work_dir,
                      const std::map<std::string, std::string>& extra_configs = {},
                      const std::string& operation_yaml = {})
        : repository_(std::move(repository)), config_dir_(work_dir / "configs") {
        namespace fs = std::filesystem;
        const fs::path source = WHARF_SOURCE_DIR;
        fs::create_directories(config_dir_ / "rollout");
        fs::create_directories(config_dir_ / "operations");
        fs::create_directories(config_dir_ / "queues");
        fs::copy_file(source / "configs/queues/page-move-and-rollout.yaml",
                      config_dir_ / "queues/page-move-and-rollout.yaml",
                      fs::copy_options::overwrite_existing);
        fs::copy_file(source / "configs/rollout/standard.yaml",
                      config_dir_ / "rollout/standard.yaml", fs::copy_options::overwrite_existing);
        if (operation_yaml.empty())
            fs::copy_file(source / "configs/operations/rollout.yaml",
                          config_dir_ / "operations/rollout.yaml",
                          fs::copy_options::overwrite_existing);
        else
            std::ofstream(config_dir_ / "operations/rollout.yaml") << operation_yaml;
        for (const auto& [name, yaml] : extra_configs)
            std::ofstream(config_dir_ / "rollout" / (name + ".yaml")) << yaml;
        repository_registration_ = registry_.register_service(
            host::Owner{"test", 0}, nullptr, interfaces::kRepository,
            std::static_pointer_cast<void>(std::static_pointer_cast<Repository>(repository_)), {},
            0);
        // Registers the shipped page-move-and-rollout queue.
        config_ = start_config_admin(registry_, config_dir_);
        fs::create_directories(work_dir / "plugins");
        host::PluginManagerOptions po;
        po.plugins_dir = work_dir / "plugins";
        po.cache_dir = work_dir / "plugin-cache";
        po.plugin_data_dir = work_dir / "plugin-data";
        po.probe_executable = WHARF_PROBE_EXECUTABLE;
        po.watch = false;
        po.config_source = config_.get();
        plugins_ = std::make_unique<host::PluginManager>(registry_, po);
        plugins_->start();
        auto target = work_dir / "plugins" / "rollout.so";
        fs::copy_file(rollout_plugin_file(), target, fs::copy_options::overwrite_existing);
        plugins_->deploy(target);
    }

    ~RolloutPluginHost() {
        plugins_->stop_all();
        repository_registration_->unregister();
    }

    std::shared_ptr<Operation> operation(const std::string& name) const {
        auto found = registry_.find(interfaces::kOperation, {{"operation.name", name}});
        if (!found) return nullptr;
        return std::static_pointer_cast<Operation>(found->service);
    }
    std::shared_ptr<Operation> create() const { return operation("live-copy-create"); }
    std::shared_ptr<Operation> rollout() const { return operation("rollout"); }

    const std::filesystem::path& config_dir() const { return config_dir_; }
    host::ConfigAdmin& config() { return *config_; }
    host::ServiceRegistryImpl& registry() { return registry_; }
    host::PluginManager& plugins() { return *plugins_; }

private:
    std::shared_ptr<host::SqliteRepository> repository_;
    std::filesystem::path config_dir_;
    host::ServiceRegistryImpl registry_;
    std::shared_ptr<ServiceRegistration> repository_registration_;
    std::unique_ptr<host::ConfigAdmin> config_;
    std::unique_ptr<host::PluginManager> plugins_;
};

inline boost::property_tree::ptree string_list(const std::vector<std::string>& values) {
    boost::property_tree::ptree list;
    for (const auto& v : values) list.push_back({"", boost::property_tree::ptree(v)});
    return list;
}

inline boost::property_tree::ptree create_request(const std::string& blueprint,
                                                  const std::string& target,
                                                  const std::vector<std::string>& configs = {},
                                                  bool deep = true) {
    boost::property_tree::ptree r;
    r.put("blueprint", blueprint);
    r.put("target", target);
    r.put("deep", deep ? "true" : "false");
    if (!configs.empty()) r.add_child("rollout_configs", string_list(configs));
    return r;
}

inline boost::property_tree::ptree rollout_request(const std::string& blueprint,
                                                   const std::vector<std::string>& live_copies = {},
                                                   bool deep = true) {
    boost::property_tree::ptree r;
    r.put("blueprint", blueprint);
    r.put("deep", deep ? "true" : "false");
    if (!live_copies.empty()) r.add_child("live_copies", string_list(live_copies));
    return r;
}

inline std::string swap_prefix(const std::string& path, const std::string& from,
                               const std::string& to) {
    if (path == from || path.rfind(from + "/", 0) == 0 || path.rfind(from + ".", 0) == 0)
        return to + path.substr(from.size());
    return path;
}

/// Every difference between `blueprint`'s pages and `live_copy`'s, with links
/// and Path values into the blueprint expected to point into the live copy;
/// empty when the live copy mirrors the blueprint (order of children included).
inline std::vector<std::string> mirror_differences(const Repository& repo,
                                                   const std::string& blueprint,
                                                   const std::string& live_copy) {
    std::vector<std::string> out;
    std::uint64_t blueprint_pages = 0;
    repo.walk(blueprint, WalkOptions{}, [&](const Node& page) {
        ++blueprint_pages;
        auto live_path = swap_prefix(page.path, blueprint, live_copy);
        auto live = repo.get(live_path);
        if (!live) {
            out.push_back("missing " + live_path);
            return out.size() < 20;
        }
        PropertyMap expected = page.properties;
        for (auto& [name, value] : expected)
            for (auto& v : value.values)
                if (auto* ref = std::get_if<PathRef>(&v))
                    ref->path = swap_prefix(ref->path, blueprint, live_copy);
        if (live->properties != expected) out.push_back("properties differ " + live_path);
        std::string text = page.text;
        for (std::size_t at = text.find(blueprint); at != std::string::npos;
             at = text.find(blueprint, at + live_copy.size())) {
            text.replace(at, blueprint.size(), live_copy);
        }
        if (live->text != text) out.push_back("text differs " + live_path);
        if (page.path != blueprint && live->order != page.order)
            out.push_back("order differs " + live_path);
        return out.size() < 20;
    });
    auto live_pages = repo.count(live_copy, WalkOptions{});
    if (live_pages != blueprint_pages)
        out.push_back("live copy has " + std::to_string(live_pages) + " pages, blueprint " +
                      std::to_string(blueprint_pages));
    return out;
}

/// Every node, text, property and live relationship, for "nothing changed".
inline std::vector<std::string> repository_fingerprint(const Repository& repo) {
    std::vector<std::string> out;
    repo.walk("/", WalkOptions{}, [&](const Node& n) {
        std::string line = "node " + n.path + " " + std::to_string(static_cast<int>(n.kind)) +
                           " " + std::to_string(n.order) + " " + n.text;
        for (const auto& [name, p] : n.properties) {
            line += " " + name + "=";
            for (const auto& v : p.values)
                if (auto* s = std::get_if<std::string>(&v))
                    line += *s + ",";
                else if (auto* r = std::get_if<PathRef>(&v))
                    line += r->path + ",";
        }
        auto c = repo.inheritance_cancel(n.path);
        line += " cancel=" + std::to_string(c.page) + std::to_string(c.children);
        for (const auto& p : c.properties) line += "," + p;
        out.push_back(line);
        return true;
    });
    for (const auto& rel : repo.live_relationships("")) {
        std::string line = "live " + rel.blueprint + " -> " + rel.live_copy +
                           (rel.deep ? " deep" : " shallow");
        for (const auto& c : rel.rollout_configs) line += " " + c;
        out.push_back(line);
    }
    return out;
}

inline std::uint64_t repository_errors(const host::SqliteRepository& repo) {
    auto report = host::check_repository(repo);
    return report.errors();
}

}  // namespace wharf::test
