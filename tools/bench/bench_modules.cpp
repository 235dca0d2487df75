// bench_modules: service registry lookup, tracker event latency.
// Prints a Markdown table; run from a Release build: build/tools/bench/bench_modules
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "modules/service_registry.hpp"

namespace {

using Clock = std::chrono::steady_clock;

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

}  // namespace

int main() {
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
    long sum = 0;
    std::vector<double> runs;
    for (int r = 0; r < 5; ++r) {
        auto t0 = Clock::now();
        for (long i = 0; i < kLookups; ++i) sum += view.get<Probe>()->value();
        runs.push_back(ns_per_op(Clock::now() - t0, kLookups));
    }
    std::sort(runs.begin(), runs.end());
    double lookup = runs[runs.size() / 2];

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
    std::sort(lat.begin(), lat.end());

    std::printf("| metric | value | goal |\n|---|---|---|\n");
    std::printf("| service lookup by interface name (median of 5 x %ld) | %.1f ns/op | < 100 ns |\n",
                kLookups, lookup);
    std::printf("| tracker event latency p50 / p99 (register -> callback) | %.0f / %.0f ns | |\n",
                lat[lat.size() / 2], lat[lat.size() * 99 / 100]);
    return sum == 0 ? 1 : 0;
}
