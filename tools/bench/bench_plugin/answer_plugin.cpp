// The benchmark plugin, built twice: BENCH_ANSWER 1 answers 1, 2 answers 2.
// It does as little as a real plugin can (one service, one log line) so that the
// timings measure the host's install and swap path, not plugin work.
#include <wharf/plugin.hpp>

#include "bench_api.hpp"

#define BENCH_STR2(x) #x
#define BENCH_STR(x) BENCH_STR2(x)

namespace {

class FixedAnswer final : public bench::Answer {
public:
    int version() const override { return BENCH_ANSWER; }
};

class AnswerActivator final : public wharf::Activator {
public:
    void start(wharf::PluginContext& ctx) override {
        ctx.services().register_service<bench::Answer>(std::make_shared<FixedAnswer>());
        ctx.logger().debug("bench answer started version=", ctx.version());
    }
    void stop(wharf::PluginContext&) override {}
};

wharf::Manifest manifest() {
    wharf::Manifest m;
    m.id = "bench.answer";
    m.version = BENCH_STR(BENCH_ANSWER) ".0.0";
    m.description = "answers its build number (benchmark plugin)";
    m.provides = {bench::Answer::kInterfaceName};
    return m;
}

}  // namespace

WHARF_PLUGIN(manifest, AnswerActivator);
