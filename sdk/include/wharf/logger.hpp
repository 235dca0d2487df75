#pragma once
// A named logger handed to each plugin by the host (PluginContext::logger()).
//
// Only the host links a logging library; plugins log through this interface and
// their lines carry the plugin id. Messages follow the house style: a short
// event phrase then `key=value` fields (`asset moved from=/a to=/b`).
//
// Thread-safety: every method may be called from any thread. A log call never
// throws.

#include <sstream>
#include <string_view>
#include <utility>

namespace wharf {

enum class LogLevel { trace, debug, info, warn, error };

class Logger {
public:
    static constexpr const char* kInterfaceName = "wharf.Logger";
    virtual ~Logger() = default;

    /// Writes one line at `level`. Never throws.
    virtual void log(LogLevel level, std::string_view message) noexcept = 0;
    /// Whether a line at `level` would be written (skip building costly ones).
    virtual bool enabled(LogLevel level) const noexcept = 0;

    /// Streams every argument into one line: `logger.info("moved from=", a, " to=", b)`.
    template <class... Args>
    void trace(Args&&... args) noexcept { write(LogLevel::trace, std::forward<Args>(args)...); }
    template <class... Args>
    void debug(Args&&... args) noexcept { write(LogLevel::debug, std::forward<Args>(args)...); }
    template <class... Args>
    void info(Args&&... args) noexcept { write(LogLevel::info, std::forward<Args>(args)...); }
    template <class... Args>
    void warn(Args&&... args) noexcept { write(LogLevel::warn, std::forward<Args>(args)...); }
    template <class... Args>
    void error(Args&&... args) noexcept { write(LogLevel::error, std::forward<Args>(args)...); }

private:
    template <class... Args>
    void write(LogLevel level, Args&&... args) noexcept {
        if (!enabled(level)) return;
        try {
            std::ostringstream line;
            (line << ... << std::forward<Args>(args));
            log(level, line.str());
        } catch (...) {
            // A log call never throws; a line that cannot be built is dropped.
        }
    }
};

}  // namespace wharf
