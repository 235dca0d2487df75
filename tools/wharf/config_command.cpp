// `wharf config validate DIR`: checks a config tree offline with the host's
// own schemas and code (host/config), plus the schemas of the plugins in
// --plugins (default: the plugins_dir of DIR/wharf.yaml, when it exists), read
// from their manifests by the out-of-process probe without starting them.
// Prints every problem as `file:line:col: reason` on stdout and exits 1 when
// there is any; a file no schema declares is only a warning when no plugins
// directory is at hand.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "config/host_schemas.hpp"
#include "config/host_settings.hpp"
#include "config/schema_catalog.hpp"
#include "modules/plugin_probe.hpp"
#include "wharf/plugin.hpp"

namespace fs = std::filesystem;

namespace wharf::cli {
namespace {

using host::SchemaCatalog;

fs::path self_directory() {
    std::error_code ec;
    auto exe = fs::read_symlink("/proc/self/exe", ec);
    return ec ? fs::path() : exe.parent_path();
}

// The probe: as given, from the environment, beside this program, or as built.
fs::path find_probe(const std::string& given) {
    if (!given.empty()) return given;
    if (const char* env = std::getenv("WHARF_PLUGIN_PROBE"); env && *env) return env;
    std::error_code ec;
    auto beside = self_directory() / "wharf-plugin-probe";
    if (fs::exists(beside, ec)) return beside;
    return WHARF_BUILD_PROBE_PATH;
}

// Reads every plugin's schemas into `catalog`; returns the problems.
std::vector<std::string> declare_plugins(const fs::path& dir, const fs::path& probe,
                                         SchemaCatalog& catalog) {
    std::vector<std::string> problems;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        problems.push_back(dir.string() + ": not a directory");
        return problems;
    }
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir, ec))
        if (entry.path().extension() == ".so") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
        auto result = host::probe_plugin(probe, file, std::chrono::seconds(10));
        if (result.outcome != host::ProbeResult::Outcome::ok) {
            problems.push_back(file.string() +
                               ": cannot read the plugin's manifest: " + result.message);
            continue;
        }
        if (!result.has_manifest) {
            problems.push_back(
                file.string() + ": plugin built for SDK ABI " + std::to_string(result.abi_major) +
                "." + std::to_string(result.abi_minor) + ", which this wharf does not accept");
            continue;
        }
        auto manifest = wharf::Manifest::from_ptree(result.manifest);
        if (auto problem = catalog.declare(manifest.id, manifest.configs))
            problems.push_back(file.string() + ": plugin " + manifest.id +
                               ": its configuration schemas are refused: " + *problem);
    }
    return problems;
}

// The plugins directory to read schemas from: --plugins, else the
// plugins_dir that DIR/wharf.yaml names (resolved as wharfd resolves it) when
// that directory exists. Empty when there is none.
fs::path plugins_to_check(const fs::path& dir, const std::string& given) {
    if (!given.empty()) return given;
    try {
        auto settings = host::load_host_settings(dir);
        std::error_code ec;
        if (fs::is_directory(settings.plugins_dir, ec)) return settings.plugins_dir;
    } catch (const std::exception&) {
        // A bad or missing wharf.yaml is reported by the tree check itself.
    }
    return {};
}

int validate(const std::string& dir, const std::string& plugins_dir, const std::string& probe) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        std::cerr << "wharf config validate: " << dir << " is not a directory\n";
        return 2;
    }
    SchemaCatalog catalog;
    {
        std::vector<wharf::ConfigSchema> schemas;
        std::vector<host::ConfigCheck> checks;
        for (auto& s : host::host_schemas()) {
            schemas.push_back(std::move(s.schema));
            checks.push_back(std::move(s.check));
        }
        catalog.declare(host::kHostOwner, schemas, checks);
    }
    std::size_t problems = 0;
    auto plugins = plugins_to_check(dir, plugins_dir);
    if (!plugins.empty()) {
        if (plugins_dir.empty())
            std::cerr << "wharf config validate: plugin schemas from " << plugins.string()
                      << " (plugins_dir in wharf.yaml)\n";
        for (const auto& p : declare_plugins(plugins, find_probe(probe), catalog)) {
            std::cout << p << "\n";
            ++problems;
        }
    }
    auto report = host::validate_tree(dir, dir, catalog);
    for (auto& e : report.errors) {
        std::cout << e.to_string() << "\n";
        ++problems;
    }
    // With the plugins that will run at hand, a file none of them declares is
    // a mistake (a misspelt operation); without them it is only unchecked,
    // and wharfd keeps it pending until its plugin is installed.
    std::size_t unchecked = 0;
    for (auto& e : report.undeclared) {
        if (plugins.empty()) {
            e.message = "warning: " + e.message +
                        " (not checked: no plugins directory; pass --plugins DIR)";
            ++unchecked;
        } else {
            ++problems;
        }
        std::cout << e.to_string() << "\n";
    }
    if (problems == 0) {
        std::cerr << "wharf config validate: " << report.files << " files OK";
        if (unchecked) std::cerr << " (" << unchecked << " not checked against a plugin schema)";
        std::cerr << "\n";
        return 0;
    }
    std::cerr << "wharf config validate: " << problems << (problems == 1 ? " problem" : " problems")
              << " in " << dir << " (" << report.files << " files checked)\n";
    return 1;
}

}  // namespace

void add_config_commands(CLI::App& app, int& exit_code) {
    auto* config = app.add_subcommand("config", "configuration files");
    config->require_subcommand(1);
    auto* validate_cmd =
        config->add_subcommand("validate",
                               "check a config tree offline; prints file:line:col: reason for "
                               "every problem and exits 1 if there is any");
    // Owned by the app's callbacks for its whole life.
    auto dir = std::make_shared<std::string>();
    auto plugins = std::make_shared<std::string>();
    auto probe = std::make_shared<std::string>();
    validate_cmd->add_option("DIR", *dir, "the config directory (e.g. configs/)")->required();
    validate_cmd->add_option("--plugins", *plugins,
                             "a plugins directory whose plugins' schemas apply (operations/*); "
                             "default: plugins_dir from DIR/wharf.yaml if it exists");
    validate_cmd->add_option("--probe", *probe, "the wharf-plugin-probe program to use");
    validate_cmd->callback(
        [&exit_code, dir, plugins, probe] { exit_code = validate(*dir, *plugins, *probe); });
}

}  // namespace wharf::cli
