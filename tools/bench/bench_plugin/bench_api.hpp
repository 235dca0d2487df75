#pragma once
// The interface the benchmark plugins provide and bench_modules calls: which
// version of the code is answering. Shared by the plugin and the benchmark only.

namespace bench {

struct Answer {
    static constexpr const char* kInterfaceName = "bench.Answer";
    virtual ~Answer() = default;
    /// The BENCH_ANSWER the plugin was built with (1 or 2).
    virtual int version() const = 0;
};

}  // namespace bench
