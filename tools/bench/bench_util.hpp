#pragma once
// Helpers the benchmarks share: a scratch directory, elapsed time, the median
// and percentiles of samples, the process's peak resident set size and the
// machine's load average.
//
// Header-only; used by single-threaded bench mains (TempDir's counter is not
// meant for concurrent construction).

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
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

}  // namespace wharf::bench
