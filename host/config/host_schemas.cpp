#include "config/host_schemas.hpp"

#include "config/queue_config.hpp"
#include "config/users_schema.hpp"

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
    return s;
}

std::vector<HostSchema> host_schemas() {
    return {{wharf_schema(), {}},
            {queue_schema(), check_queue},
            {purge_schema(), {}},
            {notifications_schema(), {}},
            {users_schema(), check_users}};
}

}  // namespace wharf::host
