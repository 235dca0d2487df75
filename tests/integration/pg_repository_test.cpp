// PgRepository's cluster cases on a throwaway PostgreSQL server (the contract
// cases it shares with SqliteRepository are in repository_test.cpp): two
// instances moving and deleting subtrees at once, a session whose connection
// drops mid-batch, concurrent first opens, checkpoints seen across
// instances, check on a damaged database, and the errors a user sees for a
// newer schema or an unreachable server. Skipped with a warning when
// PostgreSQL is not installed.
#include <barrier>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "integration/repository_backends.hpp"
#include "repository/repository_check.hpp"

using namespace wharf;
using wharf::host::PgRepository;
using wharf::test::PgRepoBackend;
using Code = RepositoryError::Code;

namespace {

#define WHARF_PG_BACKEND(name) \
    PgRepoBackend name;        \
    if (!name.available()) {   \
        WARN(name.why_not());  \
        return;                \
    }

Node folder(std::string path) {
    Node n;
    n.path = std::move(path);
    n.kind = NodeKind::folder;
    return n;
}

Node asset(const BinaryInfo& binary, std::string path, PropertyMap properties = {}) {
    Node n;
    n.path = std::move(path);
    n.kind = NodeKind::asset;
    n.binary = binary;
    n.properties = std::move(properties);
    return n;
}

BinaryInfo store(Repository& repo, std::string_view bytes) {
    auto w = repo.write_binary();
    w->write(bytes.data(), bytes.size());
    return w->finish("text/plain");
}

std::uint64_t errors_of(const PgRepository& repo) {
    auto report = host::check_repository(repo);
    for (const auto& p : report.problems) UNSCOPED_INFO(host::format(p));
    return report.errors();
}

// Runs `f` on another thread; false if it did not finish by the deadline
// (the thread is then left to the test's end, which the failure reports).
bool finishes_within(std::chrono::seconds deadline, std::function<void()> f) {
    auto done = std::async(std::launch::async, std::move(f));
    if (done.wait_for(deadline) != std::future_status::ready) return false;
    done.get();
    return true;
}

}  // namespace

TEST_CASE("two instances moving and deleting disjoint and overlapping subtrees stay consistent",
          "[repository][pg]") {
    WHARF_PG_BACKEND(backend);
    auto a = backend.open();
    auto b = backend.open();
    constexpr int kTrees = 4 + 12, kAssets = 25;
    auto binary = store(*a, "shared bytes");
    {
        auto s = a->open_session({.batch_size = 200});
        s->create_folders("/content/dam/movedA");
        s->create_folders("/content/dam/movedB");
        s->create_folders("/content/site");
        for (int t = 0; t < kTrees; ++t) {
            auto root = "/content/dam/t" + std::to_string(t);
            s->create_folders(root + "/sub");
            for (int i = 0; i < kAssets; ++i)
                s->create(asset(binary, root + "/sub/a" + std::to_string(i) + ".txt",
                                {{"tree", Property::path(root)}}));
            Node p;
            p.path = "/content/site/p" + std::to_string(t);
            p.kind = NodeKind::page;
            p.text = "<img src=\"" + root + "/sub/a0.txt\">";
            p.properties["hero"] = Property::path(root + "/sub/a1.txt");
            s->create(p);
        }
        s->commit();
    }
    const std::uint64_t tree_size = 1 + 1 + kAssets;

    // Instance a moves trees 0-1 and b deletes trees 2-3 (disjoint). Then,
    // tree by tree from 4 on, both start at the same moment (a barrier): a
    // moves the tree under movedA, b moves it under movedB (even trees) or
    // deletes it (odd trees). A losing move sees not_found or already_exists,
    // nothing else. Assertions stay on the test's thread: workers record.
    struct Outcome {
        std::vector<std::string> unexpected;
        std::uint64_t removed = 0;
        int refused = 0;
        int removed_nothing = 0;  ///< a delete that came after the other's move
    };
    std::barrier together(2);
    auto run = [&](PgRepository& repo, bool is_a, Outcome& out) {
        auto s = repo.open_session({.batch_size = 2});
        auto attempt = [&](const std::function<void()>& change) {
            try {
                change();
                s->commit();
            } catch (const RepositoryError& e) {
                ++out.refused;
                if (e.code() != Code::not_found && e.code() != Code::already_exists)
                    out.unexpected.push_back(e.what());
            } catch (const std::exception& e) {
                out.unexpected.push_back(e.what());
            }
        };
        for (int t = is_a ? 0 : 2, end = t + 2; t < end; ++t) {
            auto from = "/content/dam/t" + std::to_string(t);
            if (is_a)
                attempt([&] { s->move(from, "/content/dam/movedA/t" + std::to_string(t)); });
            else
                attempt([&] { out.removed += s->remove(from); });
        }
        for (int t = 4; t < kTrees; ++t) {
            auto n = std::to_string(t);
            auto from = "/content/dam/t" + n;
            together.arrive_and_wait();
            if (is_a)
                attempt([&] { s->move(from, "/content/dam/movedA/t" + n); });
            else if (t % 2 == 0)
                attempt([&] { s->move(from, "/content/dam/movedB/t" + n); });
            else
                attempt([&] {
                    auto gone = s->remove(from);
                    out.removed += gone;
                    out.removed_nothing += gone == 0;
                });
        }
    };
    Outcome out_a, out_b;
    std::thread ta([&] { run(*a, true, out_a); });
    std::thread tb([&] { run(*b, false, out_b); });
    ta.join();
    tb.join();
    CHECK(out_a.unexpected == std::vector<std::string>{});
    CHECK(out_b.unexpected == std::vector<std::string>{});
    // Every overlapping pair had one winner and one loser (a delete of a tree
    // already moved away removes nothing, as the contract says).
    CHECK(out_a.refused + out_b.refused + out_b.removed_nothing == kTrees - 4);

    // Disjoint: exactly what each instance did.
    for (int t = 0; t < 2; ++t) {
        CHECK_FALSE(a->get("/content/dam/t" + std::to_string(t)));
        CHECK(b->count("/content/dam/movedA/t" + std::to_string(t), {}) == tree_size);
    }
    for (int t = 2; t < 4; ++t) CHECK(b->count("/content/dam/t" + std::to_string(t), {}) == 0);
    // Overlapping: each tree is whole in one place, or gone; never split.
    for (int t = 4; t < kTrees; ++t) {
        auto n = std::to_string(t);
        INFO("tree " << n);
        std::uint64_t where = 0, total = 0;
        for (const auto& at :
             {"/content/dam/t" + n, "/content/dam/movedA/t" + n, "/content/dam/movedB/t" + n}) {
            auto c = a->count(at, {});
            CHECK((c == 0 || c == tree_size));
            where += c > 0;
            total += c;
        }
        CHECK(where <= 1);
        CHECK((total == 0 || total == tree_size));
    }
    CHECK(errors_of(*a) == 0);
    // Both instances see the same tree, and what survived kept its properties.
    std::vector<std::string> seen_a, seen_b, without_property;
    a->walk("/", {}, [&](const Node& n) {
        seen_a.push_back(n.path);
        if (n.kind == NodeKind::asset && !n.properties.count("tree"))
            without_property.push_back(n.path);
        return true;
    });
    CHECK(without_property == std::vector<std::string>{});
    CHECK(seen_a.size() > 2 * tree_size);
    b->walk("/", {.with_properties = false}, [&](const Node& n) {
        seen_b.push_back(n.path);
        return true;
    });
    CHECK(seen_a == seen_b);
}

TEST_CASE("a session whose connection drops mid-batch leaves nothing of that batch",
          "[repository][pg]") {
    WHARF_PG_BACKEND(backend);
    auto repo = backend.open();
    auto s = repo->open_session({.batch_size = 100});
    s->create_folders("/content/dam/kept");
    s->set_checkpoint("job/7", "kept");
    s->commit();

    for (int i = 0; i < 40; ++i) s->create(folder("/content/dam/kept/f" + std::to_string(i)));
    s->move("/content/dam/kept", "/content/dam/renamed");
    s->set_checkpoint("job/7", "renamed");
    REQUIRE(s->pending() == 41);
    // The server ends the session's backend, as when its instance dies.
    REQUIRE(backend.count("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND state LIKE 'idle in "
                          "transaction%'") == 1);
    try {
        s->create(folder("/content/dam/renamed/late"));
        s->commit();
        FAIL("the batch of a dropped connection committed");
    } catch (const RepositoryError& e) {
        INFO(e.what());
        CHECK(e.code() == Code::io);
        CHECK_THAT(e.what(), Catch::Contains("repository"));
    }
    CHECK(s->pending() == 0);
    CHECK(repo->get("/content/dam/kept"));
    CHECK_FALSE(repo->get("/content/dam/renamed"));
    CHECK(repo->count("/content/dam/kept", {}) == 1);
    CHECK(repo->checkpoint("job/7") == "kept");
    CHECK(errors_of(*repo) == 0);

    // The write lock went with the connection: another instance writes at
    // once, and the session goes on with a new connection.
    auto other = backend.open();
    CHECK(finishes_within(std::chrono::seconds(30), [&] {
        auto o = other->open_session();
        o->create(folder("/content/dam/other"));
        o->commit();
    }));
    s->create(folder("/content/dam/kept/again"));
    s->commit();
    CHECK(repo->get("/content/dam/kept/again"));
    CHECK(repo->get("/content/dam/other"));
}

TEST_CASE("four instances opening a new database at once migrate it once", "[repository][pg]") {
    WHARF_PG_BACKEND(backend);
    std::vector<std::shared_ptr<PgRepository>> instances(4);
    std::vector<std::thread> threads;
    std::vector<std::string> failures(4);
    for (std::size_t i = 0; i < instances.size(); ++i)
        threads.emplace_back([&, i] {
            try {
                instances[i] = backend.open(1);
            } catch (const std::exception& e) {
                failures[i] = e.what();
            }
        });
    for (auto& t : threads) t.join();
    for (const auto& f : failures) CHECK(f.empty());
    CHECK(backend.count("SELECT count(*) FROM repository_schema") == PgRepository::kSchemaVersion);
    CHECK(backend.count("SELECT count(*) FROM nodes WHERE path = '/'") == 1);
    // Opening again changes nothing; every instance works on the same tree.
    backend.open();
    CHECK(backend.count("SELECT count(*) FROM repository_schema") == PgRepository::kSchemaVersion);
    for (std::size_t i = 0; i < instances.size(); ++i) {
        if (!instances[i]) continue;
        auto s = instances[i]->open_session();
        s->create_folders("/i" + std::to_string(i));
        s->commit();
    }
    CHECK(instances[0]->count("/", {.include_root = false}) == 4);
}

TEST_CASE("a batch waiting longer than the write lock timeout fails as a conflict, nothing applied",
          "[repository][pg]") {
    WHARF_PG_BACKEND(backend);
    auto holder = backend.open();
    host::PgRepositoryOptions options{backend.url(), 2, backend.blob_dir()};
    options.write_lock_timeout = std::chrono::milliseconds(300);
    auto waiter = PgRepository::open(options);

    auto held = holder->open_session({.batch_size = 1000});
    held->create_folders("/content/dam/held");  // its batch holds the write lock
    auto s = waiter->open_session();
    auto started = std::chrono::steady_clock::now();
    try {
        s->create_folders("/content/dam/waiting");
        s->commit();
        FAIL("the write did not wait for the lock");
    } catch (const RepositoryError& e) {
        CHECK(e.code() == Code::conflict);
        CHECK_THAT(e.what(), Catch::Contains("write lock past the lock timeout"));
    }
    CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(300));
    CHECK_FALSE(holder->get("/content/dam/waiting"));
    held->commit();
    CHECK(holder->get("/content/dam/held"));
    // Once the lock is free the same repository writes again.
    auto again = waiter->open_session();
    again->create_folders("/content/dam/waiting");
    again->commit();
    CHECK(holder->get("/content/dam/waiting"));

    options.write_lock_timeout = std::chrono::milliseconds(0);
    CHECK_THROWS_WITH(PgRepository::open(options),
                      Catch::Contains("write_lock_timeout must be at least 1 ms"));
}

TEST_CASE("a checkpoint committed on one instance is found by another", "[repository][pg]") {
    WHARF_PG_BACKEND(backend);
    auto a = backend.open();
    auto b = backend.open();
    const std::string value("batch 3\0with bytes", 18);
    {
        auto s = a->open_session({.batch_size = 2});
        s->create_folders("/content/dam/x");
        s->set_checkpoint("job/42", value);
        CHECK_FALSE(b->checkpoint("job/42"));  // not committed yet
        s->commit();
    }
    CHECK(b->checkpoint("job/42") == value);
    auto s = b->open_session();
    s->set_checkpoint("job/42", std::nullopt);
    s->commit();
    CHECK_FALSE(a->checkpoint("job/42"));
}

TEST_CASE("check reports index rows, binaries and parents that do not match on PostgreSQL",
          "[repository][pg]") {
    WHARF_PG_BACKEND(backend);
    auto repo = backend.open();
    auto s = repo->open_session();
    s->create_folders("/content/dam");
    s->create(asset(store(*repo, "A"), "/content/dam/a.txt"));
    Node p;
    p.path = "/content/p";
    p.kind = NodeKind::page;
    p.text = "<a href=\"/content/dam/a.txt\">a</a>";
    p.properties["r"] = Property::path("/content/dam/a.txt");
    s->create(p);
    s->commit();
    REQUIRE(host::check_repository(*repo).problems.empty());
    backend.exec("DELETE FROM refs WHERE property = 'r'");
    backend.exec(
        "INSERT INTO refs VALUES ((SELECT id FROM nodes WHERE path = '/content/p'), "
        "'x', '/content/bogus')");
    backend.exec("INSERT INTO refs VALUES (9999, 'y', '/content/p')");
    backend.exec("UPDATE nodes SET parent_id = 1 WHERE path = '/content/dam'");
    std::filesystem::remove(repo->blobs().path_of(repo->get("/content/dam/a.txt")->binary->sha256));
    auto report = host::check_repository(*repo);
    std::set<std::string> kinds;
    for (const auto& problem : report.problems) kinds.insert(host::to_string(problem.kind));
    CHECK(kinds == std::set<std::string>{"index_missing", "index_extra", "index_orphan", "bad_node",
                                         "missing_binary"});
    CHECK(report.errors() == 5);
    CHECK(report.nodes == 5);
}

TEST_CASE("a PostgreSQL repository refuses a newer schema and names an unreachable server",
          "[repository][pg]") {
    WHARF_PG_BACKEND(backend);
    backend.open();
    backend.exec("INSERT INTO repository_schema VALUES (99, 0)");
    try {
        backend.open();
        FAIL("a database of schema version 99 was opened");
    } catch (const RepositoryError& e) {
        CHECK(e.code() == Code::io);
        CHECK_THAT(e.what(), Catch::Contains("schema version 99") && Catch::Contains("(1)"));
    }
    try {
        PgRepository::open({"postgresql://wharf:secret@127.0.0.1:1/wharf?connect_timeout=5", 2,
                            backend.blob_dir()});
        FAIL("an unreachable server was opened");
    } catch (const RepositoryError& e) {
        CHECK(e.code() == Code::io);
        CHECK_THAT(e.what(), Catch::Contains("cannot connect to the repository database "
                                             "url=postgresql://wharf:***@127.0.0.1:1/wharf"));
        CHECK_THAT(e.what(), !Catch::Contains("secret"));
    }
    CHECK_THROWS_WITH(PgRepository::open({backend.url(), 2, {}}),
                      Catch::Contains("blob_dir is empty"));
}
