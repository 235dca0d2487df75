#pragma once
// ConfigError: one problem with one configuration file, located by line and
// column, in the form every refusal takes: `file:line:col: reason`.
//
// Plain value type; no ownership, no threading concerns. `file` is the name an
// admin recognises (a path relative to the config directory at run time, the
// path as given on the command line in `wharf config validate`).

#include <string>

namespace wharf::host {

/// A position in a config file, both 1-based.
struct SourceMark {
    int line = 1;
    int column = 1;
    friend bool operator==(const SourceMark&, const SourceMark&) = default;
};

struct ConfigError {
    std::string file;
    SourceMark mark;
    std::string message;

    /// `file:line:col: message`.
    std::string to_string() const {
        return file + ":" + std::to_string(mark.line) + ":" + std::to_string(mark.column) + ": " +
               message;
    }
};

}  // namespace wharf::host
