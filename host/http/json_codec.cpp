#include "http/json_codec.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <ctime>

namespace wharf::host {

using Json = nlohmann::json;

const char* aem_label(JobState state) noexcept {
    switch (state) {
        case JobState::queued:
            return "Queued";
        case JobState::scheduled:
            return "Scheduled";
        case JobState::active:
            return "Active";
        case JobState::succeeded:
            return "Success";
        case JobState::failed:
        case JobState::given_up:
            return "Fail";
        case JobState::error:
            return "Error";
        case JobState::stopped:
            return "Stopped";
    }
    return "Queued";
}

std::vector<JobState> states_named(std::string_view name) {
    if (auto state = job_state_from_string(name)) return {*state};
    std::string folded(name);
    std::transform(folded.begin(), folded.end(), folded.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::vector<JobState> out;
    for (auto s : {JobState::queued, JobState::scheduled, JobState::active, JobState::succeeded,
                   JobState::failed, JobState::error, JobState::stopped, JobState::given_up}) {
        std::string label = aem_label(s);
        std::transform(label.begin(), label.end(), label.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (label == folded || folded == to_string(s)) out.push_back(s);
    }
    return out;
}

std::string format_time(JobTime time) {
    using namespace std::chrono;
    auto ms = duration_cast<milliseconds>(time.time_since_epoch()).count();
    auto secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int millis = static_cast<int>(ms - static_cast<long long>(secs) * 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
    return buf;
}

std::optional<JobTime> parse_time(std::string_view text) {
    // Digits at fixed positions; anything else is refused rather than guessed.
    auto number = [&](std::size_t pos, std::size_t len) -> std::optional<int> {
        if (pos + len > text.size()) return std::nullopt;
        int value = 0;
        for (std::size_t i = pos; i < pos + len; ++i) {
            if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
            value = value * 10 + (text[i] - '0');
        }
        return value;
    };
    auto year = number(0, 4), month = number(5, 2), day = number(8, 2);
    if (!year || !month || !day || text.size() < 10 || text[4] != '-' || text[7] != '-')
        return std::nullopt;
    if (*month < 1 || *month > 12 || *day < 1 || *day > 31) return std::nullopt;
    // system_clock counts nanoseconds in 64 bits: it ends in 2262.
    if (*year < 1970 || *year > 2200) return std::nullopt;
    std::tm tm{};
    tm.tm_year = *year - 1900;
    tm.tm_mon = *month - 1;
    tm.tm_mday = *day;
    long long micros = 0;
    long offset_seconds = 0;
    if (text.size() > 10) {
        if (text[10] != 'T' && text[10] != 't' && text[10] != ' ') return std::nullopt;
        auto hour = number(11, 2), minute = number(14, 2), second = number(17, 2);
        if (!hour || !minute || !second || text[13] != ':' || text[16] != ':') return std::nullopt;
        if (*hour > 23 || *minute > 59 || *second > 60) return std::nullopt;
        tm.tm_hour = *hour;
        tm.tm_min = *minute;
        tm.tm_sec = *second;
        std::size_t pos = 19;
        if (pos < text.size() && text[pos] == '.') {
            ++pos;
            long long scale = 100000;
            std::size_t digits = 0;
            while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
                if (scale > 0) micros += (text[pos] - '0') * scale;
                scale /= 10;
                ++pos;
                ++digits;
            }
            if (digits == 0 || digits > 9) return std::nullopt;
        }
        if (pos >= text.size()) return std::nullopt;  // a zone is required with a time
        if (text[pos] == 'Z' || text[pos] == 'z') {
            if (pos + 1 != text.size()) return std::nullopt;
        } else if (text[pos] == '+' || text[pos] == '-') {
            auto oh = number(pos + 1, 2), om = number(pos + 4, 2);
            if (!oh || !om || text.size() != pos + 6 || text[pos + 3] != ':' || *oh > 23 ||
                *om > 59)
                return std::nullopt;
            offset_seconds = (*oh * 3600L + *om * 60L) * (text[pos] == '-' ? -1 : 1);
        } else {
            return std::nullopt;
        }
    }
    std::time_t secs = timegm(&tm);
    std::tm check{};
    gmtime_r(&secs, &check);
    if (check.tm_mday != *day) return std::nullopt;  // 2024-02-31 and the like
    secs -= offset_seconds;
    return JobTime(std::chrono::duration_cast<JobTime::duration>(
        std::chrono::seconds(secs) + std::chrono::microseconds(micros)));
}

namespace {

Json optional_time(const std::optional<JobTime>& time) {
    return time ? Json(format_time(*time)) : Json(nullptr);
}

std::string description_of(const Job& job) {
    // Operations put a sentence for people in their payload; plain topics
    // have nothing better than the topic itself.
    auto text = job.payload.get_optional<std::string>(wharf::kJobDescriptionKey);
    return text && !text->empty() ? *text : job.topic;
}

// The payload as the consumer sees it: without the host's description.
Json payload_of(const Job& job) {
    if (job.payload.empty() && job.payload.data().empty()) return Json::object();
    Json payload = ptree_to_json(job.payload);
    if (payload.is_object()) payload.erase(wharf::kJobDescriptionKey);
    return payload;
}

}  // namespace

Json job_to_json(const Job& job) {
    Json j;
    j["id"] = job.id;
    j["topic"] = job.topic;
    j["description"] = description_of(job);
    j["queue"] = job.queue;
    j["state"] = to_string(job.state);
    j["status"] = aem_label(job.state);
    j["final"] = is_final(job.state);
    j["submitted_by"] = job.submitted_by;
    j["payload"] = payload_of(job);
    j["created"] = format_time(job.created);
    j["scheduled"] = optional_time(job.scheduled);
    j["started"] = optional_time(job.started);
    j["finished"] = optional_time(job.finished);
    j["cron"] = job.cron;
    j["retry_count"] = job.retry_count;
    j["max_retries"] = job.max_retries;
    Json progress;
    progress["done"] = job.progress_done;
    progress["total"] = job.progress_total;
    progress["percent"] =
        job.progress_total > 0
            ? Json(std::min(100.0, 100.0 * static_cast<double>(job.progress_done) /
                                       static_cast<double>(job.progress_total)))
            : Json(nullptr);
    j["progress"] = progress;
    j["eta"] = optional_time(job.eta);
    j["result_message"] = job.result_message;
    j["log_lines"] = job.log_lines;
    j["report_rows"] = job.report_rows;
    j["last_heartbeat"] = optional_time(job.last_heartbeat);
    j["stop_requested"] = job.stop_requested;
    j["stuck"] = job.stuck;
    j["overdue"] = job.overdue;
    // Deleting is refused for these; the dashboard greys the button out.
    j["deletable"] = job.state != JobState::queued && job.state != JobState::active;
    j["stoppable"] = !is_final(job.state) && !job.stop_requested;
    std::string self = "/api/jobs/" + job_id_to_string(job.id);
    j["links"] = {{"self", self}, {"log", self + "/log"}, {"report", self + "/report.csv"}};
    return j;
}

std::vector<std::string> job_csv_header() {
    return {"id",          "status",        "state",         "topic",
            "description", "queue",         "submitted_by",  "created",
            "started",     "finished",      "progress_done", "progress_total",
            "retry_count", "result_message"};
}

std::vector<std::string> job_csv_row(const Job& job) {
    auto t = [](const std::optional<JobTime>& time) { return time ? format_time(*time) : ""; };
    return {job_id_to_string(job.id),
            aem_label(job.state),
            to_string(job.state),
            job.topic,
            description_of(job),
            job.queue,
            job.submitted_by,
            format_time(job.created),
            t(job.started),
            t(job.finished),
            std::to_string(job.progress_done),
            std::to_string(job.progress_total),
            std::to_string(job.retry_count),
            job.result_message};
}

std::string csv_record(const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t i = 0; i < cells.size(); ++i) {
        if (i > 0) out.push_back(',');
        const auto& cell = cells[i];
        if (cell.find_first_of(",\"\r\n") == std::string::npos) {
            out += cell;
            continue;
        }
        out.push_back('"');
        for (char c : cell) {
            if (c == '"') out.push_back('"');
            out.push_back(c);
        }
        out.push_back('"');
    }
    out += "\r\n";
    return out;
}

Json plugin_to_json(const PluginInfo& p) {
    Json j;
    j["id"] = p.id;
    j["version"] = p.version;
    j["description"] = p.description;
    j["file"] = p.file.filename().string();
    j["content_sha256"] = p.content_hash;
    j["abi"] = std::to_string(p.abi_major) + "." + std::to_string(p.abi_minor);
    j["state"] = to_string(p.state);
    j["reason"] = p.reason;
    j["last_error"] = p.last_error;
    j["quarantined"] = p.state == PluginState::quarantined;
    j["provides"] = p.provides;
    Json requires_list = Json::array();
    for (const auto& r : p.requires_services)
        requires_list.push_back({{"interface", r.interface}, {"optional", r.optional}});
    j["requires"] = requires_list;
    j["missing"] = p.missing;
    Json services = Json::array();
    for (const auto& s : p.services) {
        if (!s) continue;
        services.push_back({{"id", s->id}, {"interface", s->interface}, {"ranking", s->ranking}});
    }
    j["services"] = services;
    Json configs = Json::array();
    for (const auto& c : p.configs) configs.push_back(c.name);
    j["configs"] = configs;
    j["loaded_versions"] = p.loaded_libraries;
    return j;
}

Json config_file_to_json(const ConfigFileStatus& s) {
    Json j;
    j["file"] = s.file;
    j["schema"] = s.schema;
    j["instance"] = s.instance;
    j["state"] = to_string(s.state);
    j["applied_version"] = s.applied_version;
    j["applied_sha256"] = s.applied_sha256;
    j["applied_at"] = optional_time(s.applied_at);
    Json errors = Json::array();
    for (const auto& e : s.errors)
        errors.push_back({{"file", e.file},
                          {"line", e.mark.line},
                          {"column", e.mark.column},
                          {"message", e.message},
                          {"text", e.to_string()}});
    j["errors"] = errors;
    j["refused_at"] = optional_time(s.refused_at);
    j["reason"] = s.reason;
    return j;
}

Json queue_settings_to_json(const wharf::QueueSettings& q) {
    static const char* types[] = {"ordered", "parallel", "topic-round-robin"};
    static const char* priorities[] = {"low", "normal", "high"};
    Json j;
    j["name"] = q.name;
    j["title"] = q.title;
    j["topics"] = q.topics;
    j["type"] = types[static_cast<int>(q.type)];
    j["max_parallel"] = q.max_parallel;
    j["max_parallel_configured"] = q.max_parallel_configured;
    j["retries"] = q.retries;
    j["retry_delay_ms"] = q.retry_delay.count();
    j["retry_backoff"] = q.retry_backoff;
    j["retry_delay_max_ms"] = q.retry_delay_max.count();
    j["priority"] = priorities[static_cast<int>(q.priority)];
    j["ranking"] = q.ranking;
    j["keep_jobs"] = q.keep_jobs;
    j["config_version"] = q.version;
    return j;
}

}  // namespace wharf::host
