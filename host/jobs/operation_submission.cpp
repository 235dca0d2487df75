#include "jobs/operation_submission.hpp"

#include <algorithm>
#include <deque>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "base/error.hpp"
#include "base/log.hpp"

namespace wharf::host {
namespace {

using Clock = std::chrono::steady_clock;

// The JobContext of an inline run: everything stays in memory and goes back
// to the caller. There is no stored job to stop, so is_stopped() is false.
class InlineJobContext final : public wharf::JobContext {
public:
    InlineJobContext(wharf::Job job, const OperationSubmissionOptions& options, InlineRun& run)
        : job_(std::move(job)), options_(options), run_(run) {}

    const wharf::Job& job() const override { return job_; }
    const boost::property_tree::ptree& payload() const override { return job_.payload; }
    void init_progress(std::int64_t total) override {
        run_.progress_total = std::max<std::int64_t>(total, 0);
        run_.progress_done = 0;
    }
    void increment_progress(std::int64_t steps) override {
        run_.progress_done += steps;
        if (run_.progress_total > 0)
            run_.progress_done = std::min(run_.progress_done, run_.progress_total);
    }
    void log(std::string_view line) override {
        log_.emplace_back(line);
        if (log_.size() > options_.max_log_lines) log_.pop_front();
    }
    void report_row(std::vector<std::string> cells) override {
        if (run_.report.size() < options_.max_report_rows) {
            run_.report.push_back(std::move(cells));
        } else {
            ++run_.report_rows_dropped;
        }
    }
    void checkpoint(std::string_view key, std::string_view value) override {
        checkpoints_[std::string(key)] = std::string(value);
    }
    std::optional<std::string> checkpoint(std::string_view key) const override {
        auto it = checkpoints_.find(std::string(key));
        if (it == checkpoints_.end()) return std::nullopt;
        return it->second;
    }
    bool is_stopped() const override { return false; }

    void attach_result(const std::filesystem::path& file, std::string_view download_name,
                       std::string_view content_type) override {
        auto next = check_result_file(file, download_name, content_type, 0);
        if (result_ && result_->path != next.path) remove_result_file(*result_, 0);
        result_ = std::move(next);
    }

    // Hands the attached file's content to the caller and deletes the file:
    // an inline run leaves nothing behind.
    void finish() {
        run_.log.assign(log_.begin(), log_.end());
        if (!result_) return;
        InlineResult out;
        out.download_name = result_->download_name;
        out.content_type = result_->content_type;
        std::error_code ec;
        out.size = std::filesystem::file_size(result_->path, ec);
        if (ec) out.size = 0;
        if (out.size > options_.max_inline_result_bytes) {
            out.truncated = true;
        } else {
            std::ifstream in(result_->path, std::ios::binary);
            std::ostringstream content;
            content << in.rdbuf();
            out.content = std::move(content).str();
        }
        remove_result_file(*result_, 0);
        run_.result = std::move(out);
    }

private:
    wharf::Job job_;
    const OperationSubmissionOptions& options_;
    InlineRun& run_;
    std::deque<std::string> log_;
    std::map<std::string, std::string> checkpoints_;
    std::optional<ResultFile> result_;
};

const char* outcome_name(wharf::JobResult::Outcome outcome) {
    switch (outcome) {
        case wharf::JobResult::Outcome::succeeded:
            return "succeeded";
        case wharf::JobResult::Outcome::failed:
            return "failed";
        case wharf::JobResult::Outcome::error:
            return "error";
    }
    return "error";
}

}  // namespace

std::string encode_result_file(const ResultFile& file) {
    // One field per line: names and types hold no line breaks (checked).
    return "v1\n" + file.content_type + "\n" + file.download_name + "\n" + file.path.string();
}

std::optional<ResultFile> decode_result_file(std::string_view text) {
    std::vector<std::string> fields;
    std::size_t start = 0;
    for (int i = 0; i < 3; ++i) {
        auto nl = text.find('\n', start);
        if (nl == std::string_view::npos) return std::nullopt;
        fields.emplace_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    if (fields[0] != "v1" || start >= text.size()) return std::nullopt;
    return ResultFile{std::filesystem::path(std::string(text.substr(start))), fields[2], fields[1]};
}

ResultFile check_result_file(const std::filesystem::path& file, std::string_view download_name,
                             std::string_view content_type, JobId id) {
    auto bad_text = [](std::string_view text, bool name) {
        if (text.empty()) return true;
        for (unsigned char c : text) {
            if (c < 0x20 || c == 0x7f) return true;
            if (name && (c == '/' || c == '\\' || c == '"')) return true;
        }
        return false;
    };
    if (bad_text(download_name, true) || download_name == "." || download_name == "..")
        throw std::invalid_argument("result download name '" + std::string(download_name) +
                                    "' is not a plain file name (no '/', '\\', '\"' or control "
                                    "characters)");
    if (bad_text(content_type, false))
        throw std::invalid_argument("result content type '" + std::string(content_type) +
                                    "' is empty or holds control characters");
    std::error_code ec;
    auto absolute = std::filesystem::absolute(file, ec);
    if (ec || !std::filesystem::is_regular_file(absolute, ec))
        throw std::invalid_argument("result file '" + file.string() + "' is not a regular file");
    if (absolute.string().find('\n') != std::string::npos)
        throw std::invalid_argument("result file '" + file.string() + "' has a line break in its path");
    if (id > 0 && absolute.parent_path().filename() != job_id_to_string(id))
        throw std::invalid_argument("result file '" + file.string() +
                                    "' must be in a directory named after the job id (" +
                                    job_id_to_string(id) + ")");
    return ResultFile{absolute, std::string(download_name), std::string(content_type)};
}

void remove_result_file(const ResultFile& file, JobId id) noexcept {
    std::error_code ec;
    auto dir = file.path.parent_path();
    if (id > 0 && dir.filename() == job_id_to_string(id)) {
        std::filesystem::remove_all(dir, ec);
        return;
    }
    std::filesystem::remove(file.path, ec);
    if (id == 0) std::filesystem::remove(dir, ec);  // only when empty
}

OperationSubmission::OperationSubmission(ServiceRegistryImpl& registry, wharf::JobManager& jobs,
                                         OperationConfigLookup config,
                                         OperationSubmissionOptions options)
    : registry_(registry), jobs_(jobs), config_(std::move(config)), options_(options) {}

std::vector<OperationSubmission::Found> OperationSubmission::operations() const {
    std::vector<Found> out;
    for (auto& s : registry_.find_all(wharf::interfaces::kOperation, {})) {
        auto operation = std::static_pointer_cast<wharf::Operation>(s.service);
        std::string owner = s.reference ? s.reference->owner : "";
        try {
            out.push_back({operation, operation->descriptor(), owner});
        } catch (const std::exception& e) {
            // One broken plugin must not hide the others' operations.
            logger("jobs")->error("operation descriptor failed plugin={} error=\"{}\"", owner,
                                  e.what());
        }
    }
    // Best ranking first (find_all's order): the first of a name wins.
    return out;
}

std::optional<std::uint64_t> OperationSubmission::threshold_of(const wharf::OperationDescriptor& d,
                                                               bool* email_enabled) const {
    if (!config_ || d.config.empty()) return std::nullopt;
    try {
        auto values = config_(d.config);
        if (email_enabled) *email_enabled = values.get<bool>("email_enabled", false);
        auto threshold = values.get_optional<std::int64_t>("threshold");
        if (!threshold || *threshold < 0) return std::nullopt;
        return static_cast<std::uint64_t>(*threshold);
    } catch (const std::exception& e) {
        logger("jobs")->warn("operation has no configuration operation={} config={} error=\"{}\"",
                             d.name, d.config, e.what());
        return std::nullopt;
    }
}

std::vector<OperationInfo> OperationSubmission::list() const {
    std::vector<OperationInfo> out;
    for (auto& found : operations()) {
        if (std::any_of(out.begin(), out.end(),
                        [&](const auto& o) { return o.descriptor.name == found.descriptor.name; }))
            continue;
        OperationInfo info;
        info.descriptor = found.descriptor;
        info.owner = found.owner;
        info.threshold = threshold_of(found.descriptor, &info.email_enabled);
        out.push_back(std::move(info));
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.descriptor.name < b.descriptor.name; });
    return out;
}

SubmissionResult OperationSubmission::submit(std::string_view name,
                                             const boost::property_tree::ptree& request,
                                             const std::string& user) {
    std::optional<Found> found;
    for (auto& f : operations()) {
        if (f.descriptor.name == name) {
            found = std::move(f);
            break;
        }
    }
    if (!found) throw Error(ErrorCode::not_found, "unknown operation '" + std::string(name) + "'");
    auto& operation = *found->operation;
    const auto& descriptor = found->descriptor;
    auto log = logger("jobs");

    SubmissionResult result;
    result.operation = descriptor.name;
    // What a plugin throws besides a refusal is its fault, not the caller's:
    // report it with the operation's name and keep the host running.
    auto plugin_call = [&](const char* what, auto&& call) {
        try {
            return call();
        } catch (const wharf::OperationRefused&) {
            throw;
        } catch (const std::exception& e) {
            log->error("operation failed operation={} plugin={} call={} error=\"{}\"",
                       descriptor.name, found->owner, what, e.what());
            throw Error(ErrorCode::plugin,
                        "operation '" + descriptor.name + "' failed in " + what + ": " + e.what());
        } catch (...) {
            throw Error(ErrorCode::plugin, "operation '" + descriptor.name + "' failed in " + what +
                                               " with an unknown exception");
        }
    };
    try {
        plugin_call("validate", [&] {
            operation.validate(request);
            return 0;
        });
        result.count = plugin_call("count", [&] { return operation.count(request); });
    } catch (const wharf::OperationRefused& refused) {
        result.mode = SubmissionResult::Mode::refused;
        result.refusal = {refused.field(), refused.value(), refused.what()};
        log->info("operation refused operation={} user={} field={} reason=\"{}\"", descriptor.name,
                  user, refused.field(), refused.what());
        return result;
    }
    result.description =
        plugin_call("describe", [&] { return operation.describe(request, result.count); });
    result.threshold = threshold_of(descriptor, nullptr);

    // Without a configuration in force every request becomes a job: a job can
    // be watched and stopped, an inline run of unknown size cannot.
    if (result.threshold && result.count <= *result.threshold) {
        result.mode = SubmissionResult::Mode::sync;
        wharf::Job job;
        job.topic = descriptor.topic;
        job.payload = request;
        job.state = wharf::JobState::active;
        job.submitted_by = user;
        job.created = std::chrono::system_clock::now();
        job.started = job.created;
        InlineJobContext context(std::move(job), options_, result.run);
        auto started = Clock::now();
        try {
            auto outcome = operation.run(context);
            result.run.outcome = outcome_name(outcome.outcome);
            result.run.message = outcome.message;
        } catch (const std::exception& e) {
            result.run.outcome = "error";
            result.run.message = e.what();
            log->error("operation run failed operation={} plugin={} error=\"{}\"", descriptor.name,
                       found->owner, e.what());
        } catch (...) {
            result.run.outcome = "error";
            result.run.message = "the operation threw an unknown exception";
        }
        context.finish();
        result.run.duration =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
        log->info("operation ran inline operation={} user={} count={} outcome={} ms={}",
                  descriptor.name, user, result.count, result.run.outcome,
                  result.run.duration.count());
        return result;
    }

    result.mode = SubmissionResult::Mode::job;
    wharf::EnqueueOptions options;
    options.user = user;
    auto payload = request;
    if (!result.description.empty()) payload.put(wharf::kJobDescriptionKey, result.description);
    result.job = jobs_.enqueue(descriptor.topic, std::move(payload), options);
    log->info("operation enqueued operation={} user={} count={} threshold={} job={}",
              descriptor.name, user, result.count,
              result.threshold ? std::to_string(*result.threshold) : "none", result.job.id);
    return result;
}

}  // namespace wharf::host
