#include "base/error.hpp"

namespace wharf::host {

const char* to_string(ErrorCode code) noexcept {
    switch (code) {
        case ErrorCode::invalid_argument: return "invalid_argument";
        case ErrorCode::not_found: return "not_found";
        case ErrorCode::conflict: return "conflict";
        case ErrorCode::io: return "io";
        case ErrorCode::plugin: return "plugin";
        case ErrorCode::storage: return "storage";
        case ErrorCode::internal: return "internal";
    }
    return "internal";
}

}  // namespace wharf::host
