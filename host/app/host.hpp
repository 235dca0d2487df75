#pragma once
// The whole host, composed: what wharfd runs between its start and its stop
// signal, and what a test can run in its own process.
//
// Start order: registry -> ConfigAdmin (queues become services) -> job store
// and engine (crash recovery, wharf.JobManager registered, purge scheduled;
// in a cluster the instance's lease) -> repository service -> plugins ->
// operation submission -> notifications -> the HTTP API. Plugins therefore
// find the JobManager and the repository when they start, and the engine
// outlives every consumer it runs. stop() goes the other way.
#include <filesystem>
#include <memory>
#include <string>

#include "config/host_settings.hpp"

namespace wharf::host {

/// What the host takes besides its settings.
struct HostOptions {
    /// The plugin probe program; empty: wharf-plugin-probe beside the
    /// running executable (where wharfd is installed with it).
    std::filesystem::path probe_executable;
};

class Host {
public:
    /// Builds and starts everything `settings` describes; when this returns
    /// the API serves and the plugins are active. Throws (with nothing left
    /// running) when a part cannot start.
    explicit Host(HostSettings settings, HostOptions options = {});
    /// stop(), if it was not called.
    ~Host();
    Host(const Host&) = delete;
    Host& operator=(const Host&) = delete;

    /// The API's address, "127.0.0.1:<port>" (the port the system chose for
    /// `listen: 127.0.0.1:0`).
    std::string address() const;
    /// How many plugins the host knows (active or not).
    std::size_t plugin_count() const;

    /// Stops the API, then the plugins in reverse start order, then the job
    /// engine (runs that do not end within shutdown_grace are requeued), the
    /// cluster lease and the notifier. Idempotent.
    void stop();

private:
    struct Parts;
    std::unique_ptr<Parts> parts_;
};

}  // namespace wharf::host
