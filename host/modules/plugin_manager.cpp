#include "modules/plugin_manager.hpp"

#include <algorithm>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "base/error.hpp"
#include "base/log.hpp"
#include "base/sha256.hpp"
#include "config/file_watcher.hpp"
#include "modules/plugin_context.hpp"
#include "modules/plugin_library.hpp"
#include "modules/plugin_probe.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace wharf::host {

const char* to_string(PluginState state) noexcept {
    switch (state) {
        case PluginState::installed: return "installed";
        case PluginState::resolved: return "resolved";
        case PluginState::starting: return "starting";
        case PluginState::active: return "active";
        case PluginState::stopping: return "stopping";
        case PluginState::stopped: return "stopped";
        case PluginState::uninstalled: return "uninstalled";
        case PluginState::failed: return "failed";
        case PluginState::quarantined: return "quarantined";
    }
    return "failed";
}

namespace {

// One activation: the activator and context of a started plugin. Shared so that
// a thread running plugin code that never returns keeps it alive (and the
// library mapped) forever instead of using freed memory.
struct Activation {
    std::shared_ptr<PluginLibrary> library;
    std::uint64_t owner_key = 0;
    std::unique_ptr<PluginContextImpl> context;
    wharf::Activator* activator = nullptr;

    ~Activation() {
        // The activator was made by the plugin; the plugin deletes it. Context
        // (host code, holding plugin-made objects such as the Config) goes
        // next, the library last.
        if (activator) library->entry().destroy_activator(activator);
        context.reset();
    }
};

// The outcome of calling plugin code on a helper thread.
struct PluginCall {
    bool timed_out = false;
    std::optional<std::string> error;  // what the plugin threw
};

// Runs `fn` on its own thread and waits at most `timeout`. On time-out the
// thread is left running with `keep` captured, so what it uses stays valid.
template <class Fn>
PluginCall call_plugin(Fn fn, std::chrono::milliseconds timeout, std::shared_ptr<void> keep) {
    auto done = std::make_shared<std::promise<std::optional<std::string>>>();
    auto result = done->get_future();
    std::thread([fn = std::move(fn), done, keep = std::move(keep)]() mutable {
        try {
            fn();
            done->set_value(std::nullopt);
        } catch (const std::exception& e) {
            done->set_value(std::string(e.what()));
        } catch (...) {
            done->set_value(std::string("unknown exception"));
        }
    }).detach();
    PluginCall call;
    if (result.wait_for(timeout) != std::future_status::ready) {
        call.timed_out = true;
        return call;
    }
    call.error = result.get();
    return call;
}

bool valid_plugin_id(const std::string& id) {
    static const std::regex kId("[a-z0-9][a-z0-9._-]{0,63}");
    return std::regex_match(id, kId);
}

bool valid_semver(const std::string& v) {
    static const std::regex kSemver(
        R"((0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?)");
    return std::regex_match(v, kSemver);
}

bool is_plugin_file(const fs::path& p) {
    auto name = p.filename().string();
    return p.extension() == ".so" && !name.empty() && name.front() != '.';
}

}  // namespace

struct PluginManager::Impl {
    struct Record {
        PluginInfo info;
        wharf::Manifest manifest;
        std::shared_ptr<PluginLibrary> library;         // the current version
        std::shared_ptr<Activation> activation;         // while starting/active
        std::vector<std::weak_ptr<PluginLibrary>> generations;  // every version loaded
        std::string quarantined_hash;
        std::uint64_t start_seq = 0;
        bool waiting_for_dependencies = false;  // stopped because a requirement went away
    };
    struct Draining {
        std::weak_ptr<PluginLibrary> library;
        std::string id, version;
        std::chrono::steady_clock::time_point deadline;
        bool warned = false;
    };

    Impl(ServiceRegistryImpl& r, PluginManagerOptions o) : registry(r), options(std::move(o)) {}

    ServiceRegistryImpl& registry;
    PluginManagerOptions options;
    std::shared_ptr<spdlog::logger> log = logger("plugins");

    // State: touched on the worker thread; read by plugins() under `mutex`.
    mutable std::mutex mutex;
    mutable std::condition_variable changed;
    std::map<fs::path, Record> records;
    std::vector<Draining> draining;
    std::uint64_t next_start_seq = 1;
    std::vector<std::function<void(const PluginInfo&)>> observers;

    // The worker.
    std::mutex queue_mutex;
    std::condition_variable queue_cv;
    std::deque<std::function<void()>> queue;
    bool reevaluate_queued = false;
    bool quitting = false;
    bool shutting_down = false;  // no more starts
    std::thread worker;

    std::unique_ptr<wharf::ServiceTracker> listener;
    std::unique_ptr<FileWatcher> watcher;

    // --- the worker ----------------------------------------------------------------

    void post(std::function<void()> task) {
        {
            std::lock_guard lock(queue_mutex);
            queue.push_back(std::move(task));
        }
        queue_cv.notify_one();
    }

    void post_and_wait(std::function<void()> task) {
        if (std::this_thread::get_id() == worker.get_id()) {
            task();
            return;
        }
        std::promise<void> done;
        auto future = done.get_future();
        post([&] {
            task();
            done.set_value();
        });
        future.wait();
    }

    void post_reevaluate() {
        {
            std::lock_guard lock(queue_mutex);
            if (reevaluate_queued) return;
            reevaluate_queued = true;
            queue.push_back([this] {
                {
                    std::lock_guard l(queue_mutex);
                    reevaluate_queued = false;
                }
                reevaluate();
            });
        }
        queue_cv.notify_one();
    }

    void run() {
        for (;;) {
            std::function<void()> task;
            {
                std::unique_lock lock(queue_mutex);
                bool has_draining;
                {
                    std::lock_guard l(mutex);
                    has_draining = !draining.empty();
                }
                auto ready = [&] { return quitting || !queue.empty(); };
                if (has_draining)
                    queue_cv.wait_for(lock, 100ms, ready);
                else
                    queue_cv.wait(lock, ready);
                if (!queue.empty()) {
                    task = std::move(queue.front());
                    queue.pop_front();
                } else if (quitting) {
                    return;
                }
            }
            if (task) {
                try {
                    task();
                } catch (const std::exception& e) {
                    log->error("plugin manager step failed error=\"{}\"", e.what());
                }
            }
            check_draining();
        }
    }

    // --- state changes ---------------------------------------------------------------

    PluginInfo snapshot(const Record& r) const {
        PluginInfo info = r.info;
        info.loaded_libraries = static_cast<std::size_t>(
            std::count_if(r.generations.begin(), r.generations.end(),
                          [](const auto& g) { return !g.expired(); }));
        if (r.activation) info.services = registry.owned_by(r.activation->owner_key);
        info.missing = missing_requirements(r.manifest);
        return info;
    }

    void set_state(Record& r, PluginState state, std::string reason = {}) {
        {
            std::lock_guard lock(mutex);
            r.info.state = state;
            r.info.reason = std::move(reason);
        }
        auto info = snapshot(r);
        const auto& who = info.id.empty() ? info.file.filename().string() : info.id;
        switch (state) {
            case PluginState::failed:
            case PluginState::quarantined:
                log->error("plugin {} id={} version={} file={} reason=\"{}\"", to_string(state),
                           who, info.version, info.file.string(), info.reason);
                break;
            default:
                log->info("plugin {} id={} version={} abi={}.{}{}", to_string(state), who,
                          info.version, info.abi_major, info.abi_minor,
                          info.reason.empty() ? "" : " reason=\"" + info.reason + "\"");
        }
        for (const auto& observer : observers) {
            try {
                observer(info);
            } catch (...) {
            }
        }
        changed.notify_all();
    }

    std::vector<std::string> missing_requirements(const wharf::Manifest& m) const {
        std::vector<std::string> missing;
        for (const auto& dep : m.requires_services) {
            if (dep.optional) continue;
            if (!registry.find(dep.interface, {})) missing.push_back(dep.interface);
        }
        return missing;
    }

    // --- deploy ----------------------------------------------------------------------

    void deploy(const fs::path& file) {
        std::error_code ec;
        if (!fs::is_regular_file(file, ec)) {
            remove(file);
            return;
        }
        std::string hash;
        try {
            hash = sha256_file(file);
        } catch (const std::exception& e) {
            log->warn("plugin file unreadable file={} error=\"{}\"", file.string(), e.what());
            return;
        }
        Record& r = [&]() -> Record& {
            std::lock_guard lock(mutex);
            Record& rec = records[file];
            rec.info.file = file;
            return rec;
        }();
        const bool has_running = r.activation != nullptr;
        if (r.info.content_hash == hash && r.info.state != PluginState::uninstalled) return;
        if (r.quarantined_hash == hash) return;

        // A refusal while an older version runs keeps it running.
        auto refuse = [&](PluginState state, const std::string& reason) {
            if (has_running) {
                {
                    std::lock_guard lock(mutex);
                    r.info.last_error = "new binary (sha256 " + hash.substr(0, 12) + ") " +
                                        to_string(state) + ": " + reason + "; kept version " +
                                        r.info.version;
                }
                set_state(r, r.info.state, r.info.reason);
            } else {
                {
                    std::lock_guard lock(mutex);
                    r.info.content_hash = hash;
                }
                set_state(r, state, reason);
            }
        };

        auto probe = probe_plugin(options.probe_executable, file, options.probe_timeout);
        switch (probe.outcome) {
            case ProbeResult::Outcome::ok: break;
            case ProbeResult::Outcome::failed:
                refuse(PluginState::failed, probe.message);
                return;
            default:
                r.quarantined_hash = hash;
                refuse(PluginState::quarantined, probe.message);
                return;
        }
        if (auto abi = check_abi(probe.abi_major, probe.abi_minor)) {
            {
                std::lock_guard lock(mutex);
                r.info.abi_major = probe.abi_major;
                r.info.abi_minor = probe.abi_minor;
            }
            refuse(PluginState::failed, *abi);
            return;
        }

        // Load a private copy named by content, so the same path can be
        // reloaded with new code while the old version stays mapped.
        std::shared_ptr<PluginLibrary> library;
        wharf::Manifest manifest;
        try {
            fs::create_directories(options.cache_dir);
            fs::path copy = options.cache_dir / (file.stem().string() + "-" + hash.substr(0, 16) + ".so");
            if (!fs::exists(copy)) {
                fs::path tmp = copy;
                tmp += ".tmp";
                fs::copy_file(file, tmp, fs::copy_options::overwrite_existing);
                fs::rename(tmp, copy);
            }
            library = PluginLibrary::load(copy, true);
            const auto& entry = library->entry();
            if (auto abi = check_abi(entry.abi_major, entry.abi_minor)) throw Error(ErrorCode::plugin, *abi);
            try {
                manifest = wharf::Manifest::from_ptree(entry.manifest());
            } catch (const std::exception& e) {
                throw Error(ErrorCode::plugin, std::string("manifest function threw: ") + e.what());
            }
        } catch (const std::exception& e) {
            refuse(PluginState::failed, e.what());
            return;
        }
        if (auto why = validate_manifest(manifest, file)) {
            refuse(PluginState::failed, *why);
            return;
        }
        if (options.config_source) {
            if (auto why = options.config_source->declare(manifest.id, manifest.configs)) {
                refuse(PluginState::failed, "configuration schema refused: " + *why);
                return;
            }
        }

        // Swap: stop the old version (it takes no new work from here on), then
        // install the new one. The old library unloads when its last object goes.
        std::shared_ptr<PluginLibrary> previous_library = r.library;
        wharf::Manifest previous_manifest = r.manifest;
        PluginInfo previous_info = r.info;
        if (has_running) {
            stop_activation(r, PluginState::stopped, "upgrading to version " + manifest.version);
            track_draining(r);
        }
        {
            std::lock_guard lock(mutex);
            r.library = library;
            r.manifest = manifest;
            r.generations.push_back(library);
            r.quarantined_hash.clear();
            r.waiting_for_dependencies = false;
            r.info.content_hash = hash;
            r.info.id = manifest.id;
            r.info.version = manifest.version;
            r.info.description = manifest.description;
            r.info.abi_major = library->entry().abi_major;
            r.info.abi_minor = library->entry().abi_minor;
            r.info.provides = manifest.provides;
            r.info.requires_services = manifest.requires_services;
            r.info.configs = manifest.configs;
            r.info.last_error.clear();
        }
        set_state(r, PluginState::installed);
        try_start(r);

        // Roll back to the old version if the new one failed to start.
        if (has_running && r.info.state == PluginState::failed && previous_library) {
            std::string failure = r.info.reason;
            log->warn("plugin upgrade failed, restarting previous version id={} version={}",
                      previous_info.id, previous_info.version);
            {
                std::lock_guard lock(mutex);
                r.library = previous_library;
                r.manifest = previous_manifest;
                r.info.content_hash = previous_info.content_hash;
                r.info.id = previous_info.id;
                r.info.version = previous_info.version;
                r.info.description = previous_info.description;
                r.info.abi_major = previous_info.abi_major;
                r.info.abi_minor = previous_info.abi_minor;
                r.info.provides = previous_info.provides;
                r.info.requires_services = previous_info.requires_services;
                r.info.configs = previous_info.configs;
                r.quarantined_hash = hash;  // do not retry the same bad binary
                r.info.last_error = "upgrade to version " + manifest.version +
                                    " failed: " + failure + "; kept version " + previous_info.version;
            }
            if (options.config_source)
                options.config_source->declare(previous_manifest.id, previous_manifest.configs);
            set_state(r, PluginState::installed);
            try_start(r);
        }
    }

    std::optional<std::string> validate_manifest(const wharf::Manifest& m, const fs::path& file) {
        if (!valid_plugin_id(m.id))
            return "manifest id '" + m.id + "' is not valid (lower-case letters, digits, '.', '_', '-'; at most 64)";
        if (!valid_semver(m.version))
            return "manifest version '" + m.version + "' of plugin " + m.id + " is not semver (e.g. 1.2.0)";
        for (const auto& [path, other] : records) {
            if (path != file && other.info.id == m.id && other.library &&
                other.info.state != PluginState::uninstalled) {
                return "plugin id '" + m.id + "' is already installed from " + path.string();
            }
        }
        for (const auto& dep : m.requires_services)
            if (dep.interface.empty()) return "manifest of " + m.id + " requires a service with an empty name";
        return std::nullopt;
    }

    void track_draining(Record& r) {
        if (!r.library) return;
        std::lock_guard lock(mutex);
        draining.push_back(Draining{r.library, r.info.id, r.info.version,
                                    std::chrono::steady_clock::now() + options.drain_timeout});
    }

    void check_draining() {
        std::vector<std::string> unloaded;
        {
            std::lock_guard lock(mutex);
            auto now = std::chrono::steady_clock::now();
            for (auto it = draining.begin(); it != draining.end();) {
                if (it->library.expired()) {
                    log->info("plugin version unloaded id={} version={}", it->id, it->version);
                    it = draining.erase(it);
                    continue;
                }
                if (!it->warned && now >= it->deadline) {
                    it->warned = true;
                    log->warn("plugin old version still in use after drain_timeout id={} version={}; "
                              "it unloads when its last object is released",
                              it->id, it->version);
                }
                ++it;
            }
        }
        changed.notify_all();
    }

    // --- start / stop ----------------------------------------------------------------

    void try_start(Record& r) {
        if (shutting_down || !r.library || r.activation) return;
        if (r.info.state == PluginState::failed || r.info.state == PluginState::quarantined ||
            r.info.state == PluginState::uninstalled)
            return;
        auto missing = missing_requirements(r.manifest);
        if (!missing.empty()) {
            // Stay (installed, or stopped after losing a requirement) and say why.
            if (r.info.state == PluginState::stopped && r.waiting_for_dependencies) return;
            std::string reason = "waiting for required service";
            for (const auto& m : missing) reason += " " + m;
            if (r.info.state != PluginState::installed || r.info.reason != reason)
                set_state(r, PluginState::installed, reason);
            return;
        }
        set_state(r, PluginState::resolved);
        start(r);
    }

    void start(Record& r) {
        auto activation = std::make_shared<Activation>();
        activation->library = r.library;
        activation->owner_key = registry.new_owner_key();
        std::unique_ptr<wharf::Config> config =
            options.config_source ? options.config_source->open(r.manifest.id) : nullptr;
        if (!config) config = make_defaults_config(r.manifest.configs);
        activation->context = std::make_unique<PluginContextImpl>(
            registry, Owner{r.manifest.id, activation->owner_key}, r.library, r.manifest.version,
            make_plugin_logger(r.manifest.id), std::move(config),
            options.plugin_data_dir / r.manifest.id);
        set_state(r, PluginState::starting);

        auto call = call_plugin(
            [a = activation.get()] {
                a->activator = a->library->entry().create_activator();
                if (!a->activator) throw std::runtime_error("create_activator returned null");
                a->activator->start(*a->context);
            },
            options.start_timeout, activation);
        if (call.timed_out) {
            // The thread still runs plugin code; it keeps the activation (and the
            // library) alive. Everything it registered is withdrawn now.
            registry.remove_owner(activation->owner_key);
            r.waiting_for_dependencies = false;
            set_state(r, PluginState::failed,
                      "start timed out after " + std::to_string(options.start_timeout.count()) + " ms");
            return;
        }
        if (call.error) {
            registry.remove_owner(activation->owner_key);
            r.waiting_for_dependencies = false;
            set_state(r, PluginState::failed, "start failed: " + *call.error);
            return;
        }
        {
            std::lock_guard lock(mutex);
            r.activation = std::move(activation);
        }
        r.start_seq = next_start_seq++;
        r.waiting_for_dependencies = false;
        set_state(r, PluginState::active);
    }

    void stop_activation(Record& r, PluginState final_state, std::string reason) {
        if (!r.activation) return;
        set_state(r, PluginState::stopping, reason);
        std::shared_ptr<Activation> activation;
        {
            std::lock_guard lock(mutex);
            activation = std::move(r.activation);
        }
        auto call = call_plugin(
            [a = activation.get()] {
                if (a->activator) a->activator->stop(*a->context);
            },
            options.start_timeout, activation);
        registry.remove_owner(activation->owner_key);
        if (call.timed_out) {
            log->error("plugin stop timed out id={} after={}ms; its code stays loaded",
                       r.info.id, options.start_timeout.count());
        } else if (call.error) {
            log->error("plugin stop threw id={} error=\"{}\"", r.info.id, *call.error);
        }
        activation.reset();
        set_state(r, final_state, std::move(reason));
    }

    void reevaluate() {
        if (shutting_down) return;
        // Stop plugins that lost a requirement, start those that gained theirs,
        // until nothing changes (a start can satisfy another plugin).
        for (int round = 0; round < 64; ++round) {
            bool changed_any = false;
            for (auto& [path, r] : records) {
                if (!r.activation) continue;
                auto missing = missing_requirements(r.manifest);
                if (missing.empty()) continue;
                std::string reason = "required service " + missing.front() +
                                     " went away; starts again when it returns";
                stop_activation(r, PluginState::stopped, reason);
                r.waiting_for_dependencies = true;
                changed_any = true;
            }
            for (auto& [path, r] : records) {
                if (r.activation || !r.library) continue;
                bool waiting = r.info.state == PluginState::installed ||
                               (r.info.state == PluginState::stopped && r.waiting_for_dependencies);
                if (!waiting || !missing_requirements(r.manifest).empty()) continue;
                try_start(r);
                changed_any = true;
            }
            if (!changed_any) return;
        }
    }

    void remove(const fs::path& file) {
        auto it = records.find(file);
        if (it == records.end() || it->second.info.state == PluginState::uninstalled) return;
        Record& r = it->second;
        if (r.activation) {
            stop_activation(r, PluginState::stopped, "file removed");
            track_draining(r);
        }
        if (options.config_source && !r.info.id.empty() && r.library)
            options.config_source->retract(r.info.id);
        {
            std::lock_guard lock(mutex);
            r.library.reset();
            r.quarantined_hash.clear();
            r.info.content_hash.clear();
        }
        set_state(r, PluginState::uninstalled, "file removed");
    }

    void stop_all() {
        shutting_down = true;
        std::vector<Record*> running;
        for (auto& [path, r] : records)
            if (r.activation) running.push_back(&r);
        std::sort(running.begin(), running.end(),
                  [](const Record* a, const Record* b) { return a->start_seq > b->start_seq; });
        for (Record* r : running) stop_activation(*r, PluginState::stopped, "host shutting down");
    }

    void on_files(const std::vector<FileEvent>& events) {
        for (const auto& e : events) {
            if (e.kind == FileEvent::Kind::rescan) {
                post([this] { scan(); });
                continue;
            }
            if (!is_plugin_file(e.path)) continue;
            fs::path path = e.path;
            if (e.kind == FileEvent::Kind::removed)
                post([this, path] { remove(path); });
            else
                post([this, path] { deploy(path); });
        }
    }

    void scan() {
        std::set<fs::path> present;
        std::error_code ec;
        for (fs::directory_iterator it(options.plugins_dir, ec), end; !ec && it != end;
             it.increment(ec)) {
            if (is_plugin_file(it->path()) && it->is_regular_file(ec)) present.insert(it->path());
        }
        for (const auto& p : present) deploy(p);
        std::vector<fs::path> gone;
        for (const auto& [path, r] : records)
            if (!present.count(path) && r.info.state != PluginState::uninstalled) gone.push_back(path);
        for (const auto& p : gone) remove(p);
    }
};

PluginManager::PluginManager(ServiceRegistryImpl& registry, PluginManagerOptions options)
    : impl_(std::make_unique<Impl>(registry, std::move(options))) {
    auto& o = impl_->options;
    o.plugins_dir = fs::absolute(o.plugins_dir).lexically_normal();
    if (o.cache_dir.empty()) throw Error(ErrorCode::invalid_argument, "plugin cache_dir not set");
    if (o.probe_executable.empty()) {
        std::error_code ec;
        auto self = fs::read_symlink("/proc/self/exe", ec);
        o.probe_executable = self.parent_path() / "wharf-plugin-probe";
    }
    impl_->worker = std::thread([impl = impl_.get()] { impl->run(); });
    impl_->listener = registry.listen_all([impl = impl_.get()](const wharf::ServiceEvent&) {
        impl->post_reevaluate();
    });
}

PluginManager::~PluginManager() {
    stop_all();
    impl_->listener.reset();
    {
        std::lock_guard lock(impl_->queue_mutex);
        impl_->quitting = true;
    }
    impl_->queue_cv.notify_one();
    if (impl_->worker.joinable()) impl_->worker.join();
}

void PluginManager::start() {
    std::error_code ec;
    fs::create_directories(impl_->options.plugins_dir, ec);
    // Binaries left in the cache by a previous run are not in use by anyone.
    fs::remove_all(impl_->options.cache_dir, ec);
    if (impl_->options.watch) {
        impl_->watcher = std::make_unique<FileWatcher>(
            impl_->options.plugins_dir, false, impl_->options.settle,
            [impl = impl_.get()](const std::vector<FileEvent>& events) { impl->on_files(events); });
    }
    impl_->post_and_wait([impl = impl_.get()] { impl->scan(); });
}

void PluginManager::deploy(const fs::path& file) {
    auto path = fs::absolute(file).lexically_normal();
    impl_->post_and_wait([impl = impl_.get(), path] { impl->deploy(path); });
}

void PluginManager::remove(const fs::path& file) {
    auto path = fs::absolute(file).lexically_normal();
    impl_->post_and_wait([impl = impl_.get(), path] { impl->remove(path); });
}

void PluginManager::stop_all() {
    impl_->watcher.reset();
    impl_->post_and_wait([impl = impl_.get()] { impl->stop_all(); });
}

std::vector<PluginInfo> PluginManager::plugins() const {
    std::lock_guard lock(impl_->mutex);
    std::vector<PluginInfo> out;
    for (const auto& [path, r] : impl_->records) out.push_back(impl_->snapshot(r));
    return out;
}

std::optional<PluginInfo> PluginManager::plugin(const std::string& id) const {
    for (auto& info : plugins())
        if (info.id == id && info.state != PluginState::uninstalled) return info;
    return std::nullopt;
}

bool PluginManager::wait_until(const std::function<bool(const std::vector<PluginInfo>&)>& predicate,
                               std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (predicate(plugins())) return true;
        std::unique_lock lock(impl_->mutex);
        // Library unloads are not state changes: re-check at least every 10 ms.
        if (impl_->changed.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() + 10ms)) ==
                std::cv_status::timeout &&
            std::chrono::steady_clock::now() >= deadline) {
            lock.unlock();
            return predicate(plugins());
        }
    }
}

void PluginManager::on_change(std::function<void(const PluginInfo&)> observer) {
    impl_->post_and_wait([impl = impl_.get(), o = std::move(observer)]() mutable {
        impl->observers.push_back(std::move(o));
    });
}

}  // namespace wharf::host
