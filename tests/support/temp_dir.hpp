#pragma once
// Test support: a temporary directory removed with everything in it when the
// test ends, and waiting on a condition with a deadline (never a fixed sleep).
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>

namespace wharf::test {

class TempDir {
public:
    explicit TempDir(const std::string& prefix = "wharf-test") {
        std::random_device rd;
        path_ = std::filesystem::temp_directory_path() /
                (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
        std::filesystem::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const noexcept { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline) return condition();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

/// Replaces `target` with the content of `source` the way deploy tools do:
/// write a temporary file beside it, then rename it into place.
inline void install_file(const std::filesystem::path& source, const std::filesystem::path& target) {
    auto tmp = target.parent_path() / ("." + target.filename().string() + ".tmp");
    std::filesystem::copy_file(source, tmp, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(tmp, target);
}

}  // namespace wharf::test
