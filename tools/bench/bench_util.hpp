#pragma once
// Helpers the benchmarks share: a scratch directory, elapsed time, the median
// and percentiles of samples, the process's peak resident set size, the
// machine's load average, and summary() lines that tools/bench.sh gathers
// into its one report table.
//
// Header-only; used by single-threaded bench mains (TempDir's counter is not
// meant for concurrent construction).

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace wharf::bench {

using Clock = std::chrono::steady_clock;

/// A fresh directory under the system temp folder named
/// `wharf-bench-<name>-<pid>-<tag>-<n>`, removed with its contents.
class TempDir {
public:
    TempDir(const std::string& name, const std::string& tag) {
        static int counter = 0;
        path_ = std::filesystem::temp_directory_path() /
                ("wharf-bench-" + name + "-" + std::to_string(::getpid()) + "-" + tag + "-" +
                 std::to_string(counter++));
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

inline double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

/// The median of `v` (0 when empty).
inline double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// The sample at fraction `p` (0..1) of the sorted samples, nearest rank
/// (0 when empty).
inline double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

/// Smallest and largest of `v` (0, 0 when empty): the spread over runs.
inline std::pair<double, double> spread(const std::vector<double>& v) {
    if (v.empty()) return {0, 0};
    auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    return {*lo, *hi};
}

/// Peak resident set size of this process (VmHWM) in KiB, 0 if unknown.
inline long peak_rss_kib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return 0;
}

/// The 1, 5 and 15 minute load averages as /proc/loadavg gives them ("" if
/// unknown): benchmarks print it, since on a shared machine it says how far a
/// figure can be trusted.
inline std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string one, five, fifteen;
    if (!(in >> one >> five >> fifteen)) return "";
    return one + " " + five + " " + fifteen;
}

/// printf into a std::string.
inline std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline std::string format(const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    va_list copy;
    va_copy(copy, args);
    int n = std::vsnprintf(nullptr, 0, fmt, copy);
    va_end(copy);
    std::string out(n > 0 ? static_cast<std::size_t>(n) : 0, '\0');
    if (n > 0) std::vsnprintf(out.data(), out.size() + 1, fmt, args);
    va_end(args);
    return out;
}

/// KiB as "12.3 MiB".
inline std::string mib(long kib) { return format("%.1f MiB", double(kib) / 1024.0); }

/// One row of the report that tools/bench.sh prints after all benchmarks, as
/// one line on stdout:
///   @summary|<metric>|<wharf>|<floor/peer>|<ratio>|<goal>|<met>
/// A line starting with '@' is never a Markdown table row, so the programs'
/// own tables stay as they are. '|' in a field becomes '\|' (as a Markdown
/// cell needs it) and line breaks become spaces. `ratio` NaN prints as an
/// empty cell; `met` empty means there is no goal to meet ("").
inline void summary(const std::string& metric, const std::string& wharf, const std::string& peer,
                    double ratio, const std::string& goal, std::optional<bool> met) {
    auto field = [](const std::string& s) {
        std::string out;
        for (char c : s) {
            if (c == '|') out += "\\|";
            else if (c == '\n' || c == '\r') out += ' ';
            else out += c;
        }
        return out;
    };
    std::string r = std::isfinite(ratio) ? format("%.2f", ratio) : "";
    std::string m = met ? (*met ? "met" : "not met") : "";
    std::printf("@summary|%s|%s|%s|%s|%s|%s\n", field(metric).c_str(), field(wharf).c_str(),
                field(peer).c_str(), r.c_str(), field(goal).c_str(), m.c_str());
    std::fflush(stdout);
}

}  // namespace wharf::bench
