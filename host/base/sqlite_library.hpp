#pragma once
// The flags every SQLite connection of the host opens with, and the
// process-wide SQLite settings that must be in place before the first one.
//
// sqlite_open_flags() configures the library once (first call, any thread):
// SQLITE_CONFIG_MEMSTATUS off, so SQLite's allocations do not take a global
// mutex to keep statistics the host never reads (measured: 12 % of a job
// store exchange). If SQLite was already initialised by someone else, the
// setting is left as it is (sqlite3_config refuses after initialisation;
// nothing else changes). The flags: read-write, create, and no per-connection
// mutex, since every connection of the host is used by one thread at a time
// (SQLite's multi-thread mode).

namespace wharf::host {

/// SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, after
/// configuring the library once.
int sqlite_open_flags();

}  // namespace wharf::host
