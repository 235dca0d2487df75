// `wharf config validate DIR`: checks a config tree offline with the host's
// own schemas and code (host/config), plus the schemas of the plugins in
// --plugins, read from their manifests by the out-of-process probe without
// starting them. Prints every problem as `file:line:col: reason` on stdout and
// exits 1 when there is any.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "config/host_schemas.hpp"
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
    if (!plugins_dir.empty()) {
        for (const auto& p : declare_plugins(plugins_dir, find_probe(probe), catalog)) {
            std::cout << p << "\n";
            ++problems;
        }
    }
    auto report = host::validate_tree(dir, dir, catalog);
    for (auto& e : report.errors) {
        if (plugins_dir.empty() && e.message.rfind("no plugin declares ", 0) == 0)
            e.message += " (pass --plugins DIR to check it against the plugin's schema)";
        std::cout << e.to_string() << "\n";
        ++problems;
    }
    if (problems == 0) {
        std::cerr << "wharf config validate: " << report.files << " files OK\n";
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
                             "a plugins directory whose plugins' schemas apply (operations/*)");
    validate_cmd->add_option("--probe", *probe, "the wharf-plugin-probe program to use");
    validate_cmd->callback(
        [&exit_code, dir, plugins, probe] { exit_code = validate(*dir, *plugins, *probe); });
}

}  // namespace wharf::cli
