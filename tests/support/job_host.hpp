#pragma once
// Test support: the in-process host parts the host fixtures build the same
// way (a ConfigAdmin on a config folder, a migrated SQLite job store, a
// started JobEngine) and waiting for a job to end.
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>

#include "config/config_admin.hpp"
#include "jobs/job_engine.hpp"
#include "jobs/sqlite_job_store.hpp"
#include "modules/service_registry.hpp"
#include "support/temp_dir.hpp"

namespace wharf::test {

/// A ConfigAdmin on `config_dir` registering into `registry`, not watching, started.
inline std::unique_ptr<host::ConfigAdmin> start_config_admin(
    host::ServiceRegistryImpl& registry, const std::filesystem::path& config_dir) {
    host::ConfigAdminOptions co;
    co.config_dir = config_dir;
    co.registry = &registry;
    co.watch = false;
    auto config = std::make_unique<host::ConfigAdmin>(co);
    config->start();
    return config;
}

/// A SqliteJobStore on `path`, migrated.
inline std::unique_ptr<host::SqliteJobStore> open_job_store(const std::filesystem::path& path) {
    host::SqliteJobStoreOptions so;
    so.path = path;
    auto store = std::make_unique<host::SqliteJobStore>(so);
    store->migrate();
    return store;
}

/// JobEngine options for tests: what a run does reaches the store every 20 ms.
inline host::JobEngineOptions test_engine_options() {
    host::JobEngineOptions eo;
    eo.flush_interval = std::chrono::milliseconds(20);
    return eo;
}

/// A JobEngine on `store`, started.
inline std::unique_ptr<host::JobEngine> start_job_engine(
    host::ServiceRegistryImpl& registry, host::JobStore& store,
    const host::JobEngineOptions& options = test_engine_options()) {
    auto engine = std::make_unique<host::JobEngine>(registry, store, options);
    engine->start();
    return engine;
}

/// Waits (up to `timeout`) until job `id` is in a final state; returns it as last seen.
inline std::optional<host::JobView> wait_final(
    const host::JobEngine& engine, JobId id,
    std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    eventually(
        [&] {
            auto v = engine.find(id);
            return v && is_final(v->job.state);
        },
        timeout);
    return engine.find(id);
}

}  // namespace wharf::test
