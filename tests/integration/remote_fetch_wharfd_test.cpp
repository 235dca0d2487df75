// Remote fetch between two real wharfd processes on 127.0.0.1: the remote
// serves its repository read API, the local host runs the remote-fetch
// plugin. Synchronous fetches below the threshold, jobs above it, conflicts,
// a missing path, bad requests, a bad token, a remote that is down and a
// corrupted binary on the remote.
#include <catch2/catch.hpp>
#include <fstream>

#include "integration/remote_fetch_test_support.hpp"

using namespace std::chrono_literals;
using Json = nlohmann::json;
using wharf::test::FetchPair;
using wharf::test::FetchPairOptions;

namespace {

bool has_row(const std::vector<std::string>& rows, const std::string& start,
             const std::string& part) {
    for (const auto& r : rows)
        if (r.rfind(start, 0) == 0 && r.find(part) != std::string::npos) return true;
    return false;
}

std::size_t count_rows(const Json& report, const std::string& outcome) {
    std::size_t n = 0;
    for (const auto& row : report)
        if (row.size() > 3 && row[3] == outcome) ++n;
    return n;
}

}  // namespace

TEST_CASE(
    "a remote fetch below the threshold runs at once and copies folders, binaries and "
    "typed metadata; conflicts fail, rename or overwrite",
    "[remote-fetch][wharfd]") {
    FetchPair pair;
    std::uint64_t src_bytes = 0;
    {
        auto repo = pair.remote.open_repository();
        src_bytes = wharf::test::seed_small_tree(*repo);
    }
    pair.start();

    auto response = pair.submit({{"remote", "src"},
                                 {"paths", {"/content/dam/src", "/content/dam/solo.bin"}},
                                 {"destination", "/content/dam/fetched"}});
    INFO(response.body);
    REQUIRE(response.status == 200);
    auto body = Json::parse(response.body);
    CHECK(body["mode"] == "sync");
    CHECK(body["outcome"] == "succeeded");
    CHECK(body["count"] == src_bytes + 10);
    CHECK_THAT(body["message"].get<std::string>(),
               Catch::Contains("fetched 4 of 4 assets") && Catch::Contains("remote 'src'"));
    CHECK(count_rows(body["report"], "fetched") == 4);

    // Every folder (the empty one too), binary and typed property as the remote has them.
    auto remote_tree = pair.remote_tree("/content/dam/src");
    CHECK(remote_tree.size() == 8);
    CHECK(pair.local_tree("/content/dam/fetched/src") == remote_tree);
    CHECK(pair.local_tree("/content/dam/fetched/solo.bin") ==
          pair.remote_tree("/content/dam/solo.bin"));
    auto a = Json::parse(
        pair.local_api->get("/api/repo/nodes?path=/content/dam/fetched/src/photos/a.jpg").body);
    CHECK(a["node"]["properties"]["wharf:remoteSource"]["values"][0] ==
          "src:/content/dam/src/photos/a.jpg");
    CHECK(a["node"]["properties"]["count"]["type"] == "Long");
    CHECK(a["node"]["properties"]["when"]["values"][0] == "2023-11-14T22:13:20.123Z");

    // The same request again fetches nothing: every asset is already there.
    response = pair.submit({{"remote", "src"},
                            {"paths", {"/content/dam/src"}},
                            {"destination", "/content/dam/fetched"}});
    body = Json::parse(response.body);
    CHECK(body["outcome"] == "succeeded");
    CHECK(count_rows(body["report"], "skipped") == 3);
    CHECK_THAT(body["message"].get<std::string>(), Catch::Contains("3 already fetched"));

    // Another a.jpg onto the same name: fail (default), rename, overwrite.
    Json other{{"remote", "src"},
               {"paths", {"/content/dam/other/a.jpg"}},
               {"destination", "/content/dam/fetched/src/photos"}};
    body = Json::parse(pair.submit(other).body);
    CHECK(body["outcome"] == "error");
    CHECK(count_rows(body["report"], "failed") == 1);
    CHECK_THAT(body["report"][1][4].get<std::string>(), Catch::Contains("exists (conflict: fail"));
    auto before = pair.local_tree("/content/dam/fetched/src");
    CHECK(before == remote_tree);

    other["conflict"] = "rename";
    body = Json::parse(pair.submit(other).body);
    CHECK(body["outcome"] == "succeeded");
    CHECK(body["report"][1][1] == "/content/dam/fetched/src/photos/a-1.jpg");
    auto renamed = pair.local_tree("/content/dam/fetched/src/photos/a-1.jpg");
    CHECK(renamed[""] == pair.remote_tree("/content/dam/other/a.jpg")[""]);

    other["conflict"] = "overwrite";
    body = Json::parse(pair.submit(other).body);
    CHECK(body["outcome"] == "succeeded");
    CHECK(body["report"][1][4] == "overwritten");
    CHECK(pair.local_tree("/content/dam/fetched/src/photos/a.jpg")[""] ==
          pair.remote_tree("/content/dam/other/a.jpg")[""]);
}

TEST_CASE(
    "a remote fetch above the threshold becomes a job; a missing path fails its row and "
    "the others are fetched",
    "[remote-fetch][wharfd]") {
    FetchPairOptions options;
    options.threshold = "1000";
    FetchPair pair(options);
    {
        auto repo = pair.remote.open_repository();
        wharf::test::seed_small_tree(*repo);
    }
    pair.start();
    auto response = pair.submit({{"remote", "src"},
                                 {"paths", {"/content/dam/src", "/content/dam/missing"}},
                                 {"destination", "/content/dam/job"}});
    INFO(response.body);
    REQUIRE(response.status == 202);
    auto id = Json::parse(response.body)["id"].get<long long>();
    auto state = pair.wait_final(id);
    INFO(state.dump());
    CHECK(state["description"] ==
          "Fetch 3 assets (1.1 MiB) from src:/content/dam/src, /content/dam/missing to "
          "/content/dam/job");
    CHECK(state["state"] == "error");  // a row failed: the rest is there, the report says which
    CHECK_THAT(state["result_message"].get<std::string>(),
               Catch::Contains("fetched 3 of 3 assets") && Catch::Contains("1 failed"));
    CHECK(state["progress"]["done"] == state["progress"]["total"]);
    auto rows = pair.report(id);
    REQUIRE(rows.size() == 5);
    CHECK(rows[0] == "remote path,local path,bytes,outcome,message");
    CHECK(has_row(rows, "/content/dam/missing,", ",failed,"));
    CHECK(has_row(rows, "/content/dam/missing,", "404"));
    CHECK(has_row(
        rows,
        "/content/dam/src/docs/deep/c.pdf,/content/dam/job/src/docs/deep/c.pdf,1048593,fetched",
        ""));
    CHECK(pair.local_tree("/content/dam/job/src") == pair.remote_tree("/content/dam/src"));
    CHECK_THAT(pair.log(id), Catch::Contains("listed 3 assets"));
}

TEST_CASE("bad remote fetch requests are refused naming the field and change nothing",
          "[remote-fetch][wharfd]") {
    FetchPair pair;
    {
        auto repo = pair.remote.open_repository();
        wharf::test::seed_small_tree(*repo);
    }
    pair.start();
    REQUIRE(pair.submit({{"remote", "src"},
                         {"paths", {"/content/dam/solo.bin"}},
                         {"destination", "/content/dam/in"}})
                .status == 200);
    auto before = pair.local_tree("/content");

    struct Bad {
        Json request;
        std::string field;
        std::string says;
    };
    std::vector<Bad> bad{
        {{{"remote", "nope"}, {"paths", {"/content/dam/src"}}, {"destination", "/content/dam/x"}},
         "remote",
         "unknown remote 'nope' (known: src)"},
        {{{"paths", {"/content/dam/src"}}, {"destination", "/content/dam/x"}},
         "remote",
         "'remote' is required"},
        {{{"remote", "src"}, {"destination", "/content/dam/x"}}, "paths", "'paths' is required"},
        {{{"remote", "src"}, {"paths", {"content/dam/src"}}, {"destination", "/content/dam/x"}},
         "paths",
         "not absolute (must start with '/')"},
        {{{"remote", "src"}, {"paths", {"/content/dam/../etc"}}, {"destination", "/content/dam/x"}},
         "paths",
         "segment '..' at byte"},
        {{{"remote", "src"},
          {"paths", {"/content/dam/src", "/content/dam/src/photos"}},
          {"destination", "/content/dam/x"}},
         "paths",
         "is inside '/content/dam/src'"},
        {{{"remote", "src"},
          {"paths", {"/content/dam/src"}},
          {"destination", "/content/dam/in/solo.bin/x"}},
         "destination",
         "which is an asset"},
        {{{"remote", "src"},
          {"paths", {"/content/dam/src"}},
          {"destination", "/content/dam/in/solo.bin"}},
         "destination",
         "the destination must be a folder"},
        {{{"remote", "src"}, {"paths", {"/content/dam/src"}}, {"destination", "x//y"}},
         "destination",
         "not absolute (must start with '/')"},
        {{{"remote", "src"},
          {"paths", {"/content/dam/src"}},
          {"destination", "/content/dam/x"},
          {"conflict", "merge"}},
         "conflict",
         "must be fail, rename or overwrite"},
        {{{"remote", "src"},
          {"paths", {"/content/dam/src"}},
          {"destination", "/content/dam/x"},
          {"server", "http://elsewhere"}},
         "server",
         "unknown field 'server'"},
    };
    for (const auto& b : bad) {
        auto response = pair.submit(b.request);
        INFO(b.request.dump() << " -> " << response.body);
        CHECK(response.status == 400);
        auto error = Json::parse(response.body)["error"];
        CHECK(error["field"] == b.field);
        CHECK_THAT(error["message"].get<std::string>(), Catch::Contains(b.says));
    }
    CHECK(pair.local_tree("/content") == before);
    auto jobs = Json::parse(pair.local_api->get("/api/jobs?topic=wharf/remote/fetch").body);
    CHECK(jobs["jobs"].empty());
}

TEST_CASE(
    "a remote that refuses the token: the request is refused and a job errors, both "
    "naming the remote",
    "[remote-fetch][wharfd]") {
    FetchPairOptions options;
    options.extra_remotes = "  locked:\n    url: URL\n    token_file: wrong.token\n";
    FetchPair pair(options);
    // The same remote, with a token it does not know.
    {
        std::ifstream in(pair.local.config_dir() / "operations/remote-fetch.yaml");
        std::stringstream ss;
        ss << in.rdbuf();
        auto text = ss.str();
        text.replace(text.find("URL"), 3, pair.remote.url());
        pair.local.write_config("operations/remote-fetch.yaml", text);
        pair.local.write_config("wrong.token", "not-a-token-the-remote-knows\n");
        auto repo = pair.remote.open_repository();
        wharf::test::seed_small_tree(*repo);
    }
    pair.start();
    Json request{{"remote", "locked"},
                 {"paths", {"/content/dam/src"}},
                 {"destination", "/content/dam/locked"}};
    auto response = pair.submit(request);
    INFO(response.body);
    CHECK(response.status == 400);
    auto error = Json::parse(response.body)["error"];
    CHECK(error["field"] == "remote");
    CHECK_THAT(error["message"].get<std::string>(),
               Catch::Contains("remote 'locked'") && Catch::Contains("HTTP 401"));

    auto id = pair.enqueue(request);
    auto state = pair.wait_final(id);
    INFO(state.dump());
    CHECK(state["state"] == "error");
    CHECK(state["retry_count"] == 0);
    CHECK_THAT(state["result_message"].get<std::string>(),
               Catch::Contains("remote 'locked'") && Catch::Contains("refused the token") &&
                   Catch::Contains("wrong.token"));
    CHECK(pair.local_api->get("/api/repo/nodes?path=/content/dam/locked").status == 404);
}

TEST_CASE(
    "a remote that is down: the request is refused; a job retries with back-off, fails "
    "with the reason, is retried by its queue and given up",
    "[remote-fetch][wharfd]") {
    FetchPairOptions options;
    options.retries = 2;
    options.retry_delay_ms = 50;
    options.queue_retries = 1;
    options.queue_retry_delay_ms = 100;
    FetchPair pair(options);
    pair.start();
    pair.remote.kill();  // for good

    Json request{
        {"remote", "src"}, {"paths", {"/content/dam/src"}}, {"destination", "/content/dam/d"}};
    auto response = pair.submit(request);
    INFO(response.body);
    CHECK(response.status == 400);
    CHECK_THAT(Json::parse(response.body)["error"]["message"].get<std::string>(),
               Catch::Contains("remote 'src'") && Catch::Contains("Couldn't connect"));

    auto id = pair.enqueue(request);
    auto state = pair.wait_final(id);
    INFO(state.dump());
    CHECK(state["state"] == "given_up");
    CHECK(state["retry_count"] == 1);
    CHECK_THAT(state["result_message"].get<std::string>(),
               Catch::Contains("remote 'src' (" + pair.remote.url() + ")") &&
                   Catch::Contains("Couldn't connect") &&
                   Catch::Contains("gave up after 3 attempts"));
    auto log = pair.log(id);
    CHECK_THAT(
        log, Catch::Contains("retry 1 of 2 in 50 ms") && Catch::Contains("retry 2 of 2 in 75 ms"));
}

TEST_CASE(
    "a binary whose bytes do not match the remote's sha256 fails its row and leaves no "
    "node and no blob",
    "[remote-fetch][wharfd]") {
    FetchPair pair;
    wharf::BinaryInfo b;
    {
        auto repo = pair.remote.open_repository();
        wharf::test::seed_small_tree(*repo);
        b = repo->get("/content/dam/src/photos/b.png")->binary.value();
    }
    // Corrupt the remote's stored copy, same length: the remote still
    // announces the digest it recorded.
    auto file = pair.remote.repository_dir() / "blobs" / b.sha256.substr(0, 2) /
                b.sha256.substr(2, 2) / b.sha256;
    REQUIRE(std::filesystem::exists(file));
    {
        std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(1000);
        f.write("corrupted", 9);
    }
    pair.start();
    auto response = pair.submit(
        {{"remote", "src"}, {"paths", {"/content/dam/src"}}, {"destination", "/content/dam/v"}});
    INFO(response.body);
    REQUIRE(response.status == 200);
    auto body = Json::parse(response.body);
    CHECK(body["outcome"] == "error");
    CHECK(count_rows(body["report"], "fetched") == 2);
    bool found = false;
    for (const auto& row : body["report"]) {
        if (row[0] != "/content/dam/src/photos/b.png") continue;
        found = true;
        CHECK(row[3] == "failed");
        CHECK_THAT(row[4].get<std::string>(),
                   Catch::Contains("digest mismatch") && Catch::Contains(b.sha256));
    }
    CHECK(found);
    CHECK(pair.local_api->get("/api/repo/nodes?path=/content/dam/v/src/photos/b.png").status ==
          404);
    CHECK(pair.local_api->get("/api/repo/nodes?path=/content/dam/v/src/photos/a.jpg").status ==
          200);
    // Two blobs (a.jpg and c.pdf), nothing of b.png, no temporary file.
    CHECK(pair.local_blob_files() == std::pair<std::size_t, std::size_t>{2, 0});
}

TEST_CASE(
    "a folder listing with properties=1 carries each child's properties, and a remote fetch "
    "of a folder reads metadata from it instead of one request per asset",
    "[remote-fetch][wharfd]") {
    FetchPair pair;
    std::map<std::string, std::string> expected_titles;
    {
        auto repo = pair.remote.open_repository();
        wharf::test::seed_small_tree(*repo);
        for (int i = 0; i < 20; ++i) {
            auto title = "asset " + std::to_string(i);
            wharf::test::seed_asset(*repo, "/content/dam/many/a" + std::to_string(i) + ".bin",
                                    100 + i, 100 + i,
                                    {{"dc:title", wharf::Property::string(title)}});
            expected_titles["a" + std::to_string(i) + ".bin"] = title;
        }
    }
    pair.start();

    // The remote's listing: properties only when asked, as the node shows them.
    auto with = Json::parse(
        pair.remote_api->get("/api/repo/nodes?path=/content/dam/src/photos&properties=1").body);
    auto without =
        Json::parse(pair.remote_api->get("/api/repo/nodes?path=/content/dam/src/photos").body);
    REQUIRE(with["children"].size() == 2);
    REQUIRE(without["children"].size() == 2);
    auto a_jpg = Json::parse(
        pair.remote_api->get("/api/repo/nodes?path=/content/dam/src/photos/a.jpg").body)["node"];
    CHECK(with["children"][0]["path"] == "/content/dam/src/photos/a.jpg");
    CHECK(with["children"][0]["properties"] == a_jpg["properties"]);
    CHECK(with["children"][1]["properties"] == Json::object());
    CHECK_FALSE(without["children"][0].contains("properties"));
    auto bad = pair.remote_api->get("/api/repo/nodes?path=/content/dam&properties=yes");
    CHECK(bad.status == 400);
    CHECK(Json::parse(bad.body)["error"]["field"] == "properties");

    auto node_requests = [&] {
        auto body = pair.remote_api->get("/metrics").body;
        const std::string series =
            R"(wharf_http_requests_total{route="/api/repo/nodes",method="GET",status="200"} )";
        auto at = body.find(series);
        REQUIRE(at != std::string::npos);
        return std::stod(body.substr(at + series.size(), body.find('\n', at) - at));
    };
    const auto before = node_requests();
    auto response = pair.submit({{"remote", "src"},
                                 {"paths", {"/content/dam/many"}},
                                 {"destination", "/content/dam/copies"}});
    INFO(response.body);
    REQUIRE(response.status == 200);
    CHECK(Json::parse(response.body)["outcome"] == "succeeded");
    const auto requests = node_requests() - before;
    // Listing the folder (for the count, then for the run), not one per asset.
    CHECK(requests >= 1);
    CHECK(requests < 20);
    for (const auto& [name, title] : expected_titles) {
        auto local = Json::parse(
            pair.local_api->get("/api/repo/nodes?path=/content/dam/copies/many/" + name).body);
        INFO(name);
        CHECK(local["node"]["properties"]["dc:title"]["values"][0] == title);
    }
    CHECK(pair.local_tree("/content/dam/copies/many") == pair.remote_tree("/content/dam/many"));
}
