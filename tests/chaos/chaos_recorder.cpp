// The chaos soak's job consumer (topics chaos/**), built twice from this one
// source (CHAOS_RECORDER_VERSION 1 and 2) so the soak can replace one build
// with the other while jobs run. Every run appends lines to runs.log in the
// plugin's data directory, one write(2) each (O_APPEND, so lines from
// parallel runs never interleave, and a SIGKILL of the host loses none):
//
//   begin <pid> <job id> <retry count> <version> <unix ms>
//   ok <pid> <job id> <retry count> <version> <unix ms>     just before it returns succeeded
//
// so that a job that succeeded twice is visible to the soak even though the
// store keeps one row. Payload: `ms` (how long to run, polling the stop flag),
// `outcome` (succeeded, error, throw), `fail_times` (fail that many runs first).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <wharf/jobs.hpp>
#include <wharf/plugin.hpp>

#ifndef CHAOS_RECORDER_VERSION
#error "CHAOS_RECORDER_VERSION must be set by the build"
#endif

namespace {

long long unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

class Recorder final : public wharf::JobConsumer {
public:
    explicit Recorder(std::filesystem::path log) : log_(std::move(log)) {}

    wharf::JobResult process(wharf::JobContext& ctx) override {
        const auto& job = ctx.job();
        record("begin", job);
        const auto& p = ctx.payload();
        auto end =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(p.get<long>("ms", 0));
        while (std::chrono::steady_clock::now() < end) {
            if (ctx.is_stopped()) return wharf::JobResult::failed("interrupted by a stop request");
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        if (job.retry_count < p.get<int>("fail_times", 0))
            return wharf::JobResult::failed("failing on purpose, run " +
                                            std::to_string(job.retry_count + 1));
        auto outcome = p.get<std::string>("outcome", "succeeded");
        if (outcome == "error") return wharf::JobResult::error("ends as error on purpose");
        if (outcome == "throw") throw std::runtime_error("the chaos recorder throws on purpose");
        record("ok", job);
        return wharf::JobResult::succeeded("recorded by version " +
                                           std::to_string(CHAOS_RECORDER_VERSION));
    }

private:
    void record(const char* event, const wharf::Job& job) const {
        std::string line = std::string(event) + " " + std::to_string(::getpid()) + " " +
                           std::to_string(job.id) + " " + std::to_string(job.retry_count) + " " +
                           std::to_string(CHAOS_RECORDER_VERSION) + " " +
                           std::to_string(unix_ms()) + "\n";
        int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) throw std::runtime_error("cannot open " + log_.string());
        auto written = ::write(fd, line.data(), line.size());
        ::close(fd);
        if (written != static_cast<ssize_t>(line.size()))
            throw std::runtime_error("cannot append to " + log_.string());
    }

    std::filesystem::path log_;
};

class Activator final : public wharf::Activator {
public:
    void start(wharf::PluginContext& ctx) override {
        std::filesystem::create_directories(ctx.data_dir());
        wharf::Properties topics;
        topics.push_back({"", wharf::Properties("chaos/**")});
        wharf::Properties props;
        props.add_child(wharf::JobConsumer::kTopicsProperty, topics);
        ctx.services().register_service<wharf::JobConsumer>(
            std::make_shared<Recorder>(ctx.data_dir() / "runs.log"), props);
        ctx.logger().info("chaos recorder started version=", ctx.version());
    }
    void stop(wharf::PluginContext&) override {}
};

wharf::Manifest manifest() {
    wharf::Manifest m;
    m.id = "chaos.recorder";
    m.version = std::to_string(CHAOS_RECORDER_VERSION) + ".0.0";
    m.description = "records every run of a chaos soak job";
    m.provides = {wharf::interfaces::kJobConsumer};
    return m;
}

}  // namespace

WHARF_PLUGIN(manifest, Activator);
