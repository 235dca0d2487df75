#include "config/config_admin.hpp"

#include <algorithm>
#include <atomic>
#include <thread>

#include "base/error.hpp"
#include "base/log.hpp"
#include "base/sha256.hpp"
#include "config/host_schemas.hpp"
#include "config/queue_config.hpp"
#include "wharf/queues.hpp"

namespace fs = std::filesystem;
namespace pt = boost::property_tree;

namespace wharf::host {

const char* to_string(ConfigFileState state) noexcept {
    switch (state) {
        case ConfigFileState::applied:
            return "applied";
        case ConfigFileState::refused:
            return "refused";
        case ConfigFileState::pending:
            return "pending";
    }
    return "pending";
}

namespace {

using Clock = std::chrono::system_clock;

// The live queue handed to the registry: a stable object whose settings are
// swapped as the file changes, so holders always see the current snapshot.
class QueueService final : public wharf::Queue {
public:
    QueueService(std::string name, std::shared_ptr<const wharf::QueueSettings> settings)
        : name_(std::move(name)), settings_(std::move(settings)) {}

    const std::string& name() const override { return name_; }
    std::shared_ptr<const wharf::QueueSettings> settings() const override {
        std::lock_guard lock(mutex_);
        return settings_;
    }
    bool matches(std::string_view topic) const override {
        auto s = settings();
        return std::any_of(s->topics.begin(), s->topics.end(), [&](const std::string& p) {
            return wharf::queue_topic_matches(p, topic);
        });
    }
    void update(std::shared_ptr<const wharf::QueueSettings> settings) {
        std::lock_guard lock(mutex_);
        settings_ = std::move(settings);
    }

private:
    const std::string name_;
    mutable std::mutex mutex_;
    std::shared_ptr<const wharf::QueueSettings> settings_;
};

std::string short_sha(const std::string& sha) { return sha.substr(0, 12); }

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

namespace detail {

struct ConfigAdminState : std::enable_shared_from_this<ConfigAdminState> {
    struct FileRecord {
        ConfigFileStatus status;
        std::string key;
        std::string seen_sha256;  // last content examined, applied or not
    };
    struct Instance {
        pt::ptree values;
        std::string file;  // empty: defaults, no file
        std::uint64_t version = 0;
    };
    struct Subscriber {
        std::uint64_t id = 0;
        std::uint64_t group = 0;  // a plugin's Config, 0 for host subscribers
        std::string schema;
        ConfigCallback callback;
        std::atomic<bool> active{true};
    };
    struct QueueRecord {
        std::shared_ptr<QueueService> service;
        std::shared_ptr<wharf::ServiceRegistration> registration;
    };

    ConfigAdminOptions options;
    fs::path root;
    std::shared_ptr<spdlog::logger> log = logger("config");

    // Held while a change is applied and delivered; recursive so that
    // callbacks can call back in (subscribe, current, unsubscribe).
    std::recursive_mutex apply_mutex;
    // Guards the state below for readers; taken briefly, never while calling out.
    mutable std::mutex data_mutex;
    SchemaCatalog catalog;
    std::map<std::string, FileRecord> files;             // relative path -> record
    std::map<std::string, std::string> collision_owner;  // collision key -> relative path
    std::map<std::string, std::map<std::string, Instance>> values;  // schema -> instance -> values
    std::vector<std::shared_ptr<Subscriber>> subscribers;
    std::map<std::string, QueueRecord> queues;
    std::uint64_t next_id = 1;
    std::atomic<unsigned> effective_cores{1};

    std::unique_ptr<FileWatcher> watcher;

    // --- helpers ------------------------------------------------------------

    unsigned compute_cores() const {
        if (options.cores) return options.cores;
        auto wharf_values = values.find(kWharfSchema);
        if (wharf_values != values.end()) {
            auto it = wharf_values->second.find("");
            if (it != wharf_values->second.end()) {
                auto n = it->second.values.get<unsigned>("cores", 0);
                if (n) return n;
            }
        }
        return detect_cores();
    }

    pt::ptree defaults_of(const CatalogEntry& entry) const {
        return validate_document(nullptr, entry.schema, entry.schema.name, entry.check).values;
    }

    // Delivers (instance, values) to every subscriber of `schema`. On a
    // refusal the subscribers that accepted get `previous` back.
    wharf::ConfigVerdict deliver(const std::string& schema, const std::string& instance,
                                 const std::optional<pt::ptree>& next,
                                 const std::optional<pt::ptree>& previous, bool may_refuse) {
        std::vector<std::shared_ptr<Subscriber>> targets;
        {
            std::lock_guard lock(data_mutex);
            for (const auto& s : subscribers)
                if (s->schema == schema) targets.push_back(s);
        }
        auto call = [&](Subscriber& s, const std::optional<pt::ptree>& v) -> wharf::ConfigVerdict {
            if (!s.active) return std::nullopt;
            try {
                return s.callback(instance, v);
            } catch (const std::exception& e) {
                return std::string("the consumer failed: ") + e.what();
            } catch (...) {
                return std::string("the consumer failed");
            }
        };
        std::vector<Subscriber*> accepted;
        for (const auto& s : targets) {
            auto verdict = call(*s, next);
            if (verdict && may_refuse) {
                for (auto* a : accepted) call(*a, previous);
                return verdict;
            }
            accepted.push_back(s.get());
        }
        return std::nullopt;
    }

    void publish_queue(const std::string& name, const pt::ptree& queue_values,
                       const std::string& file, std::uint64_t version) {
        if (!options.registry) return;
        auto settings = std::make_shared<wharf::QueueSettings>(
            queue_settings(name, queue_values, effective_cores));
        settings->version = version;
        pt::ptree props = queue_values;
        props.put("queue.name", name);
        props.put("queue.max_parallel", settings->max_parallel);
        props.put("config.factory", kQueuesSchema);
        props.put("config.pid", std::string(kQueuesSchema) + "~" + name);
        props.put("config.file", file);
        props.put("config.version", version);
        auto it = queues.find(name);
        if (it != queues.end()) {
            it->second.service->update(settings);
            it->second.registration->set_properties(std::move(props), settings->ranking);
            log->info("queue modified name={} max_parallel={} version={}", name,
                      settings->max_parallel, version);
            return;
        }
        auto service = std::make_shared<QueueService>(name, settings);
        auto registration =
            options.registry->register_service(Owner{"host", 0}, nullptr, wharf::interfaces::kQueue,
                                               service, std::move(props), settings->ranking);
        queues[name] = QueueRecord{service, registration};
        log->info("queue registered name={} max_parallel={} topics={}", name,
                  settings->max_parallel, settings->topics.size());
    }

    void withdraw_queue(const std::string& name) {
        auto it = queues.find(name);
        if (it == queues.end()) return;
        auto registration = it->second.registration;
        queues.erase(it);
        registration->unregister();
        log->info("queue unregistered name={}", name);
    }

    // Re-resolves every queue's max_parallel after the core count changed.
    void refresh_cores() {
        unsigned cores = compute_cores();
        if (cores == effective_cores) return;
        effective_cores = cores;
        log->info("config cores changed cores={}", cores);
        auto it = values.find(kQueuesSchema);
        if (it == values.end()) return;
        for (const auto& [name, instance] : it->second)
            publish_queue(name, instance.values, instance.file, instance.version);
    }

    void after_apply(const std::string& schema, const std::string& instance) {
        if (schema == kQueuesSchema) {
            const auto& in_force = values.at(schema).at(instance);
            publish_queue(instance, in_force.values, in_force.file, in_force.version);
        } else if (schema == kWharfSchema) {
            refresh_cores();
        }
    }

    void refuse(FileRecord& record, std::vector<ConfigError> errors) {
        {
            std::lock_guard lock(data_mutex);
            record.status.state = ConfigFileState::refused;
            record.status.errors = std::move(errors);
            record.status.refused_at = Clock::now();
        }
        const auto& first = record.status.errors.front();
        log->error("config refused file={} version_in_force={} errors={} error={}",
                   record.status.file, record.status.applied_version, record.status.errors.size(),
                   in_quotes(first.to_string()));
    }

    void set_pending(FileRecord& record, std::string reason) {
        bool changed =
            record.status.state != ConfigFileState::pending || record.status.reason != reason;
        {
            std::lock_guard lock(data_mutex);
            record.status.state = ConfigFileState::pending;
            record.status.schema.clear();
            record.status.instance.clear();
            record.status.reason = reason;
            record.status.errors.clear();
        }
        // Info, not a warning: at start-up every operations file waits for its
        // plugin, which the host loads after the configuration. The status
        // (API, `wharf config`) keeps showing a file that stays pending.
        if (changed)
            log->info("config pending file={} reason={}", record.status.file, in_quotes(reason));
    }

    // --- applying one file --------------------------------------------------

    void process(const std::string& rel, bool force) {
        auto key = config_key(rel);
        if (!key) return;
        fs::path path = root / rel;
        std::error_code ec;
        if (!fs::is_regular_file(path, ec)) {
            removed(rel);
            return;
        }
        FileRecord* record;
        {
            std::lock_guard lock(data_mutex);
            auto [it, fresh] = files.try_emplace(rel);
            record = &it->second;
            if (fresh) {
                record->key = *key;
                record->status.file = rel;
            }
        }
        auto match = catalog.match(*key);
        if (!match) {
            record->seen_sha256.clear();
            set_pending(*record, undeclared_message(catalog, *key));
            return;
        }
        {
            std::lock_guard lock(data_mutex);
            record->status.schema = match->entry->schema.name;
            record->status.instance = match->instance;
            record->status.reason.clear();
        }
        auto collides = collision_key(*key);
        auto owner = collision_owner.find(collides);
        if (owner != collision_owner.end() && owner->second != rel) {
            record->seen_sha256.clear();
            refuse(*record, {ConfigError{rel, {}, collision_message(*match, *key, owner->second)}});
            return;
        }
        collision_owner[collides] = rel;

        auto bytes = read_config_bytes(path, rel, options.limits.max_bytes);
        if (auto* err = std::get_if<ConfigError>(&bytes)) {
            if (!fs::exists(path, ec)) {
                removed(rel);
                return;
            }
            record->seen_sha256.clear();
            refuse(*record, {std::move(*err)});
            return;
        }
        const auto& content = std::get<std::string>(bytes);
        auto sha = sha256_hex(content);
        if (!force && sha == record->seen_sha256) return;
        record->seen_sha256 = sha;

        auto result = check_config_bytes(content, rel, *match, options.limits);
        if (!result.ok()) {
            refuse(*record, std::move(result.errors));
            return;
        }
        apply(*record, *match, std::move(result.values), sha);
    }

    void apply(FileRecord& record, const CatalogMatch& match, pt::ptree next,
               const std::string& sha) {
        const auto& schema = match.entry->schema.name;
        std::optional<pt::ptree> previous;
        std::uint64_t version = 0;
        if (auto in_schema = values.find(schema); in_schema != values.end()) {
            if (auto it = in_schema->second.find(match.instance); it != in_schema->second.end()) {
                previous = it->second.values;
                version = it->second.version;
            }
        }
        bool same_values =
            previous && *previous == next && record.status.state == ConfigFileState::applied;
        if (!same_values) {
            // A new single file replaces the defaults a consumer already has.
            std::optional<pt::ptree> before =
                previous
                    ? previous
                    : (match.instance.empty() ? std::optional<pt::ptree>(defaults_of(*match.entry))
                                              : std::nullopt);
            if (auto verdict = deliver(schema, match.instance, next, before, true)) {
                refuse(
                    record,
                    {ConfigError{record.status.file, {}, "refused by its consumer: " + *verdict}});
                return;
            }
            ++version;
        }
        {
            std::lock_guard lock(data_mutex);
            values[schema][match.instance] = Instance{next, record.status.file, version};
            record.status.state = ConfigFileState::applied;
            record.status.errors.clear();
            record.status.applied_sha256 = sha;
            record.status.applied_version = version;
            record.status.applied_at = Clock::now();
        }
        if (same_values) {
            log->info("config unchanged file={} sha256={}", record.status.file, short_sha(sha));
            return;
        }
        log->info("config applied file={} schema={} version={} sha256={}", record.status.file,
                  schema, version, short_sha(sha));
        after_apply(schema, match.instance);
    }

    void removed(const std::string& rel) {
        FileRecord record;
        {
            std::lock_guard lock(data_mutex);
            auto it = files.find(rel);
            if (it == files.end()) return;
            record = std::move(it->second);
            files.erase(it);
        }
        auto collides = collision_key(record.key);
        bool owned_name = false;
        if (auto it = collision_owner.find(collides);
            it != collision_owner.end() && it->second == rel) {
            collision_owner.erase(it);
            owned_name = true;
        }
        log->info("config removed file={}", rel);
        auto match = catalog.match(record.key);
        if (match && owned_name) {
            const auto& schema = match->entry->schema.name;
            auto in_schema = values.find(schema);
            auto it = in_schema == values.end() ? decltype(in_schema->second.end()){}
                                                : in_schema->second.find(match->instance);
            if (in_schema != values.end() && it != in_schema->second.end() &&
                it->second.file == rel) {
                if (!match->instance.empty()) {
                    auto previous = it->second.values;
                    {
                        std::lock_guard lock(data_mutex);
                        in_schema->second.erase(it);
                    }
                    deliver(schema, match->instance, std::nullopt, previous, false);
                    if (schema == kQueuesSchema) withdraw_queue(match->instance);
                } else {
                    auto defaults =
                        validate_document(nullptr, match->entry->schema, rel, match->entry->check);
                    if (defaults.ok()) {
                        auto previous = it->second.values;
                        auto version = it->second.version + 1;
                        {
                            std::lock_guard lock(data_mutex);
                            it->second = Instance{defaults.values, "", version};
                        }
                        deliver(schema, "", defaults.values, previous, false);
                        after_apply(schema, "");
                        log->info("config defaults schema={} version={}", schema, version);
                    } else {
                        log->warn("config removed file={} reason={}", rel,
                                  in_quotes("the schema has required keys; the last values stay"));
                    }
                }
            }
        }
        // A file that lost a name collision may take the name now.
        if (owned_name) {
            std::vector<std::string> waiting;
            {
                std::lock_guard lock(data_mutex);
                for (const auto& [other, r] : files)
                    if (collision_key(r.key) == collides) waiting.push_back(other);
            }
            for (const auto& other : waiting) process(other, true);
        }
    }

    void rescan_locked() {
        auto on_disk = list_config_files(root);
        std::vector<std::string> present;
        for (const auto& rel : on_disk) present.push_back(rel.generic_string());
        std::vector<std::string> gone;
        {
            std::lock_guard lock(data_mutex);
            for (const auto& [rel, r] : files)
                if (std::find(present.begin(), present.end(), rel) == present.end())
                    gone.push_back(rel);
        }
        for (const auto& rel : gone) removed(rel);
        // wharf.yaml first: it decides the core count queues are resolved with.
        std::stable_partition(present.begin(), present.end(),
                              [](const std::string& rel) { return config_key(rel) == "wharf"; });
        for (const auto& rel : present) process(rel, false);
    }

    void on_events(const std::vector<FileEvent>& events) {
        std::lock_guard guard(apply_mutex);
        bool full = false;
        std::vector<std::string> changed;
        for (const auto& event : events) {
            if (event.kind == FileEvent::Kind::rescan) {
                full = true;
                continue;
            }
            std::error_code ec;
            if (fs::is_directory(event.path, ec)) {
                full = true;
                continue;
            }
            auto rel = event.path.lexically_relative(root).generic_string();
            if (rel.empty() || rel.rfind("..", 0) == 0 || !config_key(rel)) continue;
            changed.push_back(rel);
            if (event.kind == FileEvent::Kind::removed) {
                // An editor may be halfway through a save: give the file a
                // moment to come back before its removal takes effect.
                auto deadline = std::chrono::steady_clock::now() + options.remove_grace;
                while (!fs::exists(event.path, ec) && std::chrono::steady_clock::now() < deadline)
                    std::this_thread::sleep_for(std::chrono::milliseconds(2));
            }
        }
        for (const auto& rel : changed) process(rel, false);
        if (full) rescan_locked();
    }

    void reprocess_schemas(const std::vector<std::string>& names) {
        std::vector<std::string> rels;
        {
            std::lock_guard lock(data_mutex);
            for (const auto& [rel, r] : files) {
                auto match = catalog.match(r.key);
                bool affected = match && std::find(names.begin(), names.end(),
                                                   match->entry->schema.name) != names.end();
                if (affected || r.status.state == ConfigFileState::pending) rels.push_back(rel);
            }
        }
        for (const auto& rel : rels) process(rel, true);
    }

    void unsubscribe(std::uint64_t id) {
        std::lock_guard guard(apply_mutex);
        std::lock_guard lock(data_mutex);
        for (auto it = subscribers.begin(); it != subscribers.end(); ++it) {
            if ((*it)->id == id) {
                (*it)->active = false;
                subscribers.erase(it);
                return;
            }
        }
    }

    void drop_group(std::uint64_t group) {
        std::lock_guard guard(apply_mutex);
        std::lock_guard lock(data_mutex);
        std::erase_if(subscribers, [&](const std::shared_ptr<Subscriber>& s) {
            if (s->group != group) return false;
            s->active = false;
            return true;
        });
    }

    std::unique_ptr<wharf::ConfigSubscription> subscribe(std::string_view name,
                                                         ConfigCallback callback,
                                                         std::uint64_t group);

    std::shared_ptr<const CatalogEntry> entry_or_throw(std::string_view name) const {
        auto entry = catalog.find(name);
        if (!entry)
            throw Error(ErrorCode::not_found, "no configuration named '" + std::string(name) + "'");
        return entry;
    }

    pt::ptree current(std::string_view name) const {
        std::lock_guard lock(data_mutex);
        auto entry = entry_or_throw(name);
        if (entry->schema.factory)
            throw Error(ErrorCode::invalid_argument,
                        "'" + std::string(name) + "' is a factory: use instances()");
        if (auto it = values.find(entry->schema.name); it != values.end())
            if (auto in = it->second.find(""); in != it->second.end()) return in->second.values;
        return defaults_of(*entry);
    }

    std::vector<std::pair<std::string, pt::ptree>> instances(std::string_view name) const {
        std::lock_guard lock(data_mutex);
        auto entry = entry_or_throw(name);
        std::vector<std::pair<std::string, pt::ptree>> out;
        if (auto it = values.find(entry->schema.name); it != values.end())
            for (const auto& [instance, in] : it->second)
                if (!instance.empty()) out.emplace_back(instance, in.values);
        return out;
    }
};

}  // namespace detail

namespace {

class Subscription final : public wharf::ConfigSubscription {
public:
    Subscription(std::weak_ptr<detail::ConfigAdminState> admin, std::uint64_t id)
        : admin_(std::move(admin)), id_(id) {}
    ~Subscription() override {
        if (auto admin = admin_.lock()) admin->unsubscribe(id_);
    }

private:
    std::weak_ptr<detail::ConfigAdminState> admin_;
    std::uint64_t id_;
};

// What a plugin sees: its own schemas only; its subscriptions end with it.
class PluginConfig final : public wharf::Config {
public:
    PluginConfig(std::shared_ptr<detail::ConfigAdminState> admin, std::string plugin_id,
                 std::uint64_t group)
        : admin_(std::move(admin)), plugin_id_(std::move(plugin_id)), group_(group) {}
    ~PluginConfig() override { admin_->drop_group(group_); }

    pt::ptree current(std::string_view name) const override {
        check_owned(name);
        return admin_->current(name);
    }
    std::vector<std::pair<std::string, pt::ptree>> instances(std::string_view name) const override {
        check_owned(name);
        return admin_->instances(name);
    }
    std::unique_ptr<wharf::ConfigSubscription> subscribe(
        std::string_view name,
        std::function<wharf::ConfigVerdict(const std::string&, const std::optional<pt::ptree>&)>
            on_update) override {
        check_owned(name);
        return admin_->subscribe(name, std::move(on_update), group_);
    }
    // Set once in the ConfigAdmin's constructor, so no lock.
    std::filesystem::path directory() const override {
        return admin_->root.has_filename() ? admin_->root : admin_->root.parent_path();
    }

private:
    void check_owned(std::string_view name) const {
        std::shared_ptr<const CatalogEntry> entry;
        {
            std::lock_guard lock(admin_->data_mutex);
            entry = admin_->catalog.find(name);
        }
        if (!entry || entry->owner != plugin_id_)
            throw std::invalid_argument("plugin " + plugin_id_ +
                                        " did not declare configuration '" + std::string(name) +
                                        "'");
    }

    std::shared_ptr<detail::ConfigAdminState> admin_;
    std::string plugin_id_;
    std::uint64_t group_;
};

}  // namespace

std::unique_ptr<wharf::ConfigSubscription> detail::ConfigAdminState::subscribe(
    std::string_view name, ConfigCallback callback, std::uint64_t group) {
    std::lock_guard lock(data_mutex);
    auto entry = entry_or_throw(name);
    auto s = std::make_shared<Subscriber>();
    s->id = next_id++;
    s->group = group;
    s->schema = entry->schema.name;
    s->callback = std::move(callback);
    subscribers.push_back(s);
    return std::make_unique<Subscription>(weak_from_this(), s->id);
}

ConfigAdmin::ConfigAdmin(ConfigAdminOptions options)
    : impl_(std::make_shared<detail::ConfigAdminState>()) {
    impl_->options = std::move(options);
    impl_->root = fs::absolute(impl_->options.config_dir).lexically_normal();
    std::vector<wharf::ConfigSchema> schemas;
    std::vector<ConfigCheck> checks;
    for (auto& host : host_schemas()) {
        schemas.push_back(std::move(host.schema));
        checks.push_back(std::move(host.check));
    }
    if (auto problem = impl_->catalog.declare(kHostOwner, schemas, checks))
        throw Error(ErrorCode::internal, "host config schemas: " + *problem);
    impl_->effective_cores = impl_->compute_cores();
}

ConfigAdmin::~ConfigAdmin() {
    stop();
    std::lock_guard guard(impl_->apply_mutex);
    for (auto& [name, queue] : impl_->queues) queue.registration->unregister();
    impl_->queues.clear();
}

void ConfigAdmin::start() {
    std::error_code ec;
    if (!fs::is_directory(impl_->root, ec))
        throw Error(ErrorCode::io, "config directory " + impl_->root.string() + " does not exist");
    {
        std::lock_guard guard(impl_->apply_mutex);
        impl_->log->info("config loading dir={}", impl_->root.string());
        impl_->rescan_locked();
        impl_->effective_cores = impl_->compute_cores();
    }
    if (impl_->options.watch && !impl_->watcher) {
        std::weak_ptr<detail::ConfigAdminState> weak = impl_;
        impl_->watcher = std::make_unique<FileWatcher>(
            impl_->root, true, impl_->options.settle, [weak](const std::vector<FileEvent>& events) {
                if (auto impl = weak.lock()) impl->on_events(events);
            });
    }
}

void ConfigAdmin::stop() {
    // Outside apply_mutex: the watcher's thread may be waiting for it.
    impl_->watcher.reset();
}

std::unique_ptr<wharf::ConfigSubscription> ConfigAdmin::subscribe(std::string_view name,
                                                                  ConfigCallback callback) {
    return impl_->subscribe(name, std::move(callback), 0);
}

pt::ptree ConfigAdmin::current(std::string_view name) const { return impl_->current(name); }

std::vector<std::pair<std::string, pt::ptree>> ConfigAdmin::instances(std::string_view name) const {
    return impl_->instances(name);
}

std::vector<ConfigFileStatus> ConfigAdmin::status() const {
    std::lock_guard lock(impl_->data_mutex);
    std::vector<ConfigFileStatus> out;
    for (const auto& [rel, record] : impl_->files) out.push_back(record.status);
    return out;
}

std::optional<ConfigFileStatus> ConfigAdmin::status(std::string_view file) const {
    std::lock_guard lock(impl_->data_mutex);
    auto it = impl_->files.find(std::string(file));
    if (it == impl_->files.end()) return std::nullopt;
    return it->second.status;
}

void ConfigAdmin::rescan() {
    std::lock_guard guard(impl_->apply_mutex);
    impl_->rescan_locked();
}

unsigned ConfigAdmin::cores() const { return impl_->effective_cores; }

std::vector<wharf::ConfigSchema> ConfigAdmin::schemas() const {
    std::lock_guard lock(impl_->data_mutex);
    std::vector<wharf::ConfigSchema> out;
    for (const auto& entry : impl_->catalog.entries()) out.push_back(entry->schema);
    return out;
}

std::optional<std::string> ConfigAdmin::declare(const std::string& plugin_id,
                                                const std::vector<wharf::ConfigSchema>& schemas) {
    std::lock_guard guard(impl_->apply_mutex);
    if (plugin_id == kHostOwner) return std::string("the plugin id 'host' is reserved");
    std::vector<std::string> names;
    {
        std::lock_guard lock(impl_->data_mutex);
        if (auto problem = impl_->catalog.declare(plugin_id, schemas)) {
            impl_->log->error("config schemas refused plugin={} reason={}", plugin_id,
                              in_quotes(*problem));
            return problem;
        }
        for (const auto& s : schemas) names.push_back(s.name);
    }
    impl_->log->info("config schemas declared plugin={} count={}", plugin_id, names.size());
    impl_->reprocess_schemas(names);
    return std::nullopt;
}

void ConfigAdmin::retract(const std::string& plugin_id) {
    std::lock_guard guard(impl_->apply_mutex);
    std::vector<std::string> names;
    {
        std::lock_guard lock(impl_->data_mutex);
        names = impl_->catalog.retract(plugin_id);
        for (const auto& name : names) impl_->values.erase(name);
        for (auto& [rel, record] : impl_->files) {
            if (std::find(names.begin(), names.end(), record.status.schema) == names.end())
                continue;
            record.status =
                ConfigFileStatus{rel,          "",
                                 "",           ConfigFileState::pending,
                                 "",           0,
                                 std::nullopt, {},
                                 std::nullopt, undeclared_message(impl_->catalog, record.key)};
            record.seen_sha256.clear();
            impl_->collision_owner.erase(collision_key(record.key));
        }
    }
    if (!names.empty())
        impl_->log->info("config schemas retracted plugin={} count={}", plugin_id, names.size());
}

std::unique_ptr<wharf::Config> ConfigAdmin::open(const std::string& plugin_id) {
    std::uint64_t group;
    {
        std::lock_guard lock(impl_->data_mutex);
        group = impl_->next_id++;
    }
    return std::make_unique<PluginConfig>(impl_, plugin_id, group);
}

}  // namespace wharf::host
