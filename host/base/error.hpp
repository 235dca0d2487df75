#pragma once
// The host's one exception type. The host throws when the caller cannot go on;
// "not found" is std::optional, never an Error. An Error carries a code that
// the HTTP layer maps to a status and the CLI to an exit code, and a message
// that says where and why (file:line:col, field, path, plugin id).

#include <stdexcept>
#include <string>

namespace wharf::host {

enum class ErrorCode {
    invalid_argument,  ///< bad input from outside: request, path, file content
    not_found,         ///< a named thing that must exist does not
    conflict,          ///< the operation is not allowed in the current state
    io,                ///< the file system or a child process failed
    plugin,            ///< a plugin binary or plugin call failed
    storage,           ///< the database failed
    internal,          ///< a bug: an invariant did not hold
};

const char* to_string(ErrorCode code) noexcept;

class Error : public std::runtime_error {
public:
    Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    ErrorCode code() const noexcept { return code_; }

private:
    ErrorCode code_;
};

}  // namespace wharf::host
