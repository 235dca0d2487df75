// The delete plugin in a real wharfd child process: the built plugin is
// copied into the host's plugins dir, requests go through the HTTP API, and
// the repository is checked after the host has stopped.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "http/http_client.hpp"
#include "http/users.hpp"
#include "repository/generator.hpp"
#include "repository/repository_check.hpp"
#include "repository/sqlite_repository.hpp"
#include "support/child_process.hpp"
#include "support/temp_dir.hpp"
#include "support/wharfd_child.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Json = nlohmann::json;
using wharf::test::ChildProcess;
using wharf::test::eventually;
using wharf::test::TempDir;

namespace {

const std::string kOperatorToken = "operator-token-0123456789";

void write_file(const fs::path& file, const std::string& text) {
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::trunc) << text;
}

std::string parent_of(const std::string& path) { return path.substr(0, path.rfind('/')); }

}  // namespace

TEST_CASE("wharfd runs asset-delete inline below the threshold and as a job above it",
          "[operations][delete][wharfd]") {
    TempDir dir("wharfd-ops");
    write_file(dir / "configs/wharf.yaml",
               "data_dir: ../var\nplugins_dir: ../plugins\nlisten: 127.0.0.1:0\nlog_level: info\n");
    write_file(dir / "configs/users.yaml",
               "users:\n  - name: otto\n    role: operator\n    token_sha256: " +
                   wharf::host::token_sha256(kOperatorToken) + "\n");
    write_file(dir / "configs/operations/delete.yaml", "threshold: 5\nbatch_size: 3\n");
    wharf::host::ContentGeneratorOptions gen;
    gen.assets_root = "/content/dam/w";
    gen.assets = 30;
    gen.assets_per_folder = 10;
    gen.folders_per_group = 3;
    gen.pages_root = "/content/w-pages";
    gen.pages = 0;
    {
        auto repository = wharf::host::SqliteRepository::open(dir / "var/repository");
        wharf::host::generate_content(*repository, gen);
    }
    fs::create_directories(dir / "plugins");
    fs::copy_file(fs::path(WHARF_PLUGIN_DIR) / "delete.so", dir / "plugins/delete.so");

    ChildProcess host({WHARF_WHARFD_EXECUTABLE, "--config", (dir / "configs").string()},
                      dir / "wharfd.log");
    REQUIRE(eventually([&] { return wharf::test::wharfd_ready(host.output(), "delete"); }, 20s));
    auto address = wharf::test::listening_address(host.output());
    REQUIRE_FALSE(address.empty());
    wharf::host::HttpClientOptions o;
    o.bearer_token = kOperatorToken;
    wharf::host::HttpClient client("http://" + address, o);

    auto asset = wharf::host::generated_asset_path(gen, 0);
    auto sync = client.post_json("/api/operations/asset-delete",
                                 Json{{"paths", Json::array({asset})}}.dump());
    INFO(sync.body);
    REQUIRE(sync.status == 200);
    CHECK(Json::parse(sync.body)["outcome"] == "succeeded");

    auto folder = parent_of(wharf::host::generated_asset_path(gen, 10));
    auto job = client.post_json("/api/operations/asset-delete",
                                Json{{"paths", Json::array({folder})}}.dump());
    INFO(job.body);
    REQUIRE(job.status == 202);
    auto id = Json::parse(job.body)["id"].get<long long>();
    Json state;
    REQUIRE(eventually(
        [&] {
            state = Json::parse(client.get("/api/jobs/" + std::to_string(id)).body);
            return state["final"].get<bool>();
        },
        20s));
    CHECK(state["state"] == "succeeded");
    // The job is described as the operation described it, not by its topic,
    // and the description is not part of the payload the plugin ran on.
    auto described = Json::parse(job.body)["description"].get<std::string>();
    CHECK(described.rfind("Delete ", 0) == 0);
    CHECK(state["description"] == described);
    CHECK(state["payload"].contains("paths"));
    CHECK_FALSE(state["payload"].contains("wharf:description"));

    host.signal(SIGTERM);
    auto status = host.wait(20s);
    REQUIRE(status);
    CHECK(WEXITSTATUS(*status) == 0);
    auto repository = wharf::host::SqliteRepository::open(dir / "var/repository");
    CHECK_FALSE(repository->get(asset).has_value());
    CHECK_FALSE(repository->get(folder).has_value());
    CHECK(repository->get(wharf::host::generated_asset_path(gen, 20)).has_value());
    CHECK(wharf::host::check_repository(*repository).ok());
}
