#pragma once
// Host logging: one spdlog logger per subsystem or plugin, all writing to the
// same sinks (stderr by default). Lines follow the house style: an event phrase
// then `key=value` fields. Plugins get a wharf::Logger that forwards here and
// tags every line with `plugin=<id>`.
//
// Thread-safety: all functions may be called from any thread.

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

#include "wharf/logger.hpp"

namespace wharf::host {

/// Sets the level of every host logger ("trace" ... "error", "off").
/// Throws Error(invalid_argument) for an unknown level name.
void set_log_level(std::string_view level);

/// The logger named `name` (created on first use with the shared sinks).
std::shared_ptr<spdlog::logger> logger(const std::string& name);

/// A wharf::Logger for plugin `plugin_id`.
std::shared_ptr<wharf::Logger> make_plugin_logger(const std::string& plugin_id);

}  // namespace wharf::host
