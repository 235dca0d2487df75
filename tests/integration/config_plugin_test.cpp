// A real fixture plugin (tests/fixtures/config_plugin) declares its schema
// through PluginConfigSource, as the plugin manager does: the schema is read
// from its manifest by the out-of-process probe, declared, and the plugin is
// started with a Config from ConfigAdmin::open.
#include <catch2/catch.hpp>

#include "base/log.hpp"
#include "config/config_admin.hpp"
#include "fixtures/config/config_test_support.hpp"
#include "fixtures/config_plugin/config_echo.hpp"
#include "modules/plugin_library.hpp"
#include "modules/plugin_probe.hpp"
#include "modules/service_registry.hpp"

using namespace wharf::host;
using namespace wharf::test_config;

namespace {

const fs::path kFixture = fs::path(WHARF_FIXTURE_DIR) / "config" / "config_fixture.so";

// The context the plugin manager would give the plugin.
class FixtureContext final : public wharf::PluginContext {
public:
    FixtureContext(ServiceRegistryImpl& registry, ConfigAdmin& admin, const fs::path& data)
        : services_(registry, Owner{"config-fixture", registry.new_owner_key()}, nullptr),
          logger_(make_plugin_logger("config-fixture")),
          config_(admin.open("config-fixture")),
          data_(data) {}
    const std::string& id() const override { return id_; }
    const std::string& version() const override { return version_; }
    wharf::ServiceRegistry& services() override { return services_; }
    wharf::Logger& logger() override { return *logger_; }
    wharf::Config& config() override { return *config_; }
    fs::path data_dir() const override { return data_; }
    std::shared_ptr<void> keep_loaded(std::shared_ptr<void> object) override { return object; }

    OwnedRegistry services_;
    std::shared_ptr<wharf::Logger> logger_;
    std::unique_ptr<wharf::Config> config_;

private:
    std::string id_ = "config-fixture";
    std::string version_ = "1.0.0";
    fs::path data_;
};

std::vector<wharf::ConfigSchema> fixture_schemas() {
    auto probe = probe_plugin(WHARF_PROBE_EXECUTABLE, kFixture, std::chrono::seconds(10));
    REQUIRE(probe.outcome == ProbeResult::Outcome::ok);
    REQUIRE(probe.has_manifest);
    return wharf::Manifest::from_ptree(probe.manifest).configs;
}

}  // namespace

TEST_CASE(
    "a plugin's schema declared through PluginConfigSource delivers its updates and a "
    "refusal keeps the old values",
    "[config]") {
    TempTree tree;
    write_in_place(tree / "operations/fixture.yaml", "threshold: 250\n");
    ServiceRegistryImpl registry;
    ConfigAdminOptions options;
    options.config_dir = tree.path();
    options.registry = &registry;
    ConfigAdmin admin(options);
    admin.start();
    // Before the plugin is installed its file waits.
    REQUIRE(admin.status("operations/fixture.yaml")->state == ConfigFileState::pending);

    auto schemas = fixture_schemas();
    REQUIRE(schemas.size() == 1);
    REQUIRE_FALSE(admin.declare("config-fixture", schemas));
    auto status = *admin.status("operations/fixture.yaml");
    CHECK(status.state == ConfigFileState::applied);
    CHECK(status.schema == "operations/fixture");

    auto library = PluginLibrary::load(kFixture, false);
    FixtureContext context(registry, admin, tree / "data");
    auto* activator = library->entry().create_activator();
    activator->start(context);
    auto echo = context.services_.get<ConfigEcho>();
    REQUIRE(echo);
    CHECK(echo->last().get<int>("threshold") == 250);
    CHECK(echo->last().get<std::string>("email_enabled") == "false");  // default

    SECTION("a valid change reaches the plugin") {
        save_by_rename(tree / "operations/fixture.yaml", "threshold: 500\nemail_enabled: yes\n");
        REQUIRE(wait_until([&] { return echo->updates() == 1; }));
        CHECK(echo->last().get<int>("threshold") == 500);
        CHECK(echo->last().get<bool>("email_enabled"));
        CHECK(context.config().current("operations/fixture").get<int>("threshold") == 500);
    }
    SECTION("the plugin refuses a value and the file is refused with its reason") {
        save_by_rename(tree / "operations/fixture.yaml", "threshold: 13\n");
        REQUIRE(wait_until([&] {
            return admin.status("operations/fixture.yaml")->state == ConfigFileState::refused;
        }));
        CHECK_THAT(admin.status("operations/fixture.yaml")->errors.front().to_string(),
                   Catch::StartsWith("operations/fixture.yaml:1:1: refused by its consumer: "
                                     "threshold 13 is refused by the fixture"));
        CHECK(echo->updates() == 0);
        CHECK(context.config().current("operations/fixture").get<int>("threshold") == 250);
    }
    SECTION("a value outside the plugin's schema never reaches it") {
        save_by_rename(tree / "operations/fixture.yaml", "threshold: 0\n");
        REQUIRE(wait_until([&] {
            return admin.status("operations/fixture.yaml")->state == ConfigFileState::refused;
        }));
        CHECK(admin.status("operations/fixture.yaml")->errors.front().to_string() ==
              "operations/fixture.yaml:1:12: value 0 for 'threshold' is out of range (1 to "
              "1000000)");
        CHECK(echo->updates() == 0);
    }
    SECTION("a plugin may read only the configuration it declared") {
        CHECK_THROWS_AS(context.config().current("purge"), std::invalid_argument);
    }

    activator->stop(context);
    library->entry().destroy_activator(activator);
    registry.remove_owner(context.services_.owner().key);
    context.config_.reset();
    admin.retract("config-fixture");
    CHECK(admin.status("operations/fixture.yaml")->state == ConfigFileState::pending);
    CHECK(admin.status("operations/fixture.yaml")->reason ==
          "no plugin declares operations/fixture");
}

TEST_CASE("a plugin cannot declare a configuration the host or another plugin owns", "[config]") {
    TempTree tree;
    ConfigAdminOptions options;
    options.config_dir = tree.path();
    options.watch = false;
    ConfigAdmin admin(options);
    admin.start();
    wharf::ConfigSchema purge;
    purge.name = "purge";
    auto refused = admin.declare("thief", {purge});
    REQUIRE(refused);
    CHECK_THAT(*refused, Catch::Contains("already declared by host"));

    wharf::ConfigSchema inside;
    inside.name = "queues/special";
    CHECK(admin.declare("thief", {inside}));

    REQUIRE_FALSE(admin.declare("config-fixture", fixture_schemas()));
    CHECK(admin.declare("other", fixture_schemas()));

    wharf::ConfigSchema bad;
    bad.name = "operations/bad";
    wharf::ConfigField f;
    f.name = "mode";
    f.format = "colour";
    bad.fields.push_back(f);
    auto invalid = admin.declare("bad", {bad});
    REQUIRE(invalid);
    CHECK_THAT(*invalid, Catch::Contains("unknown format 'colour'"));
}
