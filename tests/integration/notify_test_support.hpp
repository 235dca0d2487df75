#pragma once
// Test support for the notification tests: a host in-process (real
// ConfigAdmin on a copy of configs/, real job store and engine, the test
// consumer of http_test_support.hpp, a real Notifier registered as a job
// listener and subscribed to notifications.yaml, the HTTP API on 127.0.0.1
// port 0), and a real SMTP server (Debian's python3-aiosmtpd) that writes
// each message it accepts to a folder.
#include <netinet/in.h>
#include <sys/socket.h>

#include <map>

#include "config/host_schemas.hpp"
#include "integration/http_test_support.hpp"
#include "notify/notifier.hpp"
#include "support/child_process.hpp"

namespace wharf::test {

/// A free TCP port on 127.0.0.1 (bound, read, released).
inline std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

/// tests/fixtures/smtp/smtp_capture.py on 127.0.0.1:port, writing NNNN.eml
/// and NNNN.json (envelope) into `dir`; killed by PID when it goes.
class SmtpServer {
public:
    SmtpServer(std::uint16_t port, fs::path dir, const std::string& credentials = {})
        : dir_(std::move(dir)) {
        fs::create_directories(dir_);
        std::vector<std::string> argv = {
            "/usr/bin/python3",
            (fs::path(WHARF_SOURCE_DIR) / "tests/fixtures/smtp/smtp_capture.py").string(),
            std::to_string(port), dir_.string()};
        if (!credentials.empty()) argv.push_back(credentials);
        process_ = std::make_unique<ChildProcess>(argv, dir_.parent_path() /
                                                            ("smtp-" + std::to_string(port) + ".log"));
        if (!eventually([&] { return process_->output().find("ready") != std::string::npos; },
                        std::chrono::seconds(15)))
            throw std::runtime_error("the SMTP server did not start: " + process_->output());
    }
    /// The messages received so far, in order: (envelope JSON, raw message).
    std::vector<std::pair<nlohmann::json, std::string>> messages() const {
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(dir_))
            if (e.path().extension() == ".eml") files.push_back(e.path());
        std::sort(files.begin(), files.end());
        std::vector<std::pair<nlohmann::json, std::string>> out;
        for (const auto& f : files) {
            std::ifstream env(fs::path(f).replace_extension(".json"));
            std::ifstream raw(f, std::ios::binary);
            std::stringstream a, b;
            a << env.rdbuf();
            b << raw.rdbuf();
            out.emplace_back(nlohmann::json::parse(a.str(), nullptr, false), b.str());
        }
        return out;
    }

private:
    fs::path dir_;
    std::unique_ptr<ChildProcess> process_;
};

/// The value of header `name` in a raw message ("" when absent).
inline std::string mail_header(const std::string& raw, const std::string& name) {
    auto head = raw.substr(0, raw.find("\r\n\r\n"));
    std::string key = "\n" + name + ": ";
    auto at = ("\n" + head).find(key);
    if (at == std::string::npos) return {};
    auto start = at + key.size() - 1;
    auto end = head.find("\r\n", start);
    return head.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

struct NotifyHost {
    TempDir dir{"wharf-notify"};
    host::ServiceRegistryImpl registry;
    std::unique_ptr<host::ConfigAdmin> config;
    std::unique_ptr<host::SqliteJobStore> store;
    std::unique_ptr<host::JobEngine> engine;
    std::shared_ptr<TestConsumer> consumer = std::make_shared<TestConsumer>();
    std::shared_ptr<wharf::ServiceRegistration> consumer_registration;
    std::shared_ptr<host::Notifier> notifier;
    std::shared_ptr<wharf::ServiceRegistration> notifier_registration;
    std::unique_ptr<wharf::ConfigSubscription> subscription;
    std::unique_ptr<host::HttpServer> server;

    /// `notifications_yaml` replaces configs/notifications.yaml when not empty;
    /// `operations` says which topics belong to which operation.
    explicit NotifyHost(const std::string& notifications_yaml = {},
                        std::map<std::string, host::OperationNotice> operations = {}) {
        fs::copy(fs::path(WHARF_SOURCE_DIR) / "configs", dir / "configs",
                 fs::copy_options::recursive);
        write_text(dir / "configs/users.yaml", users_yaml());
        write_text(dir / "configs/queues/test-noretry.yaml",
                   "topics: [test/noretry/*]\nmax_parallel: 4\nretries: 0\n");
        write_text(dir / "configs/queues/test-retry.yaml",
                   "topics: [test/retry/*]\nmax_parallel: 4\nretries: 5\nretry_delay_ms: 600000\n");
        if (!notifications_yaml.empty())
            write_text(dir / "configs/notifications.yaml", notifications_yaml);

        config = start_config_admin(registry, dir / "configs");

        store = open_job_store(dir / "data/jobs.db");
        engine = start_job_engine(registry, *store);
        consumer_registration = register_test_consumer(registry, consumer);

        host::NotifierOptions no;
        no.database = dir / "data/notifications.db";
        no.config_dir = dir / "configs";
        no.operations = [operations](const std::string& topic)
            -> std::optional<host::OperationNotice> {
            auto it = operations.find(topic);
            if (it == operations.end()) return std::nullopt;
            return it->second;
        };
        no.find_job = [this](wharf::JobId id) { return engine->manager()->find(id); };
        notifier = std::make_shared<host::Notifier>(no);
        auto refused = notifier->apply(config->current(host::kNotificationsSchema));
        if (refused) throw std::runtime_error("notifications refused: " + *refused);
        subscription = config->subscribe(
            host::kNotificationsSchema,
            [this](const std::string&, const std::optional<boost::property_tree::ptree>& v) {
                return notifier->apply(v ? *v : config->current(host::kNotificationsSchema));
            });
        notifier_registration = registry.register_service(
            host::Owner{"host", 0}, nullptr, wharf::JobListener::kInterfaceName, notifier, {}, 0);
        notifier->start();

        host::HttpServerOptions ho;
        ho.listen = "127.0.0.1:0";
        ho.users_file = dir / "configs/users.yaml";
        ho.worker_threads = 4;
        host::HttpBackends b;
        b.jobs = engine->manager().get();
        b.store = store.get();
        b.registry = &registry;
        b.config_status = [this] { return config->status(); };
        b.notifier = notifier.get();
        server = std::make_unique<host::HttpServer>(ho, b);
        server->start();
        notifier->set_default_base_url(url() + "/");
    }

    ~NotifyHost() {
        consumer->release();
        server->stop();
        engine->stop();
        notifier_registration->unregister();
        notifier->stop();
    }

    std::string url() const { return "http://127.0.0.1:" + std::to_string(server->port()); }

    host::HttpClient client(const std::string& token) const {
        host::HttpClientOptions o;
        o.bearer_token = token;
        o.read_timeout = std::chrono::seconds(10);
        return host::HttpClient(url(), o);
    }

    /// Enqueues a job as `user`; returns its id.
    wharf::JobId submit(const std::string& topic, const std::string& payload_json,
                        const std::string& user) {
        auto payload = host::json_to_ptree(nlohmann::json::parse(payload_json));
        wharf::EnqueueOptions eo;
        eo.user = user;
        return engine->enqueue(topic, payload, eo).id;
    }

    /// Waits until job `id` is in `state`.
    bool reaches(wharf::JobId id, wharf::JobState state,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        return eventually(
            [&] {
                auto j = engine->find(id);
                return j && j->job.state == state;
            },
            timeout);
    }

    /// GET /api/inbox for `token` (with `query`), parsed.
    nlohmann::json inbox(const std::string& token, const std::string& query = {}) {
        auto c = client(token);
        auto r = c.get("/api/inbox" + query);
        if (r.status != 200) throw std::runtime_error("GET /api/inbox: " + r.body);
        return parse_json(r.body);
    }
};

}  // namespace wharf::test
