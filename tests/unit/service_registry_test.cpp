#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <vector>

#include "modules/service_registry.hpp"

using namespace wharf;
using wharf::host::Owner;
using wharf::host::ServiceRegistryImpl;

namespace {

struct Greeter {
    static constexpr const char* kInterfaceName = "test.Greeter";
    virtual ~Greeter() = default;
    virtual std::string greet() const = 0;
};

struct FixedGreeter : Greeter {
    explicit FixedGreeter(std::string w) : word(std::move(w)) {}
    std::string greet() const override { return word; }
    std::string word;
};

Properties props(std::initializer_list<std::pair<const char*, const char*>> kv) {
    Properties p;
    for (auto& [k, v] : kv) p.put(k, v);
    return p;
}

}  // namespace

TEST_CASE("the best service is the highest ranking, then the oldest") {
    ServiceRegistryImpl registry;
    Owner host{"host", 0};
    host::OwnedRegistry view(registry, host, nullptr);
    view.register_service<Greeter>(std::make_shared<FixedGreeter>("first"), {}, 0);
    view.register_service<Greeter>(std::make_shared<FixedGreeter>("second"), {}, 0);
    REQUIRE(view.get<Greeter>()->greet() == "first");

    auto high = view.register_service<Greeter>(std::make_shared<FixedGreeter>("ranked"), {}, 10);
    REQUIRE(view.get<Greeter>()->greet() == "ranked");
    REQUIRE(view.find_all<Greeter>().size() == 3);

    high->set_properties({}, -5);
    REQUIRE(view.get<Greeter>()->greet() == "first");
    REQUIRE(view.find_all<Greeter>().back().service->greet() == "ranked");

    high->unregister();
    high->unregister();  // idempotent
    REQUIRE(view.find_all<Greeter>().size() == 2);
}

TEST_CASE("lookups filter on property equality, including list members") {
    ServiceRegistryImpl registry;
    host::OwnedRegistry view(registry, Owner{"host", 0}, nullptr);
    Properties topics;
    Properties list;
    list.push_back({"", Properties("wharf/asset/delete")});
    list.push_back({"", Properties("wharf/asset/move")});
    topics.add_child("job.topics", list);
    topics.put("kind", "asset");
    view.register_service<Greeter>(std::make_shared<FixedGreeter>("assets"), topics);
    view.register_service<Greeter>(std::make_shared<FixedGreeter>("pages"), props({{"kind", "page"}}));

    REQUIRE(view.get<Greeter>({{"kind", "page"}})->greet() == "pages");
    REQUIRE(view.get<Greeter>({{"job.topics", "wharf/asset/move"}})->greet() == "assets");
    REQUIRE(view.get<Greeter>({{"job.topics", "wharf/page/move"}}) == nullptr);
    REQUIRE(view.get<Greeter>({{"missing.key", "x"}}) == nullptr);
    REQUIRE_FALSE(view.find("no.such.Interface").has_value());
}

TEST_CASE("a tracker sees existing services, then added, modified and removed in order") {
    ServiceRegistryImpl registry;
    host::OwnedRegistry view(registry, Owner{"host", 0}, nullptr);
    auto existing = view.register_service<Greeter>(std::make_shared<FixedGreeter>("old"));

    std::vector<std::string> seen;
    auto tracker = view.track(Greeter::kInterfaceName, [&](const ServiceEvent& e) {
        const char* kind = e.type == ServiceEventType::added      ? "added"
                           : e.type == ServiceEventType::modified ? "modified"
                                                                  : "removed";
        seen.push_back(std::string(kind) + ":" + service_cast<Greeter>(e)->greet());
    });
    auto fresh = view.register_service<Greeter>(std::make_shared<FixedGreeter>("new"));
    fresh->set_properties(props({{"x", "1"}}), 3);
    fresh->unregister();
    tracker->close();
    existing->unregister();  // after close: not seen

    REQUIRE(seen == std::vector<std::string>{"added:old", "added:new", "modified:new", "removed:new"});
}

TEST_CASE("a tracker callback may register services from inside the callback") {
    ServiceRegistryImpl registry;
    host::OwnedRegistry view(registry, Owner{"host", 0}, nullptr);
    std::shared_ptr<ServiceRegistration> echo;
    auto tracker = view.track(Greeter::kInterfaceName, [&](const ServiceEvent& e) {
        if (e.type == ServiceEventType::added && !echo)
            echo = view.register_service("test.Echo", std::make_shared<int>(7));
    });
    view.register_service<Greeter>(std::make_shared<FixedGreeter>("x"));
    REQUIRE(echo != nullptr);
    REQUIRE(view.find("test.Echo").has_value());
}

TEST_CASE("removing an owner unregisters its services, closes its trackers and refuses more") {
    ServiceRegistryImpl registry;
    auto key = registry.new_owner_key();
    host::OwnedRegistry plugin(registry, Owner{"fixture", key}, nullptr);
    host::OwnedRegistry host_view(registry, Owner{"host", 0}, nullptr);
    int events = 0;
    auto tracker = plugin.track("test.Other", [&](const ServiceEvent&) { ++events; });
    plugin.register_service<Greeter>(std::make_shared<FixedGreeter>("p"));
    host_view.register_service<Greeter>(std::make_shared<FixedGreeter>("h"));
    REQUIRE(registry.service_count() == 2);

    registry.remove_owner(key);
    REQUIRE(registry.service_count() == 1);
    REQUIRE(host_view.get<Greeter>()->greet() == "h");
    REQUIRE(host_view.find<Greeter>()->reference->owner == "host");
    host_view.register_service("test.Other", std::make_shared<int>(1));
    REQUIRE(events == 0);
    REQUIRE_THROWS_WITH(plugin.register_service<Greeter>(std::make_shared<FixedGreeter>("late")),
                        Catch::Contains("no longer active"));
}

TEST_CASE("a service keeps its anchor alive until the last copy is gone") {
    ServiceRegistryImpl registry;
    auto anchor = std::make_shared<int>(42);
    std::weak_ptr<int> watch = anchor;
    host::OwnedRegistry plugin(registry, Owner{"fixture", registry.new_owner_key()}, anchor);
    anchor.reset();
    auto reg = plugin.register_service<Greeter>(std::make_shared<FixedGreeter>("held"));
    auto in_flight = plugin.get<Greeter>();
    reg->unregister();
    REQUIRE_FALSE(watch.expired());
    REQUIRE(in_flight->greet() == "held");
    in_flight.reset();
    // The view itself holds the anchor for future registrations.
    REQUIRE_FALSE(watch.expired());
}

TEST_CASE("an exception in a tracker callback does not break the registry") {
    ServiceRegistryImpl registry;
    host::OwnedRegistry view(registry, Owner{"host", 0}, nullptr);
    int later = 0;
    auto bad = view.track(Greeter::kInterfaceName, [](const ServiceEvent&) {
        throw std::runtime_error("callback failure");
    });
    auto good = view.track(Greeter::kInterfaceName, [&](const ServiceEvent&) { ++later; });
    REQUIRE_NOTHROW(view.register_service<Greeter>(std::make_shared<FixedGreeter>("x")));
    REQUIRE(later == 1);
}
