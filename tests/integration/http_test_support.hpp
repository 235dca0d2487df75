#pragma once
// Test support for the HTTP API and CLI tests: a whole host in-process (real
// ConfigAdmin on a copy of configs/, real SqliteJobStore, real JobEngine,
// real PluginManager with fixture plugins, HttpServer on 127.0.0.1 port 0),
// users with one token per role, a test consumer whose jobs end the way their
// payload says, and a raw-socket client for requests no HTTP library would send.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "config/config_admin.hpp"
#include "http/http_client.hpp"
#include "http/http_server.hpp"
#include "http/json_codec.hpp"
#include "http/users.hpp"
#include "jobs/job_engine.hpp"
#include "jobs/sqlite_job_store.hpp"
#include "modules/plugin_manager.hpp"
#include "modules/service_registry.hpp"
#include "support/job_host.hpp"
#include "support/temp_dir.hpp"

namespace wharf::test {

namespace fs = std::filesystem;

inline const std::string kViewerToken = "viewer-token-0123456789";
inline const std::string kOperatorToken = "operator-token-0123456789";
inline const std::string kAdminToken = "admin-token-0123456789";
inline const std::string kDisabledToken = "disabled-token-0123456789";

inline void write_text(const fs::path& file, const std::string& text) {
    fs::create_directories(file.parent_path());
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << text;
}

inline std::string users_yaml() {
    using host::token_sha256;
    return "users:\n"
           "  - name: vera\n    role: viewer\n    token_sha256: " +
           token_sha256(kViewerToken) +
           "\n"
           "  - name: otto\n    role: operator\n    token_sha256: " +
           token_sha256(kOperatorToken) +
           "\n"
           "  - name: ada\n    role: admin\n    token_sha256: " +
           token_sha256(kAdminToken) +
           "\n"
           "  - name: gone\n    role: admin\n    enabled: false\n    token_sha256: " +
           token_sha256(kDisabledToken) + "\n";
}

/// Runs jobs of topics test/**: the payload's `outcome` says how they end
/// (succeeded, failed, error, throw); `block: true` keeps the job active until
/// it is stopped or released. Each run logs two lines and reports `rows` rows.
/// A payload that still holds the host's description ends in error.
class TestConsumer final : public wharf::JobConsumer {
public:
    wharf::JobResult process(wharf::JobContext& context) override {
        const auto& p = context.payload();
        // The host keeps the job's description to itself (wharf/jobs.hpp).
        if (p.count(wharf::kJobDescriptionKey) || context.job().payload.count(wharf::kJobDescriptionKey))
            return wharf::JobResult::error("the consumer saw the host's description");
        context.log("started " + context.job().topic);
        auto rows = p.get<int>("rows", 0);
        if (rows > 0) context.report_row({"path", "outcome"});
        for (int i = 0; i < rows; ++i)
            context.report_row({"/content/dam/a" + std::to_string(i) + ",\"x\"", "ok"});
        context.init_progress(10);
        context.increment_progress(3);
        if (p.get<bool>("block", false)) {
            std::unique_lock lock(mutex_);
            ++blocked_;
            cv_.notify_all();
            while (!context.is_stopped() && !released_)
                cv_.wait_for(lock, std::chrono::milliseconds(5));
            --blocked_;
        }
        context.log("done");
        auto outcome = p.get<std::string>("outcome", "succeeded");
        if (outcome == "failed") return wharf::JobResult::failed("try later");
        if (outcome == "error") return wharf::JobResult::error("permanent");
        if (outcome == "throw") throw std::runtime_error("consumer threw");
        return wharf::JobResult::succeeded("ok");
    }
    void release() {
        std::lock_guard lock(mutex_);
        released_ = true;
        cv_.notify_all();
    }
    int blocked() {
        std::lock_guard lock(mutex_);
        return blocked_;
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    int blocked_ = 0;
    bool released_ = false;
};

/// Registers `consumer` as the host's job consumer for topics test/**.
inline std::shared_ptr<wharf::ServiceRegistration> register_test_consumer(
    host::ServiceRegistryImpl& registry, std::shared_ptr<TestConsumer> consumer) {
    wharf::Properties props;
    boost::property_tree::ptree topics;
    topics.push_back({"", boost::property_tree::ptree("test/**")});
    props.add_child(wharf::JobConsumer::kTopicsProperty, topics);
    return registry.register_service(host::Owner{"host", 0}, nullptr,
                                     wharf::JobConsumer::kInterfaceName, std::move(consumer), props,
                                     0);
}

struct ApiHost {
    TempDir dir{"wharf-http"};
    host::ServiceRegistryImpl registry;
    std::unique_ptr<host::ConfigAdmin> config;
    std::unique_ptr<host::SqliteJobStore> store;
    std::unique_ptr<host::JobEngine> engine;
    std::unique_ptr<host::PluginManager> plugins;
    std::shared_ptr<TestConsumer> consumer = std::make_shared<TestConsumer>();
    std::shared_ptr<wharf::ServiceRegistration> consumer_registration;
    std::shared_ptr<wharf::ServiceRegistration> metrics_registration;
    std::unique_ptr<host::HttpServer> server;

    struct Options {
        std::size_t max_body_bytes = 64 * 1024;
        bool with_plugins = true;
    };

    ApiHost() : ApiHost(Options{}) {}
    explicit ApiHost(Options o) {
        fs::copy(fs::path(WHARF_SOURCE_DIR) / "configs", dir / "configs",
                 fs::copy_options::recursive);
        write_text(dir / "configs/users.yaml", users_yaml());
        // test/noretry/*: failures give up at once; test/retry/*: wait long for a retry.
        write_text(dir / "configs/queues/test-noretry.yaml",
                   "topics: [test/noretry/*]\nmax_parallel: 4\nretries: 0\n");
        write_text(dir / "configs/queues/test-retry.yaml",
                   "topics: [test/retry/*]\nmax_parallel: 4\nretries: 5\nretry_delay_ms: 600000\n");
        write_text(dir / "configs/queues/test.yaml",
                   "topics: [test/*]\nmax_parallel: 8\nretries: 0\nranking: -10\n");

        config = start_config_admin(registry, dir / "configs");

        store = open_job_store(dir / "data/jobs.db");
        engine = start_job_engine(registry, *store);

        consumer_registration = register_test_consumer(registry, consumer);

        if (o.with_plugins) {
            fs::create_directories(dir / "plugins");
            host::PluginManagerOptions po;
            po.plugins_dir = dir / "plugins";
            po.cache_dir = dir / "data/plugin-cache";
            po.plugin_data_dir = dir / "data/plugins";
            po.probe_executable = WHARF_PROBE_EXECUTABLE;
            po.watch = false;
            po.config_source = config.get();
            plugins = std::make_unique<host::PluginManager>(registry, po);
            plugins->start();
            for (std::string name : {"greeter_v1", "throws_in_start"}) {
                auto target = dir / "plugins" / (name + ".so");
                fs::copy_file(fs::path(WHARF_FIXTURE_DIR) / (name + ".so"), target);
                plugins->deploy(target);
            }
        }

        host::HttpServerOptions ho;
        ho.listen = "127.0.0.1:0";
        ho.users_file = dir / "configs/users.yaml";
        ho.max_body_bytes = o.max_body_bytes;
        ho.worker_threads = 4;
        host::HttpBackends b;
        b.jobs = engine->manager().get();
        b.store = store.get();
        b.registry = &registry;
        b.queue_views = [this] { return engine->queues(); };
        if (plugins) b.plugins = [this] { return plugins->plugins(); };
        b.config_status = [this] { return config->status(); };
        b.config_schemas = [this] { return config->schemas(); };
        b.config_rescan = [this] { config->rescan(); };
        server = std::make_unique<host::HttpServer>(ho, b);
        metrics_registration = registry.register_service(host::Owner{"host", 0}, nullptr,
                                                         wharf::JobListener::kInterfaceName,
                                                         server->job_metrics(), {}, 0);
        server->start();
    }

    ~ApiHost() {
        consumer->release();
        server->stop();
        if (plugins) plugins->stop_all();
        engine->stop();
    }

    std::string url() const { return "http://127.0.0.1:" + std::to_string(server->port()); }

    host::HttpClient client(const std::string& token = {}) const {
        host::HttpClientOptions o;
        o.bearer_token = token;
        o.read_timeout = std::chrono::seconds(10);
        return host::HttpClient(url(), o);
    }

    /// Enqueues through the engine (as user "seed") and waits until the job is in `state`.
    wharf::Job job_in_state(const std::string& topic, const std::string& payload_json,
                            wharf::JobState state) {
        auto payload = host::json_to_ptree(nlohmann::json::parse(payload_json));
        wharf::EnqueueOptions eo;
        eo.user = "seed";
        auto job = engine->enqueue(topic, payload, eo);
        bool reached = eventually(
            [&] {
                auto j = engine->find(job.id);
                return j && j->job.state == state;
            },
            std::chrono::seconds(10));
        if (!reached)
            throw std::runtime_error("job did not reach state " + std::string(to_string(state)));
        return engine->find(job.id)->job;
    }
};

// Whether `data` holds one complete HTTP response (by Content-Length or a
// final chunk); the caller then stops reading.
inline bool response_complete(const std::string& data) {
    auto end = data.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    std::string head = data.substr(0, end);
    for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto body = data.size() - end - 4;
    auto cl = head.find("\r\ncontent-length:");
    if (cl != std::string::npos) return body >= std::stoull(head.substr(cl + 17));
    if (head.find("transfer-encoding: chunked") != std::string::npos)
        return data.find("\r\n0\r\n\r\n", end) != std::string::npos;
    return false;
}

/// A raw request over a fresh TCP connection: whatever bytes `request` holds.
/// Returns the first response (or what came until the server closed or
/// `timeout` passed). `half_close` ends the sending side after the request,
/// for requests that are incomplete on purpose (the server then sees EOF
/// instead of waiting for its read timeout); complete requests keep it open,
/// since a server may not answer a peer that has already gone.
inline std::string raw_exchange(std::uint16_t port, const std::string& request,
                                std::chrono::milliseconds timeout = std::chrono::seconds(3),
                                bool half_close = false) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return {};
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    std::string response;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        std::size_t sent = 0;
        while (sent < request.size()) {
            auto n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) break;
            sent += static_cast<std::size_t>(n);
        }
        if (half_close) ::shutdown(fd, SHUT_WR);
        char buf[4096];
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!response_complete(response) && std::chrono::steady_clock::now() < deadline) {
            auto n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) break;
            response.append(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(fd);
    return response;
}

inline nlohmann::json parse_json(const std::string& text) {
    return nlohmann::json::parse(text, nullptr, false);
}

}  // namespace wharf::test
