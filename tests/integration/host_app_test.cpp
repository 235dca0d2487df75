// The host composed in-process (app/host.hpp), as wharfd runs it: a
// configuration folder with wharf.yaml, users.yaml and a plugin, the API on
// 127.0.0.1 at a free port, a job that outlives a restart, and a second host
// on the same address failing to start (not sharing the port: the HTTP
// library's SO_REUSEPORT is off) without disturbing the first.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "app/host.hpp"
#include "config/host_settings.hpp"
#include "integration/wharfd_pair_support.hpp"

using Json = nlohmann::json;
using wharf::test::TempDir;
using wharf::test::WharfdHost;

namespace {

const std::string kToken = "host-app-operator-token";

wharf::host::HostOptions test_options() {
    wharf::host::HostOptions o;
    o.probe_executable = WHARF_PROBE_EXECUTABLE;
    return o;
}

}  // namespace

TEST_CASE("the host runs in-process: its API, its plugins, a job kept across a restart",
          "[wharfd]") {
    TempDir dir;
    WharfdHost layout(dir.path() / "host", "host");  // the folders and files only
    layout.set_users({{{"ops", "operator", kToken}}});
    layout.add_plugin("move");
    auto settings = wharf::host::load_host_settings(layout.config_dir());

    std::int64_t id = 0;
    {
        wharf::host::Host host(settings, test_options());
        CHECK(host.address() == "127.0.0.1:" + std::to_string(layout.port()));
        CHECK(host.plugin_count() == 1);
        auto client = layout.client(kToken);
        CHECK(client->get("/healthz").status == 200);
        auto plugins = Json::parse(client->get("/api/plugins").body);
        REQUIRE(plugins["plugins"].size() == 1);
        CHECK(plugins["plugins"][0]["state"] == "active");
        // No consumer for the topic: it waits, stored.
        auto created = client->post_json(
            "/api/jobs", Json{{"topic", "test/host-app/waiting"}, {"payload", Json::object()}}.dump());
        INFO(created.body);
        REQUIRE(created.status == 201);
        id = Json::parse(created.body)["id"].get<std::int64_t>();

        // A second host cannot listen on the same address: it fails to start
        // and takes nothing of the first one with it.
        TempDir other_dir;
        WharfdHost other(other_dir.path() / "other", "other");
        auto clash = wharf::host::load_host_settings(other.config_dir());
        clash.listen = settings.listen;
        CHECK_THROWS_WITH(wharf::host::Host(clash, test_options()),
                          Catch::Contains("cannot listen on " + settings.listen +
                                          " (address in use"));
        CHECK(client->get("/healthz").status == 200);

        host.stop();
        host.stop();  // idempotent
        CHECK_THROWS(client->get("/healthz"));
    }

    // Started again on the same folders: the job is still there, waiting.
    wharf::host::Host again(settings, test_options());
    auto client = layout.client(kToken);
    auto job = client->get("/api/jobs/" + std::to_string(id));
    REQUIRE(job.status == 200);
    auto body = Json::parse(job.body);
    CHECK(body["state"] == "queued");
    CHECK(body["topic"] == "test/host-app/waiting");
}
