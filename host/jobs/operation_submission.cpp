#include "jobs/operation_submission.hpp"

#include <algorithm>
#include <deque>
#include <map>

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

    void finish() { run_.log.assign(log_.begin(), log_.end()); }

private:
    wharf::Job job_;
    const OperationSubmissionOptions& options_;
    InlineRun& run_;
    std::deque<std::string> log_;
    std::map<std::string, std::string> checkpoints_;
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
    result.job = jobs_.enqueue(descriptor.topic, request, options);
    log->info("operation enqueued operation={} user={} count={} threshold={} job={}",
              descriptor.name, user, result.count,
              result.threshold ? std::to_string(*result.threshold) : "none", result.job.id);
    return result;
}

}  // namespace wharf::host
