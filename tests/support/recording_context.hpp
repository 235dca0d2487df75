#pragma once
// Test support: the bookkeeping part of an in-memory JobContext (log lines,
// report rows, checkpoints and a stop flag) that the test contexts share.
//
// Threading: a RecordingContext belongs to the thread that runs the
// operation; request_stop() may be called from any thread.
#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wharf/jobs.hpp"

namespace wharf::test {

/// Keeps what an operation logs, reports and checkpoints, and stops on request.
class RecordingContext : public JobContext {
public:
    void log(std::string_view line) override { lines_.emplace_back(line); }
    void report_row(std::vector<std::string> cells) override { rows_.push_back(std::move(cells)); }
    void checkpoint(std::string_view key, std::string_view value) override {
        checkpoints_[std::string(key)] = std::string(value);
    }
    std::optional<std::string> checkpoint(std::string_view key) const override {
        auto it = checkpoints_.find(std::string(key));
        if (it == checkpoints_.end()) return std::nullopt;
        return it->second;
    }
    bool is_stopped() const override { return stop_; }

    void request_stop() { stop_ = true; }
    const std::vector<std::vector<std::string>>& rows() const { return rows_; }
    const std::vector<std::string>& lines() const { return lines_; }

private:
    std::atomic<bool> stop_{false};
    std::vector<std::string> lines_;
    std::vector<std::vector<std::string>> rows_;
    std::map<std::string, std::string> checkpoints_;
};

}  // namespace wharf::test
