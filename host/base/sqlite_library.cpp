#include "base/sqlite_library.hpp"

#include <sqlite3.h>

#include <mutex>

namespace wharf::host {

int sqlite_open_flags() {
    static std::once_flag configured;
    std::call_once(configured, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
    return SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
}

}  // namespace wharf::host
