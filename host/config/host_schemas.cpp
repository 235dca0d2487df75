#include "config/host_schemas.hpp"

#include "config/queue_config.hpp"
#include "config/users_schema.hpp"

#include <set>

namespace wharf::host {
namespace {

using wharf::ConfigField;
using wharf::make_field;
using wharf::ConfigType;

ConfigField ranged(ConfigField f, double minimum, double maximum) {
    f.minimum = minimum;
    f.maximum = maximum;
    return f;
}

ConfigField formatted(ConfigField f, std::string format) {
    f.format = std::move(format);
    return f;
}

}  // namespace

wharf::ConfigSchema wharf_schema() {
    wharf::ConfigSchema s;
    s.name = kWharfSchema;
    s.description = "the host: directories, listen address, logging, timeouts";
    s.fields.push_back(formatted(
        make_field("data_dir", ConfigType::string,
              "databases, binaries and the plugin cache; relative to this file's folder", "../var"),
        "path"));
    s.fields.push_back(formatted(
        make_field("plugins_dir", ConfigType::string,
              "watched for plugin .so files; relative to this file's folder", "../build/plugins"),
        "path"));
    s.fields.push_back(
        formatted(make_field("listen", ConfigType::string, "host:port of the admin API and dashboard",
                        "127.0.0.1:8420"),
                  "listen-address"));
    auto level = make_field("log_level", ConfigType::string, "least severe level logged", "info");
    level.one_of = {"trace", "debug", "info", "warn", "error", "off"};
    s.fields.push_back(level);
    s.fields.push_back(ranged(make_field("plugin_start_timeout_ms", ConfigType::integer,
                                    "a plugin whose start() takes longer fails", "10000"),
                              1, 3600000));
    s.fields.push_back(
        ranged(make_field("drain_timeout_ms", ConfigType::integer,
                     "on a plugin upgrade, how long running work may finish", "30000"),
               0, 86400000));
    s.fields.push_back(ranged(
        make_field("cores", ConfigType::integer, "cores assumed for max_parallel; 0 = detect", "0"), 0,
        4096));

    // Defaults as in HttpServerOptions (http/http_server.hpp).
    auto http = make_field("http", ConfigType::object,
                           "limits of the admin API server; read when the host starts");
    http.fields.push_back(ranged(
        make_field("max_body_bytes", ConfigType::integer,
                   "a request body (JSON) larger than this is refused with 413 before it is read",
                   "1048576"),
        1024, 268435456));
    http.fields.push_back(ranged(
        make_field("max_upload_bytes", ConfigType::integer,
                   "a text/csv upload to POST /api/operations/{operation} (streamed to disk) "
                   "larger than this is refused with 413 and its temporary file removed",
                   "268435456"),
        1024, 1099511627776.0));
    http.fields.push_back(
        ranged(make_field("read_timeout_ms", ConfigType::integer,
                          "a request whose bytes stop arriving this long is dropped", "5000"),
               100, 600000));
    http.fields.push_back(
        ranged(make_field("write_timeout_ms", ConfigType::integer,
                          "an answer the client stops reading this long is dropped", "5000"),
               100, 600000));
    http.fields.push_back(
        ranged(make_field("worker_threads", ConfigType::integer,
                          "threads serving connections (one connection each at a time)", "8"),
               1, 1024));
    s.fields.push_back(http);

    auto jobs = make_field("jobs", ConfigType::object,
                           "the job store and engine; read when the host starts");
    auto synchronous =
        make_field("synchronous", ConfigType::string,
                   "SQLite synchronous mode of the job store: NORMAL survives a crash of the "
                   "process, FULL also a power loss, OFF neither",
                   "NORMAL");
    synchronous.one_of = {"OFF", "NORMAL", "FULL", "EXTRA"};
    jobs.fields.push_back(synchronous);
    jobs.fields.push_back(
        ranged(make_field("stop_grace_ms", ConfigType::integer,
                          "a job still running this long after a stop request is overdue",
                          "30000"),
               0, 86400000));
    jobs.fields.push_back(ranged(
        make_field("stuck_after_ms", ConfigType::integer,
                   "an active job without progress, log or checkpoint this long is stuck",
                   "300000"),
        1000, 604800000));
    jobs.fields.push_back(
        ranged(make_field("shutdown_grace_ms", ConfigType::integer,
                          "on shutdown, how long running jobs may take to stop", "10000"),
               0, 3600000));
    jobs.fields.push_back(ranged(
        make_field("flush_interval_ms", ConfigType::integer,
                   "a running job's progress, log and report reach the store at least this often",
                   "1000"),
        10, 60000));
    jobs.fields.push_back(ranged(
        make_field("max_workers", ConfigType::integer,
                   "jobs running at once over all queues (higher priority queues first); "
                   "0 = only each queue's max_parallel",
                   "0"),
        0, 100000));
    jobs.fields.push_back(
        ranged(make_field("max_log_lines", ConfigType::integer,
                          "log lines kept per job; older ones are dropped", "10000"),
               10, 10000000));
    s.fields.push_back(jobs);

    // Defaults as in HostStoreSettings (config/host_settings.hpp); the keys
    // that only fit together (postgresql needs a url) are checked by
    // host_settings_from().
    auto store = make_field("store", ConfigType::object,
                            "where jobs and the repository live; read when the host starts");
    auto backend = make_field("backend", ConfigType::string,
                              "sqlite: files in data_dir, one host; postgresql: a database shared "
                              "by every instance of a cluster",
                              "sqlite");
    backend.one_of = {"sqlite", "postgresql"};
    store.fields.push_back(backend);
    store.fields.push_back(make_field(
        "url", ConfigType::string,
        "postgresql: libpq URL or connection string (postgresql://user@host:port/db); its "
        "password is never logged"));
    store.fields.push_back(ranged(
        make_field("pool_size", ConfigType::integer, "postgresql: connections at most", "8"), 1,
        1000));
    store.fields.push_back(ranged(
        make_field("lease_ms", ConfigType::integer,
                   "postgresql: an instance whose heartbeat is older than this is dead and its "
                   "active jobs are queued again",
                   "30000"),
        300, 3600000));
    store.fields.push_back(make_field(
        "instance_id", ConfigType::string,
        "postgresql: this instance's name in the cluster, unique; empty = hostname-pid-random",
        ""));
    store.fields.push_back(formatted(
        make_field("blob_dir", ConfigType::string,
                   "postgresql: the directory every instance shares for binaries; relative to "
                   "this file's folder; absent = data_dir/repository/blobs"),
        "path"));
    s.fields.push_back(store);
    return s;
}

wharf::ConfigSchema purge_schema() {
    wharf::ConfigSchema s;
    s.name = kPurgeSchema;
    s.description = "the built-in job that deletes old finished jobs";
    s.fields.push_back(make_field("enabled", ConfigType::boolean, "run the purge job", "true"));
    s.fields.push_back(
        formatted(make_field("schedule", ConfigType::string,
                        "Quartz cron expression (seconds first), as the job scheduler evaluates it",
                        "0 0 1 * * ?"),
                  "cron"));
    s.fields.push_back(ranged(make_field("threshold_days", ConfigType::integer,
                                    "finished jobs older than this many days are deleted", "1"),
                              0, 36500));
    s.fields.push_back(
        ranged(make_field("max_jobs", ConfigType::integer,
                     "at most this many finished jobs are kept (oldest go first)", "10000"),
               0, 100000000));
    return s;
}

wharf::ConfigSchema notifications_schema() {
    wharf::ConfigSchema s;
    s.name = kNotificationsSchema;
    s.description = "e-mail sent when a job finishes (where an operation enables it)";
    s.fields.push_back(make_field("enabled", ConfigType::boolean, "send e-mail at all", "false"));

    auto smtp = make_field("smtp", ConfigType::object, "the SMTP server");
    smtp.fields.push_back(make_field("host", ConfigType::string, "server host name", "localhost"));
    smtp.fields.push_back(
        ranged(make_field("port", ConfigType::integer, "server port", "25"), 1, 65535));
    auto tls =
        make_field("tls", ConfigType::string,
              "none, starttls (upgrade after connecting) or tls (implicit, port 465)", "none");
    tls.one_of = {"none", "starttls", "tls"};
    smtp.fields.push_back(tls);
    smtp.fields.push_back(
        formatted(make_field("credentials_file", ConfigType::string,
                        "file holding 'user:password' for SMTP AUTH; never put secrets here"),
                  "path"));
    smtp.fields.push_back(
        ranged(make_field("timeout_ms", ConfigType::integer, "connect and send timeout", "10000"), 100,
               600000));
    s.fields.push_back(smtp);

    s.fields.push_back(
        formatted(make_field("from", ConfigType::string, "sender address", "wharf@localhost"), "email"));
    auto recipients = make_field("recipients", ConfigType::list,
                            "who receives every notification besides the job's submitter", "[]");
    recipients.item.push_back(formatted(make_field("", ConfigType::string, "an address"), "email"));
    s.fields.push_back(recipients);

    auto users = make_field("users", ConfigType::list,
                            "each API user's own address (the submitter of a job gets its e-mail)",
                            "[]");
    auto user = make_field("", ConfigType::object, "one user");
    auto user_name = make_field("name", ConfigType::string, "the user's name as in users.yaml");
    user_name.required = true;
    auto user_email = formatted(make_field("email", ConfigType::string, "the user's address"), "email");
    user_email.required = true;
    user.fields = {user_name, user_email};
    users.item.push_back(user);
    s.fields.push_back(users);

    s.fields.push_back(formatted(
        make_field("dashboard_url", ConfigType::string,
                   "base URL of the dashboard in e-mail links; default: the API's own address"),
        "url"));

    auto retry = make_field("retry", ConfigType::object, "how a failed send is retried");
    retry.fields.push_back(ranged(make_field("initial_delay_ms", ConfigType::integer,
                                             "wait before the first retry; doubles each time",
                                             "30000"),
                                  10, 86400000));
    retry.fields.push_back(ranged(
        make_field("max_delay_ms", ConfigType::integer, "longest wait between retries", "3600000"),
        10, 604800000));
    retry.fields.push_back(ranged(make_field("max_attempts", ConfigType::integer,
                                             "attempts before a mail is given up", "50"),
                                  1, 1000));
    s.fields.push_back(retry);

    auto inbox = make_field("inbox", ConfigType::object, "how long inbox entries are kept");
    inbox.fields.push_back(ranged(
        make_field("keep_days", ConfigType::integer, "entries older than this are deleted", "30"),
        1, 36500));
    inbox.fields.push_back(ranged(make_field("max_per_user", ConfigType::integer,
                                             "each user keeps at most this many (newest)", "1000"),
                                  1, 1000000));
    s.fields.push_back(inbox);
    return s;
}

std::vector<CheckProblem> check_notifications(const boost::property_tree::ptree& values) {
    std::vector<CheckProblem> problems;
    if (values.get<std::int64_t>("retry.max_delay_ms", 3600000) <
        values.get<std::int64_t>("retry.initial_delay_ms", 30000))
        problems.push_back({"retry.max_delay_ms",
                            "retry.max_delay_ms must not be below retry.initial_delay_ms"});
    std::set<std::string> names;
    std::size_t index = 0;
    if (auto users = values.get_child_optional("users")) {
        for (const auto& [key, user] : *users) {
            auto name = user.get<std::string>("name", "");
            if (!names.insert(name).second)
                problems.push_back({"users." + std::to_string(index) + ".name",
                                    "user '" + name + "' is listed twice"});
            ++index;
        }
    }
    return problems;
}

std::vector<HostSchema> host_schemas() {
    return {{wharf_schema(), {}},
            {queue_schema(), check_queue},
            {purge_schema(), {}},
            {notifications_schema(), check_notifications},
            {users_schema(), check_users}};
}

}  // namespace wharf::host
