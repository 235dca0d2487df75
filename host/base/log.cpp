#include "base/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

#include "base/error.hpp"

namespace wharf::host {
namespace {

std::mutex g_mutex;
spdlog::level::level_enum g_level = spdlog::level::info;

spdlog::sink_ptr shared_sink() {
    static spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    return sink;
}

spdlog::level::level_enum to_spdlog(wharf::LogLevel level) {
    switch (level) {
        case wharf::LogLevel::trace: return spdlog::level::trace;
        case wharf::LogLevel::debug: return spdlog::level::debug;
        case wharf::LogLevel::info: return spdlog::level::info;
        case wharf::LogLevel::warn: return spdlog::level::warn;
        case wharf::LogLevel::error: return spdlog::level::err;
    }
    return spdlog::level::info;
}

class PluginLogger final : public wharf::Logger {
public:
    PluginLogger(std::shared_ptr<spdlog::logger> sink, std::string plugin_id)
        : sink_(std::move(sink)), suffix_(" plugin=" + std::move(plugin_id)) {}

    void log(wharf::LogLevel level, std::string_view message) noexcept override {
        try {
            sink_->log(to_spdlog(level), "{}{}", message, suffix_);
        } catch (...) {
        }
    }
    bool enabled(wharf::LogLevel level) const noexcept override {
        return sink_->should_log(to_spdlog(level));
    }

private:
    std::shared_ptr<spdlog::logger> sink_;
    std::string suffix_;
};

}  // namespace

void set_log_level(std::string_view level) {
    auto parsed = spdlog::level::from_str(std::string(level));
    if (parsed == spdlog::level::off && level != "off") {
        throw Error(ErrorCode::invalid_argument,
                    "unknown log level '" + std::string(level) +
                        "' (expected trace, debug, info, warn, error or off)");
    }
    std::lock_guard lock(g_mutex);
    g_level = parsed;
    spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& l) { l->set_level(parsed); });
}

std::shared_ptr<spdlog::logger> logger(const std::string& name) {
    std::lock_guard lock(g_mutex);
    if (auto existing = spdlog::get(name)) return existing;
    auto created = std::make_shared<spdlog::logger>(name, shared_sink());
    created->set_level(g_level);
    created->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
    spdlog::register_logger(created);
    return created;
}

std::shared_ptr<wharf::Logger> make_plugin_logger(const std::string& plugin_id) {
    return std::make_shared<PluginLogger>(logger("plugin"), plugin_id);
}

}  // namespace wharf::host
