#pragma once
// How the admin API spells things: jobs, plugins, configuration status and
// times as JSON (nlohmann::json), job lists and reports as CSV (RFC 4180),
// times as RFC 3339 in UTC with milliseconds ("2024-05-01T12:00:00.123Z").
//
// The AEM labels the dashboard shows are defined here once: active -> Active,
// succeeded -> Success, failed and given_up -> Fail, error -> Error,
// scheduled -> Scheduled, queued -> Queued, stopped -> Stopped.
//
// Pure functions; thread-safe.

#include <boost/property_tree/ptree.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/ptree_json.hpp"
#include "config/config_admin.hpp"
#include "modules/plugin_manager.hpp"
#include "wharf/jobs.hpp"
#include "wharf/queues.hpp"

namespace wharf::host {

/// The AEM label of a state ("Active", "Success", "Fail", ...).
const char* aem_label(JobState state) noexcept;

/// The states a name stands for: a state's own name ("given_up") or an AEM
/// label, case-insensitive ("success", "Fail" = failed and given_up).
std::vector<JobState> states_named(std::string_view name);

/// RFC 3339, UTC, milliseconds.
std::string format_time(JobTime time);

/// Parses RFC 3339 ("2024-05-01T12:00:00Z", "...T12:00:00.5+02:00", a date
/// alone "2024-05-01" meaning midnight UTC), or std::nullopt. Years 1970 to
/// 2200 only (the clock's range ends in 2262).
std::optional<JobTime> parse_time(std::string_view text);

/// Everything the API tells about a job.
nlohmann::json job_to_json(const Job& job);

/// The job list's CSV header and one row per job.
std::vector<std::string> job_csv_header();
std::vector<std::string> job_csv_row(const Job& job);

/// One CSV record (RFC 4180: quoted when needed, CRLF-terminated).
std::string csv_record(const std::vector<std::string>& cells);

nlohmann::json plugin_to_json(const PluginInfo& plugin);
nlohmann::json config_file_to_json(const ConfigFileStatus& status);
nlohmann::json queue_settings_to_json(const wharf::QueueSettings& settings);

}  // namespace wharf::host
