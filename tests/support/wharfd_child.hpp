#pragma once
// Test support for tests that start wharfd as a ChildProcess of their own:
// what its log says about being ready and where its HTTP API listens.
#include <string>

namespace wharf::test {

/// Whether wharfd's log `output` says plugin `plugin_id` is active and wharfd is ready.
inline bool wharfd_ready(const std::string& output, const std::string& plugin_id) {
    return output.find("plugin active id=" + plugin_id) != std::string::npos &&
           output.find("wharfd ready") != std::string::npos;
}

/// The address ("127.0.0.1:<port>") wharfd's log `output` says the HTTP API
/// listens on; empty when it does not say yet.
inline std::string listening_address(const std::string& output) {
    auto at = output.find("http listening address=");
    if (at == std::string::npos) return {};
    return output.substr(at + 23, output.find_first_of(" \n", at + 23) - (at + 23));
}

}  // namespace wharf::test
