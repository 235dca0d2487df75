// ConfigAdmin against a real directory: loading the shipped configs, hot
// reload through inotify (plain writes, renames, vim saves, deletes, bursts),
// queue services in the registry, subscribers and refusals.
#include "config/config_admin.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <string>
#include <vector>

#include "base/sha256.hpp"
#include "fixtures/config/config_test_support.hpp"
#include "modules/service_registry.hpp"
#include "wharf/queues.hpp"

using namespace wharf::host;
using namespace wharf::test_config;
namespace pt = boost::property_tree;

namespace {

// Records registry events on wharf.Queue.
struct QueueEvents {
    std::mutex mutex;
    std::vector<std::pair<wharf::ServiceEventType, pt::ptree>> events;

    void add(const wharf::ServiceEvent& e) {
        std::lock_guard lock(mutex);
        events.emplace_back(e.type, e.reference->properties);
    }
    std::size_t count(wharf::ServiceEventType type, const std::string& queue) {
        std::lock_guard lock(mutex);
        std::size_t n = 0;
        for (const auto& [t, p] : events)
            if (t == type && p.get<std::string>("queue.name", "") == queue) ++n;
        return n;
    }
};

struct Host {
    TempTree tree;
    ServiceRegistryImpl registry;
    QueueEvents events;
    std::unique_ptr<wharf::ServiceTracker> tracker;
    std::unique_ptr<ConfigAdmin> admin;

    explicit Host(unsigned cores = 8) {
        tracker = registry.listen_all([this](const wharf::ServiceEvent& e) {
            if (e.reference->interface == wharf::Queue::kInterfaceName) events.add(e);
        });
        ConfigAdminOptions options;
        options.config_dir = tree.path();
        options.registry = &registry;
        options.cores = cores;
        admin = std::make_unique<ConfigAdmin>(options);
        admin->start();
    }

    std::optional<wharf::Service<wharf::Queue>> queue(const std::string& name) {
        auto found = registry.find(wharf::Queue::kInterfaceName, {{"queue.name", name}});
        if (!found) return std::nullopt;
        return wharf::Service<wharf::Queue>{found->reference,
                                            std::static_pointer_cast<wharf::Queue>(found->service)};
    }
};

const char* kQueueFile = R"(title: Default
topics: [wharf/*]
max_parallel: MAXP
retries: 3
)";

std::string queue_file(const std::string& max_parallel) {
    std::string s = kQueueFile;
    s.replace(s.find("MAXP"), 4, max_parallel);
    return s;
}

}  // namespace

TEST_CASE("the shipped configs load with both queues registered and resolved for the cores",
          "[config]") {
    Host host(8);
    std::size_t pending = 0;
    for (const auto& s : host.admin->status()) {
        INFO(s.file << " " << (s.errors.empty() ? s.reason : s.errors.front().to_string()));
        if (s.file.rfind("operations/", 0) == 0 || s.file.rfind("rollout/", 0) == 0) {
            // No plugin runs here: their files wait for the plugin to declare them.
            CHECK(s.state == ConfigFileState::pending);
            CHECK(s.reason.rfind("no plugin declares ", 0) == 0);
            ++pending;
            continue;
        }
        CHECK(s.state == ConfigFileState::applied);
        CHECK(s.applied_version == 1);
        CHECK(s.applied_sha256.size() == 64);
    }
    CHECK(pending >= 3);
    auto def = host.queue("default");
    REQUIRE(def);
    CHECK(def->reference->properties.get<std::string>("title") ==
          "Async Operation Default Queue Config");
    CHECK(def->reference->properties.get<unsigned>("queue.max_parallel") == 4);
    CHECK(def->reference->properties.get<std::string>("config.factory") == "queues");
    CHECK(def->reference->properties.get<std::string>("config.file") == "queues/default.yaml");
    CHECK(def->reference->owner == "host");
    CHECK(def->service->matches("wharf/asset/delete"));
    auto pm = host.queue("page-move-and-rollout");
    REQUIRE(pm);
    CHECK(pm->reference->properties.get<std::string>("title") ==
          "Async Operation Page Move and Rollout Config");
    CHECK(pm->service->matches("wharf/page/move"));
    CHECK(pm->service->matches("wharf/msm/rollout"));
    CHECK_FALSE(pm->service->matches("wharf/asset/delete"));
    // The page-move queue outranks the catch-all default queue.
    CHECK(pm->reference->ranking > def->reference->ranking);
    CHECK(host.admin->current("purge").get<std::string>("schedule") == "0 0 1 * * ?");
    CHECK(host.admin->current("wharf").get<std::string>("listen") == "127.0.0.1:8420");
}

TEST_CASE("changing max_parallel in a queue file modifies the live queue service", "[config]") {
    Host host(8);
    auto before = host.queue("default");
    REQUIRE(before);
    save_by_rename(host.tree / "queues/default.yaml", queue_file("3"));
    REQUIRE(wait_until([&] {
        auto q = host.queue("default");
        return q && q->reference->properties.get<unsigned>("queue.max_parallel") == 3;
    }));
    auto after = host.queue("default");
    CHECK(after->service == before->service);  // same queue, modified in place
    CHECK(after->service->settings()->max_parallel == 3);
    CHECK(after->service->settings()->retries == 3);
    CHECK(after->reference->properties.get<std::string>("config.version") == "2");
    CHECK(host.events.count(wharf::ServiceEventType::modified, "default") == 1);
    CHECK(host.events.count(wharf::ServiceEventType::removed, "default") == 0);

    // -1 means every core; a fraction is a share of them.
    write_in_place(host.tree / "queues/default.yaml", queue_file("-1"));
    REQUIRE(
        wait_until([&] { return host.queue("default")->service->settings()->max_parallel == 8; }));
    write_in_place(host.tree / "queues/default.yaml", queue_file("0.25"));
    REQUIRE(
        wait_until([&] { return host.queue("default")->service->settings()->max_parallel == 2; }));
}

TEST_CASE("a vim-style save applies the new content without the queue ever going away",
          "[config]") {
    Host host(8);
    save_like_vim(host.tree / "queues/default.yaml", queue_file("5"));
    REQUIRE(wait_until([&] {
        auto q = host.queue("default");
        return q && q->service->settings()->max_parallel == 5;
    }));
    CHECK(host.events.count(wharf::ServiceEventType::removed, "default") == 0);
    // Swap, backup and probe files were never taken for configuration.
    for (const auto& s : host.admin->status()) {
        CHECK(s.file.find(".swp") == std::string::npos);
        CHECK(s.file.find('~') == std::string::npos);
        CHECK(s.file != "queues/4913");
    }
}

TEST_CASE("deleting a queue file unregisters its queue and re-adding it registers it again",
          "[config]") {
    Host host(8);
    auto content = read_file(host.tree / "queues/page-move-and-rollout.yaml");
    fs::remove(host.tree / "queues/page-move-and-rollout.yaml");
    REQUIRE(wait_until([&] { return !host.queue("page-move-and-rollout"); }));
    CHECK(host.events.count(wharf::ServiceEventType::removed, "page-move-and-rollout") == 1);
    CHECK_FALSE(host.admin->status("queues/page-move-and-rollout.yaml"));
    CHECK(host.admin->instances("queues").size() == 1);

    save_by_rename(host.tree / "queues/page-move-and-rollout.yaml", content);
    REQUIRE(wait_until([&] { return host.queue("page-move-and-rollout").has_value(); }));
    CHECK(host.events.count(wharf::ServiceEventType::added, "page-move-and-rollout") == 2);

    // A brand-new queue file creates a queue live; moving it out removes it.
    write_in_place(host.tree / "queues/bulk.yaml", "topics: [wharf/bulk/*]\ntype: ordered\n");
    REQUIRE(wait_until([&] { return host.queue("bulk").has_value(); }));
    CHECK(host.queue("bulk")->service->settings()->max_parallel == 1);  // ordered
    fs::rename(host.tree / "queues/bulk.yaml", host.tree / "bulk.yaml.disabled");
    REQUIRE(wait_until([&] { return !host.queue("bulk"); }));
}

TEST_CASE("1000 rapid writes end with the last valid content applied", "[config]") {
    Host host(8);
    for (int i = 0; i < 1000; ++i) {
        auto file = host.tree / "queues/default.yaml";
        if (i % 7 == 3) {
            write_in_place(file, "topics: [wharf/*]\nretries: not-a-number\n");
        } else if (i % 2 == 0) {
            write_in_place(file, "topics: [wharf/*]\nretries: " + std::to_string(i) + "\n");
        } else {
            save_by_rename(file, "topics: [wharf/*]\nretries: " + std::to_string(i) + "\n");
        }
    }
    write_in_place(host.tree / "queues/default.yaml", "topics: [wharf/*]\nretries: 4242\n");
    REQUIRE(wait_until([&] {
        auto s = host.admin->status("queues/default.yaml");
        auto q = host.queue("default");
        return s && s->state == ConfigFileState::applied && q &&
               q->service->settings()->retries == 4242;
    }));
    CHECK(host.admin->instances("queues").size() == 2);
    CHECK(host.events.count(wharf::ServiceEventType::removed, "default") == 0);
}

TEST_CASE("a refused edit keeps the last good values and the fix applies", "[config]") {
    Host host(8);
    std::atomic<int> deliveries{0};
    auto sub = host.admin->subscribe("purge", [&](const std::string&, const auto&) {
        ++deliveries;
        return wharf::ConfigVerdict{};
    });
    write_in_place(host.tree / "purge.yaml", "schedule: 0 0 25 * * ?\n");
    REQUIRE(wait_until([&] {
        auto s = host.admin->status("purge.yaml");
        return s && s->state == ConfigFileState::refused;
    }));
    auto refused = *host.admin->status("purge.yaml");
    CHECK(refused.errors.front().to_string().rfind("purge.yaml:1:15: invalid cron", 0) == 0);
    CHECK(refused.applied_version == 1);
    CHECK(refused.refused_at.has_value());
    CHECK(host.admin->current("purge").get<std::string>("schedule") == "0 0 1 * * ?");
    CHECK(deliveries == 0);

    write_in_place(host.tree / "purge.yaml", "schedule: 0 30 2 * * ?\nmax_jobs: 50\n");
    REQUIRE(wait_until(
        [&] { return host.admin->status("purge.yaml")->state == ConfigFileState::applied; }));
    CHECK(host.admin->status("purge.yaml")->errors.empty());
    CHECK(host.admin->status("purge.yaml")->applied_version == 2);
    auto now = host.admin->current("purge");
    CHECK(now.get<std::string>("schedule") == "0 30 2 * * ?");
    CHECK(now.get<int>("max_jobs") == 50);
    CHECK(now.get<int>("threshold_days") == 1);  // default filled in
    CHECK(deliveries == 1);

    // Saving identical values (a comment added) is not delivered again.
    const std::string commented = "# tuned\nschedule: 0 30 2 * * ?\nmax_jobs: 50\n";
    write_in_place(host.tree / "purge.yaml", commented);
    REQUIRE(wait_until(
        [&] { return host.admin->status("purge.yaml")->applied_sha256 == sha256_hex(commented); }));
    CHECK(host.admin->status("purge.yaml")->applied_version == 2);
    CHECK(deliveries == 1);
}

TEST_CASE("a consumer that refuses an update keeps the previous values in force", "[config]") {
    Host host(8);
    std::vector<int> seen;
    std::mutex mutex;
    auto accepting = host.admin->subscribe(
        "queues", [&](const std::string& instance, const std::optional<pt::ptree>& v) {
            std::lock_guard lock(mutex);
            if (instance == "default" && v) seen.push_back(v->get<int>("retries"));
            return wharf::ConfigVerdict{};
        });
    auto refusing = host.admin->subscribe(
        "queues",
        [](const std::string&, const std::optional<pt::ptree>& v) -> wharf::ConfigVerdict {
            if (v && v->get<int>("retries") == 13) return std::string("13 retries is unlucky");
            return std::nullopt;
        });
    write_in_place(host.tree / "queues/default.yaml", "topics: [wharf/*]\nretries: 13\n");
    REQUIRE(wait_until([&] {
        auto s = host.admin->status("queues/default.yaml");
        return s && s->state == ConfigFileState::refused;
    }));
    CHECK_THAT(host.admin->status("queues/default.yaml")->errors.front().message,
               Catch::Contains("refused by its consumer: 13 retries is unlucky"));
    CHECK(host.queue("default")->service->settings()->retries == 10);
    {
        // The subscriber that had accepted got the previous values back.
        std::lock_guard lock(mutex);
        REQUIRE(seen.size() == 2);
        CHECK(seen[0] == 13);
        CHECK(seen[1] == 10);
    }
    refusing.reset();
    write_in_place(host.tree / "queues/default.yaml", "topics: [wharf/*]\nretries: 14\n");
    REQUIRE(wait_until([&] { return host.queue("default")->service->settings()->retries == 14; }));
}

TEST_CASE("removing purge.yaml delivers the defaults", "[config]") {
    Host host(8);
    write_in_place(host.tree / "purge.yaml", "threshold_days: 7\n");
    REQUIRE(
        wait_until([&] { return host.admin->current("purge").get<int>("threshold_days") == 7; }));
    std::optional<pt::ptree> delivered;
    std::mutex mutex;
    auto sub = host.admin->subscribe("purge", [&](const std::string&, const auto& v) {
        std::lock_guard lock(mutex);
        delivered = v;
        return wharf::ConfigVerdict{};
    });
    fs::remove(host.tree / "purge.yaml");
    REQUIRE(wait_until([&] {
        std::lock_guard lock(mutex);
        return delivered && delivered->get<int>("threshold_days") == 1;
    }));
    CHECK(host.admin->current("purge").get<int>("threshold_days") == 1);
    CHECK_FALSE(host.admin->status("purge.yaml"));
}

TEST_CASE("an operations file no plugin declares is pending with the reason", "[config]") {
    Host host(8);
    write_in_place(host.tree / "operations/foo.yaml", "threshold: 5\n");
    REQUIRE(wait_until([&] { return host.admin->status("operations/foo.yaml").has_value(); }));
    auto s = *host.admin->status("operations/foo.yaml");
    CHECK(s.state == ConfigFileState::pending);
    CHECK(s.reason == "no plugin declares operations/foo");

    // A folder created later is watched too.
    write_in_place(host.tree / "rollout/eu.yaml", "a: 1\n");
    REQUIRE(wait_until([&] { return host.admin->status("rollout/eu.yaml").has_value(); }));
    CHECK(host.admin->status("rollout/eu.yaml")->state == ConfigFileState::pending);
}

TEST_CASE("changing cores in wharf.yaml re-resolves every queue's max_parallel", "[config]") {
    Host host(0);  // no override: wharf.yaml decides
    auto text = read_file(host.tree / "wharf.yaml");
    text.replace(text.find("cores: 0"), 8, "cores: 12");
    save_by_rename(host.tree / "wharf.yaml", text);
    REQUIRE(wait_until([&] { return host.admin->cores() == 12; }));
    // Queues are re-resolved one after the other: wait for both.
    REQUIRE(wait_until([&] {
        return host.queue("default")->reference->properties.get<unsigned>("queue.max_parallel") ==
                   6 &&
               host.queue("page-move-and-rollout")->service->settings()->max_parallel == 6;
    }));
}

TEST_CASE("a second file whose queue name differs only in case is refused", "[config]") {
    Host host(8);
    write_in_place(host.tree / "queues/default.yml", "topics: [wharf/other]\n");
    REQUIRE(wait_until([&] {
        auto s = host.admin->status("queues/default.yml");
        return s && s->state == ConfigFileState::refused;
    }));
    CHECK_THAT(host.admin->status("queues/default.yml")->errors.front().message,
               Catch::Contains("collides with queues/default.yaml"));
    // When the first goes away, the second takes the name.
    fs::remove(host.tree / "queues/default.yaml");
    REQUIRE(wait_until([&] {
        auto q = host.queue("default");
        return q && q->service->matches("wharf/other");
    }));
}
