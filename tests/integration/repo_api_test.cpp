// The repository read API over a generated repository: nodes with typed
// properties, children paged by cursor, binaries streamed with digest headers
// and Range, references, and the refusals (bad paths 400 naming `path`,
// missing nodes 404, bad ranges 416).
#include <catch2/catch.hpp>
#include <set>

#include "base/sha256.hpp"
#include "integration/http_test_support.hpp"
#include "repository/generator.hpp"
#include "repository/sqlite_repository.hpp"

using namespace std::chrono_literals;
using Json = nlohmann::json;
using wharf::test::kViewerToken;
using wharf::test::parse_json;

namespace {

struct RepoHost {
    wharf::test::TempDir dir{"wharf-repo-api"};
    wharf::host::ContentGeneratorOptions gen;
    std::shared_ptr<wharf::host::SqliteRepository> repository;
    wharf::host::ServiceRegistryImpl registry;
    std::unique_ptr<wharf::host::SqliteJobStore> store;
    std::unique_ptr<wharf::host::JobEngine> engine;
    std::unique_ptr<wharf::host::HttpServer> server;

    RepoHost() {
        gen.assets_root = "/content/dam/r";
        gen.assets = 25;
        gen.assets_per_folder = 10;
        gen.folders_per_group = 2;
        gen.pages_root = "/content/site/en";
        gen.pages = 12;
        gen.pages_per_section = 6;
        gen.references_per_page = 4;
        gen.live_root = "/content/site";
        gen.live_copies = 2;
        gen.min_binary_bytes = 300;
        gen.max_binary_bytes = 900;
        repository = wharf::host::SqliteRepository::open(dir / "repository");
        wharf::host::generate_content(*repository, gen);

        wharf::test::write_text(dir / "users.yaml", wharf::test::users_yaml());
        wharf::host::SqliteJobStoreOptions so;
        so.path = dir / "jobs.db";
        store = std::make_unique<wharf::host::SqliteJobStore>(so);
        store->migrate();
        engine = std::make_unique<wharf::host::JobEngine>(registry, *store);
        engine->start();
        wharf::host::HttpServerOptions ho;
        ho.listen = "127.0.0.1:0";
        ho.users_file = dir / "users.yaml";
        ho.worker_threads = 4;
        wharf::host::HttpBackends b;
        b.jobs = engine->manager().get();
        b.store = store.get();
        b.repository = repository;
        server = std::make_unique<wharf::host::HttpServer>(ho, b);
        server->start();
    }
    ~RepoHost() {
        server->stop();
        engine->stop();
    }

    wharf::host::HttpClient client(const std::string& token = kViewerToken) const {
        wharf::host::HttpClientOptions o;
        o.bearer_token = token;
        return wharf::host::HttpClient("http://127.0.0.1:" + std::to_string(server->port()), o);
    }

    std::string read_all(const std::string& path) {
        auto reader = repository->read_binary(path);
        std::string out(reader->info().size, '\0');
        std::size_t at = 0;
        while (at < out.size()) {
            auto n = reader->read(out.data() + at, out.size() - at);
            if (n == 0) break;
            at += n;
        }
        return out;
    }
};

std::string q(const std::string& path) { return wharf::host::url_encode(path); }

}  // namespace

TEST_CASE("GET /api/repo/nodes answers a folder with its children, paged by cursor",
          "[repo-api]") {
    RepoHost host;
    auto c = host.client();
    auto first = wharf::host::generated_asset_path(host.gen, 0);
    auto folder = first.substr(0, first.rfind('/'));
    std::vector<std::string> paths;
    std::string cursor;
    int pages = 0;
    do {
        auto r = c.get("/api/repo/nodes?path=" + q(folder) + "&limit=4" +
                       (cursor.empty() ? "" : "&cursor=" + q(cursor)));
        INFO(r.body);
        REQUIRE(r.status == 200);
        auto body = parse_json(r.body);
        ++pages;
        CHECK(body["node"]["path"] == folder);
        CHECK(body["node"]["name"] == folder.substr(folder.rfind('/') + 1));
        CHECK(body["node"]["type"] == "folder");
        CHECK(body["node"]["sha256"].is_null());
        CHECK(body["children"].size() <= 4);
        for (const auto& child : body["children"]) {
            CHECK(child["type"] == "asset");
            CHECK_FALSE(child.contains("properties"));
            CHECK(child["sha256"].get<std::string>().size() == 64);
            paths.push_back(child["path"]);
        }
        cursor = body["next_cursor"].is_null() ? "" : body["next_cursor"].get<std::string>();
    } while (!cursor.empty());
    CHECK(pages == 3);
    std::vector<std::string> expected;
    auto page = host.repository->children(folder, std::nullopt, 1000);
    for (const auto& n : page.nodes) expected.push_back(n.path);
    CHECK(paths == expected);
    CHECK(paths.size() == 10);
}

TEST_CASE("an asset's node has typed properties and the binary's size, type and digest",
          "[repo-api]") {
    RepoHost host;
    auto asset = wharf::host::generated_asset_path(host.gen, 3);
    auto stored = host.repository->get(asset);
    REQUIRE(stored);
    auto r = host.client().get("/api/repo/nodes?path=" + q(asset));
    INFO(r.body);
    REQUIRE(r.status == 200);
    auto node = parse_json(r.body)["node"];
    CHECK(node["type"] == "asset");
    CHECK(node["size"] == stored->binary->size);
    CHECK(node["mime"] == stored->binary->mime_type);
    CHECK(node["sha256"] == stored->binary->sha256);
    CHECK(node["modified"].get<std::string>().back() == 'Z');
    CHECK(parse_json(r.body)["children"].empty());
    REQUIRE(node["properties"].size() == stored->properties.size());
    for (const auto& [name, p] : stored->properties) {
        INFO(name);
        const auto& j = node["properties"][name];
        CHECK(j["multiple"] == p.multiple);
        CHECK(j["values"].size() == p.values.size());
        if (p.type == wharf::PropertyType::long_)
            CHECK(j["values"][0] == std::get<std::int64_t>(p.values[0]));
        if (p.type == wharf::PropertyType::string)
            CHECK(j["values"][0] == std::get<std::string>(p.values[0]));
        if (p.type == wharf::PropertyType::double_)
            CHECK(j["values"][0].get<double>() == std::get<double>(p.values[0]));
    }
}

TEST_CASE("a blueprint page lists its live copies and a page carries its text", "[repo-api]") {
    RepoHost host;
    auto r = host.client().get("/api/repo/nodes?path=" + q(host.gen.pages_root));
    REQUIRE(r.status == 200);
    auto node = parse_json(r.body)["node"];
    CHECK(node["type"] == "page");
    CHECK(node.contains("text"));
    REQUIRE(node["live_copies"].size() == 2);
    CHECK(node["live_copies"][0]["blueprint"] == host.gen.pages_root);
    auto live = node["live_copies"][0]["live_copy"].get<std::string>();
    auto lr = host.client().get("/api/repo/nodes?path=" + q(live));
    REQUIRE(lr.status == 200);
    CHECK(parse_json(lr.body)["node"]["live_relationship"]["blueprint"] == host.gen.pages_root);
}

TEST_CASE("GET /api/repo/binary streams the bytes with digest headers and honours Range",
          "[repo-api]") {
    RepoHost host;
    auto asset = wharf::host::generated_asset_path(host.gen, 7);
    auto bytes = host.read_all(asset);
    auto info = host.repository->get(asset)->binary;
    REQUIRE(bytes.size() > 100);
    auto c = host.client();
    auto url = "/api/repo/binary?path=" + q(asset);

    auto full = c.get(url);
    REQUIRE(full.status == 200);
    CHECK(full.body == bytes);
    CHECK(wharf::host::sha256_hex(full.body) == info->sha256);
    CHECK(full.header("X-Wharf-Sha256") == info->sha256);
    CHECK(full.header("ETag") == "\"" + info->sha256 + "\"");
    CHECK(full.header("Content-Length") == std::to_string(bytes.size()));
    CHECK(full.header("Content-Type") == info->mime_type);
    CHECK(full.header("Accept-Ranges") == "bytes");
    auto digest = full.header("Digest");
    CHECK(digest.rfind("sha-256=", 0) == 0);
    CHECK(digest.size() == 8 + 44);  // base64 of 32 bytes

    auto range = [&](const std::string& value) {
        return c.request("GET", url, {}, {}, {{"Range", value}});
    };
    auto head = range("bytes=0-9");
    CHECK(head.status == 206);
    CHECK(head.body == bytes.substr(0, 10));
    CHECK(head.header("Content-Range") == "bytes 0-9/" + std::to_string(bytes.size()));
    CHECK(head.header("X-Wharf-Sha256") == info->sha256);

    auto tail = range("bytes=100-");
    CHECK(tail.status == 206);
    CHECK(tail.body == bytes.substr(100));
    auto suffix = range("bytes=-5");
    CHECK(suffix.status == 206);
    CHECK(suffix.body == bytes.substr(bytes.size() - 5));
    auto past_end = range("bytes=50-999999");
    CHECK(past_end.status == 206);
    CHECK(past_end.body == bytes.substr(50));

    for (const auto& bad : {std::string("bytes=") + std::to_string(bytes.size()) + "-",
                            std::string("bytes=9-3"), std::string("bytes=abc"),
                            std::string("bytes=0-1,4-5"), std::string("bytes=-0")}) {
        auto r = range(bad);
        INFO(bad << " -> " << r.body);
        CHECK(r.status == 416);
    }
    // A stale If-Range gets the whole binary; a matching If-None-Match 304.
    auto stale = c.request("GET", url, {}, {}, {{"Range", "bytes=0-9"}, {"If-Range", "\"old\""}});
    CHECK(stale.status == 200);
    CHECK(stale.body == bytes);
    auto cached = c.request("GET", url, {}, {}, {{"If-None-Match", "\"" + info->sha256 + "\""}});
    CHECK(cached.status == 304);
    CHECK(cached.body.empty());
}

TEST_CASE("GET /api/repo/references lists who points at a node, paged", "[repo-api]") {
    RepoHost host;
    // The asset with the most referrers among the first few.
    std::string target;
    std::uint64_t most = 0;
    for (std::uint64_t i = 0; i < host.gen.assets; ++i) {
        auto path = wharf::host::generated_asset_path(host.gen, i);
        auto n = host.repository->referrers(path, [](const wharf::Reference&) { return true; });
        if (n > most) {
            most = n;
            target = path;
        }
    }
    REQUIRE(most >= 2);
    auto c = host.client();
    std::set<std::string> seen;
    std::string cursor;
    do {
        auto r = c.get("/api/repo/references?path=" + q(target) + "&limit=1" +
                       (cursor.empty() ? "" : "&cursor=" + cursor));
        REQUIRE(r.status == 200);
        auto body = parse_json(r.body);
        CHECK(body["exists"] == true);
        for (const auto& ref : body["references"]) {
            CHECK(ref["to"] == target);
            seen.insert(ref["from"].get<std::string>() + "|" + ref["property"].get<std::string>());
        }
        cursor = body["next_cursor"].is_null() ? "" : body["next_cursor"].get<std::string>();
    } while (!cursor.empty());
    CHECK(seen.size() == most);

    auto subtree = parse_json(
        c.get("/api/repo/references?subtree=true&external=true&limit=1000&path=" +
              q(host.gen.assets_root))
            .body);
    CHECK(subtree["references"].size() > most);
}

TEST_CASE("bad repository paths are 400 naming path, missing nodes 404, and roles are checked",
          "[repo-api]") {
    RepoHost host;
    auto c = host.client();
    for (const auto& route : {"nodes", "binary", "references"}) {
        for (const auto& bad :
             {std::string("content/dam"), std::string("/content/../etc"),
              std::string("/content/%2e%2e/etc"), std::string("/content/a%00b"),
              std::string("/content/dam/"), std::string("/") + std::string(1100, 'a'),
              std::string("/content//dam")}) {
            auto r = c.get(std::string("/api/repo/") + route + "?path=" +
                           (bad.find('%') != std::string::npos ? bad : q(bad)));
            INFO(route << " " << bad.substr(0, 40) << " -> " << r.body);
            CHECK(r.status == 400);
            CHECK(parse_json(r.body)["error"]["field"] == "path");
        }
        auto missing = c.get(std::string("/api/repo/") + route);
        CHECK(missing.status == 400);
        CHECK(parse_json(missing.body)["error"]["field"] == "path");
        CHECK(c.get(std::string("/api/repo/") + route + "?path=/content&bogus=1").status == 400);
        CHECK(host.client("").get(std::string("/api/repo/") + route + "?path=/content").status ==
              401);
    }
    auto none = c.get("/api/repo/nodes?path=" + q("/content/dam/nothing-here"));
    CHECK(none.status == 404);
    CHECK(parse_json(none.body)["error"]["field"] == "path");
    CHECK(c.get("/api/repo/binary?path=" + q("/content/dam/nothing-here")).status == 404);
    auto folder = c.get("/api/repo/binary?path=" + q(host.gen.assets_root));
    CHECK(folder.status == 404);
    CHECK(parse_json(folder.body)["error"]["message"].get<std::string>().find("folder") !=
          std::string::npos);
    CHECK(c.get("/api/repo/nodes?path=/&limit=0").status == 400);
    CHECK(c.get("/api/repo/nodes?path=/&limit=1001").status == 400);
    auto cursor = c.get("/api/repo/nodes?path=/&cursor=" + q("not a cursor\x01"));
    CHECK(cursor.status == 400);
    // The root answers.
    auto root = c.get("/api/repo/nodes?path=/");
    REQUIRE(root.status == 200);
    CHECK(parse_json(root.body)["node"]["type"] == "folder");
    CHECK(host.repository->get(host.gen.assets_root).has_value());
}
