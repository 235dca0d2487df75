#pragma once
// OperationSubmission: the host's way in to the operations plugins provide
// (wharf.Operation services), used by the HTTP API, the CLI and the dashboard.
//
// submit(name, request, user) finds the operation by its descriptor name,
// lets the plugin validate the request (a refusal names field and value and
// nothing changes), counts the work and compares the count with `threshold`
// in the operation's configuration (descriptor.config, e.g.
// operations/delete): at or below it the operation runs at once on the
// calling thread with an in-memory JobContext that collects progress, log and
// report rows; above it a job is enqueued on descriptor.topic with the request
// as payload, submitted by `user`. So the caller gets either the result or a
// job id.
//
// Every call into plugin code is wrapped: an exception from validate, count
// or describe becomes Error(plugin) naming the operation; one from run ends
// the inline run as `error` with the exception's message, as it would a job.
//
// Inline runs have no stored job: JobContext::job().id is 0 and checkpoints
// live in memory for the length of the call.
//
// Ownership: the registry and the JobManager are not owned and must outlive
// the service. Threading: every method may be called from any thread; inline
// runs run on the caller's thread, several at once.

#include <boost/property_tree/ptree.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modules/service_registry.hpp"
#include "wharf/jobs.hpp"
#include "wharf/operations.hpp"

namespace wharf::host {

/// The configuration in force for a schema name (ConfigAdmin::current).
/// May throw when the schema is unknown; the operation then has no threshold.
using OperationConfigLookup =
    std::function<boost::property_tree::ptree(std::string_view config_name)>;

struct OperationSubmissionOptions {
    /// Report rows an inline run keeps for its answer; further rows are
    /// counted, not kept (a job keeps them all in the store).
    std::size_t max_report_rows = 10000;
    /// Log lines an inline run keeps (the last ones win).
    std::size_t max_log_lines = 1000;
    /// An inline run's attached result file is handed back whole up to this
    /// size; larger, the answer says so and carries no content.
    std::uint64_t max_inline_result_bytes = 64ull * 1024 * 1024;
};

/// An operation as the API lists it.
struct OperationInfo {
    wharf::OperationDescriptor descriptor;
    std::string owner;                       ///< the providing plugin's id
    std::optional<std::uint64_t> threshold;  ///< std::nullopt: no configuration in force
    bool email_enabled = false;
};

/// A request the operation refused before anything changed.
struct OperationRefusal {
    std::string field;
    std::string value;
    std::string message;
};

// --- result files (JobContext::attach_result) ---------------------------------------

/// The checkpoint key under which a job's attached result is recorded.
inline constexpr const char* kResultCheckpoint = "wharf.result";

/// A result file a consumer attached to a job.
struct ResultFile {
    std::filesystem::path path;  ///< absolute; in a directory named after the job id
    std::string download_name;   ///< Content-Disposition file name
    std::string content_type;    ///< e.g. "text/csv; charset=utf-8"
};

/// The checkpoint value that records `file`, and back (std::nullopt when the
/// text is not such a record).
std::string encode_result_file(const ResultFile& file);
std::optional<ResultFile> decode_result_file(std::string_view text);

/// Checks an attach_result call for job `id` (0 = inline run) and returns the
/// record. Throws std::invalid_argument naming what is wrong.
ResultFile check_result_file(const std::filesystem::path& file, std::string_view download_name,
                             std::string_view content_type, JobId id);

/// Deletes a job's result file and, when it is named after the job (or the
/// run is inline, `id` 0, and it is empty), its directory. Never throws.
void remove_result_file(const ResultFile& file, JobId id) noexcept;

/// A result an inline run attached: its content goes back to the caller.
struct InlineResult {
    std::string download_name;
    std::string content_type;
    std::uint64_t size = 0;
    std::string content;     ///< the whole file, up to max_inline_result_bytes
    bool truncated = false;  ///< larger than that: `content` is empty
};

/// What an inline run ended with.
struct InlineRun {
    std::string outcome;  ///< "succeeded", "failed" or "error"
    std::string message;
    std::int64_t progress_done = 0;
    std::int64_t progress_total = 0;
    std::vector<std::string> log;
    std::vector<std::vector<std::string>> report;  ///< header row first, as reported
    std::uint64_t report_rows_dropped = 0;         ///< beyond max_report_rows
    std::chrono::milliseconds duration{0};
    std::optional<InlineResult> result;  ///< what the run attached (attach_result)
};

struct SubmissionResult {
    enum class Mode { sync, job, refused };
    Mode mode = Mode::refused;
    std::string operation;
    std::string description;  ///< describe(request, count), "" when refused
    std::uint64_t count = 0;
    std::optional<std::uint64_t> threshold;
    InlineRun run;             ///< mode sync
    wharf::Job job;            ///< mode job
    OperationRefusal refusal;  ///< mode refused
};

class OperationSubmission {
public:
    OperationSubmission(ServiceRegistryImpl& registry, wharf::JobManager& jobs,
                        OperationConfigLookup config, OperationSubmissionOptions options = {});

    /// Validates, counts and runs or enqueues `request` for operation `name`.
    /// Throws Error(not_found) for an unknown operation, Error(plugin) when the
    /// plugin throws anything but OperationRefused from validate/count/describe,
    /// and what JobManager::enqueue throws.
    SubmissionResult submit(std::string_view name, const boost::property_tree::ptree& request,
                            const std::string& user);

    /// Every registered operation, by name.
    std::vector<OperationInfo> list() const;

private:
    struct Found {
        std::shared_ptr<wharf::Operation> operation;
        wharf::OperationDescriptor descriptor;
        std::string owner;
    };
    std::vector<Found> operations() const;
    std::optional<std::uint64_t> threshold_of(const wharf::OperationDescriptor& d,
                                              bool* email_enabled) const;

    ServiceRegistryImpl& registry_;
    wharf::JobManager& jobs_;
    OperationConfigLookup config_;
    OperationSubmissionOptions options_;
};

}  // namespace wharf::host
