// bench_config: time from a config file's save (the rename that completes it)
// to a subscriber holding the new ptree, through inotify, validation and
// delivery in a live ConfigAdmin. 1000 saves of a queue file, one at a time.
// Prints a Markdown table row; run from a Release build:
//   build/tools/bench/bench_config
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "config/config_admin.hpp"
#include "modules/service_registry.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

int main() {
    std::string pattern = (fs::temp_directory_path() / "wharf-bench-config-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) return 1;
    const fs::path dir = pattern;
    fs::create_directories(dir / "queues");
    auto queue_text = [](int n) {
        return "title: Bench\ntopics: [wharf/bench/*]\nmax_parallel: 2\nretries: " +
               std::to_string(n) + "\n";
    };
    auto save = [&](int n) {
        auto tmp = dir / "queues" / ".bench.yaml.tmp";
        {
            std::ofstream out(tmp, std::ios::trunc);
            out << queue_text(n);
        }
        fs::rename(tmp, dir / "queues" / "bench.yaml");
    };
    save(-1);

    wharf::host::ServiceRegistryImpl registry;
    wharf::host::ConfigAdminOptions options;
    options.config_dir = dir;
    options.registry = &registry;
    wharf::host::ConfigAdmin admin(options);
    admin.start();

    std::mutex mutex;
    std::condition_variable changed;
    int seen = -1;
    Clock::time_point seen_at;
    auto subscription = admin.subscribe(
        "queues", [&](const std::string&, const std::optional<boost::property_tree::ptree>& v) {
            if (v) {
                std::lock_guard lock(mutex);
                seen = v->get<int>("retries");
                seen_at = Clock::now();
                changed.notify_all();
            }
            return wharf::ConfigVerdict{};
        });

    constexpr int kSaves = 1000;
    std::vector<double> latency_ms;
    int lost = 0;
    for (int i = 0; i < kSaves; ++i) {
        save(i);
        auto saved_at = Clock::now();
        std::unique_lock lock(mutex);
        if (!changed.wait_for(lock, std::chrono::seconds(5), [&] { return seen == i; })) {
            ++lost;
            continue;
        }
        latency_ms.push_back(std::chrono::duration<double, std::milli>(seen_at - saved_at).count());
    }
    subscription.reset();
    admin.stop();
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (latency_ms.empty()) return 1;
    std::sort(latency_ms.begin(), latency_ms.end());
    auto pct = [&](double p) {
        return latency_ms[std::min(latency_ms.size() - 1,
                                   static_cast<std::size_t>(p * latency_ms.size()))];
    };
    std::printf("| metric | value | goal |\n|---|---|---|\n");
    std::printf(
        "| config save -> consumer has new ptree, p50 / p99 / max over %d saves "
        "(settle %lld ms) | %.1f / %.1f / %.1f ms | p50 < 50 ms (Felix FileInstall "
        "polls every 2000 ms) |\n",
        kSaves, static_cast<long long>(options.settle.count()), pct(0.50), pct(0.99),
        latency_ms.back());
    if (lost) std::printf("| saves never delivered | %d | 0 |\n", lost);
    wharf::bench::summary(
        wharf::bench::format("config: save -> consumer has new ptree, p50 (p99) over %d saves",
                             kSaves),
        wharf::bench::format("%.1f ms (%.1f ms)", pct(0.50), pct(0.99)), "", NAN,
        "p50 < 50 ms", pct(0.50) < 50);
    if (lost)
        wharf::bench::summary("config: saves never delivered", std::to_string(lost), "", NAN, "0",
                              false);
    return lost == 0 ? 0 : 1;
}
