#include "config/host_settings.hpp"

#include "base/error.hpp"
#include "config/host_schemas.hpp"
#include "config/schema_catalog.hpp"

namespace fs = std::filesystem;

namespace wharf::host {
namespace {

fs::path resolve(const fs::path& base, const std::string& value) {
    fs::path p(value);
    return (p.is_absolute() ? p : base / p).lexically_normal();
}

}  // namespace

HostSettings host_settings_from(const fs::path& config_dir,
                                const boost::property_tree::ptree& values) {
    HostSettings s;
    s.config_dir = fs::absolute(config_dir).lexically_normal();
    s.data_dir = resolve(s.config_dir, values.get<std::string>("data_dir", "../var"));
    s.plugins_dir =
        resolve(s.config_dir, values.get<std::string>("plugins_dir", "../build/plugins"));
    s.listen = values.get<std::string>("listen", s.listen);
    s.log_level = values.get<std::string>("log_level", s.log_level);
    s.plugin_start_timeout =
        std::chrono::milliseconds(values.get<long>("plugin_start_timeout_ms", 10000));
    s.drain_timeout = std::chrono::milliseconds(values.get<long>("drain_timeout_ms", 30000));
    s.cores = values.get<unsigned>("cores", 0);
    auto& jobs = s.jobs;
    jobs.synchronous = values.get<std::string>("jobs.synchronous", jobs.synchronous);
    auto ms = [&values](const char* key, std::chrono::milliseconds fallback) {
        return std::chrono::milliseconds(values.get<long>(key, fallback.count()));
    };
    jobs.stop_grace = ms("jobs.stop_grace_ms", jobs.stop_grace);
    jobs.stuck_after = ms("jobs.stuck_after_ms", jobs.stuck_after);
    jobs.shutdown_grace = ms("jobs.shutdown_grace_ms", jobs.shutdown_grace);
    jobs.flush_interval = ms("jobs.flush_interval_ms", jobs.flush_interval);
    jobs.max_workers = values.get<std::size_t>("jobs.max_workers", jobs.max_workers);
    jobs.max_log_lines = values.get<std::int64_t>("jobs.max_log_lines", jobs.max_log_lines);
    auto& http = s.http;
    http.max_body_bytes = values.get<std::size_t>("http.max_body_bytes", http.max_body_bytes);
    http.max_upload_bytes =
        values.get<std::size_t>("http.max_upload_bytes", http.max_upload_bytes);
    http.read_timeout = ms("http.read_timeout_ms", http.read_timeout);
    http.write_timeout = ms("http.write_timeout_ms", http.write_timeout);
    http.worker_threads = values.get<std::size_t>("http.worker_threads", http.worker_threads);
    auto& store = s.store;
    store.backend = values.get<std::string>("store.backend", store.backend);
    store.url = values.get<std::string>("store.url", store.url);
    store.pool_size = values.get<std::size_t>("store.pool_size", store.pool_size);
    store.lease = ms("store.lease_ms", store.lease);
    store.instance_id = values.get<std::string>("store.instance_id", store.instance_id);
    if (auto blob_dir = values.get_optional<std::string>("store.blob_dir"))
        store.blob_dir = resolve(s.config_dir, *blob_dir);
    // Checks across keys, which a schema of single fields cannot express.
    const std::string file = (s.config_dir / "wharf.yaml").string();
    if (store.backend != "sqlite" && store.backend != "postgresql") {
        throw Error(
            ErrorCode::invalid_argument,
            file + ": store.backend must be sqlite or postgresql, not '" + store.backend + "'");
    }
    if (store.backend == "postgresql" && store.url.empty()) {
        throw Error(ErrorCode::invalid_argument,
                    file + ": store.url is required when store.backend is postgresql");
    }
    if (store.pool_size == 0) {
        throw Error(ErrorCode::invalid_argument, file + ": store.pool_size must be at least 1");
    }
    return s;
}

HostSettings load_host_settings(const fs::path& config_dir) {
    std::error_code ec;
    if (!fs::is_directory(config_dir, ec))
        throw Error(ErrorCode::io, "config directory " + config_dir.string() + " does not exist");
    SchemaCatalog catalog;
    catalog.declare(kHostOwner, {wharf_schema()});
    CatalogMatch match{catalog.find(kWharfSchema), ""};
    fs::path file = config_dir / "wharf.yaml";
    std::string name = file.string();
    if (!fs::exists(file, ec))
        return host_settings_from(config_dir,
                                  validate_document(nullptr, match.entry->schema, name).values);

    YamlLimits limits;
    auto bytes = read_config_bytes(file, name, limits.max_bytes);
    if (auto* err = std::get_if<ConfigError>(&bytes))
        throw Error(ErrorCode::invalid_argument, err->to_string());
    auto result = check_config_bytes(std::get<std::string>(bytes), name, match, limits);
    if (!result.ok()) {
        std::string message;
        for (const auto& e : result.errors) {
            if (!message.empty()) message += '\n';
            message += e.to_string();
        }
        throw Error(ErrorCode::invalid_argument, message);
    }
    return host_settings_from(config_dir, result.values);
}

}  // namespace wharf::host
