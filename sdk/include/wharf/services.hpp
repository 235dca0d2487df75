#pragma once
// The service registry as plugins see it.
//
// A service is an object registered under an interface name: a stable string
// that the SDK defines next to each interface (`kInterfaceName`), not RTTI. The
// registry keeps, for every interface name, the registered services ordered by
// ranking (highest first) and then by age (oldest first); `find` returns the
// first. Properties are a boost::property_tree::ptree that lookups may filter
// on by equality.
//
// Ownership: every std::shared_ptr the registry hands out, and every one a
// plugin registers, keeps the providing plugin's library loaded. A library is
// unloaded only after the last such pointer is gone, so a caller may keep using
// a service after it was unregistered (it should let go soon: an unregistered
// service blocks its old library from unloading).
//
// Events: trackers receive added / modified / removed events. Callbacks run on
// the thread that changed the registry, with no registry lock held, one event at
// a time and in the order the changes happened, so a callback may call back into
// the registry. Callbacks must be quick: hand long work to another thread.
//
// Thread-safety: every method may be called from any thread.

#include <boost/property_tree/ptree.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace wharf {

/// Service properties: any tree of strings. Conventional keys use dots as in
/// OSGi (`job.topics`, `queue.name`); the registry reads none of them itself.
using Properties = boost::property_tree::ptree;

/// The stable interface names, one per SDK interface. The constant also sits
/// in each interface as `kInterfaceName`; this list is the one place that
/// names them all.
namespace interfaces {
inline constexpr const char* kJobConsumer = "wharf.JobConsumer";
inline constexpr const char* kOperation = "wharf.Operation";
inline constexpr const char* kJobManager = "wharf.JobManager";
inline constexpr const char* kQueue = "wharf.Queue";
inline constexpr const char* kRepository = "wharf.Repository";
inline constexpr const char* kJobListener = "wharf.JobListener";
inline constexpr const char* kLogger = "wharf.Logger";
inline constexpr const char* kConfig = "wharf.Config";
}  // namespace interfaces

/// What is known about one registered service, without the object itself.
struct ServiceReference {
    std::uint64_t id = 0;     ///< unique for the host's lifetime, increasing
    std::string interface;    ///< the interface name it was registered under
    std::string owner;        ///< id of the registering plugin, or "host"
    std::int32_t ranking = 0; ///< higher wins in `find`
    Properties properties;    ///< as given at registration or last modification
};

/// A service together with its reference. The reference is an immutable
/// snapshot shared by everyone who looked the service up (cheap to copy);
/// `set_properties` publishes a new snapshot. `service` is empty only in a
/// default-constructed value.
template <class T>
struct Service {
    std::shared_ptr<const ServiceReference> reference;
    std::shared_ptr<T> service;

    explicit operator bool() const noexcept { return service != nullptr; }
    T* operator->() const noexcept { return service.get(); }
    template <class U = T>
        requires(!std::is_void_v<U>)
    U& operator*() const noexcept {
        return *service;
    }
};

/// Equality filter on properties: every entry must match. A key is a ptree path
/// (`a.b`); it matches when the property's value equals the given string, or,
/// for a list-valued property (children with empty keys), when one of the
/// children's values equals it.
using PropertyFilter = std::map<std::string, std::string>;

/// Handle to a registration. Dropping the handle does not unregister the
/// service; `unregister()` (or the owning plugin stopping) does.
class ServiceRegistration {
public:
    virtual ~ServiceRegistration() = default;
    /// The current reference (properties as last set).
    virtual std::shared_ptr<const ServiceReference> reference() const = 0;
    /// Replaces the properties and ranking; trackers receive `modified`.
    /// No effect once unregistered.
    virtual void set_properties(Properties properties, std::int32_t ranking) = 0;
    /// Removes the service; trackers receive `removed`. Idempotent.
    virtual void unregister() = 0;
};

/// What a tracker is told.
enum class ServiceEventType { added, modified, removed };

struct ServiceEvent {
    ServiceEventType type;
    std::shared_ptr<const ServiceReference> reference;
    /// The service object; for `removed`, still valid for the duration of the
    /// callback and as long as the callee keeps a copy.
    std::shared_ptr<void> service;
};

/// Handle to an open tracker. The tracker stays open until `close()` is called,
/// the handle is destroyed, or the plugin that opened it stops.
class ServiceTracker {
public:
    virtual ~ServiceTracker() = default;
    /// Stops delivery. After close returns no callback of this tracker is
    /// running or will run (unless close is called from inside the callback).
    virtual void close() = 0;
};

using ServiceEventCallback = std::function<void(const ServiceEvent&)>;

/// The registry. Obtained from PluginContext::services().
class ServiceRegistry {
public:
    virtual ~ServiceRegistry() = default;

    /// Registers `service` under `interface`. The registry keeps a shared
    /// reference until the service is unregistered or its owner stops.
    /// REQUIRES: service != nullptr, interface not empty.
    virtual std::shared_ptr<ServiceRegistration> register_service(
        std::string_view interface, std::shared_ptr<void> service, Properties properties = {},
        std::int32_t ranking = 0) = 0;

    /// The best match: highest ranking, then oldest. std::nullopt when none.
    virtual std::optional<Service<void>> find(std::string_view interface,
                                              const PropertyFilter& filter = {}) const = 0;

    /// All matches, best first.
    virtual std::vector<Service<void>> find_all(std::string_view interface,
                                                const PropertyFilter& filter = {}) const = 0;

    /// Opens a tracker on `interface`. `callback` first receives `added` for
    /// every matching service already registered (best first), then every
    /// change as it happens.
    virtual std::unique_ptr<ServiceTracker> track(std::string_view interface,
                                                  ServiceEventCallback callback,
                                                  const PropertyFilter& filter = {}) = 0;

    // Typed helpers. `I` must declare `static constexpr const char* kInterfaceName`.
    // The interface name is the contract: the object registered under a name
    // must be of that interface type.

    template <class I>
    std::shared_ptr<ServiceRegistration> register_service(std::shared_ptr<I> service,
                                                          Properties properties = {},
                                                          std::int32_t ranking = 0) {
        return register_service(I::kInterfaceName, std::static_pointer_cast<void>(service),
                                std::move(properties), ranking);
    }

    template <class I>
    std::optional<Service<I>> find(const PropertyFilter& filter = {}) const {
        auto found = find(std::string_view(I::kInterfaceName), filter);
        if (!found) return std::nullopt;
        return Service<I>{std::move(found->reference),
                          std::static_pointer_cast<I>(std::move(found->service))};
    }

    /// Just the best service object of interface `I`, or nullptr: the fast path.
    template <class I>
    std::shared_ptr<I> get(const PropertyFilter& filter = {}) const {
        auto found = find(std::string_view(I::kInterfaceName), filter);
        return found ? std::static_pointer_cast<I>(std::move(found->service)) : nullptr;
    }

    template <class I>
    std::vector<Service<I>> find_all(const PropertyFilter& filter = {}) const {
        std::vector<Service<I>> out;
        for (auto& s : find_all(std::string_view(I::kInterfaceName), filter)) {
            out.push_back(Service<I>{std::move(s.reference),
                                     std::static_pointer_cast<I>(std::move(s.service))});
        }
        return out;
    }
};

/// Casts a tracked event's service to its interface.
template <class I>
std::shared_ptr<I> service_cast(const ServiceEvent& event) {
    return std::static_pointer_cast<I>(event.service);
}

}  // namespace wharf
