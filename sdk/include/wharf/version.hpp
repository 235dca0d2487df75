#pragma once
// Versions of the Wharf SDK and its binary interface.
//
// A plugin records the ABI it was compiled against in its entry point
// (WHARF_PLUGIN does this). The host accepts a plugin when the majors are equal
// and the plugin's minor is not newer than the host's:
//   - minor bump: something was added at the end (a new virtual method at the end
//     of an interface, a new interface, a new manifest key); old plugins still work.
//   - major bump: anything else; every plugin must be rebuilt.
//
// History: 1.1 added JobContext::attach_result (a 1.0 host has no such entry,
// so it must refuse a 1.1 plugin that may call it); 1.2 added
// Config::directory() (likewise: 1.1 plugins load on a 1.2 host, a 1.2 plugin
// is refused by a 1.1 host).

#include <cstdint>

namespace wharf {

/// ABI major of this SDK. Plugins with another major are refused.
inline constexpr std::uint32_t kSdkAbiMajor = 1;
/// ABI minor of this SDK. Plugins built with a newer minor are refused.
inline constexpr std::uint32_t kSdkAbiMinor = 2;
/// Human-readable SDK version (semver); informational.
inline constexpr const char* kSdkVersion = "1.2.0";

}  // namespace wharf
