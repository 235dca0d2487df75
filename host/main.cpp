// wharfd: the Wharf host. Loads configs/wharf.yaml, starts the subsystems and
// the plugins, and runs until SIGTERM or SIGINT, then stops plugins in reverse
// start order, then the job engine, and exits 0.
//
// Order: registry -> ConfigAdmin (queues become services) -> job store and
// engine (crash recovery, wharf.JobManager registered, purge scheduled) ->
// plugins -> operation submission and the HTTP API. Plugins therefore find
// the JobManager when they start, and the engine outlives every consumer it
// runs.
#include <signal.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include "base/error.hpp"
#include "base/log.hpp"
#include "config/config_admin.hpp"
#include "config/host_schemas.hpp"
#include "config/host_settings.hpp"
#include "http/http_server.hpp"
#include "jobs/cluster_member.hpp"
#include "jobs/job_engine.hpp"
#include "jobs/pg_job_store.hpp"
#include "jobs/operation_submission.hpp"
#include "repository/pg_repository.hpp"
#include "repository/sqlite_repository.hpp"
#include "jobs/sqlite_job_store.hpp"
#include "modules/plugin_manager.hpp"
#include "modules/service_registry.hpp"
#include "notify/notifier.hpp"
#include "wharf/version.hpp"

namespace {

void usage(std::ostream& out) {
    out << "usage: wharfd --config DIR\n"
           "       wharfd --version\n";
}

}  // namespace

int main(int argc, char** argv) {
    std::filesystem::path config_dir;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--version") {
            std::cout << "wharfd " << WHARF_HOST_VERSION << " (SDK ABI " << wharf::kSdkAbiMajor
                      << "." << wharf::kSdkAbiMinor << ", SDK " << wharf::kSdkVersion << ")\n";
            return 0;
        } else if (arg == "--config" && i + 1 < argc) {
            config_dir = argv[++i];
        } else if (arg == "--help" || arg == "-h") {
            usage(std::cout);
            return 0;
        } else {
            std::cerr << "wharfd: unknown argument '" << arg << "'\n";
            usage(std::cerr);
            return 64;
        }
    }
    if (config_dir.empty()) {
        usage(std::cerr);
        return 64;
    }

    // Block the stop signals in every thread; main waits for them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    auto log = wharf::host::logger("host");
    try {
        auto settings = wharf::host::load_host_settings(config_dir);
        wharf::host::set_log_level(settings.log_level);
        std::filesystem::create_directories(settings.data_dir);
        log->info("wharfd starting version={} abi={}.{} config={} data={} plugins={}",
                  WHARF_HOST_VERSION, wharf::kSdkAbiMajor, wharf::kSdkAbiMinor,
                  settings.config_dir.string(), settings.data_dir.string(),
                  settings.plugins_dir.string());

        wharf::host::ServiceRegistryImpl registry;

        // Configuration: every file validated, watched, queues registered as
        // services. Declared before the plugin manager so it outlives plugins.
        wharf::host::ConfigAdminOptions config_options;
        config_options.config_dir = settings.config_dir;
        config_options.registry = &registry;
        config_options.cores = settings.cores;
        wharf::host::ConfigAdmin config(config_options);
        config.start();  // refused files are logged with file:line:col and do not stop the host
        auto log_level = config.subscribe(
            "wharf", [](const std::string&, const std::optional<boost::property_tree::ptree>& v)
                         -> wharf::ConfigVerdict {
                if (v) wharf::host::set_log_level(v->get<std::string>("log_level", "info"));
                return std::nullopt;
            });

        // Jobs: the store is the truth: data_dir/jobs.db, or with
        // store.backend postgresql a database every instance of a cluster
        // shares. The engine recovers what was active when the host (in a
        // cluster: this instance) last ended before it runs anything.
        const bool clustered = settings.store.backend == "postgresql";
        std::unique_ptr<wharf::host::JobStore> job_store;
        if (clustered) {
            wharf::host::PgJobStoreOptions store_options;
            store_options.url = settings.store.url;
            store_options.pool_size = settings.store.pool_size;
            store_options.max_log_lines = settings.jobs.max_log_lines;
            job_store = std::make_unique<wharf::host::PgJobStore>(store_options);
        } else {
            wharf::host::SqliteJobStoreOptions store_options;
            store_options.path = settings.data_dir / "jobs.db";
            store_options.synchronous = settings.jobs.synchronous;
            store_options.max_log_lines = settings.jobs.max_log_lines;
            job_store = std::make_unique<wharf::host::SqliteJobStore>(store_options);
        }
        job_store->migrate();
        wharf::host::JobEngineOptions engine_options;
        engine_options.drain_timeout = settings.drain_timeout;
        engine_options.stop_grace = settings.jobs.stop_grace;
        engine_options.stuck_after = settings.jobs.stuck_after;
        engine_options.shutdown_grace = settings.jobs.shutdown_grace;
        engine_options.flush_interval = settings.jobs.flush_interval;
        engine_options.max_workers = settings.jobs.max_workers;
        wharf::host::ClusterMemberOptions member_options;
        if (clustered) {
            member_options.lease.url = settings.store.url;
            member_options.lease.instance_id = settings.store.instance_id.empty()
                                                   ? wharf::host::ClusterLease::default_instance_id()
                                                   : settings.store.instance_id;
            member_options.lease.address = settings.listen;
            member_options.lease.lease = settings.store.lease;
            engine_options.worker = member_options.lease.instance_id;
            engine_options.recover_every_worker = false;
        }
        wharf::host::JobEngine jobs(registry, *job_store, engine_options);
        // Declared after the engine so that it ends (and stops telling the
        // engine about work) first. Registered before the engine claims
        // anything, so every claim of this instance is covered by its lease.
        std::unique_ptr<wharf::host::ClusterMember> cluster;
        if (clustered)
            cluster = std::make_unique<wharf::host::ClusterMember>(member_options, *job_store);
        jobs.start();
        if (cluster) cluster->start(jobs);
        const auto started_at = std::chrono::system_clock::now();
        auto purge_from = [](const boost::property_tree::ptree& v) {
            wharf::host::PurgeSettings p;
            p.enabled = v.get<bool>("enabled", true);
            p.schedule = v.get<std::string>("schedule", p.schedule);
            p.threshold_days = v.get<std::int64_t>("threshold_days", p.threshold_days);
            p.max_jobs = v.get<std::int64_t>("max_jobs", p.max_jobs);
            return p;
        };
        jobs.set_purge(purge_from(config.current("purge")));
        auto purge_subscription = config.subscribe(
            "purge",
            [&](const std::string&, const std::optional<boost::property_tree::ptree>& v)
                -> wharf::ConfigVerdict {
                try {
                    jobs.set_purge(purge_from(v ? *v : config.current("purge")));
                } catch (const std::exception& e) {
                    return std::string("purge job not rescheduled: ") + e.what();
                }
                return std::nullopt;
            });

        // Content repository: nodes, references, blobs, offered to operation
        // plugins as the wharf.Repository service. SQLite in data_dir/repository,
        // or in a cluster the shared database with binaries in store.blob_dir.
        std::shared_ptr<wharf::Repository> repository;
        if (clustered) {
            wharf::host::PgRepositoryOptions repository_options;
            repository_options.url = settings.store.url;
            repository_options.pool_size = settings.store.pool_size;
            repository_options.blob_dir = settings.store.blob_dir.empty()
                                              ? settings.data_dir / "repository" / "blobs"
                                              : settings.store.blob_dir;
            repository = wharf::host::PgRepository::open(repository_options);
        } else {
            repository = wharf::host::SqliteRepository::open(settings.data_dir / "repository");
        }
        wharf::host::OwnedRegistry host_services(registry, wharf::host::Owner{"host", 0}, nullptr);
        auto repository_registration =
            host_services.register_service<wharf::Repository>(repository);

        wharf::host::PluginManagerOptions plugin_options;
        plugin_options.config_source = &config;
        plugin_options.plugins_dir = settings.plugins_dir;
        plugin_options.cache_dir = settings.data_dir / "plugin-cache";
        plugin_options.plugin_data_dir = settings.data_dir / "plugins";
        plugin_options.start_timeout = settings.plugin_start_timeout;
        plugin_options.drain_timeout = settings.drain_timeout;
        wharf::host::PluginManager plugins(registry, plugin_options);
        plugins.start();

        // Operation submission: wharf.Operation services from the plugins,
        // thresholds from operations/<type>.yaml, jobs through the engine.
        auto job_manager = jobs.manager();
        wharf::host::OperationSubmission operations(
            registry, *job_manager,
            [&config](std::string_view name) { return config.current(name); });

        // Notifications: an inbox entry for the submitter of every finished
        // job, and e-mail (sent from the notifier's own thread, retried) where
        // notifications.yaml and the operation's email_enabled say so.
        wharf::host::NotifierOptions notify_options;
        notify_options.database = settings.data_dir / "notifications.db";
        notify_options.config_dir = settings.config_dir;
        notify_options.operations =
            [&operations](const std::string& topic) -> std::optional<wharf::host::OperationNotice> {
            for (const auto& info : operations.list())
                if (info.descriptor.topic == topic)
                    return wharf::host::OperationNotice{info.descriptor.name, info.descriptor.title,
                                                        info.email_enabled};
            return std::nullopt;
        };
        notify_options.find_job = [job_manager](wharf::JobId id) { return job_manager->find(id); };
        auto notifier = std::make_shared<wharf::host::Notifier>(notify_options);
        if (auto refused = notifier->apply(config.current(wharf::host::kNotificationsSchema)))
            log->error("notifications not configured error=\"{}\"", *refused);
        auto notify_subscription = config.subscribe(
            wharf::host::kNotificationsSchema,
            [&notifier, &config](const std::string&,
                                 const std::optional<boost::property_tree::ptree>& v) {
                return notifier->apply(v ? *v
                                         : config.current(wharf::host::kNotificationsSchema));
            });
        auto notify_registration =
            host_services.register_service(wharf::JobListener::kInterfaceName, notifier);
        notifier->start();

        // The admin API. Users come from users.yaml through ConfigAdmin.
        wharf::host::HttpServerOptions http_options;
        http_options.listen = settings.listen;
        // wharf.yaml's http: section, read at start like listen.
        http_options.max_body_bytes = settings.http.max_body_bytes;
        http_options.max_upload_bytes = settings.http.max_upload_bytes;
        http_options.read_timeout = settings.http.read_timeout;
        http_options.write_timeout = settings.http.write_timeout;
        http_options.worker_threads = settings.http.worker_threads;
        const wharf::host::HttpServer* api = nullptr;  // set before it serves
        wharf::host::HttpBackends http_backends;
        http_backends.jobs = job_manager.get();
        http_backends.store = job_store.get();
        http_backends.registry = &registry;
        http_backends.queue_views = [&jobs] { return jobs.queues(); };
        http_backends.plugins = [&plugins] { return plugins.plugins(); };
        http_backends.config_status = [&config] { return config.status(); };
        http_backends.config_schemas = [&config] { return config.schemas(); };
        http_backends.config_rescan = [&config] { config.rescan(); };
        http_backends.operations = &operations;
        http_backends.notifier = notifier.get();
        http_backends.repository = repository;
        http_backends.cluster = [&cluster, &jobs, &api, started_at] {
            wharf::host::ClusterStatus status;
            if (cluster) {
                status.backend = "postgresql";
                status.instance_id = cluster->instance_id();
                status.instances = cluster->instances();
                return status;
            }
            wharf::host::ClusterInstance self;
            self.id = status.instance_id = "local";
            self.address = api ? api->address() : std::string();
            self.started = started_at;
            self.last_heartbeat = std::chrono::system_clock::now();
            self.load = static_cast<double>(jobs.running_jobs());
            status.instances.push_back(self);
            return status;
        };
        wharf::host::HttpServer http(http_options, http_backends);
        auto users_subscription = config.subscribe(
            wharf::host::kUsersSchema,
            [&http](const std::string&, const std::optional<boost::property_tree::ptree>& v) {
                return http.users().apply(v ? *v : boost::property_tree::ptree{});
            });
        http.users().apply(config.current(wharf::host::kUsersSchema));
        auto job_metrics = host_services.register_service(
            wharf::JobListener::kInterfaceName, http.job_metrics());
        api = &http;
        http.start();
        notifier->set_default_base_url("http://" + http.address() + "/");
        log->info("wharfd ready plugins={} api=http://{}", plugins.plugins().size(),
                  http.address());

        int sig = 0;
        sigwait(&stop_signals, &sig);
        log->info("wharfd stopping signal={}", strsignal(sig));
        http.stop();
        job_metrics->unregister();
        plugins.stop_all();
        repository_registration->unregister();
        if (cluster) cluster->stop();
        jobs.stop();
        cluster.reset();  // deregisters: runs that did not end are requeued elsewhere
        notify_registration->unregister();
        notifier->stop();
    } catch (const std::exception& e) {
        log->error("wharfd cannot start: {}", e.what());
        return 1;
    }
    log->info("wharfd stopped");
    return 0;
}
