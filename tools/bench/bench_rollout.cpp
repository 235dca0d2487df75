// bench_rollout: the rollout plugin rolling a blueprint out to 3 live copies.
//
//   bench_rollout [--dir DIR] [N ...]      (default: 1000 10000 pages, DIR under /dev/shm)
//
// For each N a child process (so that peak RSS is that run's own) generates a
// blueprint of N pages (4 references each) with 3 live copies (the host's
// content generator), retitles every blueprint page, and runs the real
// rollout plugin (plugins/rollout/rollout.so, deployed by the host's
// PluginManager with the shipped configs/rollout/standard.yaml and
// operations/rollout.yaml) inline as the submission service does: validate,
// count, run. Then it rolls out again with nothing changed. Reports pages x
// live copies per second, peak RSS (VmHWM, reset before each rollout) and
// how far the peak rose above the RSS the rollout started with.
// Report rows and log lines go to a counting JobContext. The run fails if a
// live page did not get its new title. Prints a Markdown table; no
// assertions on times. Run a Release build.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "config/config_admin.hpp"
#include "modules/plugin_manager.hpp"
#include "modules/service_registry.hpp"
#include "repository/generator.hpp"
#include "repository/sqlite_repository.hpp"
#include "wharf/jobs.hpp"
#include "wharf/operations.hpp"

namespace fs = std::filesystem;
using namespace wharf;
using Clock = std::chrono::steady_clock;
using boost::property_tree::ptree;

namespace {

constexpr const char* kBlueprint = "/content/gen/en";
constexpr std::uint64_t kLiveCopies = 3;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

double status_mib(const char* key) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(key, 0) == 0) return std::stod(line.substr(std::strlen(key))) / 1024.0;
    return 0;
}

double peak_rss_mib() { return status_mib("VmHWM:"); }

void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "bench_rollout: %s\n", what.c_str());
    std::exit(1);
}

class CountingContext final : public JobContext {
public:
    explicit CountingContext(ptree payload) : payload_(std::move(payload)) { job_.id = 1; }
    const Job& job() const override { return job_; }
    const ptree& payload() const override { return payload_; }
    void init_progress(std::int64_t total) override { total_ = total; }
    void increment_progress(std::int64_t steps) override { done_ += steps; }
    void log(std::string_view) override {}
    void report_row(std::vector<std::string>) override { ++job_.report_rows; }
    void checkpoint(std::string_view key, std::string_view value) override {
        checkpoints_[std::string(key)] = std::string(value);
    }
    std::optional<std::string> checkpoint(std::string_view key) const override {
        auto it = checkpoints_.find(std::string(key));
        if (it == checkpoints_.end()) return std::nullopt;
        return it->second;
    }
    bool is_stopped() const override { return false; }
    std::int64_t rows() const { return job_.report_rows; }

private:
    Job job_;
    ptree payload_;
    std::int64_t total_ = 0, done_ = 0;
    std::map<std::string, std::string> checkpoints_;
};

// The rollout plugin deployed by a PluginManager with its configuration from a
// ConfigAdmin on a copy of the shipped files.
class PluginHost {
public:
    PluginHost(std::shared_ptr<host::SqliteRepository> repository, const fs::path& work_dir)
        : repository_(std::move(repository)) {
        const fs::path source = WHARF_SOURCE_DIR;
        auto configs = work_dir / "configs";
        fs::create_directories(configs / "rollout");
        fs::create_directories(configs / "operations");
        fs::copy_file(source / "configs/rollout/standard.yaml", configs / "rollout/standard.yaml",
                      fs::copy_options::overwrite_existing);
        fs::copy_file(source / "configs/operations/rollout.yaml",
                      configs / "operations/rollout.yaml", fs::copy_options::overwrite_existing);
        registration_ = registry_.register_service(
            host::Owner{"bench", 0}, nullptr, interfaces::kRepository,
            std::static_pointer_cast<void>(std::static_pointer_cast<Repository>(repository_)),
            {}, 0);
        host::ConfigAdminOptions co;
        co.config_dir = configs;
        co.watch = false;
        config_ = std::make_unique<host::ConfigAdmin>(co);
        config_->start();
        fs::create_directories(work_dir / "plugins");
        host::PluginManagerOptions po;
        po.plugins_dir = work_dir / "plugins";
        po.cache_dir = work_dir / "plugin-cache";
        po.plugin_data_dir = work_dir / "plugin-data";
        po.probe_executable = WHARF_PROBE_EXECUTABLE;
        po.watch = false;
        po.config_source = config_.get();
        plugins_ = std::make_unique<host::PluginManager>(registry_, po);
        plugins_->start();
        auto target = work_dir / "plugins" / "rollout.so";
        fs::copy_file(fs::path(WHARF_PLUGIN_DIR) / "rollout.so", target,
                      fs::copy_options::overwrite_existing);
        plugins_->deploy(target);
    }
    ~PluginHost() {
        plugins_->stop_all();
        registration_->unregister();
    }
    PluginHost(const PluginHost&) = delete;
    PluginHost& operator=(const PluginHost&) = delete;

    std::shared_ptr<Operation> rollout() {
        auto found = registry_.find(interfaces::kOperation, {{"operation.name", "rollout"}});
        if (!found) fail("operation rollout is not registered; build the rollout plugin");
        return std::static_pointer_cast<Operation>(found->service);
    }

private:
    std::shared_ptr<host::SqliteRepository> repository_;
    host::ServiceRegistryImpl registry_;
    std::shared_ptr<ServiceRegistration> registration_;
    std::unique_ptr<host::ConfigAdmin> config_;
    std::unique_ptr<host::PluginManager> plugins_;
};

struct Measure {
    double seconds = 0;
    std::uint64_t pairs = 0;
    double start_mib = 0;  ///< RSS when the rollout started (repository caches, plugin)
    double peak_mib = 0;
    std::int64_t rows = 0;
};

Measure roll_out(Operation& op) {
    ptree request;
    request.put("blueprint", kBlueprint);
    Measure m;
    reset_peak_rss();
    m.start_mib = status_mib("VmRSS:");
    auto t0 = Clock::now();
    op.validate(request);
    m.pairs = op.count(request);
    CountingContext ctx(request);
    auto result = op.run(ctx);
    m.seconds = seconds_since(t0);
    m.peak_mib = peak_rss_mib();
    m.rows = ctx.rows();
    if (result.outcome != JobResult::Outcome::succeeded) fail("rollout: " + result.message);
    return m;
}

int child(std::uint64_t pages, const fs::path& dir) {
    auto repository = host::SqliteRepository::open(dir / "repo");
    host::ContentGeneratorOptions o;
    o.assets = 1000;
    o.pages = pages;
    o.references_per_page = 4;
    o.live_copies = kLiveCopies;
    o.min_binary_bytes = 16;
    o.max_binary_bytes = 32;
    host::generate_content(*repository, o);
    {
        auto s = repository->open_session({1000});
        repository->walk(kBlueprint, WalkOptions{}, [&](const Node& n) {
            s->set_properties(n.path, {{"jcr:title", Property::string("v2 " + n.path)}});
            return true;
        });
        s->commit();
    }
    PluginHost host(repository, dir / "host");
    auto op = host.rollout();
    auto changed = roll_out(*op);
    auto unchanged = roll_out(*op);
    auto probe = repository->get("/content/gen/lc3" + host::generated_page_path(o, pages - 1)
                                                          .substr(std::strlen(kBlueprint)));
    if (!probe || std::get<std::string>(probe->properties.at("jcr:title").values.front())
                          .rfind("v2 ", 0) != 0)
        fail("the last live page was not rolled out");
    for (const auto& [what, m] : {std::pair{"every page changed", changed},
                                  std::pair{"nothing changed", unchanged}})
        std::printf("| %llu | %s | %llu | %.2f s | %.0f | %.1f MiB | +%.1f MiB |\n",
                    static_cast<unsigned long long>(pages), what,
                    static_cast<unsigned long long>(m.pairs), m.seconds, m.pairs / m.seconds,
                    m.peak_mib, m.peak_mib - m.start_mib);
    {
        using wharf::bench::format;
        auto n = static_cast<unsigned long long>(pages);
        wharf::bench::summary(format("rollout: %llu pages to 3 live copies, every page changed", n),
                              format("%.0f pages x copies/s (%.2f s)",
                                     changed.pairs / changed.seconds, changed.seconds),
                              "", NAN, "", std::nullopt);
        wharf::bench::summary(format("rollout: %llu pages, nothing changed", n),
                              format("%.0f pages x copies/s (%.2f s)",
                                     unchanged.pairs / unchanged.seconds, unchanged.seconds),
                              "", NAN, "", std::nullopt);
        wharf::bench::summary(format("rollout: peak RSS, %llu pages (above RSS at start)", n),
                              format("%.1f MiB (+%.1f MiB)", changed.peak_mib,
                                     changed.peak_mib - changed.start_mib),
                              "", NAN, "flat in N", std::nullopt);
    }
    std::fflush(stdout);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 4 && std::strcmp(argv[1], "--child") == 0)
        return child(std::stoull(argv[2]), argv[3]);
    fs::path dir = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    dir /= "wharf-bench-rollout-" + std::to_string(::getpid());
    std::vector<std::uint64_t> sizes;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--dir" && i + 1 < argc) {
            dir = fs::path(argv[++i]) / ("wharf-bench-rollout-" + std::to_string(::getpid()));
        } else if (!a.empty() && std::isdigit(static_cast<unsigned char>(a[0]))) {
            sizes.push_back(std::stoull(a));
        } else {
            std::fprintf(stderr, "usage: bench_rollout [--dir DIR] [PAGES ...]\n");
            return 2;
        }
    }
    if (sizes.empty()) sizes = {1000, 10000};
    std::printf("| blueprint pages | rollout to 3 live copies | pages x live copies | time | "
                "pages x live copies / s | peak RSS | peak - RSS at start |\n");
    std::printf("|---:|---|---:|---:|---:|---:|---:|\n");
    std::fflush(stdout);
    for (auto n : sizes) {
        pid_t pid = ::fork();
        if (pid == 0) {
            auto self = fs::read_symlink("/proc/self/exe").string();
            auto child_dir = (dir / std::to_string(n)).string();
            auto ns = std::to_string(n);
            execl(self.c_str(), self.c_str(), "--child", ns.c_str(), child_dir.c_str(),
                  static_cast<char*>(nullptr));
            std::_Exit(127);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            std::fprintf(stderr, "bench_rollout: run with %llu pages failed\n",
                         static_cast<unsigned long long>(n));
            fs::remove_all(dir);
            return 1;
        }
    }
    fs::remove_all(dir);
    return 0;
}
