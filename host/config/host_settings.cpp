#include "config/host_settings.hpp"

#include <yaml-cpp/yaml.h>

#include "base/error.hpp"

namespace fs = std::filesystem;

namespace wharf::host {
namespace {

std::string where(const fs::path& file, const YAML::Mark& mark) {
    return file.string() + ":" + std::to_string(mark.line + 1) + ":" +
           std::to_string(mark.column + 1);
}

fs::path resolve(const fs::path& base, const std::string& value) {
    fs::path p(value);
    return (p.is_absolute() ? p : base / p).lexically_normal();
}

}  // namespace

HostSettings load_host_settings(const fs::path& config_dir) {
    HostSettings s;
    s.config_dir = fs::absolute(config_dir).lexically_normal();
    fs::path file = s.config_dir / "wharf.yaml";
    YAML::Node root;
    try {
        root = YAML::LoadFile(file.string());
    } catch (const YAML::BadFile&) {
        throw Error(ErrorCode::invalid_argument, file.string() + ": cannot read the file");
    } catch (const YAML::Exception& e) {
        throw Error(ErrorCode::invalid_argument, where(file, e.mark) + ": " + e.msg);
    }
    s.data_dir = s.config_dir / "../var";
    s.plugins_dir = s.config_dir / "../plugins";
    if (!root.IsMap() && !root.IsNull())
        throw Error(ErrorCode::invalid_argument, where(file, root.Mark()) + ": expected a mapping");
    for (const auto& kv : root) {
        const auto key = kv.first.as<std::string>();
        const auto& value = kv.second;
        try {
            if (key == "data_dir") s.data_dir = resolve(s.config_dir, value.as<std::string>());
            else if (key == "plugins_dir") s.plugins_dir = resolve(s.config_dir, value.as<std::string>());
            else if (key == "listen") s.listen = value.as<std::string>();
            else if (key == "log_level") s.log_level = value.as<std::string>();
            else if (key == "plugin_start_timeout_ms")
                s.plugin_start_timeout = std::chrono::milliseconds(value.as<long>());
            else if (key == "drain_timeout_ms")
                s.drain_timeout = std::chrono::milliseconds(value.as<long>());
            else if (key == "cores") s.cores = value.as<unsigned>();
            else
                throw Error(ErrorCode::invalid_argument,
                            where(file, kv.first.Mark()) + ": unknown key '" + key + "'");
        } catch (const YAML::Exception&) {
            throw Error(ErrorCode::invalid_argument,
                        where(file, value.Mark()) + ": wrong type for '" + key + "'");
        }
    }
    s.data_dir = s.data_dir.lexically_normal();
    s.plugins_dir = s.plugins_dir.lexically_normal();
    return s;
}

}  // namespace wharf::host
