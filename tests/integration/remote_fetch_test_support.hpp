#pragma once
// What the remote fetch tests share: two real wharfd hosts (WharfdHost) in
// one temp directory, "remote" (no plugins, a viewer token) and "local" (the
// remote-fetch plugin, an operator token, operations/remote-fetch.yaml naming
// the remote as `src` with its token in a file beside the config), seeded
// content, and helpers to submit requests and wait for jobs.
#include <sstream>

#include "integration/wharfd_pair_support.hpp"

namespace wharf::test {

inline const std::string kRemoteViewerToken = "remote-viewer-token-0123456789";
inline const std::string kLocalOperatorToken = "local-operator-token-0123456789";

struct FetchPairOptions {
    std::string threshold = "104857600";
    int parallel_transfers = 3;
    int retries = 10;
    int retry_delay_ms = 100;
    std::string src_extra;      ///< more keys for remote `src` (indented 4 spaces)
    std::string extra_remotes;  ///< more remotes (indented 2 spaces)
    int queue_retries = 3;
    int queue_retry_delay_ms = 200;
};

class FetchPair {
public:
    explicit FetchPair(const FetchPairOptions& o = {})
        : dir_("wharf-remote-fetch"),
          remote(dir_ / "remote", "remote"),
          local(dir_ / "local", "local") {
        remote.set_users({{{"reader", "viewer", kRemoteViewerToken}}});
        local.set_users({{{"otto", "operator", kLocalOperatorToken}}});
        local.add_plugin("remote-fetch");
        local.write_config("remote.token", kRemoteViewerToken + "\n");
        local.write_config(
            "operations/remote-fetch.yaml",
            "threshold: " + o.threshold + "\nparallel_transfers: " +
                std::to_string(o.parallel_transfers) + "\nretries: " + std::to_string(o.retries) +
                "\nretry_delay_ms: " + std::to_string(o.retry_delay_ms) +
                "\nretry_backoff: 1.5\nretry_delay_max_ms: 2000\nconnect_timeout_ms: 2000\n"
                "low_speed_time_ms: 5000\nremotes:\n  src:\n    url: " +
                remote.url() + "\n    token_file: remote.token\n" + o.src_extra + o.extra_remotes);
        local.write_config("queues/remote.yaml",
                           "topics: [wharf/remote/*]\nmax_parallel: 2\nretries: " +
                               std::to_string(o.queue_retries) + "\nretry_delay_ms: " +
                               std::to_string(o.queue_retry_delay_ms) + "\nretry_backoff: 1\n");
    }

    const TempDir& dir() const { return dir_; }

    void start() {
        remote.start();
        local.start();
        remote_api = remote.client(kRemoteViewerToken);
        local_api = local.client(kLocalOperatorToken);
    }

    /// POST /api/operations/remote-fetch.
    host::HttpResponse submit(const nlohmann::json& request) {
        return local_api->post_json("/api/operations/remote-fetch", request.dump());
    }
    /// POST /api/jobs on wharf/remote/fetch (no count, no threshold): the job id.
    long long enqueue(const nlohmann::json& payload) {
        nlohmann::json body{{"topic", "wharf/remote/fetch"}, {"payload", payload}};
        auto response = local_api->post_json("/api/jobs", body.dump());
        if (response.status != 201) throw std::runtime_error("enqueue: " + response.body);
        return nlohmann::json::parse(response.body)["id"].get<long long>();
    }
    nlohmann::json job(long long id) {
        auto response = local_api->get("/api/jobs/" + std::to_string(id));
        if (response.status != 200) throw std::runtime_error("job: " + response.body);
        return nlohmann::json::parse(response.body);
    }
    nlohmann::json wait_final(long long id,
                              std::chrono::seconds timeout = std::chrono::seconds(60)) {
        nlohmann::json state;
        if (!eventually(
                [&] {
                    state = job(id);
                    return state["final"].get<bool>();
                },
                timeout))
            throw std::runtime_error("job did not end: " + state.dump());
        return state;
    }
    std::string log(long long id) {
        return local_api->get("/api/jobs/" + std::to_string(id) + "/log?format=text&limit=10000")
            .body;
    }
    std::vector<std::string> report(long long id) {
        std::istringstream in(
            local_api->get("/api/jobs/" + std::to_string(id) + "/report.csv").body);
        std::vector<std::string> rows;
        for (std::string line; std::getline(in, line);) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (!line.empty()) rows.push_back(line);
        }
        return rows;
    }
    std::map<std::string, std::string> remote_tree(const std::string& root) {
        return api_tree(*remote_api, root);
    }
    /// The local tree without the property the fetch adds.
    std::map<std::string, std::string> local_tree(const std::string& root) {
        return api_tree(*local_api, root, {"wharf:remoteSource"});
    }
    /// Regular files in the local blob store (tmp/ apart) and in tmp/.
    std::pair<std::size_t, std::size_t> local_blob_files() const {
        namespace fs = std::filesystem;
        std::size_t blobs = 0, temporary = 0;
        auto root = local.repository_dir() / "blobs";
        if (!fs::exists(root)) return {0, 0};
        for (const auto& e : fs::recursive_directory_iterator(root)) {
            if (!e.is_regular_file()) continue;
            if (e.path().parent_path() == root / "tmp")
                ++temporary;
            else
                ++blobs;
        }
        return {blobs, temporary};
    }

private:
    TempDir dir_;

public:
    WharfdHost remote;
    WharfdHost local;
    std::unique_ptr<host::HttpClient> remote_api;
    std::unique_ptr<host::HttpClient> local_api;
};

/// A small tree on the remote: /content/dam/src with photos/a.jpg (typed
/// metadata of every type, multi-valued too), photos/b.png, docs/deep/c.pdf
/// (1 MiB + 17 bytes), an empty folder; and /content/dam/solo.bin and
/// /content/dam/other/a.jpg (another a.jpg). Returns the bytes under src.
inline std::uint64_t seed_small_tree(Repository& repo) {
    PropertyMap props;
    props["dc:title"] = Property::string("Alpha, \"quoted\" \xc3\xa9t\xc3\xa9");
    props["count"] = Property::long_(-42);
    props["ratio"] = Property::double_(0.1);
    props["flag"] = Property::boolean(true);
    props["when"] = Property::date(Date(std::chrono::milliseconds(1700000000123)));
    props["ref"] = Property::path("/content/dam/src/photos/b.png");
    props["tags"] = Property::multi(PropertyType::string, {std::string("x"), std::string("y, z")});
    props["sizes"] = Property::multi(PropertyType::long_, {std::int64_t{1}, std::int64_t{2}});
    std::uint64_t bytes = 0;
    bytes += seed_asset(repo, "/content/dam/src/photos/a.jpg", 3000, 1, props, "image/jpeg").size;
    bytes += seed_asset(repo, "/content/dam/src/photos/b.png", 70000, 2, {}, "image/png").size;
    bytes += seed_asset(repo, "/content/dam/src/docs/deep/c.pdf", (1 << 20) + 17, 3, {},
                        "application/pdf")
                 .size;
    auto session = repo.open_session();
    session->create_folders("/content/dam/src/empty");
    session->commit();
    seed_asset(repo, "/content/dam/solo.bin", 10, 4);
    seed_asset(repo, "/content/dam/other/a.jpg", 500, 5, {}, "image/jpeg");
    return bytes;
}

}  // namespace wharf::test
