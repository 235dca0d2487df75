// The SDK as a third party gets it: install it with `cmake --install` into a
// temporary prefix, build tools/plugin-template against that prefix alone with
// a separate CMake invocation, then drop the resulting .so into the watched
// plugins directory of a real PluginManager and use the service it registers.
//
// Paths come from compile definitions of wharf_tests. The build directory is
// WHARF_BINARY_DIR when defined, else derived from WHARF_FIXTURE_DIR
// (<build>/tests/fixtures); cmake is WHARF_CMAKE_COMMAND when defined, else the
// one on PATH.
#include <catch2/catch.hpp>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include "base/log.hpp"
#include "modules/plugin_manager.hpp"
#include "support/temp_dir.hpp"
#include "wharf/jobs.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using wharf::host::PluginInfo;
using wharf::host::PluginState;
using wharf::test::TempDir;

namespace {

fs::path build_dir() {
#ifdef WHARF_BINARY_DIR
    return WHARF_BINARY_DIR;
#else
    return fs::path(WHARF_FIXTURE_DIR).parent_path().parent_path();
#endif
}

std::string cmake_command() {
#ifdef WHARF_CMAKE_COMMAND
    return WHARF_CMAKE_COMMAND;
#else
    return "cmake";
#endif
}

std::string quoted(const fs::path& p) {
    std::string out = "'";
    for (char c : p.string()) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

struct CommandResult {
    int status = -1;  ///< exit code, or -1 if the command died or could not run
    std::string output;
};

// Runs one shell command with stdout and stderr captured, so that a failing
// step shows what CMake or the compiler said.
CommandResult run(const std::string& command, const fs::path& log) {
    int raw = std::system((command + " >" + quoted(log) + " 2>&1").c_str());
    CommandResult r;
    r.status = raw != -1 && WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    r.output = read_file(log);
    return r;
}

// Fails the test with the command's output unless it succeeded.
void require_success(const CommandResult& result, const std::string& step) {
    if (result.status != 0)
        FAIL(step << " exited with " << result.status << ":\n" << result.output);
}

// A job context that keeps everything in memory: what the job engine would store.
class MemoryJobContext final : public wharf::JobContext {
public:
    explicit MemoryJobContext(boost::property_tree::ptree payload) {
        job_.id = 1;
        job_.topic = "example/hello";
        job_.payload = std::move(payload);
    }
    const wharf::Job& job() const override { return job_; }
    const boost::property_tree::ptree& payload() const override { return job_.payload; }
    void init_progress(std::int64_t total_steps) override {
        total = total_steps;
        done = 0;
    }
    void increment_progress(std::int64_t steps) override { done = std::min(done + steps, total); }
    void log(std::string_view line) override { log_lines.emplace_back(line); }
    void report_row(std::vector<std::string> cells) override { rows.push_back(std::move(cells)); }
    void checkpoint(std::string_view key, std::string_view value) override {
        checkpoints[std::string(key)] = std::string(value);
    }
    std::optional<std::string> checkpoint(std::string_view key) const override {
        auto it = checkpoints.find(std::string(key));
        if (it == checkpoints.end()) return std::nullopt;
        return it->second;
    }
    bool is_stopped() const override { return false; }

    std::int64_t total = 0;
    std::int64_t done = 0;
    std::vector<std::string> log_lines;
    std::vector<std::vector<std::string>> rows;
    std::map<std::string, std::string> checkpoints;

private:
    wharf::Job job_;
};

// Captures what plugins log through their wharf::Logger for the life of the object.
class PluginLogCapture {
public:
    PluginLogCapture() : logger_(wharf::host::logger("plugin")) {
        logger_->sinks().push_back(sink_);
    }
    ~PluginLogCapture() {
        auto& sinks = logger_->sinks();
        sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
    }
    PluginLogCapture(const PluginLogCapture&) = delete;
    PluginLogCapture& operator=(const PluginLogCapture&) = delete;

    bool contains(const std::string& text) const {
        for (const auto& line : sink_->last_formatted())
            if (line.find(text) != std::string::npos) return true;
        return false;
    }

private:
    std::shared_ptr<spdlog::logger> logger_;
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_ =
        std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
};

}  // namespace

TEST_CASE("the plugin template builds out of tree against the installed SDK and runs in the host",
          "[sdk]") {
    TempDir dir("wharf-sdk");
    const fs::path prefix = dir / "prefix";
    const fs::path template_build = dir / "build";
    const fs::path template_source = fs::path(WHARF_SOURCE_DIR) / "tools/plugin-template";

    // 1. Install only the SDK component: headers, wharf::sdk, WharfSDKConfig.
    auto install = run(cmake_command() + " --install " + quoted(build_dir()) + " --prefix " +
                           quoted(prefix) + " --component sdk",
                       dir / "install.log");
    require_success(install, "cmake --install");
    REQUIRE(fs::exists(prefix / "include/wharf/plugin.hpp"));

    // 2. Configure and build the template against the prefix, as a third party would.
    // The template's own default (Release) is what authors get.
    auto configure = run(cmake_command() + " -S " + quoted(template_source) + " -B " +
                             quoted(template_build) + " -G Ninja -DCMAKE_PREFIX_PATH=" +
                             quoted(prefix),
                         dir / "configure.log");
    require_success(configure, "configuring tools/plugin-template");
    // The SDK found is the installed one, not the source tree.
    auto cache = read_file(template_build / "CMakeCache.txt");
    CHECK_THAT(cache, Catch::Contains("WharfSDK_DIR:PATH=" + prefix.string()));

    auto build = run(cmake_command() + " --build " + quoted(template_build) + " --parallel 2",
                     dir / "build.log");
    require_success(build, "building tools/plugin-template");
    const fs::path plugin = template_build / "hello_operation.so";
    REQUIRE(fs::is_regular_file(plugin));

    // 3. Drop it into the watched plugins directory of a running host.
    PluginLogCapture logs;
    wharf::host::ServiceRegistryImpl registry;
    wharf::host::PluginManagerOptions options;
    options.plugins_dir = dir / "plugins";
    options.cache_dir = dir / "data/plugin-cache";
    options.plugin_data_dir = dir / "data/plugins";
    options.probe_executable = WHARF_PROBE_EXECUTABLE;
    options.watch = true;
    wharf::host::PluginManager manager(registry, options);
    manager.start();
    const fs::path deployed = options.plugins_dir / "hello_operation.so";
    wharf::test::install_file(plugin, deployed);
    REQUIRE(manager.wait_until(
        [&](const std::vector<PluginInfo>& all) {
            return std::any_of(all.begin(), all.end(), [&](const PluginInfo& p) {
                return p.file == deployed && p.state == PluginState::active;
            });
        },
        20s));

    auto info = manager.plugin("example.hello");
    REQUIRE(info);
    CHECK(info->version == "1.0.0");
    CHECK(info->abi_major == wharf::kSdkAbiMajor);
    CHECK(info->abi_minor == wharf::kSdkAbiMinor);
    REQUIRE(info->configs.size() == 1);
    CHECK(info->configs[0].name == "operations/hello");
    REQUIRE(info->services.size() == 1);
    CHECK(info->services[0]->interface == "wharf.JobConsumer");
    CHECK(wharf::test::eventually([&] { return logs.contains("hello operation started"); }));
    CHECK(logs.contains("plugin=example.hello"));

    // 4. The job engine's view: the consumer for the topic runs a job.
    auto consumer = registry.find(wharf::JobConsumer::kInterfaceName,
                                  {{wharf::JobConsumer::kTopicsProperty, "example/hello"}});
    REQUIRE(consumer);
    boost::property_tree::ptree payload;
    boost::property_tree::ptree names;
    names.push_back({"", boost::property_tree::ptree("Wharf")});
    names.push_back({"", boost::property_tree::ptree("Ada")});
    payload.add_child("names", names);
    MemoryJobContext job(payload);
    auto result = std::static_pointer_cast<wharf::JobConsumer>(consumer->service)->process(job);
    CHECK(result.outcome == wharf::JobResult::Outcome::succeeded);
    CHECK(result.message == "Hello, Wharf! (and others)");  // the schema's default greeting
    CHECK(job.done == 2);
    CHECK(job.total == 2);
    CHECK(job.checkpoints["done"] == "2");
    REQUIRE(job.rows.size() == 3);
    CHECK(job.rows[2] == std::vector<std::string>{"Ada", "Hello, Ada!"});

    MemoryJobContext empty(boost::property_tree::ptree{});
    auto refused = std::static_pointer_cast<wharf::JobConsumer>(consumer->service)->process(empty);
    CHECK(refused.outcome == wharf::JobResult::Outcome::error);
    consumer.reset();

    // 5. Removing the file uninstalls it and its service goes.
    fs::remove(deployed);
    CHECK(manager.wait_until(
        [&](const std::vector<PluginInfo>& all) {
            return std::any_of(all.begin(), all.end(), [&](const PluginInfo& p) {
                return p.file == deployed && p.state == PluginState::uninstalled;
            });
        },
        20s));
    CHECK_FALSE(registry.find(wharf::JobConsumer::kInterfaceName, {}));
}
