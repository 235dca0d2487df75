// Relative token files in operations/remote-fetch.yaml are resolved against
// the host's config directory as the SDK reports it (wharf::Config::
// directory()), not against the process's working directory or its command
// line: the remote-fetch plugin hosted in-process (a PluginManager with a
// ConfigAdmin on a temp configs/ tree, no wharfd) fetches from a real remote
// wharfd with `token_file: ../secrets/remote.token`, and an edit naming a
// missing relative file is refused with the resolved, normalised path.
#include <catch2/catch.hpp>

#include "config/config_admin.hpp"
#include "integration/remote_fetch_test_support.hpp"
#include "modules/plugin_manager.hpp"
#include "modules/service_registry.hpp"
#include "move_crash/move_harness.hpp"
#include "wharf/operations.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using wharf::test::MemoryContext;
using wharf::test::TempDir;
using wharf::test::WharfdHost;

namespace {

// remote-fetch.so in this process, its configuration from `site`/configs.
class InProcessFetchHost {
public:
    InProcessFetchHost(const fs::path& site, std::shared_ptr<wharf::host::SqliteRepository> repo)
        : repository_(std::move(repo)) {
        repository_registration_ = registry_.register_service(
            wharf::host::Owner{"test", 0}, nullptr, wharf::interfaces::kRepository,
            std::static_pointer_cast<void>(
                std::static_pointer_cast<wharf::Repository>(repository_)),
            {}, 0);
        wharf::host::ConfigAdminOptions co;
        co.config_dir = site / "configs";
        co.registry = &registry_;
        co.watch = false;
        config_ = std::make_unique<wharf::host::ConfigAdmin>(co);
        config_->start();
        fs::create_directories(site / "plugins");
        wharf::host::PluginManagerOptions po;
        po.plugins_dir = site / "plugins";
        po.cache_dir = site / "plugin-cache";
        po.plugin_data_dir = site / "plugin-data";
        po.probe_executable = WHARF_PROBE_EXECUTABLE;
        po.watch = false;
        po.config_source = config_.get();
        plugins_ = std::make_unique<wharf::host::PluginManager>(registry_, po);
        plugins_->start();
        auto target = site / "plugins/remote-fetch.so";
        fs::copy_file(fs::path(WHARF_PLUGIN_DIR) / "remote-fetch.so", target,
                      fs::copy_options::overwrite_existing);
        plugins_->deploy(target);
    }
    ~InProcessFetchHost() {
        plugins_->stop_all();
        repository_registration_->unregister();
    }

    std::shared_ptr<wharf::Operation> operation() const {
        auto found =
            registry_.find(wharf::interfaces::kOperation, {{"operation.name", "remote-fetch"}});
        if (!found) return nullptr;
        return std::static_pointer_cast<wharf::Operation>(found->service);
    }
    wharf::host::ConfigAdmin& config() { return *config_; }
    wharf::host::PluginManager& plugins() { return *plugins_; }

private:
    std::shared_ptr<wharf::host::SqliteRepository> repository_;
    wharf::host::ServiceRegistryImpl registry_;
    std::shared_ptr<wharf::ServiceRegistration> repository_registration_;
    std::unique_ptr<wharf::host::ConfigAdmin> config_;
    std::unique_ptr<wharf::host::PluginManager> plugins_;
};

boost::property_tree::ptree fetch_request(const std::string& remote, const std::string& path,
                                          const std::string& destination) {
    boost::property_tree::ptree r;
    r.put("remote", remote);
    boost::property_tree::ptree paths;
    paths.push_back({"", boost::property_tree::ptree(path)});
    r.add_child("paths", paths);
    r.put("destination", destination);
    return r;
}

std::string fetch_yaml(const std::string& url, const std::string& token_file,
                       const std::string& other_token_file) {
    return "retries: 1\nretry_delay_ms: 50\nconnect_timeout_ms: 2000\nremotes:\n  src:\n    url: " +
           url + "\n    token_file: " + token_file + "\n  inside:\n    url: " + url +
           "\n    token_file: " + other_token_file + "\n";
}

}  // namespace

TEST_CASE(
    "an in-process host resolves relative token files against its config directory, "
    "../ included, and refuses a missing one naming the resolved path",
    "[remote-fetch][config]") {
    TempDir dir("remote-fetch-config-dir");
    WharfdHost remote(dir / "remote", "remote");
    remote.set_users({{{"reader", "viewer", wharf::test::kRemoteViewerToken}}});
    {
        auto repo = remote.open_repository();
        wharf::test::seed_small_tree(*repo);
    }
    remote.start();

    // site/configs is the config directory; one token beside it, one inside.
    const fs::path site = dir / "site";
    wharf::test::write_text(site / "secrets/remote.token", wharf::test::kRemoteViewerToken + "\n");
    wharf::test::write_text(site / "configs/tokens/inside.token",
                            wharf::test::kRemoteViewerToken + "\n");
    wharf::test::write_text(site / "configs/wharf.yaml", "data_dir: ../var\n");
    wharf::test::write_text(
        site / "configs/operations/remote-fetch.yaml",
        fetch_yaml(remote.url(), "../secrets/remote.token", "tokens/inside.token"));
    // Relative to the working directory these names lead nowhere.
    REQUIRE_FALSE(fs::exists("../secrets/remote.token"));
    REQUIRE_FALSE(fs::exists("tokens/inside.token"));

    auto repo = wharf::host::SqliteRepository::open(dir / "local-repo");
    InProcessFetchHost host(site, repo);
    auto state = host.plugins().plugin("remote-fetch");
    REQUIRE(state);
    INFO(state->reason);
    REQUIRE(state->state == wharf::host::PluginState::active);
    auto op = host.operation();
    REQUIRE(op);

    auto remote_api = remote.client(wharf::test::kRemoteViewerToken);
    auto remote_solo = nlohmann::json::parse(
        remote_api->get("/api/repo/nodes?limit=1&path=/content/dam/solo.bin").body)["node"];
    for (const std::string remote_name : {"src", "inside"}) {
        const std::string destination = "/content/dam/from-" + remote_name;
        auto request = fetch_request(remote_name, "/content/dam/solo.bin", destination);
        op->validate(request);
        MemoryContext ctx(request);
        auto result = op->run(ctx);
        INFO(remote_name << ": " << result.message);
        CHECK(result.outcome == wharf::JobResult::Outcome::succeeded);
        auto fetched = repo->get(destination + "/solo.bin");
        REQUIRE(fetched);
        REQUIRE(fetched->binary);
        CHECK(fetched->binary->sha256 == remote_solo["sha256"].get<std::string>());
        CHECK(fetched->binary->size == remote_solo["size"].get<std::uint64_t>());
    }

    // An edit naming a missing file one level up: refused, with the path the
    // plugin looked at (site/missing.token, normalised), and the old remotes stay.
    wharf::test::write_text(site / "configs/operations/remote-fetch.yaml",
                            fetch_yaml(remote.url(), "../missing.token", "tokens/inside.token"));
    host.config().rescan();
    auto status = host.config().status("operations/remote-fetch.yaml");
    REQUIRE(status);
    CHECK(status->state == wharf::host::ConfigFileState::refused);
    std::string errors;
    for (const auto& e : status->errors) errors += e.message + "\n";
    INFO(errors);
    const auto resolved = (fs::absolute(site) / "missing.token").lexically_normal().string();
    CHECK_THAT(errors, Catch::Contains("remotes.src.token_file") &&
                           Catch::Contains("cannot read token file '" + resolved + "'"));
    CHECK_THAT(errors, !Catch::Contains(".."));

    auto again = fetch_request("src", "/content/dam/solo.bin", "/content/dam/after-refusal");
    MemoryContext ctx(again);
    auto result = op->run(ctx);
    INFO(result.message);
    CHECK(result.outcome == wharf::JobResult::Outcome::succeeded);
    CHECK(repo->get("/content/dam/after-refusal/solo.bin"));
}
