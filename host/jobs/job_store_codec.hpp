#pragma once
// How every JobStore implementation stores a job's values, so that the SQLite
// and the PostgreSQL store keep the same representation: times as
// microseconds since the epoch, payloads as a JSON object's text, states by
// their SDK names, text filters as LIKE patterns with '\' as the escape.
// Host-internal; pure functions.

#include <boost/property_tree/ptree.hpp>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/cron.hpp"
#include "base/error.hpp"
#include "base/ptree_json.hpp"
#include "jobs/job_store.hpp"

namespace wharf::host::job_codec {

inline std::int64_t to_micros(JobTimePoint t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

inline JobTimePoint from_micros(std::int64_t us) {
    return JobTimePoint(
        std::chrono::duration_cast<JobClock::duration>(std::chrono::microseconds(us)));
}

/// The payload as the JSON object it is stored as; Error(invalid_argument)
/// for a value or a list.
inline nlohmann::json payload_to_json(const boost::property_tree::ptree& payload) {
    if (payload.empty()) {
        if (!payload.data().empty()) {
            throw Error(ErrorCode::invalid_argument, "job payload must be an object, not a value");
        }
        return nlohmann::json::object();
    }
    nlohmann::json json = ptree_to_json(payload);
    if (!json.is_object()) {
        throw Error(ErrorCode::invalid_argument, "job payload must be an object, not a list");
    }
    return json;
}

/// JSON text as stored (invalid UTF-8 replaced, never thrown on).
inline std::string json_text(const nlohmann::json& json) {
    return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// A stored payload back as a ptree (a damaged text reads as empty).
inline boost::property_tree::ptree payload_from_text(const std::string& text) {
    return json_to_ptree(nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false));
}

/// A stored state name; Error(internal) for one this version does not know.
inline JobState state_from_text(const std::string& text) {
    auto s = job_state_from_string(text);
    if (!s) throw Error(ErrorCode::internal, "unknown job state in store: " + text);
    return *s;
}

/// `text` as a LIKE pattern matching itself (with ESCAPE '\').
inline std::string escape_like(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (c == '%' || c == '_' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    return out;
}

/// A new job as every store writes it, checked before its transaction.
struct PreparedJob {
    nlohmann::json payload_json;  ///< the payload as stored (read back into the result)
    std::string payload;          ///< its text
    /// When it first runs: scheduled_at, else the cron's next fire after
    /// now; nullopt: queued at once.
    std::optional<JobTimePoint> first_run;
};

/// Checks `job` (topic, queue, max_retries, a schedule name only with a cron,
/// a cron that parses and fires after `now`, an object payload) and prepares
/// it. Error(invalid_argument) naming what is wrong; nothing is stored.
inline PreparedJob prepare_new_job(const NewJob& job, JobTimePoint now) {
    if (job.topic.empty()) throw Error(ErrorCode::invalid_argument, "job topic is empty");
    if (job.queue.empty()) throw Error(ErrorCode::invalid_argument, "job queue is empty");
    if (job.max_retries < -1) {
        throw Error(ErrorCode::invalid_argument, "job max_retries must be -1 or more");
    }
    if (!job.schedule_name.empty() && job.cron.empty()) {
        throw Error(ErrorCode::invalid_argument, "a schedule name needs a cron expression");
    }
    PreparedJob prepared;
    prepared.payload_json = payload_to_json(job.payload);
    prepared.payload = json_text(prepared.payload_json);
    prepared.first_run = job.scheduled_at;
    if (!job.cron.empty()) {
        auto cron = CronSchedule::parse(job.cron);
        if (!prepared.first_run) prepared.first_run = cron.next_after(now);
        if (!prepared.first_run) {
            throw Error(ErrorCode::invalid_argument,
                        "cron expression '" + job.cron + "' never fires after now");
        }
    }
    return prepared;
}

}  // namespace wharf::host::job_codec
