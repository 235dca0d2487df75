// The module layer with real fixture plugins: lifecycle, failures, quarantine,
// dependencies and hot deploy through a watched directory.
#include <catch2/catch.hpp>

#include <fstream>
#include <future>

#include "fixtures/plugins/fixture_api.hpp"
#include "modules/plugin_library.hpp"
#include "modules/plugin_manager.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using wharf::host::PluginInfo;
using wharf::host::PluginManager;
using wharf::host::PluginState;
using wharf::test::eventually;
using wharf::test::install_file;
using wharf::test::TempDir;

namespace {

fs::path fixture_file(const std::string& name) { return fs::path(WHARF_FIXTURE_DIR) / (name + ".so"); }

struct Host {
    TempDir dir{"wharf-plugins"};
    wharf::host::ServiceRegistryImpl registry;
    std::unique_ptr<PluginManager> manager;

    explicit Host(bool watch = true, std::chrono::milliseconds start_timeout = 10s) {
        fs::create_directories(dir / "plugins");
        wharf::host::PluginManagerOptions o;
        o.plugins_dir = dir / "plugins";
        o.cache_dir = dir / "data/plugin-cache";
        o.plugin_data_dir = dir / "data/plugins";
        o.probe_executable = WHARF_PROBE_EXECUTABLE;
        o.start_timeout = start_timeout;
        o.drain_timeout = 2s;
        o.watch = watch;
        manager = std::make_unique<PluginManager>(registry, o);
        manager->start();
    }

    fs::path plugins() const { return dir / "plugins"; }

    // Copies a fixture into the plugins dir under `name` and deploys it.
    fs::path deploy(const std::string& fixture_name, const std::string& as = "") {
        auto target = plugins() / ((as.empty() ? fixture_name : as) + ".so");
        install_file(fixture_file(fixture_name), target);
        manager->deploy(target);
        return target;
    }

    std::optional<PluginInfo> by_file(const fs::path& file) const {
        for (auto& p : manager->plugins())
            if (p.file == file) return p;
        return std::nullopt;
    }

    bool wait_state(const fs::path& file, PluginState state, std::chrono::milliseconds t = 10s) {
        return manager->wait_until(
            [&](const std::vector<PluginInfo>& all) {
                for (const auto& p : all)
                    if (p.file == file && p.state == state) return true;
                return false;
            },
            t);
    }

    std::string greet() const {
        auto g = registry.find(fixture::Greeter::kInterfaceName, {});
        if (!g) return "";
        return std::static_pointer_cast<fixture::Greeter>(g->service)->greet();
    }
};

}  // namespace

TEST_CASE("a good plugin is installed, started and its service answers", "[plugins]") {
    Host host(false);
    auto file = host.deploy("greeter_v1", "greeter");
    auto info = host.by_file(file);
    REQUIRE(info);
    CHECK(info->state == PluginState::active);
    CHECK(info->id == "fixture.greeter");
    CHECK(info->version == "1.0.0");
    CHECK(info->abi_major == wharf::kSdkAbiMajor);
    CHECK(info->content_hash.size() == 64);
    REQUIRE(info->services.size() == 1);
    CHECK(info->services[0]->interface == "test.Greeter");
    CHECK(info->services[0]->owner == "fixture.greeter");
    CHECK(host.greet() == "v1");
}

TEST_CASE("a plugin that throws in start fails with the message and leaves no service",
          "[plugins]") {
    Host host(false);
    auto file = host.deploy("throws_in_start");
    auto info = host.by_file(file);
    REQUIRE(info);
    CHECK(info->state == PluginState::failed);
    CHECK(info->reason == "start failed: database unreachable at start");
    CHECK_FALSE(host.registry.find("test.Provided", {}));
    // The host goes on: another plugin still installs.
    host.deploy("greeter_v1", "greeter");
    CHECK(host.greet() == "v1");
}

TEST_CASE("a plugin built against another ABI major is refused naming both versions",
          "[plugins]") {
    Host host(false);
    auto file = host.deploy("wrong_abi");
    auto info = host.by_file(file);
    REQUIRE(info);
    CHECK(info->state == PluginState::failed);
    CHECK(info->reason ==
          "plugin built against SDK ABI 99.0, host provides ABI 1.2 (major differs)");
    CHECK(info->abi_major == 99);
}

TEST_CASE("a shared object without the entry point is quarantined", "[plugins]") {
    Host host(false);
    auto file = host.deploy("no_entry");
    auto info = host.by_file(file);
    REQUIRE(info);
    CHECK(info->state == PluginState::quarantined);
    CHECK_THAT(info->reason, Catch::Contains("no entry point wharf_plugin_entry"));
}

TEST_CASE("a binary that crashes while loading is quarantined and the host lives on",
          "[plugins]") {
    Host host(false);
    auto file = host.deploy("crashes_at_load", "crashy");
    auto info = host.by_file(file);
    REQUIRE(info);
    CHECK(info->state == PluginState::quarantined);
    CHECK_THAT(info->reason, Catch::Contains("probe crashed") && Catch::Contains("signal 11"));
    // Same content again: not probed again, still quarantined.
    host.manager->deploy(file);
    CHECK(host.by_file(file)->state == PluginState::quarantined);
    // Replaced by a good binary under the same name: it runs.
    host.deploy("greeter_v1", "crashy");
    CHECK(host.by_file(file)->state == PluginState::active);
    CHECK(host.greet() == "v1");
}

TEST_CASE("a text file or a truncated binary named .so is quarantined", "[plugins]") {
    Host host(false);
    auto text = host.plugins() / "notes.so";
    std::ofstream(text) << "this is not a shared object\n";
    host.manager->deploy(text);
    CHECK(host.by_file(text)->state == PluginState::quarantined);
    CHECK_THAT(host.by_file(text)->reason, Catch::Contains("cannot load"));

    auto truncated = host.plugins() / "truncated.so";
    {
        std::ifstream in(fixture_file("greeter_v1"), std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), {});
        std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 3);
    }
    host.manager->deploy(truncated);
    CHECK(host.by_file(truncated)->state == PluginState::quarantined);
    CHECK_THAT(host.by_file(truncated)->reason, Catch::Contains("truncated or corrupt ELF"));
}

TEST_CASE("a plugin whose start hangs fails with start timed out", "[plugins]") {
    Host host(false, 300ms);
    auto file = host.deploy("hangs_in_start");
    auto info = host.by_file(file);
    REQUIRE(info);
    CHECK(info->state == PluginState::failed);
    CHECK(info->reason == "start timed out after 300 ms");
    host.deploy("greeter_v1", "greeter");
    CHECK(host.greet() == "v1");
}

TEST_CASE("a plugin waits for its required service, stops when it goes and restarts when it "
          "returns",
          "[plugins]") {
    Host host(false);
    auto needs = host.deploy("needs_service");
    auto info = host.by_file(needs);
    CHECK(info->state == PluginState::installed);
    CHECK(info->reason == "waiting for required service test.Provided");
    CHECK(info->missing == std::vector<std::string>{"test.Provided"});

    auto provider = host.deploy("provider");
    REQUIRE(host.wait_state(needs, PluginState::active));
    CHECK(host.by_file(needs)->missing.empty());

    host.manager->remove(provider);
    REQUIRE(host.wait_state(needs, PluginState::stopped));
    CHECK_THAT(host.by_file(needs)->reason, Catch::Contains("required service test.Provided went away"));
    CHECK(host.by_file(provider)->state == PluginState::uninstalled);

    host.deploy("provider");
    REQUIRE(host.wait_state(needs, PluginState::active));
}

TEST_CASE("stop_all stops plugins in reverse start order", "[plugins]") {
    Host host(false);
    auto provider = host.deploy("provider");
    auto needs = host.deploy("needs_service");
    auto greeter = host.deploy("greeter_v1", "greeter");
    std::vector<std::string> order;
    host.manager->on_change([&](const PluginInfo& p) {
        if (p.state == PluginState::stopping) order.push_back(p.id);
    });
    host.manager->stop_all();
    CHECK(order == std::vector<std::string>{"fixture.greeter", "fixture.needs", "fixture.provider"});
    CHECK(host.registry.service_count() == 0);
}

TEST_CASE("hot deploy: a new file starts, a replaced file swaps versions with the call in "
          "flight finishing on the old one, a removed file uninstalls",
          "[plugins][hot]") {
    Host host(true);
    auto file = host.plugins() / "greeter.so";
    install_file(fixture_file("greeter_v1"), file);
    REQUIRE(host.wait_state(file, PluginState::active));
    REQUIRE(host.greet() == "v1");

    // A call in flight on v1.
    auto v1 = std::static_pointer_cast<fixture::Greeter>(
        host.registry.find(fixture::Greeter::kInterfaceName, {})->service);
    std::atomic<bool> release{false};
    auto in_flight = std::async(std::launch::async, [&] { return v1->greet_after(release); });

    install_file(fixture_file("greeter_v2"), file);
    REQUIRE(host.manager->wait_until(
        [&](const auto& all) {
            for (const auto& p : all)
                if (p.file == file && p.version == "2.0.0" && p.state == PluginState::active)
                    return true;
            return false;
        },
        10s));
    CHECK(host.greet() == "v2");
    CHECK(host.by_file(file)->loaded_libraries == 2);  // v1 still mapped: a call is in flight

    release = true;
    CHECK(in_flight.get() == "v1");
    v1.reset();
    REQUIRE(eventually([&] { return host.by_file(file)->loaded_libraries == 1; }));

    // v1's private copy is really unmapped: the same path now runs new code only.
    fs::path cache = host.dir / "data/plugin-cache";
    bool remaining_mapped = false;
    for (const auto& e : fs::directory_iterator(cache)) remaining_mapped |= wharf::host::is_mapped(e.path());
    CHECK(fs::exists(cache));
    std::size_t copies = std::distance(fs::directory_iterator(cache), fs::directory_iterator());
    CHECK(copies == 1);
    CHECK(remaining_mapped);  // the one copy left is v2, in use

    fs::remove(file);
    REQUIRE(host.wait_state(file, PluginState::uninstalled));
    CHECK(host.greet().empty());
}

TEST_CASE("hot deploy: a crashing binary is quarantined and a good one replacing it starts",
          "[plugins][hot]") {
    Host host(true);
    auto file = host.plugins() / "module.so";
    install_file(fixture_file("crashes_at_load"), file);
    REQUIRE(host.wait_state(file, PluginState::quarantined));
    install_file(fixture_file("greeter_v2"), file);
    REQUIRE(host.wait_state(file, PluginState::active));
    CHECK(host.greet() == "v2");
}

TEST_CASE("an upgrade that fails to start keeps the old version running", "[plugins]") {
    Host host(false);
    auto file = host.deploy("greeter_v1", "greeter");
    REQUIRE(host.greet() == "v1");
    // Same file name, a binary whose start throws (another id is fine for the swap).
    install_file(fixture_file("throws_in_start"), file);
    host.manager->deploy(file);
    auto info = host.by_file(file);
    CHECK(info->state == PluginState::active);
    CHECK(info->version == "1.0.0");
    CHECK_THAT(info->last_error, Catch::Contains("database unreachable at start") &&
                                     Catch::Contains("kept version 1.0.0"));
    CHECK(host.greet() == "v1");
}

TEST_CASE("a second file with an installed plugin id is refused", "[plugins]") {
    Host host(false);
    host.deploy("greeter_v1", "greeter");
    auto dup = host.deploy("greeter_v2", "greeter-copy");
    auto info = host.by_file(dup);
    CHECK(info->state == PluginState::failed);
    CHECK_THAT(info->reason, Catch::Contains("plugin id 'fixture.greeter' is already installed"));
    CHECK(host.greet() == "v1");
}

TEST_CASE("a binary that hangs while loading is quarantined when the probe times out and the "
          "host lives on",
          "[plugins]") {
    TempDir dir("wharf-plugins-hang");
    fs::create_directories(dir / "plugins");
    wharf::host::ServiceRegistryImpl registry;
    wharf::host::PluginManagerOptions o;
    o.plugins_dir = dir / "plugins";
    o.cache_dir = dir / "data/plugin-cache";
    o.plugin_data_dir = dir / "data/plugins";
    o.probe_executable = WHARF_PROBE_EXECUTABLE;
    o.probe_timeout = 500ms;
    o.watch = false;
    PluginManager manager(registry, o);
    manager.start();
    auto by_file = [&](const fs::path& file) -> std::optional<PluginInfo> {
        for (auto& p : manager.plugins())
            if (p.file == file) return p;
        return std::nullopt;
    };

    auto stuck = dir / "plugins/stuck.so";
    install_file(fixture_file("hangs_at_load"), stuck);
    manager.deploy(stuck);
    auto info = by_file(stuck);
    REQUIRE(info);
    CHECK(info->state == PluginState::quarantined);
    CHECK(info->reason == "probe hung: loading the plugin did not finish within 500 ms");
    // Never loaded into the host: no private copy was made to load from.
    CHECK((!fs::exists(dir / "data/plugin-cache") || fs::is_empty(dir / "data/plugin-cache")));
    // Same content again: not probed again, still quarantined.
    manager.deploy(stuck);
    CHECK(by_file(stuck)->state == PluginState::quarantined);

    // The host goes on: a good plugin beside it installs and starts.
    auto good = dir / "plugins/greeter.so";
    install_file(fixture_file("greeter_v1"), good);
    manager.deploy(good);
    CHECK(by_file(good)->state == PluginState::active);
    CHECK(registry.find(fixture::Greeter::kInterfaceName, {}));
}
