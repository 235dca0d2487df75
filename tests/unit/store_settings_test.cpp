// The `store:` section of wharf.yaml: which job store backend the host uses.
#include <boost/property_tree/ptree.hpp>
#include <catch2/catch.hpp>

#include "base/error.hpp"
#include "config/host_settings.hpp"

using namespace wharf;
using namespace wharf::host;

TEST_CASE("without a store section the host keeps its jobs in embedded SQLite", "[config][store]") {
    auto s = host_settings_from("/etc/wharf", {});
    REQUIRE(s.store.backend == "sqlite");
    REQUIRE(s.store.url.empty());
}

TEST_CASE("store backend postgresql reads its url, pool size, lease and instance id",
          "[config][store]") {
    boost::property_tree::ptree values;
    values.put("store.backend", "postgresql");
    values.put("store.url", "postgresql://wharf@db.example:5432/wharf");
    values.put("store.pool_size", "16");
    values.put("store.lease_ms", "15000");
    values.put("store.instance_id", "author-1");
    auto s = host_settings_from("/etc/wharf", values);
    REQUIRE(s.store.backend == "postgresql");
    REQUIRE(s.store.url == "postgresql://wharf@db.example:5432/wharf");
    REQUIRE(s.store.pool_size == 16);
    REQUIRE(s.store.lease == std::chrono::milliseconds(15000));
    REQUIRE(s.store.instance_id == "author-1");
}

TEST_CASE("store settings that do not fit together are refused naming the file and key",
          "[config][store]") {
    boost::property_tree::ptree values;
    values.put("store.backend", "postgresql");
    REQUIRE_THROWS_WITH(
        host_settings_from("/etc/wharf", values),
        Catch::Contains("/etc/wharf/wharf.yaml") && Catch::Contains("store.url is required"));
    values.put("store.backend", "mysql");
    REQUIRE_THROWS_WITH(host_settings_from("/etc/wharf", values),
                        Catch::Contains("store.backend must be sqlite or postgresql, not 'mysql'"));
    values.put("store.backend", "postgresql");
    values.put("store.url", "postgresql://db/wharf");
    values.put("store.pool_size", "0");
    REQUIRE_THROWS_AS(host_settings_from("/etc/wharf", values), Error);
}
