// bench_modules: what the module layer costs, printed as a Markdown table.
//
//   - service lookup by interface name (the registry's fast path, goal < 100 ns/op);
//   - tracker event latency (register_service -> the tracker's callback);
//   - plugin install + start: PluginManager::deploy() of a fresh .so until it is
//     active (out-of-process probe, sha256, private copy, dlopen, start);
//   - hot swap: a new version renamed into the watched plugins directory until
//     the new code answers through the registry (goal < 200 ms; includes the
//     watcher's settle time; no call is in flight, so there is nothing to drain).
//
// The plugins are tools/bench/bench_plugin (two builds of one plugin answering
// 1 and 2). No result is asserted: the numbers are for people. Run from a
// Release build: tools/bench.sh.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "bench_util.hpp"
#include "base/log.hpp"
#include "bench_plugin/bench_api.hpp"
#include "modules/plugin_manager.hpp"
#include "modules/plugin_probe.hpp"
#include "modules/service_registry.hpp"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Probe {
    static constexpr const char* kInterfaceName = "bench.Probe";
    virtual ~Probe() = default;
    virtual int value() const = 0;
};
struct ProbeImpl : Probe {
    int value() const override { return 1; }
};

double ns_per_op(Clock::duration d, long ops) {
    return std::chrono::duration<double, std::nano>(d).count() / static_cast<double>(ops);
}

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

/// The value below which `fraction` of the samples lie (nearest rank).
double percentile(std::vector<double> samples, double fraction) {
    std::sort(samples.begin(), samples.end());
    auto rank = static_cast<std::size_t>(fraction * static_cast<double>(samples.size() - 1) + 0.5);
    return samples[std::min(rank, samples.size() - 1)];
}

/// A scratch directory for plugins dirs and caches, removed at exit.
class ScratchDir {
public:
    ScratchDir()
        : path_(fs::temp_directory_path() / ("wharf-bench-" + std::to_string(::getpid()))) {
        fs::create_directories(path_);
    }
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

wharf::host::PluginManagerOptions manager_options(const fs::path& root, bool watch) {
    wharf::host::PluginManagerOptions o;
    o.plugins_dir = root / "plugins";
    o.cache_dir = root / "data/plugin-cache";
    o.plugin_data_dir = root / "data/plugins";
    o.probe_executable = WHARF_PROBE_EXECUTABLE;
    o.watch = watch;
    return o;
}

/// The version of the bench.Answer service the registry returns now, or 0.
int answering_version(const wharf::host::ServiceRegistryImpl& registry) {
    auto found = registry.find(bench::Answer::kInterfaceName, {});
    return found ? std::static_pointer_cast<bench::Answer>(found->service)->version() : 0;
}

struct Row {
    std::string metric;
    std::string value;
    std::string goal;
    std::optional<bool> met{};  ///< for the report's summary; empty without a goal
};

// --- registry ---------------------------------------------------------------------------

void bench_registry(std::vector<Row>& rows, long& sink) {
    using namespace wharf;
    host::ServiceRegistryImpl registry;
    host::OwnedRegistry view(registry, host::Owner{"host", 0}, std::make_shared<int>(0));
    // A registry of realistic size: 200 interfaces with a few services each.
    std::vector<std::shared_ptr<ServiceRegistration>> regs;
    for (int i = 0; i < 200; ++i)
        for (int j = 0; j < 3; ++j)
            regs.push_back(view.register_service("bench.Other" + std::to_string(i),
                                                 std::make_shared<int>(j)));
    regs.push_back(view.register_service<Probe>(std::make_shared<ProbeImpl>(), {}, 0));
    regs.push_back(view.register_service<Probe>(std::make_shared<ProbeImpl>(), {}, 5));

    constexpr long kLookups = 5'000'000;
    std::vector<double> runs;
    for (int r = 0; r < 5; ++r) {
        auto t0 = Clock::now();
        for (long i = 0; i < kLookups; ++i) sink += view.get<Probe>()->value();
        runs.push_back(ns_per_op(Clock::now() - t0, kLookups));
    }
    char value[64];
    std::snprintf(value, sizeof value, "%.1f ns/op", percentile(runs, 0.5));
    rows.push_back({"service lookup by interface name (median of 5 x 5M)", value, "< 100 ns",
                    percentile(runs, 0.5) < 100});

    // Tracker latency: time from register_service to the callback running.
    Clock::time_point fired;
    auto tracker = view.track("bench.Tracked", [&](const ServiceEvent& e) {
        if (e.type == ServiceEventType::added) fired = Clock::now();
    });
    std::vector<double> lat;
    for (int i = 0; i < 20000; ++i) {
        auto t0 = Clock::now();
        auto reg = view.register_service("bench.Tracked", std::make_shared<int>(i));
        lat.push_back(std::chrono::duration<double, std::nano>(fired - t0).count());
        reg->unregister();
    }
    std::snprintf(value, sizeof value, "%.0f / %.0f ns", percentile(lat, 0.5),
                  percentile(lat, 0.99));
    rows.push_back({"tracker event latency p50 / p99 (register -> callback, 20k)", value, ""});
}

// --- plugin install + start -------------------------------------------------------------

bool bench_install(std::vector<Row>& rows, const fs::path& root) {
    constexpr int kRuns = 20;
    // The probe alone: a child process that loads the plugin and prints its manifest.
    std::vector<double> probe_ms;
    for (int i = 0; i < kRuns; ++i) {
        auto t0 = Clock::now();
        auto result = wharf::host::probe_plugin(WHARF_PROBE_EXECUTABLE, WHARF_BENCH_PLUGIN_V1, 5s);
        probe_ms.push_back(ms_since(t0));
        if (result.outcome != wharf::host::ProbeResult::Outcome::ok) {
            std::fprintf(stderr, "bench_modules: probe failed: %s\n", result.message.c_str());
            return false;
        }
    }

    wharf::host::ServiceRegistryImpl registry;
    auto options = manager_options(root / "install", false);
    wharf::host::PluginManager manager(registry, options);
    manager.start();
    std::vector<double> install_ms;
    for (int i = 0; i < kRuns; ++i) {
        // A new file each time: a new content-hash copy to load, nothing cached.
        auto file = options.plugins_dir / ("answer-" + std::to_string(i) + ".so");
        fs::copy_file(WHARF_BENCH_PLUGIN_V1, file);
        auto t0 = Clock::now();
        manager.deploy(file);
        install_ms.push_back(ms_since(t0));
        auto info = manager.plugin("bench.answer");
        if (!info || info->state != wharf::host::PluginState::active ||
            answering_version(registry) != 1) {
            std::fprintf(stderr, "bench_modules: plugin did not start: %s\n",
                         info ? info->reason.c_str() : "not installed");
            return false;
        }
        manager.remove(file);
    }
    char value[64];
    std::snprintf(value, sizeof value, "%.1f ms (p90 %.1f ms)", percentile(install_ms, 0.5),
                  percentile(install_ms, 0.9));
    rows.push_back({"plugin install + start, deploy() until active (median of 20)", value, ""});
    std::snprintf(value, sizeof value, "%.1f ms", percentile(probe_ms, 0.5));
    rows.push_back({"  of which: out-of-process probe (median of 20)", value, ""});
    return true;
}

// --- hot swap ---------------------------------------------------------------------------

bool bench_hot_swap(std::vector<Row>& rows, const fs::path& root) {
    constexpr int kSwaps = 50;
    const fs::path versions[] = {WHARF_BENCH_PLUGIN_V1, WHARF_BENCH_PLUGIN_V2};

    wharf::host::ServiceRegistryImpl registry;
    auto options = manager_options(root / "swap", true);
    wharf::host::PluginManager manager(registry, options);
    manager.start();
    const fs::path target = options.plugins_dir / "answer.so";
    const fs::path staging = options.plugins_dir / ".answer.so.tmp";

    // Deploy tools write beside the target and rename into place; the clock
    // starts when the rename has returned (the new file is complete and visible).
    auto swap_to = [&](int version) -> double {
        fs::copy_file(versions[version - 1], staging, fs::copy_options::overwrite_existing);
        auto t0 = Clock::now();
        fs::rename(staging, target);
        while (answering_version(registry) != version) {
            if (Clock::now() - t0 > 10s) return -1;
            std::this_thread::sleep_for(100us);
        }
        double elapsed = ms_since(t0);
        // Let the old version unload before the next swap so swaps do not overlap.
        bool settled = manager.wait_until(
            [&](const std::vector<wharf::host::PluginInfo>& all) {
                return all.size() == 1 && all[0].loaded_libraries == 1 &&
                       all[0].state == wharf::host::PluginState::active;
            },
            10s);
        return settled ? elapsed : -1;
    };

    if (swap_to(1) < 0) {
        std::fprintf(stderr, "bench_modules: first install through the watcher failed\n");
        return false;
    }
    std::vector<double> swap_ms;
    for (int i = 0; i < kSwaps; ++i) {
        double ms = swap_to(i % 2 == 0 ? 2 : 1);
        if (ms < 0) {
            std::fprintf(stderr, "bench_modules: swap %d did not complete within 10 s\n", i);
            return false;
        }
        swap_ms.push_back(ms);
    }
    char value[96];
    std::snprintf(value, sizeof value, "%.1f / %.1f ms (settle %lld ms)",
                  percentile(swap_ms, 0.5), percentile(swap_ms, 0.99),
                  static_cast<long long>(options.settle.count()));
    rows.push_back({"hot swap p50 / p99, rename into plugins dir -> new code answers (50)", value,
                    "< 200 ms", percentile(swap_ms, 0.99) < 200});
    return true;
}

}  // namespace

int main() {
    // Lifecycle lines at info would bury the table; failures still show.
    wharf::host::set_log_level("warn");
    std::vector<Row> rows;
    long sink = 0;
    bench_registry(rows, sink);
    bool ok = true;
    {
        ScratchDir scratch;
        ok = bench_install(rows, scratch.path()) && bench_hot_swap(rows, scratch.path());
    }

    std::printf("| metric | value | goal |\n|---|---|---|\n");
    for (const auto& row : rows)
        std::printf("| %s | %s | %s |\n", row.metric.c_str(), row.value.c_str(), row.goal.c_str());
    for (const auto& row : rows)
        wharf::bench::summary("modules: " + row.metric, row.value, "", NAN, row.goal, row.met);
    if (!ok) wharf::bench::summary("modules: install / hot swap", "failed", "", NAN, "", false);
    return ok && sink != 0 ? 0 : 1;
}
