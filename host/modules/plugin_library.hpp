#pragma once
// PluginLibrary: one loaded plugin binary (a private copy of the plugin file)
// and its entry point.
//
// Loading reads only the entry point's magic and ABI numbers before anything
// else; `check_abi` says whether this host accepts them. The library is
// unloaded (dlclose) when the last shared_ptr to it goes, and its private copy
// is then deleted. Everything a plugin hands out holds such a shared_ptr (see
// ServiceRegistryImpl's anchors), so code is never unmapped while in use.
//
// Thread-safety: a loaded PluginLibrary is immutable.

#include <boost/dll/shared_library.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "wharf/plugin.hpp"

namespace wharf::host {

class PluginLibrary {
public:
    /// Loads `file` with RTLD_NOW | RTLD_LOCAL and finds the entry point.
    /// Throws Error(plugin) with the reason ("no entry point wharf_plugin_entry",
    /// the loader's message, a bad magic number). Does not check the ABI.
    static std::shared_ptr<PluginLibrary> load(const std::filesystem::path& file,
                                               bool delete_file_on_unload);
    ~PluginLibrary();
    PluginLibrary(const PluginLibrary&) = delete;
    PluginLibrary& operator=(const PluginLibrary&) = delete;

    const wharf::PluginEntry& entry() const noexcept { return *entry_; }
    const std::filesystem::path& file() const noexcept { return file_; }

private:
    PluginLibrary() = default;
    boost::dll::shared_library library_;
    const wharf::PluginEntry* entry_ = nullptr;
    std::filesystem::path file_;
    bool delete_file_ = false;
};

/// Why this host refuses the entry's ABI, or std::nullopt when it accepts it:
/// the major must equal the host's and the minor must not be newer.
std::optional<std::string> check_abi(std::uint32_t major, std::uint32_t minor);

/// Whether the plugins at `file` is mapped into this process right now
/// (reads /proc/self/maps); used to prove an old version was unloaded.
bool is_mapped(const std::filesystem::path& file);

}  // namespace wharf::host
