// The inbox: an entry for the submitter of every finished job, listed, paged
// and marked read over the HTTP API, each user seeing only their own; kept
// across restarts and bounded by the purge.
#include <catch2/catch.hpp>
#include <set>

#include "integration/notify_test_support.hpp"
#include "notify/notification_store.hpp"

using namespace std::chrono_literals;
using Json = nlohmann::json;
using wharf::JobState;
using wharf::test::eventually;
using wharf::test::kAdminToken;
using wharf::test::kOperatorToken;
using wharf::test::kViewerToken;
using wharf::test::NotifyHost;

namespace {

std::set<std::string> outcomes_of(const Json& items) {
    std::set<std::string> out;
    for (const auto& i : items) out.insert(i["outcome"].get<std::string>());
    return out;
}

}  // namespace

TEST_CASE("every finished job writes an inbox entry for its submitter with the AEM outcome",
          "[notify]") {
    NotifyHost host({}, {{"test/noretry/op", {"test-op", "Test operation", false}}});
    auto ok = host.submit("test/noretry/op", R"({"outcome":"succeeded"})", "vera");
    auto err = host.submit("test/x", R"({"outcome":"error"})", "vera");
    auto gave_up = host.submit("test/noretry/x", R"({"outcome":"failed"})", "vera");
    auto blocked = host.submit("test/block", R"({"block":true})", "vera");
    REQUIRE(host.reaches(blocked, JobState::active));
    REQUIRE(host.engine->manager()->stop(blocked));
    REQUIRE(host.reaches(ok, JobState::succeeded));
    REQUIRE(host.reaches(err, JobState::error));
    REQUIRE(host.reaches(gave_up, JobState::given_up));
    REQUIRE(host.reaches(blocked, JobState::stopped));

    Json inbox;
    REQUIRE(eventually([&] {
        inbox = host.inbox(kViewerToken);
        return inbox["items"].size() == 4;
    }));
    CHECK(inbox["unread"] == 4);
    CHECK(outcomes_of(inbox["items"]) ==
          std::set<std::string>{"Success", "Error", "Fail", "Stopped"});
    // Newest first.
    CHECK(inbox["items"][0]["id"].get<std::int64_t>() > inbox["items"][3]["id"].get<std::int64_t>());
    for (const auto& item : inbox["items"]) {
        CHECK_FALSE(item["read"].get<bool>());
        CHECK(item["created"].get<std::string>().back() == 'Z');
        if (item["job_id"] == ok) {
            CHECK(item["operation"] == "test-op");
            CHECK(item["title"] == "Test operation: Success");
            CHECK(item["topic"] == "test/noretry/op");
            CHECK(item["message"] == "ok");
        }
        if (item["job_id"] == err) {
            CHECK(item["operation"] == "test/x");
            CHECK(item["title"] == "test/x: Error");
            CHECK(item["message"] == "permanent");
        }
    }
    CHECK(inbox["next_cursor"].is_null());
}

TEST_CASE("a failed run that will be retried writes no inbox entry, and system jobs none at all",
          "[notify]") {
    NotifyHost host;
    auto retrying = host.submit("test/retry/x", R"({"outcome":"failed"})", "vera");
    auto system = host.submit("test/x", R"({"outcome":"succeeded"})", "");
    auto marker = host.submit("test/x", R"({"outcome":"succeeded"})", "vera");
    REQUIRE(host.reaches(retrying, JobState::failed));
    REQUIRE(host.reaches(system, JobState::succeeded));
    REQUIRE(host.reaches(marker, JobState::succeeded));
    Json inbox;
    REQUIRE(eventually([&] {
        inbox = host.inbox(kViewerToken);
        return inbox["items"].size() >= 1;
    }));
    REQUIRE(inbox["items"].size() == 1);
    CHECK(inbox["items"][0]["job_id"] == marker);
    CHECK(host.notifier->store().unread("") == 0);
}

TEST_CASE("a user sees and marks only their own entries; another's id is 404 and changes nothing",
          "[notify]") {
    NotifyHost host;
    auto vera_job = host.submit("test/x", "{}", "vera");
    auto otto_job = host.submit("test/x", "{}", "otto");
    REQUIRE(host.reaches(vera_job, JobState::succeeded));
    REQUIRE(host.reaches(otto_job, JobState::succeeded));
    Json vera, otto;
    REQUIRE(eventually([&] {
        vera = host.inbox(kViewerToken);
        otto = host.inbox(kOperatorToken);
        return vera["items"].size() == 1 && otto["items"].size() == 1;
    }));
    CHECK(vera["items"][0]["job_id"] == vera_job);
    CHECK(otto["items"][0]["job_id"] == otto_job);
    CHECK(host.inbox(kAdminToken)["items"].empty());

    auto otto_entry = std::to_string(otto["items"][0]["id"].get<std::int64_t>());
    auto vera_entry = std::to_string(vera["items"][0]["id"].get<std::int64_t>());
    auto as_vera = host.client(kViewerToken);

    SECTION("someone else's entry") {
        auto r = as_vera.post_json("/api/inbox/" + otto_entry + "/read", "{}");
        CHECK(r.status == 404);
        auto body = wharf::test::parse_json(r.body);
        CHECK(body["error"]["code"] == "not_found");
        CHECK(body["error"]["field"] == "id");
        CHECK(host.inbox(kOperatorToken)["unread"] == 1);
        CHECK(host.inbox(kOperatorToken)["items"][0]["read"] == false);
    }
    SECTION("an id that is not a number or does not exist") {
        CHECK(as_vera.post_json("/api/inbox/abc/read", "{}").status == 404);
        CHECK(as_vera.post_json("/api/inbox/999999/read", "{}").status == 404);
        CHECK(as_vera.post_json("/api/inbox/-1/read", "{}").status == 404);
        CHECK(host.inbox(kViewerToken)["unread"] == 1);
    }
    SECTION("their own entry, then all") {
        auto r = as_vera.post_json("/api/inbox/" + vera_entry + "/read", "{}");
        REQUIRE(r.status == 200);
        CHECK(wharf::test::parse_json(r.body)["unread"] == 0);
        auto after = host.inbox(kViewerToken);
        CHECK(after["items"][0]["read"] == true);
        CHECK(after["unread"] == 0);
        CHECK(host.inbox(kViewerToken, "?unread=true")["items"].empty());
        // Marking again is harmless.
        CHECK(as_vera.post_json("/api/inbox/" + vera_entry + "/read", "{}").status == 200);
        // Otto's stays unread until Otto reads all.
        CHECK(host.inbox(kOperatorToken)["unread"] == 1);
        auto as_otto = host.client(kOperatorToken);
        auto all = as_otto.post_json("/api/inbox/read-all", "{}");
        REQUIRE(all.status == 200);
        CHECK(wharf::test::parse_json(all.body)["unread"] == 0);
        CHECK(wharf::test::parse_json(all.body)["marked"] == 1);
        CHECK(host.inbox(kOperatorToken)["items"][0]["read"] == true);
    }
}

TEST_CASE("the inbox pages newest first with a cursor and filters unread", "[notify]") {
    NotifyHost host;
    std::vector<wharf::JobId> ids;
    for (int i = 0; i < 5; ++i) ids.push_back(host.submit("test/x", "{}", "vera"));
    for (auto id : ids) REQUIRE(host.reaches(id, JobState::succeeded));
    REQUIRE(eventually([&] { return host.inbox(kViewerToken)["items"].size() == 5; }));

    std::vector<wharf::JobId> seen;
    std::string query = "?limit=2";
    int pages = 0;
    while (true) {
        auto page = host.inbox(kViewerToken, query);
        ++pages;
        CHECK(page["items"].size() <= 2);
        for (const auto& i : page["items"]) seen.push_back(i["job_id"].get<wharf::JobId>());
        if (page["next_cursor"].is_null()) break;
        query = "?limit=2&cursor=" + std::to_string(page["next_cursor"].get<std::int64_t>());
    }
    CHECK(pages == 3);
    std::vector<wharf::JobId> expected(ids.rbegin(), ids.rend());
    std::sort(seen.rbegin(), seen.rend());
    CHECK(seen == expected);

    auto first = host.inbox(kViewerToken, "?limit=1");
    auto c = host.client(kViewerToken);
    REQUIRE(c.post_json("/api/inbox/" + std::to_string(first["items"][0]["id"].get<std::int64_t>()) +
                            "/read",
                        "{}")
                .status == 200);
    auto unread = host.inbox(kViewerToken, "?unread=true");
    CHECK(unread["items"].size() == 4);
    CHECK(unread["unread"] == 4);
    CHECK(host.inbox(kViewerToken, "?unread=false")["items"].size() == 5);
}

TEST_CASE("bad inbox requests are refused naming the parameter, and change nothing", "[notify]") {
    NotifyHost host;
    auto id = host.submit("test/x", "{}", "vera");
    REQUIRE(host.reaches(id, JobState::succeeded));
    REQUIRE(eventually([&] { return host.inbox(kViewerToken)["unread"] == 1; }));
    auto c = host.client(kViewerToken);
    for (auto [query, field] : std::vector<std::pair<std::string, std::string>>{
             {"?unread=maybe", "unread"},
             {"?limit=0", "limit"},
             {"?limit=201", "limit"},
             {"?limit=x", "limit"},
             {"?cursor=-3", "cursor"},
             {"?color=red", "color"}}) {
        auto r = c.get("/api/inbox" + query);
        INFO(query << " -> " << r.body);
        CHECK(r.status == 400);
        CHECK(wharf::test::parse_json(r.body)["error"]["field"] == field);
    }
    CHECK(c.post_json("/api/inbox/read-all?x=1", "{}").status == 400);
    // Without a token: 401 for reading and for marking.
    auto anonymous = host.client("");
    CHECK(anonymous.get("/api/inbox").status == 401);
    CHECK(anonymous.post_json("/api/inbox/read-all", "{}").status == 401);
    CHECK(host.inbox(kViewerToken)["unread"] == 1);
    CHECK(host.inbox(kViewerToken)["items"][0]["read"] == false);
}

TEST_CASE("inbox entries survive a restart of the notifier and are purged by age and count",
          "[notify]") {
    wharf::test::TempDir dir("wharf-inbox");
    auto file = dir / "notifications.db";
    auto now = std::chrono::system_clock::now();
    {
        wharf::host::NotificationStore store(file);
        CHECK(store.schema_version() == 1);
        for (int i = 1; i <= 6; ++i) {
            wharf::host::InboxEntry e;
            e.job_id = i;
            e.user = i <= 4 ? "vera" : "otto";
            e.topic = "test/x";
            e.operation = "test/x";
            e.outcome = "Success";
            e.title = "test/x: Success";
            e.created = i == 1 ? now - std::chrono::hours(24 * 40) : now;
            CHECK(store.record(e, std::nullopt).has_value());
        }
        // The same job again is ignored.
        wharf::host::InboxEntry again;
        again.job_id = 2;
        again.user = "vera";
        CHECK_FALSE(store.record(again, std::nullopt).has_value());
    }
    wharf::host::NotificationStore reopened(file);
    CHECK(reopened.unread("vera") == 4);
    CHECK(reopened.unread("otto") == 2);
    // Older than 30 days: job 1; beyond 2 per user: vera's job 2.
    CHECK(reopened.purge_inbox(now - std::chrono::hours(24 * 30), 2) == 2);
    wharf::host::InboxQuery q;
    q.user = "vera";
    std::vector<wharf::JobId> left;
    for (const auto& e : reopened.inbox(q).items) left.push_back(e.job_id);
    CHECK(left == std::vector<wharf::JobId>{4, 3});
    CHECK(reopened.unread("otto") == 2);
}
