#pragma once
// Out-of-process probing of plugin binaries.
//
// Before the host loads a new or changed binary, a short-lived child process
// (wharf-plugin-probe FILE) loads it, reads the entry point and the manifest,
// and prints them as JSON on stdout. Static initialisers, the loader and the
// manifest function run in the child, so a binary that crashes or hangs there
// costs the host nothing: it is quarantined with the reason instead.

#include <boost/property_tree/ptree.hpp>
#include <chrono>
#include <filesystem>
#include <string>

namespace wharf::host {

struct ProbeResult {
    enum class Outcome {
        ok,            ///< entry point found; ABI numbers (and manifest, if ABI ok) read
        refused,       ///< loads, but not a usable plugin (no entry point, bad magic)
        crashed,       ///< the child died from a signal or exited abnormally
        hung,          ///< the child did not finish within the timeout
        failed,        ///< the probe itself could not run
    };
    Outcome outcome = Outcome::failed;
    std::string message;  ///< the reason for anything but ok
    std::uint32_t abi_major = 0;
    std::uint32_t abi_minor = 0;
    std::string sdk_version;
    bool has_manifest = false;             ///< false when the ABI is refused
    boost::property_tree::ptree manifest;  ///< Manifest::to_ptree() form
};

/// Runs `probe_executable file` and waits at most `timeout`.
ProbeResult probe_plugin(const std::filesystem::path& probe_executable,
                         const std::filesystem::path& file, std::chrono::milliseconds timeout);

/// The child's side: loads `file`, prints the JSON result, returns the exit
/// code (0 ok, 2 refused). Crashes and hangs of plugin code happen here.
int run_probe(const std::filesystem::path& file);

}  // namespace wharf::host
