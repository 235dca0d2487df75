#include "modules/plugin_library.hpp"

#include <elf.h>

#include <fstream>
#include <cstring>
#include <system_error>

#include "base/error.hpp"

namespace wharf::host {
namespace {

// dlopen maps segments without checking that the file holds them; touching a
// page past the end of a truncated file raises SIGBUS later, at any time. So
// check that the ELF headers and every loadable segment lie inside the file.
void check_elf(const std::filesystem::path& file) {
    auto fail = [&](const std::string& why) {
        throw Error(ErrorCode::plugin, "cannot load " + file.filename().string() + ": " + why);
    };
    std::ifstream in(file, std::ios::binary);
    if (!in) fail("cannot read the file");
    in.seekg(0, std::ios::end);
    const auto size = static_cast<std::uint64_t>(in.tellg());
    in.seekg(0);
    Elf64_Ehdr eh{};
    if (!in.read(reinterpret_cast<char*>(&eh), sizeof eh) ||
        std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        fail("not an ELF shared object");
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_type != ET_DYN)
        fail("not a 64-bit ELF shared object");
    if (eh.e_phentsize != sizeof(Elf64_Phdr) ||
        eh.e_phoff + std::uint64_t(eh.e_phnum) * eh.e_phentsize > size)
        fail("truncated or corrupt ELF: program headers lie past the end of the file");
    if (eh.e_shoff + std::uint64_t(eh.e_shnum) * eh.e_shentsize > size)
        fail("truncated or corrupt ELF: section headers lie past the end of the file (" +
             std::to_string(size) + " bytes)");
    in.seekg(static_cast<std::streamoff>(eh.e_phoff));
    for (int i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph{};
        if (!in.read(reinterpret_cast<char*>(&ph), sizeof ph)) fail("truncated program header");
        if (ph.p_type == PT_LOAD && ph.p_offset + ph.p_filesz > size)
            fail("truncated or corrupt ELF: segment " + std::to_string(i) + " ends at byte " +
                 std::to_string(ph.p_offset + ph.p_filesz) + ", the file has " +
                 std::to_string(size));
    }
}

}  // namespace

std::shared_ptr<PluginLibrary> PluginLibrary::load(const std::filesystem::path& file,
                                                   bool delete_file_on_unload) {
    std::shared_ptr<PluginLibrary> lib(new PluginLibrary());
    lib->file_ = file;
    check_elf(file);
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
