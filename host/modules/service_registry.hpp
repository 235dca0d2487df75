#pragma once
// The host's service registry: services by interface name, ranked, with
// properties, trackers and owner-scoped cleanup.
//
// ServiceRegistryImpl is the one registry of a host. Registrations carry an
// Owner: a display name ("host", a plugin id) plus an opaque key unique per
// plugin activation, so that everything one activation registered or opened
// can be removed at once when it stops (`remove_owner`). A registration may
// also carry an anchor (the plugin's loaded library): the registry wraps the
// service in a host-made holder that keeps the anchor alive for as long as any
// copy of the service pointer lives, and releases the anchor only after the
// service itself is destroyed.
//
// Plugins see the registry through OwnedRegistry, a wharf::ServiceRegistry
// facade bound to one Owner and anchor.
//
// Threading: lookups take a shared lock only. Changes and tracker openings are
// serialized by a recursive delivery mutex that is held while events are
// delivered (never the data lock), so callbacks may call back into the registry
// from the same thread and every tracker sees events in the order of changes.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "wharf/services.hpp"

namespace wharf::host {

struct Owner {
    std::string name;        ///< "host" or the plugin id, shown in references
    std::uint64_t key = 0;   ///< unique per activation; 0 = the host itself
};

class ServiceRegistryImpl {
public:
    ServiceRegistryImpl();
    ~ServiceRegistryImpl();
    ServiceRegistryImpl(const ServiceRegistryImpl&) = delete;
    ServiceRegistryImpl& operator=(const ServiceRegistryImpl&) = delete;

    /// A fresh owner key for one plugin activation.
    std::uint64_t new_owner_key() noexcept { return next_owner_key_.fetch_add(1); }

    /// Registers `service`. `anchor`, if set, is kept alive as long as the
    /// service pointer or any copy of it. Throws std::invalid_argument on an
    /// empty interface name or null service, std::logic_error when `owner` has
    /// been closed (its plugin stopped).
    std::shared_ptr<wharf::ServiceRegistration> register_service(
        const Owner& owner, std::shared_ptr<void> anchor, std::string_view interface,
        std::shared_ptr<void> service, wharf::Properties properties, std::int32_t ranking);

    std::optional<wharf::Service<void>> find(std::string_view interface,
                                             const wharf::PropertyFilter& filter) const;
    std::vector<wharf::Service<void>> find_all(std::string_view interface,
                                               const wharf::PropertyFilter& filter) const;

    /// Opens a tracker on `interface` for `owner` (closed by remove_owner).
    std::unique_ptr<wharf::ServiceTracker> track(const Owner& owner, std::string_view interface,
                                                 wharf::ServiceEventCallback callback,
                                                 const wharf::PropertyFilter& filter);

    /// A listener for every event on every interface (host use: dependency
    /// resolution, the API). Same delivery rules as trackers; no replay.
    std::unique_ptr<wharf::ServiceTracker> listen_all(wharf::ServiceEventCallback callback);

    /// Unregisters everything `owner_key` registered and closes its trackers.
    /// Later registrations and trackers from that key are refused.
    void remove_owner(std::uint64_t owner_key);

    /// References of everything `owner_key` has registered now, oldest first.
    std::vector<std::shared_ptr<const wharf::ServiceReference>> owned_by(
        std::uint64_t owner_key) const;

    /// Number of registered services (all interfaces).
    std::size_t service_count() const;

private:
    struct Entry;
    struct TrackerState;
    class Registration;
    class Tracker;
    struct StringHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    using EntryList = std::vector<std::shared_ptr<Entry>>;
    using Pending = std::vector<std::pair<std::shared_ptr<TrackerState>, wharf::ServiceEvent>>;

    static bool matches(const wharf::Properties& props, const wharf::PropertyFilter& filter);
    void collect_events(const Entry& entry, wharf::ServiceEventType type,
                        const std::shared_ptr<const wharf::ServiceReference>& reference,
                        Pending& out) const;
    static void deliver(Pending& pending);
    void unregister_entry(const std::shared_ptr<Entry>& entry);
    void update_entry(const std::shared_ptr<Entry>& entry, wharf::Properties properties,
                      std::int32_t ranking);
    void close_tracker(const std::shared_ptr<TrackerState>& state);

    mutable std::shared_mutex data_mutex_;
    std::recursive_mutex delivery_mutex_;
    std::unordered_map<std::string, EntryList, StringHash, std::equal_to<>> by_interface_;
    std::unordered_map<std::string, std::vector<std::shared_ptr<TrackerState>>, StringHash,
                       std::equal_to<>>
        trackers_;
    std::vector<std::shared_ptr<TrackerState>> all_listeners_;
    std::unordered_set<std::uint64_t> closed_owners_;
    std::uint64_t next_service_id_ = 1;
    std::atomic<std::uint64_t> next_owner_key_{1};
};

/// The registry as one plugin activation sees it.
class OwnedRegistry final : public wharf::ServiceRegistry {
public:
    OwnedRegistry(ServiceRegistryImpl& registry, Owner owner, std::shared_ptr<void> anchor)
        : registry_(registry), owner_(std::move(owner)), anchor_(std::move(anchor)) {}

    using wharf::ServiceRegistry::find;
    using wharf::ServiceRegistry::find_all;
    using wharf::ServiceRegistry::register_service;

    std::shared_ptr<wharf::ServiceRegistration> register_service(
        std::string_view interface, std::shared_ptr<void> service,
        wharf::Properties properties = {}, std::int32_t ranking = 0) override {
        return registry_.register_service(owner_, anchor_, interface, std::move(service),
                                          std::move(properties), ranking);
    }
    std::optional<wharf::Service<void>> find(
        std::string_view interface, const wharf::PropertyFilter& filter = {}) const override {
        return registry_.find(interface, filter);
    }
    std::vector<wharf::Service<void>> find_all(
        std::string_view interface, const wharf::PropertyFilter& filter = {}) const override {
        return registry_.find_all(interface, filter);
    }
    std::unique_ptr<wharf::ServiceTracker> track(std::string_view interface,
                                                 wharf::ServiceEventCallback callback,
                                                 const wharf::PropertyFilter& filter = {}) override {
        return registry_.track(owner_, interface, std::move(callback), filter);
    }

    const Owner& owner() const noexcept { return owner_; }

private:
    ServiceRegistryImpl& registry_;
    Owner owner_;
    std::shared_ptr<void> anchor_;
};

}  // namespace wharf::host
