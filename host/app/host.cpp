#include "app/host.hpp"

#include <chrono>
#include <filesystem>

#include "base/log.hpp"
#include "config/config_admin.hpp"
#include "config/host_schemas.hpp"
#include "http/http_server.hpp"
#include "jobs/cluster_member.hpp"
#include "jobs/job_engine.hpp"
#include "jobs/operation_submission.hpp"
#include "jobs/pg_job_store.hpp"
#include "jobs/sqlite_job_store.hpp"
#include "modules/plugin_manager.hpp"
#include "modules/service_registry.hpp"
#include "notify/notifier.hpp"
#include "repository/pg_repository.hpp"
#include "repository/sqlite_repository.hpp"

namespace wharf::host {

namespace {

using Ptree = boost::property_tree::ptree;

// Jobs: the store is the truth: data_dir/jobs.db, or with store.backend
// postgresql a database every instance of a cluster shares.
std::unique_ptr<JobStore> open_job_store(const HostSettings& settings) {
    std::unique_ptr<JobStore> store;
    if (settings.store.backend == "postgresql") {
        PgJobStoreOptions o;
        o.url = settings.store.url;
        o.pool_size = settings.store.pool_size;
        o.max_log_lines = settings.jobs.max_log_lines;
        store = std::make_unique<PgJobStore>(o);
    } else {
        SqliteJobStoreOptions o;
        o.path = settings.data_dir / "jobs.db";
        o.synchronous = settings.jobs.synchronous;
        o.max_log_lines = settings.jobs.max_log_lines;
        store = std::make_unique<SqliteJobStore>(o);
    }
    store->migrate();
    return store;
}

JobEngineOptions engine_options(const HostSettings& settings) {
    JobEngineOptions o;
    o.drain_timeout = settings.drain_timeout;
    o.stop_grace = settings.jobs.stop_grace;
    o.stuck_after = settings.jobs.stuck_after;
    o.shutdown_grace = settings.jobs.shutdown_grace;
    o.flush_interval = settings.jobs.flush_interval;
    o.max_workers = settings.jobs.max_workers;
    return o;
}

ClusterMemberOptions member_options(const HostSettings& settings) {
    ClusterMemberOptions o;
    o.lease.url = settings.store.url;
    o.lease.instance_id = settings.store.instance_id.empty() ? ClusterLease::default_instance_id()
                                                             : settings.store.instance_id;
    o.lease.address = settings.listen;
    o.lease.lease = settings.store.lease;
    return o;
}

// The content repository: SQLite in data_dir/repository, or in a cluster
// the shared database with binaries in store.blob_dir.
std::shared_ptr<Repository> open_repository(const HostSettings& settings) {
    if (settings.store.backend != "postgresql")
        return SqliteRepository::open(settings.data_dir / "repository");
    PgRepositoryOptions o;
    o.url = settings.store.url;
    o.pool_size = settings.store.pool_size;
    o.blob_dir = settings.store.blob_dir.empty() ? settings.data_dir / "repository" / "blobs"
                                                 : settings.store.blob_dir;
    return PgRepository::open(o);
}

PurgeSettings purge_from(const Ptree& v) {
    PurgeSettings p;
    p.enabled = v.get<bool>("enabled", true);
    p.schedule = v.get<std::string>("schedule", p.schedule);
    p.threshold_days = v.get<std::int64_t>("threshold_days", p.threshold_days);
    p.max_jobs = v.get<std::int64_t>("max_jobs", p.max_jobs);
    return p;
}

HttpServerOptions http_options(const HostSettings& settings) {
    HttpServerOptions o;
    o.listen = settings.listen;
    // wharf.yaml's http: section, read at start like listen.
    o.max_body_bytes = settings.http.max_body_bytes;
    o.max_upload_bytes = settings.http.max_upload_bytes;
    o.read_timeout = settings.http.read_timeout;
    o.write_timeout = settings.http.write_timeout;
    o.worker_threads = settings.http.worker_threads;
    return o;
}

}  // namespace

// Members in start order: they are destroyed in reverse, after stop().
struct Host::Parts {
    HostSettings settings;
    HostOptions options;
    std::shared_ptr<spdlog::logger> log = logger("host");
    ServiceRegistryImpl registry;

    std::unique_ptr<ConfigAdmin> config;
    std::unique_ptr<wharf::ConfigSubscription> log_level_subscription;

    std::unique_ptr<JobStore> job_store;
    std::unique_ptr<JobEngine> jobs;
    // After the engine so that it ends (and stops telling the engine about
    // work) first.
    std::unique_ptr<ClusterMember> cluster;
    std::chrono::system_clock::time_point started_at = std::chrono::system_clock::now();
    std::unique_ptr<wharf::ConfigSubscription> purge_subscription;

    std::shared_ptr<Repository> repository;
    std::unique_ptr<OwnedRegistry> host_services;
    std::shared_ptr<wharf::ServiceRegistration> repository_registration;

    std::unique_ptr<PluginManager> plugins;
    std::shared_ptr<wharf::JobManager> job_manager;
    std::unique_ptr<OperationSubmission> operations;

    std::shared_ptr<Notifier> notifier;
    std::unique_ptr<wharf::ConfigSubscription> notify_subscription;
    std::shared_ptr<wharf::ServiceRegistration> notify_registration;

    std::unique_ptr<HttpServer> http;
    std::unique_ptr<wharf::ConfigSubscription> users_subscription;
    std::shared_ptr<wharf::ServiceRegistration> job_metrics_registration;
    bool stopped = false;

    Parts(HostSettings s, HostOptions o) : settings(std::move(s)), options(std::move(o)) {
        std::filesystem::create_directories(settings.data_dir);
        start_config();
        start_jobs();
        start_repository();
        start_plugins();
        start_notifications();
        start_http();
    }

    // Every file validated, watched, queues registered as services. Refused
    // files are logged with file:line:col and do not stop the host.
    void start_config() {
        ConfigAdminOptions o;
        o.config_dir = settings.config_dir;
        o.registry = &registry;
        o.cores = settings.cores;
        config = std::make_unique<ConfigAdmin>(o);
        config->start();
        log_level_subscription = config->subscribe(
            "wharf", [](const std::string&, const std::optional<Ptree>& v) -> wharf::ConfigVerdict {
                if (v) set_log_level(v->get<std::string>("log_level", "info"));
                return std::nullopt;
            });
    }

    // The engine recovers what was active when the host (in a cluster: this
    // instance) last ended before it runs anything. In a cluster the
    // instance registers its lease before the engine claims anything, so
    // every claim is covered by it.
    void start_jobs() {
        job_store = open_job_store(settings);
        auto eo = engine_options(settings);
        const bool clustered = settings.store.backend == "postgresql";
        ClusterMemberOptions mo;
        if (clustered) {
            mo = member_options(settings);
            eo.worker = mo.lease.instance_id;
            eo.recover_every_worker = false;
        }
        jobs = std::make_unique<JobEngine>(registry, *job_store, eo);
        if (clustered) cluster = std::make_unique<ClusterMember>(mo, *job_store);
        jobs->start();
        if (cluster) cluster->start(*jobs);
        jobs->set_purge(purge_from(config->current("purge")));
        purge_subscription = config->subscribe(
            "purge",
            [this](const std::string&, const std::optional<Ptree>& v) -> wharf::ConfigVerdict {
                try {
                    jobs->set_purge(purge_from(v ? *v : config->current("purge")));
                } catch (const std::exception& e) {
                    return std::string("purge job not rescheduled: ") + e.what();
                }
                return std::nullopt;
            });
    }

    // Nodes, references, blobs, offered to operation plugins as the
    // wharf.Repository service.
    void start_repository() {
        repository = open_repository(settings);
        host_services = std::make_unique<OwnedRegistry>(registry, Owner{"host", 0}, nullptr);
        repository_registration = host_services->register_service<Repository>(repository);
    }

    // Plugins, then operation submission: wharf.Operation services from the
    // plugins, thresholds from operations/<type>.yaml, jobs through the engine.
    void start_plugins() {
        PluginManagerOptions o;
        o.config_source = config.get();
        o.plugins_dir = settings.plugins_dir;
        o.cache_dir = settings.data_dir / "plugin-cache";
        o.plugin_data_dir = settings.data_dir / "plugins";
        o.start_timeout = settings.plugin_start_timeout;
        o.drain_timeout = settings.drain_timeout;
        o.probe_executable = options.probe_executable;
        plugins = std::make_unique<PluginManager>(registry, o);
        plugins->start();
        job_manager = jobs->manager();
        operations = std::make_unique<OperationSubmission>(
            registry, *job_manager, [this](std::string_view name) { return config->current(name); });
    }

    // An inbox entry for the submitter of every finished job, and e-mail (sent
    // from the notifier's own thread, retried) where notifications.yaml and
    // the operation's email_enabled say so.
    void start_notifications() {
        NotifierOptions o;
        o.database = settings.data_dir / "notifications.db";
        o.config_dir = settings.config_dir;
        o.operations = [this](const std::string& topic) -> std::optional<OperationNotice> {
            for (const auto& info : operations->list())
                if (info.descriptor.topic == topic)
                    return OperationNotice{info.descriptor.name, info.descriptor.title,
                                           info.email_enabled};
            return std::nullopt;
        };
        o.find_job = [manager = job_manager](JobId id) { return manager->find(id); };
        notifier = std::make_shared<Notifier>(o);
        if (auto refused = notifier->apply(config->current(kNotificationsSchema)))
            log->error("notifications not configured error=\"{}\"", *refused);
        notify_subscription = config->subscribe(
            kNotificationsSchema, [this](const std::string&, const std::optional<Ptree>& v) {
                return notifier->apply(v ? *v : config->current(kNotificationsSchema));
            });
        notify_registration =
            host_services->register_service(wharf::JobListener::kInterfaceName, notifier);
        notifier->start();
    }

    // The admin API. Users come from users.yaml through ConfigAdmin.
    void start_http() {
        HttpBackends b;
        b.jobs = job_manager.get();
        b.store = job_store.get();
        b.registry = &registry;
        b.queue_views = [this] { return jobs->queues(); };
        b.plugins = [this] { return plugins->plugins(); };
        b.config_status = [this] { return config->status(); };
        b.config_schemas = [this] { return config->schemas(); };
        b.config_rescan = [this] { config->rescan(); };
        b.operations = operations.get();
        b.notifier = notifier.get();
        b.repository = repository;
        b.cluster = [this] { return cluster_status(); };
        http = std::make_unique<HttpServer>(http_options(settings), b);
        users_subscription = config->subscribe(
            kUsersSchema, [this](const std::string&, const std::optional<Ptree>& v) {
                return http->users().apply(v ? *v : Ptree{});
            });
        http->users().apply(config->current(kUsersSchema));
        job_metrics_registration =
            host_services->register_service(wharf::JobListener::kInterfaceName, http->job_metrics());
        http->start();
        notifier->set_default_base_url("http://" + http->address() + "/");
    }

    ClusterStatus cluster_status() const {
        ClusterStatus status;
        if (cluster) {
            status.backend = "postgresql";
            status.instance_id = cluster->instance_id();
            status.instances = cluster->instances();
            return status;
        }
        ClusterInstance self;
        self.id = status.instance_id = "local";
        self.address = http ? http->address() : std::string();
        self.started = started_at;
        self.last_heartbeat = std::chrono::system_clock::now();
        self.load = static_cast<double>(jobs->running_jobs());
        status.instances.push_back(self);
        return status;
    }

    void stop() {
        if (stopped) return;
        stopped = true;
        http->stop();
        job_metrics_registration->unregister();
        plugins->stop_all();
        repository_registration->unregister();
        if (cluster) cluster->stop();
        jobs->stop();
        cluster.reset();  // deregisters: runs that did not end are requeued elsewhere
        notify_registration->unregister();
        notifier->stop();
    }
};

Host::Host(HostSettings settings, HostOptions options)
    : parts_(std::make_unique<Parts>(std::move(settings), std::move(options))) {}

Host::~Host() {
    try {
        stop();
    } catch (const std::exception& e) {
        parts_->log->error("host stop failed error=\"{}\"", e.what());
    }
}

std::string Host::address() const { return parts_->http->address(); }

std::size_t Host::plugin_count() const { return parts_->plugins->plugins().size(); }

void Host::stop() { parts_->stop(); }

}  // namespace wharf::host
