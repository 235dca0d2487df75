// Status routes of the admin API: queues, plugins, configuration, metrics,
// health and the OpenAPI document.
#include <chrono>
#include <map>
#include <mutex>

#include "http/api_context.hpp"
#include "http/json_codec.hpp"
#include "wharf/queues.hpp"

namespace wharf::host {
namespace {

using Json = nlohmann::json;
using httplib::Request;
using httplib::Response;

std::vector<std::shared_ptr<wharf::Queue>> live_queues(ApiContext& ctx) {
    std::vector<std::shared_ptr<wharf::Queue>> out;
    if (!ctx.backends.registry) return out;
    for (auto& s : ctx.backends.registry->find_all(wharf::Queue::kInterfaceName, {}))
        out.push_back(std::static_pointer_cast<wharf::Queue>(s.service));
    return out;
}

Json statistics_json(const JobStatistics* s) {
    JobStatistics empty;
    if (!s) s = &empty;
    Json out = Json::object();
    for (auto state : kAllJobStates) out[wharf::to_string(state)] = s->count(state);
    out["average_wait_ms"] = std::chrono::duration<double, std::milli>(s->average_wait).count();
    out["average_processing_ms"] =
        std::chrono::duration<double, std::milli>(s->average_processing).count();
    return out;
}

void no_params(const Request& req) {
    if (!req.params.empty()) {
        const auto& name = req.params.begin()->first;
        throw ApiError{400, "invalid_argument", "unknown query parameter '" + name + "'", name};
    }
}

void list_queues(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    no_params(req);
    auto stats = ctx.backends.store->statistics(StatisticsGroup::queue);
    std::map<std::string, const JobStatistics*> by_queue;
    for (const auto& s : stats) by_queue[s.key] = &s;
    std::map<std::string, QueueView> views;
    if (ctx.backends.queue_views)
        for (auto& v : ctx.backends.queue_views()) views[v.name] = std::move(v);
    auto add_view = [&](Json& q, const std::string& name) {
        auto it = views.find(name);
        if (it == views.end()) return;
        const auto& v = it->second;
        q["running"] = v.running;
        q["overdue"] = v.overdue;
        q["stuck"] = v.stuck;
        q["held_by_retry"] = v.held_by_retry ? Json(*v.held_by_retry) : Json(nullptr);
        q["topics_without_consumer"] = v.topics_without_consumer;
    };
    Json queues = Json::array();
    for (const auto& queue : live_queues(ctx)) {
        auto settings = queue->settings();
        if (!settings) continue;
        auto q = queue_settings_to_json(*settings);
        q["state"] = "live";
        auto it = by_queue.find(settings->name);
        q["jobs"] = statistics_json(it == by_queue.end() ? nullptr : it->second);
        if (it != by_queue.end()) by_queue.erase(it);
        add_view(q, settings->name);
        queues.push_back(std::move(q));
    }
    // Jobs can outlive their queue's file (removed while jobs waited): show them.
    for (const auto& [name, s] : by_queue) {
        Json q = {{"name", name}, {"state", "removed"}, {"jobs", statistics_json(s)}};
        add_view(q, name);
        queues.push_back(std::move(q));
    }
    send_json(res, 200, Json{{"queues", queues}});
}

void list_plugins(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    no_params(req);
    Json plugins = Json::array();
    if (ctx.backends.plugins)
        for (const auto& p : ctx.backends.plugins()) plugins.push_back(plugin_to_json(p));
    send_json(res, 200, Json{{"plugins", plugins}});
}

Json config_json(ApiContext& ctx) {
    Json files = Json::array();
    if (ctx.backends.config_status)
        for (const auto& f : ctx.backends.config_status()) files.push_back(config_file_to_json(f));
    Json schemas = Json::array();
    if (ctx.backends.config_schemas)
        for (const auto& s : ctx.backends.config_schemas())
            schemas.push_back(
                {{"name", s.name}, {"description", s.description}, {"factory", s.factory}});
    return Json{{"files", files}, {"schemas", schemas}};
}

void get_config(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    no_params(req);
    send_json(res, 200, config_json(ctx));
}

void rescan_config(ApiContext& ctx, const Request& req, Response& res, const ApiUser& user) {
    no_params(req);
    if (!ctx.backends.config_rescan)
        throw ApiError{503, "unavailable", "this host has no configuration admin", ""};
    ctx.log->info("config rescan requested user={}", user.name);
    ctx.backends.config_rescan();
    send_json(res, 200, config_json(ctx));
}

void get_metrics(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    no_params(req);
    MetricSources sources;
    sources.store = ctx.backends.store;
    for (const auto& q : live_queues(ctx)) sources.live_queues.push_back(q->name());
    std::vector<PluginInfo> plugins;
    if (ctx.backends.plugins) {
        plugins = ctx.backends.plugins();
        sources.plugins = &plugins;
    }
    std::vector<ConfigFileStatus> config;
    if (ctx.backends.config_status) {
        config = ctx.backends.config_status();
        sources.config = &config;
        sources.config_refusals = ctx.refusals.observe(config);
    }
    std::vector<QueueView> queue_views;
    if (ctx.backends.queue_views) {
        queue_views = ctx.backends.queue_views();
        sources.queue_views = &queue_views;
    }
    sources.http = &ctx.http_metrics;
    sources.jobs = ctx.job_metrics.get();
    res.status = 200;
    auto text = render_metrics(sources);
    if (ctx.backends.notifier) text += ctx.backends.notifier->metrics_text();
    res.set_content(text, "text/plain; version=0.0.4; charset=utf-8");
}

void healthz(ApiContext& ctx, const Request&, Response& res, const ApiUser&) {
    auto& cache = ctx.readiness;
    bool store_ok = false;
    std::string store_error;
    {
        std::lock_guard lock(cache.mutex);
        auto now = std::chrono::steady_clock::now();
        if (now - cache.checked > std::chrono::seconds(1)) {
            try {
                // A heartbeat for no job is a write transaction that changes nothing.
                ctx.backends.store->heartbeat(0);
                cache.store_ok = true;
                cache.store_error.clear();
            } catch (const std::exception& e) {
                cache.store_ok = false;
                cache.store_error = e.what();
            }
            cache.checked = now;
        }
        store_ok = cache.store_ok;
        store_error = cache.store_error;
    }
    Json config = {{"ok", true}};
    bool config_ok = true;
    if (ctx.backends.config_status) {
        auto files = ctx.backends.config_status();
        std::size_t refused = 0;
        for (const auto& f : files) {
            if (f.state == ConfigFileState::refused) ++refused;
            // The host's own file must be in force; a refused queue file is not fatal.
            if (f.schema == "wharf" && f.applied_version == 0) config_ok = false;
        }
        config = {{"ok", config_ok}, {"files", files.size()}, {"refused", refused}};
    }
    bool ready = store_ok && config_ok;
    Json body = {
        {"status", ready ? "ok" : "unavailable"},
        {"live", true},
        {"ready", ready},
        {"checks", {{"store", {{"ok", store_ok}, {"error", store_error}}}, {"config", config}}}};
    send_json(res, ready ? 200 : 503, body);
}

void get_cluster(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    no_params(req);
    if (!ctx.backends.cluster)
        throw ApiError{503, "unavailable", "this host has no cluster information", ""};
    ClusterStatus status;
    try {
        status = ctx.backends.cluster();
    } catch (const std::exception& e) {
        throw ApiError{503, "unavailable",
                       std::string("the cluster's instances cannot be read: ") + e.what(), ""};
    }
    Json instances = Json::array();
    for (const auto& i : status.instances) {
        instances.push_back({{"id", i.id},
                             {"address", i.address},
                             {"started", format_time(i.started)},
                             {"last_heartbeat", format_time(i.last_heartbeat)},
                             {"lease_ms", i.lease.count()},
                             {"running_jobs", i.load},
                             {"expired", i.expired},
                             {"self", i.id == status.instance_id}});
    }
    send_json(res, 200,
              {{"backend", status.backend},
               {"instance", status.instance_id},
               {"instances", std::move(instances)}});
}

void openapi(ApiContext&, const Request&, Response& res, const ApiUser&) {
    res.status = 200;
    res.set_content(openapi_json(), "application/json");
}

}  // namespace

const std::vector<RouteEntry>& status_routes() {
    static const std::vector<RouteEntry> routes = {
        {"GET", R"(/api/queues)", "/api/queues", Role::viewer, list_queues},
        {"GET", R"(/api/plugins)", "/api/plugins", Role::viewer, list_plugins},
        {"GET", R"(/api/config)", "/api/config", Role::viewer, get_config},
        {"POST", R"(/api/config/rescan)", "/api/config/rescan", Role::admin, rescan_config},
        {"GET", R"(/api/cluster)", "/api/cluster", Role::viewer, get_cluster},
        {"GET", R"(/metrics)", "/metrics", Role::viewer, get_metrics},
        {"GET", R"(/healthz)", "/healthz", Role::none, healthz},
        {"GET", R"(/api/openapi\.json)", "/api/openapi.json", Role::none, openapi},
    };
    return routes;
}

}  // namespace wharf::host
