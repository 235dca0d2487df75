#include "modules/service_registry.hpp"

#include <algorithm>
#include <stdexcept>

namespace wharf::host {

struct ServiceRegistryImpl::Entry {
    std::uint64_t id = 0;
    std::uint64_t owner_key = 0;
    std::shared_ptr<void> service;  // anchored holder
    // Guarded by data_mutex_.
    std::shared_ptr<const wharf::ServiceReference> reference;
    bool live = true;
};

struct ServiceRegistryImpl::TrackerState {
    std::uint64_t owner_key = 0;
    std::string interface;  // empty for listen_all
    wharf::PropertyFilter filter;
    wharf::ServiceEventCallback callback;
    std::atomic<bool> open{true};
};

class ServiceRegistryImpl::Registration final : public wharf::ServiceRegistration {
public:
    Registration(ServiceRegistryImpl& registry, std::shared_ptr<Entry> entry)
        : registry_(registry), entry_(std::move(entry)) {}

    std::shared_ptr<const wharf::ServiceReference> reference() const override {
        std::shared_lock lock(registry_.data_mutex_);
        return entry_->reference;
    }
    void set_properties(wharf::Properties properties, std::int32_t ranking) override {
        registry_.update_entry(entry_, std::move(properties), ranking);
    }
    void unregister() override { registry_.unregister_entry(entry_); }

private:
    ServiceRegistryImpl& registry_;
    std::shared_ptr<Entry> entry_;
};

class ServiceRegistryImpl::Tracker final : public wharf::ServiceTracker {
public:
    Tracker(ServiceRegistryImpl& registry, std::shared_ptr<TrackerState> state)
        : registry_(registry), state_(std::move(state)) {}
    ~Tracker() override { close(); }
    void close() override { registry_.close_tracker(state_); }

private:
    ServiceRegistryImpl& registry_;
    std::shared_ptr<TrackerState> state_;
};

namespace {

// Keeps the anchor (a plugin library) alive while the service lives. Members are
// destroyed in reverse order: the service first (its deleter is plugin code),
// then the anchor. This holder is created by host code, so its control block and
// destructor are host code that outlives the plugin.
struct AnchoredService {
    std::shared_ptr<void> anchor;
    std::shared_ptr<void> service;
};

// Orders a list: highest ranking first, then lowest id (oldest) first.
bool better(const std::shared_ptr<const wharf::ServiceReference>& a,
            const std::shared_ptr<const wharf::ServiceReference>& b) {
    if (a->ranking != b->ranking) return a->ranking > b->ranking;
    return a->id < b->id;
}

}  // namespace

ServiceRegistryImpl::ServiceRegistryImpl() = default;
ServiceRegistryImpl::~ServiceRegistryImpl() = default;

bool ServiceRegistryImpl::matches(const wharf::Properties& props,
                                  const wharf::PropertyFilter& filter) {
    for (const auto& [key, want] : filter) {
        auto child = props.get_child_optional(wharf::Properties::path_type(key, '.'));
        if (!child) return false;
        if (child->data() == want) continue;
        bool in_list = std::any_of(child->begin(), child->end(), [&](const auto& kv) {
            return kv.first.empty() && kv.second.data() == want;
        });
        if (!in_list) return false;
    }
    return true;
}

std::shared_ptr<wharf::ServiceRegistration> ServiceRegistryImpl::register_service(
    const Owner& owner, std::shared_ptr<void> anchor, std::string_view interface,
    std::shared_ptr<void> service, wharf::Properties properties, std::int32_t ranking) {
    if (interface.empty()) throw std::invalid_argument("register_service: empty interface name");
    if (!service) throw std::invalid_argument("register_service: null service");

    std::shared_ptr<void> held = service;
    if (anchor) {
        void* raw = service.get();
        auto holder = std::make_shared<AnchoredService>(
            AnchoredService{std::move(anchor), std::move(service)});
        held = std::shared_ptr<void>(std::move(holder), raw);
    }

    std::lock_guard delivery(delivery_mutex_);
    auto entry = std::make_shared<Entry>();
    Pending pending;
    {
        std::unique_lock lock(data_mutex_);
        if (owner.key != 0 && closed_owners_.count(owner.key) != 0) {
            throw std::logic_error("register_service: plugin '" + owner.name +
                                   "' is no longer active");
        }
        entry->id = next_service_id_++;
        entry->owner_key = owner.key;
        entry->service = std::move(held);
        auto ref = std::make_shared<wharf::ServiceReference>();
        ref->id = entry->id;
        ref->interface = std::string(interface);
        ref->owner = owner.name;
        ref->ranking = ranking;
        ref->properties = std::move(properties);
        entry->reference = std::move(ref);

        auto& list = by_interface_[std::string(interface)];
        auto pos = std::upper_bound(list.begin(), list.end(), entry,
                                    [](const auto& a, const auto& b) {
                                        return better(a->reference, b->reference);
                                    });
        list.insert(pos, entry);
        collect_events(*entry, wharf::ServiceEventType::added, entry->reference, pending);
    }
    deliver(pending);
    return std::make_shared<Registration>(*this, std::move(entry));
}

std::optional<wharf::Service<void>> ServiceRegistryImpl::find(
    std::string_view interface, const wharf::PropertyFilter& filter) const {
    std::shared_lock lock(data_mutex_);
    auto it = by_interface_.find(interface);
    if (it == by_interface_.end()) return std::nullopt;
    for (const auto& entry : it->second) {
        if (filter.empty() || matches(entry->reference->properties, filter))
            return wharf::Service<void>{entry->reference, entry->service};
    }
    return std::nullopt;
}

std::vector<wharf::Service<void>> ServiceRegistryImpl::find_all(
    std::string_view interface, const wharf::PropertyFilter& filter) const {
    std::vector<wharf::Service<void>> out;
    std::shared_lock lock(data_mutex_);
    auto it = by_interface_.find(interface);
    if (it == by_interface_.end()) return out;
    for (const auto& entry : it->second) {
        if (filter.empty() || matches(entry->reference->properties, filter))
            out.push_back(wharf::Service<void>{entry->reference, entry->service});
    }
    return out;
}

void ServiceRegistryImpl::collect_events(
    const Entry& entry, wharf::ServiceEventType type,
    const std::shared_ptr<const wharf::ServiceReference>& reference, Pending& out) const {
    auto add = [&](const std::shared_ptr<TrackerState>& t) {
        if (!t->open.load()) return;
        if (!t->filter.empty() && !matches(reference->properties, t->filter)) return;
        out.emplace_back(t, wharf::ServiceEvent{type, reference, entry.service});
    };
    if (auto it = trackers_.find(reference->interface); it != trackers_.end())
        for (const auto& t : it->second) add(t);
    for (const auto& t : all_listeners_) add(t);
}

void ServiceRegistryImpl::deliver(Pending& pending) {
    for (auto& [tracker, event] : pending) {
        if (!tracker->open.load()) continue;
        // A tracker callback is user code: it must not take the registry down.
        try {
            tracker->callback(event);
        } catch (...) {
        }
    }
}

void ServiceRegistryImpl::unregister_entry(const std::shared_ptr<Entry>& entry) {
    std::lock_guard delivery(delivery_mutex_);
    Pending pending;
    std::shared_ptr<void> released;
    {
        std::unique_lock lock(data_mutex_);
        if (!entry->live) return;
        entry->live = false;
        auto it = by_interface_.find(entry->reference->interface);
        if (it != by_interface_.end()) {
            auto& list = it->second;
            list.erase(std::remove(list.begin(), list.end(), entry), list.end());
            if (list.empty()) by_interface_.erase(it);
        }
        collect_events(*entry, wharf::ServiceEventType::removed, entry->reference, pending);
        released = std::move(entry->service);
    }
    deliver(pending);
    pending.clear();
    // `released` may be the last reference: the service (and then its library
    // anchor) is destroyed here, outside every lock.
}

void ServiceRegistryImpl::update_entry(const std::shared_ptr<Entry>& entry,
                                       wharf::Properties properties, std::int32_t ranking) {
    std::lock_guard delivery(delivery_mutex_);
    Pending pending;
    {
        std::unique_lock lock(data_mutex_);
        if (!entry->live) return;
        auto ref = std::make_shared<wharf::ServiceReference>(*entry->reference);
        ref->properties = std::move(properties);
        ref->ranking = ranking;
        entry->reference = std::move(ref);
        auto& list = by_interface_[entry->reference->interface];
        std::stable_sort(list.begin(), list.end(), [](const auto& a, const auto& b) {
            return better(a->reference, b->reference);
        });
        collect_events(*entry, wharf::ServiceEventType::modified, entry->reference, pending);
    }
    deliver(pending);
}

std::unique_ptr<wharf::ServiceTracker> ServiceRegistryImpl::track(
    const Owner& owner, std::string_view interface, wharf::ServiceEventCallback callback,
    const wharf::PropertyFilter& filter) {
    if (interface.empty()) throw std::invalid_argument("track: empty interface name");
    auto state = std::make_shared<TrackerState>();
    state->owner_key = owner.key;
    state->interface = std::string(interface);
    state->filter = filter;
    state->callback = std::move(callback);

    std::lock_guard delivery(delivery_mutex_);
    Pending pending;
    {
        std::unique_lock lock(data_mutex_);
        if (owner.key != 0 && closed_owners_.count(owner.key) != 0) {
            throw std::logic_error("track: plugin '" + owner.name + "' is no longer active");
        }
        trackers_[state->interface].push_back(state);
        if (auto it = by_interface_.find(interface); it != by_interface_.end()) {
            for (const auto& entry : it->second) {
                if (filter.empty() || matches(entry->reference->properties, filter))
                    pending.emplace_back(state, wharf::ServiceEvent{wharf::ServiceEventType::added,
                                                                    entry->reference,
                                                                    entry->service});
            }
        }
    }
    deliver(pending);
    return std::make_unique<Tracker>(*this, std::move(state));
}

std::unique_ptr<wharf::ServiceTracker> ServiceRegistryImpl::listen_all(
    wharf::ServiceEventCallback callback) {
    auto state = std::make_shared<TrackerState>();
    state->callback = std::move(callback);
    std::lock_guard delivery(delivery_mutex_);
    std::unique_lock lock(data_mutex_);
    all_listeners_.push_back(state);
    return std::make_unique<Tracker>(*this, std::move(state));
}

void ServiceRegistryImpl::close_tracker(const std::shared_ptr<TrackerState>& state) {
    if (!state->open.exchange(false)) return;
    // Taking the delivery mutex waits for a delivery running on another thread.
    std::lock_guard delivery(delivery_mutex_);
    std::unique_lock lock(data_mutex_);
    auto drop = [&](std::vector<std::shared_ptr<TrackerState>>& list) {
        list.erase(std::remove(list.begin(), list.end(), state), list.end());
    };
    if (state->interface.empty()) {
        drop(all_listeners_);
    } else if (auto it = trackers_.find(state->interface); it != trackers_.end()) {
        drop(it->second);
        if (it->second.empty()) trackers_.erase(it);
    }
}

void ServiceRegistryImpl::remove_owner(std::uint64_t owner_key) {
    std::lock_guard delivery(delivery_mutex_);
    std::vector<std::shared_ptr<Entry>> owned;
    std::vector<std::shared_ptr<TrackerState>> owned_trackers;
    {
        std::unique_lock lock(data_mutex_);
        if (owner_key != 0) closed_owners_.insert(owner_key);
        for (const auto& [name, list] : by_interface_)
            for (const auto& entry : list)
                if (entry->owner_key == owner_key) owned.push_back(entry);
        for (const auto& [name, list] : trackers_)
            for (const auto& t : list)
                if (t->owner_key == owner_key) owned_trackers.push_back(t);
    }
    for (const auto& t : owned_trackers) close_tracker(t);
    // Newest first, the reverse of registration.
    std::sort(owned.begin(), owned.end(), [](const auto& a, const auto& b) { return a->id > b->id; });
    for (const auto& entry : owned) unregister_entry(entry);
}

std::vector<std::shared_ptr<const wharf::ServiceReference>> ServiceRegistryImpl::owned_by(
    std::uint64_t owner_key) const {
    std::vector<std::shared_ptr<const wharf::ServiceReference>> out;
    std::shared_lock lock(data_mutex_);
    for (const auto& [name, list] : by_interface_)
        for (const auto& entry : list)
            if (entry->owner_key == owner_key) out.push_back(entry->reference);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a->id < b->id; });
    return out;
}

std::size_t ServiceRegistryImpl::service_count() const {
    std::shared_lock lock(data_mutex_);
    std::size_t n = 0;
    for (const auto& [name, list] : by_interface_) n += list.size();
    return n;
}

}  // namespace wharf::host
