#include "modules/plugin_library.hpp"

#include <fstream>
#include <system_error>

#include "base/error.hpp"

namespace wharf::host {

std::shared_ptr<PluginLibrary> PluginLibrary::load(const std::filesystem::path& file,
                                                   bool delete_file_on_unload) {
    std::shared_ptr<PluginLibrary> lib(new PluginLibrary());
    lib->file_ = file;
    boost::dll::fs::error_code ec;
    lib->library_.load(boost::dll::fs::path(file.string()),
                       boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
    if (ec) {
        throw Error(ErrorCode::plugin, "cannot load " + file.filename().string() + ": " +
                                           (ec.message().empty() ? "dlopen failed" : ec.message()));
    }
    // From here on the destructor unloads the library on any error.
    lib->delete_file_ = delete_file_on_unload;
    if (!lib->library_.has(wharf::kPluginEntrySymbol)) {
        throw Error(ErrorCode::plugin, std::string("no entry point ") + wharf::kPluginEntrySymbol +
                                           " (build the plugin with WHARF_PLUGIN)");
    }
    lib->entry_ = &lib->library_.get_alias<const wharf::PluginEntry>(wharf::kPluginEntrySymbol);
    if (lib->entry_->magic != wharf::PluginEntry::kMagic) {
        throw Error(ErrorCode::plugin, std::string("entry point ") + wharf::kPluginEntrySymbol +
                                           " has a bad magic number: not a Wharf plugin entry");
    }
    return lib;
}

PluginLibrary::~PluginLibrary() {
    if (library_.is_loaded()) library_.unload();
    if (delete_file_) {
        std::error_code ec;
        std::filesystem::remove(file_, ec);
    }
}

std::optional<std::string> check_abi(std::uint32_t major, std::uint32_t minor) {
    auto v = [](std::uint32_t a, std::uint32_t b) {
        return std::to_string(a) + "." + std::to_string(b);
    };
    if (major != wharf::kSdkAbiMajor || minor > wharf::kSdkAbiMinor) {
        return "plugin built against SDK ABI " + v(major, minor) + ", host provides ABI " +
               v(wharf::kSdkAbiMajor, wharf::kSdkAbiMinor) +
               (major != wharf::kSdkAbiMajor ? " (major differs)" : " (plugin minor is newer)");
    }
    return std::nullopt;
}

bool is_mapped(const std::filesystem::path& file) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    const std::string name = file.string();
    while (std::getline(maps, line)) {
        if (line.size() >= name.size() && line.compare(line.size() - name.size(), name.size(), name) == 0)
            return true;
    }
    return false;
}

}  // namespace wharf::host
