#pragma once
// Test support for tests that need two real hosts: a wharfd child process
// with its own directory (configs/, var/, plugins/), on 127.0.0.1 at a port
// chosen up front so that it can be SIGKILLed and started again at the same
// address; helpers to seed its repository before it starts (deterministic
// binaries of any size, streamed) and to read a subtree back over the HTTP
// API. Every process is stopped by its PID when its owner goes (ChildProcess).
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "http/http_client.hpp"
#include "http/users.hpp"
#include "integration/notify_test_support.hpp"
#include "repository/sqlite_repository.hpp"
#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

namespace wharf::test {

/// One wharfd: `root`/configs (wharf.yaml with data_dir ../var, plugins_dir
/// ../plugins and listen 127.0.0.1:<port>), `root`/var, `root`/plugins.
class WharfdHost {
public:
    WharfdHost(std::filesystem::path root, std::string name)
        : root_(std::move(root)), name_(std::move(name)), port_(free_port()) {
        namespace fs = std::filesystem;
        fs::create_directories(root_ / "configs");
        fs::create_directories(root_ / "plugins");
        fs::create_directories(root_ / "var");
        write_config("wharf.yaml", "data_dir: ../var\nplugins_dir: ../plugins\nlisten: 127.0.0.1:" +
                                       std::to_string(port_) +
                                       "\nlog_level: info\njobs:\n  flush_interval_ms: 50\n");
    }

    const std::filesystem::path& root() const { return root_; }
    std::filesystem::path config_dir() const { return root_ / "configs"; }
    std::filesystem::path repository_dir() const { return root_ / "var/repository"; }
    std::uint16_t port() const { return port_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

    void write_config(const std::string& relative, const std::string& text) const {
        write_text(root_ / "configs" / relative, text);
    }
    /// users.yaml with one user per (name, role, token).
    void set_users(const std::vector<std::array<std::string, 3>>& users) const {
        std::string yaml = "users:\n";
        for (const auto& [name, role, token] : users)
            yaml += "  - name: " + name + "\n    role: " + role +
                    "\n    token_sha256: " + host::token_sha256(token) + "\n";
        write_config("users.yaml", yaml);
    }
    /// Copies a built plugin (WHARF_PLUGIN_DIR/<name>.so) into plugins/.
    void add_plugin(const std::string& name) {
        std::filesystem::copy_file(std::filesystem::path(WHARF_PLUGIN_DIR) / (name + ".so"),
                                   root_ / "plugins" / (name + ".so"),
                                   std::filesystem::copy_options::overwrite_existing);
        plugins_.push_back(name);
    }
    /// The repository, for seeding before start() (not while it runs).
    std::shared_ptr<host::SqliteRepository> open_repository() const {
        return host::SqliteRepository::open(repository_dir());
    }

    /// Starts wharfd and waits (30 s at most) until it is ready with every
    /// added plugin active. Throws with the log when it does not get there.
    void start() {
        ++starts_;
        auto log = root_ / (name_ + "-" + std::to_string(starts_) + ".log");
        process_ = std::make_unique<ChildProcess>(
            std::vector<std::string>{WHARF_WHARFD_EXECUTABLE, "--config", config_dir().string()},
            log);
        bool ready = eventually(
            [&] {
                auto out = process_->output();
                for (const auto& p : plugins_)
                    if (out.find("plugin active id=" + p) == std::string::npos) return false;
                return out.find("wharfd ready") != std::string::npos;
            },
            std::chrono::seconds(30));
        if (!ready) throw std::runtime_error(name_ + " did not start: " + process_->output());
    }
    /// SIGKILL, and reap it.
    void kill() {
        if (!process_) return;
        process_->signal(SIGKILL);
        process_->wait(std::chrono::seconds(10));
        process_.reset();
    }
    /// SIGTERM; returns the exit code (-1 when it had to be killed).
    int stop() {
        if (!process_) return -1;
        process_->signal(SIGTERM);
        auto status = process_->wait(std::chrono::seconds(30));
        process_.reset();
        return status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
    }
    bool running() const { return process_ != nullptr; }
    std::string output() const { return process_ ? process_->output() : std::string(); }

    std::unique_ptr<host::HttpClient> client(const std::string& token) const {
        host::HttpClientOptions o;
        o.bearer_token = token;
        o.read_timeout = std::chrono::seconds(60);
        return std::make_unique<host::HttpClient>(url(), o);
    }

private:
    std::filesystem::path root_;
    std::string name_;
    std::uint16_t port_;
    std::vector<std::string> plugins_;
    std::unique_ptr<ChildProcess> process_;
    int starts_ = 0;
};

/// Deterministic bytes for binary `seed`: the same seed gives the same bytes.
inline void fill_bytes(std::uint64_t seed, std::uint64_t offset, char* out, std::size_t size) {
    for (std::size_t i = 0; i < size; i += 8) {
        std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + ((offset + i) / 8) + 1;
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdull;
        x ^= x >> 33;
        x *= 0xc4ceb9fe1a85ec53ull;
        x ^= x >> 33;
        std::memcpy(out + i, &x, std::min<std::size_t>(8, size - i));
    }
}

/// Creates an asset of `size` deterministic bytes with `properties`, its
/// folders first, streaming the binary in 1 MiB chunks.
inline wharf::BinaryInfo seed_asset(wharf::Repository& repo, const std::string& path,
                                    std::uint64_t size, std::uint64_t seed,
                                    const wharf::PropertyMap& properties = {},
                                    const std::string& mime = "application/octet-stream") {
    auto writer = repo.write_binary();
    std::vector<char> chunk(1 << 20);
    for (std::uint64_t at = 0; at < size; at += chunk.size()) {
        auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), size - at));
        fill_bytes(seed, at, chunk.data(), n);
        writer->write(chunk.data(), n);
    }
    auto info = writer->finish(mime);
    auto session = repo.open_session();
    session->create_folders(path.substr(0, path.rfind('/')));
    wharf::Node node;
    node.path = path;
    node.kind = wharf::NodeKind::asset;
    node.binary = info;
    node.properties = properties;
    session->create(node);
    session->commit();
    return info;
}

/// Every node under `root` as the HTTP API shows it, by path relative to
/// `root`: "type size sha256 mime" plus its properties as JSON, without the
/// names in `ignore`. Children are read page by page.
inline std::map<std::string, std::string> api_tree(host::HttpClient& client,
                                                   const std::string& root,
                                                   const std::vector<std::string>& ignore = {}) {
    using Json = nlohmann::json;
    std::map<std::string, std::string> out;
    std::vector<std::string> folders{root};
    auto describe = [&](const Json& node) {
        auto props = node.value("properties", Json::object());
        for (const auto& name : ignore) props.erase(name);
        return node["type"].get<std::string>() + " " + node["size"].dump() + " " +
               node["sha256"].dump() + " " + node["mime"].dump() + " " + props.dump();
    };
    while (!folders.empty()) {
        auto folder = folders.back();
        folders.pop_back();
        std::string cursor;
        for (;;) {
            auto target = "/api/repo/nodes?limit=1000&path=" + host::url_encode(folder);
            if (!cursor.empty()) target += "&cursor=" + host::url_encode(cursor);
            auto response = client.get(target);
            if (response.status != 200)
                throw std::runtime_error("GET " + target + ": " + std::to_string(response.status) +
                                         " " + response.body);
            auto body = Json::parse(response.body);
            if (cursor.empty()) out[folder.substr(root.size())] = describe(body["node"]);
            for (const auto& child : body["children"]) {
                auto path = child["path"].get<std::string>();
                if (child["type"] == "folder") {
                    folders.push_back(path);
                } else {
                    auto full = Json::parse(
                        client.get("/api/repo/nodes?limit=1&path=" + host::url_encode(path)).body);
                    out[path.substr(root.size())] = describe(full["node"]);
                }
            }
            if (body["next_cursor"].is_null()) break;
            cursor = body["next_cursor"].get<std::string>();
        }
    }
    return out;
}

}  // namespace wharf::test
