// The `store:` section of wharf.yaml: which job store backend the host uses.
#include <boost/property_tree/ptree.hpp>
#include <catch2/catch.hpp>

#include <fstream>

#include "base/error.hpp"
#include "config/host_settings.hpp"
#include "support/temp_dir.hpp"

using namespace wharf;
using namespace wharf::host;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& file, const std::string& text) {
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
}

std::string refusal(const fs::path& dir) {
    try {
        load_host_settings(dir);
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::invalid_argument);
        return e.what();
    }
    FAIL("a bad store section was accepted");
    return {};
}

}  // namespace

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

TEST_CASE("a wharf.yaml store section is validated by the host schema and read at start",
          "[config][store]") {
    wharf::test::TempDir dir("wharf-store-settings");
    write_file(dir / "wharf.yaml",
               "store:\n"
               "  backend: postgresql\n"
               "  url: postgresql://wharf@127.0.0.1:5432/wharf\n"
               "  pool_size: 3\n"
               "  lease_ms: 2000\n"
               "  instance_id: publish-2\n"
               "  blob_dir: ../shared/blobs\n");
    auto s = load_host_settings(dir.path());
    CHECK(s.store.backend == "postgresql");
    CHECK(s.store.url == "postgresql://wharf@127.0.0.1:5432/wharf");
    CHECK(s.store.pool_size == 3);
    CHECK(s.store.lease == std::chrono::milliseconds(2000));
    CHECK(s.store.instance_id == "publish-2");
    CHECK(s.store.blob_dir == (fs::absolute(dir.path()).lexically_normal().parent_path() /
                               "shared/blobs"));

    // The shipped file keeps the embedded store.
    auto shipped = load_host_settings(fs::path(WHARF_SOURCE_DIR) / "configs");
    CHECK(shipped.store.backend == "sqlite");
    CHECK(shipped.store.blob_dir.empty());
}

TEST_CASE("a bad store section is refused with file, line, column and reason", "[config][store]") {
    wharf::test::TempDir dir("wharf-store-settings");
    const std::string file = (dir / "wharf.yaml").string();
    write_file(dir / "wharf.yaml",
               "store:\n"
               "  backend: mysql\n"
               "  pool_size: 0\n"
               "  lease_ms: 10\n"
               "  urll: x\n");
    auto message = refusal(dir.path());
    CHECK_THAT(message, Catch::Contains(file + ":2:12:"));
    CHECK_THAT(message, Catch::Contains("mysql"));
    CHECK_THAT(message, Catch::Contains(file + ":3:14: value 0 for 'store.pool_size' is out of "
                                               "range (1 to 1000)"));
    CHECK_THAT(message, Catch::Contains(file + ":4:13: value 10 for 'store.lease_ms' is out of "
                                               "range (300 to 3600000)"));
    CHECK_THAT(message, Catch::Contains(file + ":5:3: unknown key 'urll' in 'store'"));

    // Keys that are each valid but do not fit together.
    write_file(dir / "wharf.yaml", "store:\n  backend: postgresql\n");
    CHECK_THAT(refusal(dir.path()),
               Catch::Contains("store.url is required when store.backend is postgresql"));
}
