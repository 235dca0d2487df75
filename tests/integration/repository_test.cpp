// The repository contract, run against both backends (SqliteRepository on a
// temp data directory, PgRepository on a throwaway PostgreSQL database):
// typed properties, validation, batches, the reference index against a
// brute-force recomputation, moves, binaries, garbage collection, MSM tables,
// sessions taking turns. SQLite only: check on a damaged database, import and
// the generator (pg_repository_test.cpp has the PostgreSQL-only cases).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <thread>
#include <tuple>

#include "integration/repository_backends.hpp"
#include "repository/generator.hpp"
#include "repository/importer.hpp"
#include "repository/links.hpp"
#include "repository/path.hpp"
#include "repository/repository_check.hpp"
#include "repository/sqlite_repository.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace wharf;
using wharf::host::SqliteRepository;
using wharf::test::PgRepoBackend;
using wharf::test::SqliteRepoBackend;
using wharf::test::TempDir;
using Code = RepositoryError::Code;
using RefSet = std::set<std::tuple<std::string, std::string, std::string>>;

namespace {

Date ms(std::int64_t v) { return Date(std::chrono::milliseconds(v)); }

Node folder(std::string path) {
    Node n;
    n.path = std::move(path);
    n.kind = NodeKind::folder;
    return n;
}

Node page(std::string path, std::string text = {}, PropertyMap props = {}) {
    Node n;
    n.path = std::move(path);
    n.kind = NodeKind::page;
    n.text = std::move(text);
    n.properties = std::move(props);
    return n;
}

BinaryInfo store(Repository& repo, std::string_view bytes, std::string mime = "text/plain") {
    auto w = repo.write_binary();
    w->write(bytes.data(), bytes.size());
    return w->finish(std::move(mime));
}

Node asset(Repository& repo, std::string path, std::string_view bytes = "bytes",
           PropertyMap props = {}) {
    Node n;
    n.path = std::move(path);
    n.kind = NodeKind::asset;
    n.binary = store(repo, bytes);
    n.properties = std::move(props);
    return n;
}

/// The index as the repository reports it.
RefSet index_rows(const Repository& repo) {
    RefSet rows;
    repo.referrers_under("/", false, [&](const Reference& r) {
        rows.emplace(r.from_path, r.property, r.to_path);
        return true;
    });
    return rows;
}

/// The index recomputed from scratch: every Path value and text link of every node.
RefSet brute_force_index(const Repository& repo) {
    RefSet rows;
    repo.walk("/", {}, [&](const Node& n) {
        for (const auto& [name, p] : n.properties)
            if (p.type == PropertyType::path)
                for (const auto& v : p.values)
                    rows.emplace(n.path, name, std::get<PathRef>(v).path);
        for (auto l : host::repo::find_links(n.text))
            rows.emplace(n.path, ":text", n.text.substr(l.begin, l.end - l.begin));
        return true;
    });
    return rows;
}

/// Everything a user could see of the tree, for "nothing changed" checks.
std::vector<std::string> snapshot(const Repository& repo) {
    std::vector<std::string> out;
    repo.walk("/", {}, [&](const Node& n) {
        std::string line = n.path + "|" + std::to_string(static_cast<int>(n.kind)) + "|" +
                           std::to_string(n.order) + "|" + n.text + "|" +
                           (n.binary ? n.binary->sha256 : "");
        for (const auto& [name, p] : n.properties)
            line += "|" + name + "=" + std::to_string(p.values.size());
        out.push_back(line);
        return true;
    });
    for (const auto& [from, prop, to] : index_rows(repo)) out.push_back(from + prop + to);
    return out;
}

/// Whether the index equals its recomputation; the differences are reported.
bool index_is_exact(const Repository& repo) {
    auto actual = index_rows(repo);
    auto expected = brute_force_index(repo);
    std::vector<std::tuple<std::string, std::string, std::string>> missing, extra;
    std::set_difference(expected.begin(), expected.end(), actual.begin(), actual.end(),
                        std::back_inserter(missing));
    std::set_difference(actual.begin(), actual.end(), expected.begin(), expected.end(),
                        std::back_inserter(extra));
    for (std::size_t i = 0; i < std::min<std::size_t>(missing.size(), 5); ++i)
        UNSCOPED_INFO("missing " << std::get<0>(missing[i]) << " " << std::get<1>(missing[i])
                                 << " -> " << std::get<2>(missing[i]));
    for (std::size_t i = 0; i < std::min<std::size_t>(extra.size(), 5); ++i)
        UNSCOPED_INFO("extra " << std::get<0>(extra[i]) << " " << std::get<1>(extra[i]) << " -> "
                               << std::get<2>(extra[i]));
    return missing.empty() && extra.empty();
}

void require_error(Code code, const std::string& fragment, const std::function<void()>& f) {
    try {
        f();
        FAIL("expected RepositoryError containing: " + fragment);
    } catch (const RepositoryError& e) {
        INFO(e.what());
        CHECK(e.code() == code);
        CHECK_THAT(e.what(), Catch::Contains(fragment));
    }
}

template <class R>
std::uint64_t errors_of(const R& repo) {
    auto report = host::check_repository(repo);
    for (const auto& p : report.problems) UNSCOPED_INFO(host::format(p));
    return report.errors();
}

}  // namespace

TEMPLATE_TEST_CASE("typed properties round-trip exactly, single and multi-valued", "[repository]",
                   SqliteRepoBackend, PgRepoBackend) {
    WHARF_REPO_BACKEND(backend);
    auto repo = backend.open();
    PropertyMap props;
    props["s"] = Property::string("héllo, \"world\"\n|x");
    props["empty"] = Property::string("");
    props["nul"] = Property::string(std::string("a\0b", 3));
    props["l"] = Property::long_(std::numeric_limits<std::int64_t>::min());
    props["d"] = Property::double_(0.1);
    props["negzero"] = Property::double_(-0.0);
    props["nan"] = Property::double_(std::numeric_limits<double>::quiet_NaN());
    props["inf"] = Property::double_(std::numeric_limits<double>::infinity());
    props["tiny"] = Property::double_(std::numeric_limits<double>::denorm_min());
    props["b"] = Property::boolean(true);
    props["date"] = Property::date(ms(-1));
    props["p"] = Property::path("/content/dam/x");
    props["ms"] = Property::multi(PropertyType::string, {std::string("a"), std::string("b|c")});
    props["ml"] = Property::multi(PropertyType::long_, {std::int64_t{1}, std::int64_t{-2}});
    props["md"] = Property::multi(PropertyType::double_, {1.5, 1e-300});
    props["mb"] = Property::multi(PropertyType::boolean, {false, true});
    props["mdate"] = Property::multi(PropertyType::date, {ms(0), ms(1'700'000'000'999)});
    props["mp"] = Property::multi(PropertyType::path, {PathRef{"/a"}, PathRef{"/b"}});
    props["mempty"] = Property::multi(PropertyType::long_, {});
    props["one"] = Property::multi(PropertyType::string, {std::string("only")});
    auto s = repo->open_session();
    s->create(page("/p", "", props));
    s->commit();

    auto node = repo->get("/p");
    REQUIRE(node);
    REQUIRE(node->properties.size() == props.size());
    for (const auto& [name, expected] : props) {
        INFO(name);
        const auto& got = node->properties.at(name);
        CHECK(got.type == expected.type);
        CHECK(got.multiple == expected.multiple);
        REQUIRE(got.values.size() == expected.values.size());
        for (std::size_t i = 0; i < got.values.size(); ++i) {
            if (expected.type == PropertyType::double_) {
                double a = std::get<double>(expected.values[i]),
                       b = std::get<double>(got.values[i]);
                CHECK(std::memcmp(&a, &b, sizeof a) == 0);
            } else {
                CHECK(got.values[i] == expected.values[i]);
            }
        }
    }
}

TEMPLATE_TEST_CASE("bad paths are refused with the reason and nothing changes", "[repository]",
                   SqliteRepoBackend, PgRepoBackend) {
    WHARF_REPO_BACKEND(backend);
    auto repo = backend.open();
    auto s = repo->open_session();
    s->create_folders("/content/dam");
    s->commit();
    auto before = snapshot(*repo);
    require_error(Code::invalid_path, "\"/content//x\": empty segment",
                  [&] { s->create(folder("/content//x")); });
    require_error(Code::invalid_path, "segment '..'", [&] { s->create_folders("/content/../x"); });
    require_error(Code::invalid_path, "trailing '/'", [&] { s->set_text("/content/", "x"); });
    require_error(Code::invalid_path, "control character 0x09",
                  [&] { s->move("/content/dam", "/content/a\tb"); });
    require_error(Code::invalid_path, "the root cannot be", [&] { s->remove("/"); });
    require_error(Code::invalid_path, "not absolute", [&] { (void)repo->get("content"); });
    require_error(Code::not_found, "parent \"/content/none\" does not exist",
                  [&] { s->create(folder("/content/none/x")); });
    require_error(Code::already_exists, "\"/content/dam\": it exists",
                  [&] { s->create(folder("/content/dam")); });
    s->commit();
    CHECK(snapshot(*repo) == before);
}

TEMPLATE_TEST_CASE("bad property types and kinds are refused with the reason and nothing changes",
                   "[repository]", SqliteRepoBackend, PgRepoBackend) {
    WHARF_REPO_BACKEND(backend);
    auto repo = backend.open();
    auto s = repo->open_session();
    s->create_folders("/content/dam");
    s->create(asset(*repo, "/content/dam/a.txt", "A", {{"dc:title", Property::string("A")}}));
    s->create(page("/content/site"));
    s->commit();
    auto before = snapshot(*repo);

    PropertyMap wrong{{"count", Property{PropertyType::long_, false, {std::string("3")}}}};
    require_error(Code::invalid_property, "property \"count\": value 0 is a String",
                  [&] { s->set_properties("/content/dam/a.txt", wrong); });
    PropertyMap two{
        {"t", Property{PropertyType::string, false, {std::string("a"), std::string("b")}}}};
    require_error(Code::invalid_property, "single-valued but has 2 values",
                  [&] { s->set_properties("/content/dam/a.txt", two); });
    PropertyMap bad_path{{"ref", Property::path("content/x")}};
    require_error(Code::invalid_property, "is not a valid path",
                  [&] { s->set_properties("/content/site", bad_path); });
    PropertyMap reserved{{":text", Property::string("x")}};
    require_error(Code::invalid_property, "reserved",
                  [&] { s->set_properties("/content/site", reserved); });
    require_error(Code::invalid_kind, "only pages have text",
                  [&] { s->set_text("/content/dam/a.txt", "<a href=\"/content/x\">"); });
    require_error(Code::invalid_kind, "under an asset",
                  [&] { s->create(folder("/content/dam/a.txt/x")); });
    require_error(Code::invalid_kind, "under a page",
                  [&] { s->create(folder("/content/site/f")); });
    Node fake = asset(*repo, "/content/dam/b.txt");
    fake.binary->sha256 = std::string(64, 'a');
    require_error(Code::invalid_property, "is not in the binary store", [&] { s->create(fake); });
    Node no_binary = folder("/content/dam/c.txt");
    no_binary.kind = NodeKind::asset;
    require_error(Code::invalid_property, "without a binary", [&] { s->create(no_binary); });
    require_error(Code::not_found, "\"/content/none\" does not exist", [&] {
        s->set_properties("/content/none", {{"a", Property::long_(1)}});
    });
    // Names without values: a removal or a cancelled inheritance naming a
    // bad property refuses the whole call (the good name stays too).
    require_error(Code::invalid_property,
                  "node \"/content/dam/a.txt\": invalid property name \"a/b\"",
                  [&] { s->remove_properties("/content/dam/a.txt", {"dc:title", "a/b"}); });
    require_error(Code::invalid_property, "invalid property name \":text\"", [&] {
        s->set_inheritance_cancel("/content/site", {false, false, {"jcr:title", ":text"}});
    });
    s->commit();
    CHECK(snapshot(*repo) == before);
}

TEMPLATE_TEST_CASE("an error in a batch rolls back that batch and keeps the earlier ones",
                   "[repository]", SqliteRepoBackend, PgRepoBackend) {
    WHARF_REPO_BACKEND(backend);
    auto repo = backend.open();
    auto s = repo->open_session({.batch_size = 4});
    s->create_folders("/content/a");
    for (int i = 0; i < 3; ++i) s->create(folder("/content/a/f" + std::to_string(i)));
    CHECK(s->pending() == 4);  // full: committed by the next change
    s->set_checkpoint("job/1", "f2");
    s->create(folder("/content/a/g0"));
    CHECK(repo->checkpoint("job/1") == "f2");
    auto committed = snapshot(*repo);
    s->set_properties("/content/a/f0", {{"x", Property::long_(1)}});
    s->set_checkpoint("job/1", "g0");
    CHECK(s->pending() == 2);
    CHECK_THROWS_AS(s->create(folder("/content/a/f0")), RepositoryError);  // already exists
    CHECK(s->pending() == 0);
    CHECK(snapshot(*repo) == committed);
    CHECK(repo->checkpoint("job/1") == "f2");

    // The session goes on with the next batch.
    s->create(folder("/content/a/g1"));
    s->set_checkpoint("job/1", "g1");
    s->commit();
    CHECK(repo->get("/content/a/g1"));
    CHECK_FALSE(repo->get("/content/a/g0"));
    CHECK(repo->checkpoint("job/1") == "g1");

    // Explicit rollback, and a session dropped uncommitted.
    s->create(folder("/content/a/h0"));
    s->rollback();
    {
        auto other = repo->open_session();
        other->create(folder("/content/a/h1"));
    }
    CHECK_FALSE(repo->get("/content/a/h0"));
    CHECK_FALSE(repo->get("/content/a/h1"));
    CHECK(errors_of(*repo) == 0);
}

TEMPLATE_TEST_CASE(
    "the reference index stays exact through creates, updates, moves, rewrites and deletes",
    "[repository][index]", SqliteRepoBackend, PgRepoBackend) {
    WHARF_REPO_BACKEND(backend);
    auto repo = backend.open();
    host::ContentGeneratorOptions gen;
    gen.assets = 300;
    gen.assets_per_folder = 20;
    gen.folders_per_group = 4;
    gen.pages = 120;
    gen.pages_per_section = 15;
    gen.references_per_page = 6;
    gen.seed = 7;
    host::generate_content(*repo, gen);
    REQUIRE(index_is_exact(*repo));
    REQUIRE(index_rows(*repo).size() > 500);

    auto s = repo->open_session({.batch_size = 7});
    // Updates: Path properties replaced, added, removed; texts replaced.
    for (std::uint64_t n = 0; n < 40; ++n) {
        auto p = host::generated_page_path(gen, n);
        s->set_properties(
            p, {{"hero", Property::path(host::generated_asset_path(gen, n))},
                {"gen:refs", Property::multi(PropertyType::path,
                                             {PathRef{host::generated_page_path(gen, n + 1)},
                                              PathRef{"/content/dam/gen"}})}});
        if (n % 3 == 0) s->remove_properties(p, {"gen:refs", "absent"});
        if (n % 4 == 0)
            s->set_text(p, "<a href=\"" + host::generated_page_path(gen, n + 2) +
                               ".html\">x</a><img src='" + host::generated_asset_path(gen, 0) +
                               "'>");
        if (n % 5 == 0) s->set_properties(p, {{"hero", Property::string("no longer a path")}});
    }
    s->commit();
    CHECK(index_is_exact(*repo));

    // A folder move: referrers of the old paths are found and rewritten.
    const std::string old_root = "/content/dam/gen/d000";
    const std::string new_root = "/content/dam/moved";
    std::set<std::string> referrers;
    repo->referrers_under(old_root, false, [&](const Reference& r) {
        referrers.insert(r.from_path);
        return true;
    });
    REQUIRE_FALSE(referrers.empty());
    auto moved = s->move(old_root, new_root);
    CHECK(moved == 1 + 4 + 4 * 20);

    s->commit();
    CHECK(index_is_exact(*repo));
    std::uint64_t rewritten = 0;
    for (const auto& r : referrers) rewritten += s->rewrite_references(r, old_root, new_root);
    s->commit();
    CHECK(rewritten >= referrers.size());
    CHECK(index_is_exact(*repo));
    CHECK(repo->referrers_under(old_root, false, [](const Reference&) { return true; }) == 0);
    CHECK(repo->referrers_under(new_root, false, [](const Reference&) { return true; }) > 0);

    // A page subtree move (pages hold references themselves, so they follow).
    auto section = gen.pages_root + "/s001";
    std::vector<std::string> section_referrers;
    repo->referrers_under(section, false, [&](const Reference& r) {
        section_referrers.push_back(r.from_path);
        return true;
    });
    s->move(section, gen.pages_root + "/s000/moved");
    s->commit();
    for (auto& r : section_referrers) {
        if (host::repo::is_same_or_under(r, section))
            r = host::repo::replace_prefix(r, section, gen.pages_root + "/s000/moved");
        s->rewrite_references(r, section, gen.pages_root + "/s000/moved");
    }
    s->commit();
    CHECK(index_is_exact(*repo));
    CHECK(repo->referrers_under(section, false, [](const Reference&) { return true; }) == 0);

    // Deletes: outgoing rows go with the nodes, incoming ones stay (dangling).
    auto dangling_before = repo->referrers_under("/content/dam/gen/d001", false,
                                                 [](const Reference&) { return true; });
    CHECK(s->remove("/content/dam/gen/d001") == 1 + 4 + 4 * 20);
    CHECK(s->remove(gen.pages_root + "/s002") == 16);
    CHECK(s->remove("/content/does/not/exist") == 0);
    s->commit();
    CHECK(index_is_exact(*repo));
    auto dangling_after = repo->referrers_under("/content/dam/gen/d001", false,
                                                [](const Reference&) { return true; });
    CHECK(dangling_after > 0);
    CHECK(dangling_after <= dangling_before);
    CHECK(errors_of(*repo) == 0);
}

TEMPLATE_TEST_CASE("a move renames the subtree only, refuses impossible moves and carries MSM data",
                   "[repository]", SqliteRepoBackend, PgRepoBackend) {
    WHARF_REPO_BACKEND(backend);
    auto repo = backend.open();
    auto s = repo->open_session();
    s->create_folders("/content/dam/a/b");
    s->create_folders("/content/dam/a-b");
    s->create_folders("/content/dam/target");
    s->create(asset(*repo, "/content/dam/a/b/x.png", "x"));
    s->create(asset(*repo, "/content/dam/a-b/y.png", "y"));
    s->create(page("/content/site"));
    s->create(page("/content/site/en", "<a href=\"/content/site/en/p.html\">self</a>"));
    s->create(page("/content/site/en/p", "", {{"img", Property::path("/content/dam/a/b/x.png")}}));
    s->create(page("/content/site/fr"));
    s->set_live_relationship(
        {"/content/site/en", "/content/site/fr", {"standard"}, true, {"/content/site/en/p"}});
    s->set_inheritance_cancel("/content/site/en/p", {true, false, {"jcr:title"}});
    s->commit();

    auto before = snapshot(*repo);
    require_error(Code::invalid_move, "inside the source",
                  [&] { s->move("/content/dam/a", "/content/dam/a/b/c"); });
    require_error(Code::invalid_move, "inside the source",
                  [&] { s->move("/content/dam/a", "/content/dam/a"); });
    require_error(Code::already_exists, "the destination exists",
                  [&] { s->move("/content/dam/a", "/content/dam/target"); });
    require_error(Code::not_found, "move source \"/content/dam/none\"",
                  [&] { s->move("/content/dam/none", "/content/dam/z"); });
    require_error(Code::not_found, "destination parent \"/content/dam/none\"",
                  [&] { s->move("/content/dam/a", "/content/dam/none/a"); });
    require_error(Code::invalid_move, "cannot move a folder \"/content/dam/a\" under an asset",
                  [&] { s->move("/content/dam/a", "/content/dam/a-b/y.png/a"); });
    require_error(Code::invalid_move, "under a page",
                  [&] { s->move("/content/dam/a", "/content/site/a"); });
    CHECK(snapshot(*repo) == before);

    CHECK(s->move("/content/dam/a", "/content/dam/target/a2") == 3);
    s->commit();
    CHECK(repo->get("/content/dam/target/a2/b/x.png"));
    CHECK_FALSE(repo->get("/content/dam/a"));
    CHECK(repo->get("/content/dam/a-b/y.png"));  // the prefix sibling stayed
    CHECK(repo->count("/content/dam/target", {}) == 4);

    CHECK(s->move("/content/site/en", "/content/site/de") == 2);
    s->commit();
    auto rel = repo->live_relationship_of("/content/site/fr/anything");
    REQUIRE(rel);
    CHECK(rel->blueprint == "/content/site/de");
    CHECK(rel->excluded_paths == std::vector<std::string>{"/content/site/de/p"});
    CHECK(rel->rollout_configs == std::vector<std::string>{"standard"});
    CHECK(repo->live_relationships("/content/site/de").size() == 1);
    auto cancel = repo->inheritance_cancel("/content/site/de/p");
    CHECK(cancel.page);
    CHECK(cancel.properties == std::vector<std::string>{"jcr:title"});
    // The moved page's own link still reads the old path until rewritten.
    std::vector<Reference> refs;
    repo->referrers("/content/site/en/p", [&](const Reference& r) {
        refs.push_back(r);
        return true;
    });
    REQUIRE(refs.size() == 1);
    CHECK(refs[0].from_path == "/content/site/de");
    CHECK(refs[0].property == ":text");
    CHECK(s->rewrite_references("/content/site/de", "/content/site/en", "/content/site/de") == 1);
    CHECK(s->rewrite_references("/content/site/de/p", "/content/dam/a", "/content/dam/target/a2") ==
          1);
    s->commit();
    CHECK(repo->get("/content/site/de")->text == "<a href=\"/content/site/de/p.html\">self</a>");
    CHECK(std::get<PathRef>(repo->get("/content/site/de/p")->properties.at("img").values[0]).path ==
          "/content/dam/target/a2/b/x.png");
    CHECK(errors_of(*repo) == 0);

    // Deleting the live copy deletes its relationship.
    s->remove("/content/site/fr");
    s->set_inheritance_cancel("/content/site/de/p", {});
    s->commit();
    CHECK(repo->live_relationships("").empty());
    CHECK_FALSE(repo->inheritance_cancel("/content/site/de/p").page);
}

TEMPLATE_TEST_CASE("children are paged in order with cursors, and set_order reorders them",
                   "[repository]", SqliteRepoBackend, PgRepoBackend) {
    WHARF_REPO_BACKEND(backend);
    auto repo = backend.open();
    auto s = repo->open_session();
    s->create_folders("/f");
    for (int i = 0; i < 25; ++i) s->create(folder("/f/c" + std::to_string(100 + i)));
    s->set_order("/f/c124", -1);
    s->commit();
    std::vector<std::string> names;
    std::optional<std::string> cursor;
    int pages = 0;
    do {
        auto page = repo->children("/f", cursor, 10);
        for (const auto& n : page.nodes) names.emplace_back(n.name());
        cursor = page.next_cursor;
        ++pages;
    } while (cursor);
    CHECK(pages == 3);
    REQUIRE(names.size() == 25);
    CHECK(names.front() == "c124");
    CHECK(names[1] == "c100");
    CHECK(names.back() == "c123");
    CHECK(repo->children("/none", std::nullopt, 10).nodes.empty());
    // Cursors that are not "<order>:<path>" are refused naming the cursor.
    for (std::string bad : {"garbage", "12x:/f/c1", ":/f/c1", "99999999999999999999:/f/c1"}) {
        INFO(bad);
        CHECK_THROWS_WITH(repo->children("/f", bad, 10),
                          Catch::Contains("malformed children cursor \"" + bad + "\""));
    }
}

TEMPLATE_TEST_CASE("walk filters by kind and depth, and count agrees", "[repository]",
                   SqliteRepoBackend, PgRepoBackend) {
    WHARF_REPO_BACKEND(backend);
    auto repo = backend.open();
    auto s = repo->open_session();
    s->create_folders("/a/b/c");
    s->create(asset(*repo, "/a/x.bin"));
    s->create(asset(*repo, "/a/b/y.bin"));
    s->create(page("/a/p"));
    s->create(page("/a/p/q"));
    s->commit();
    auto walked = [&](std::string_view root, WalkOptions o) {
        std::vector<std::string> out;
        repo->walk(root, o, [&](const Node& n) {
            out.push_back(n.path);
            return true;
        });
        CHECK(repo->count(root, o) == out.size());
        return out;
    };
    CHECK(walked("/a", {}) == std::vector<std::string>{"/a", "/a/b", "/a/b/c", "/a/b/y.bin", "/a/p",
                                                       "/a/p/q", "/a/x.bin"});
    CHECK(walked("/a", {.include_root = false, .max_depth = 1}) ==
          std::vector<std::string>{"/a/b", "/a/p", "/a/x.bin"});
    CHECK(walked("/a", {.assets = true, .folders = false, .pages = false}) ==
          std::vector<std::string>{"/a/b/y.bin", "/a/x.bin"});
    CHECK(walked("/", {.max_depth = 1}) == std::vector<std::string>{"/", "/a"});
    CHECK(walked("/none", {}).empty());
    std::uint64_t seen = 0;
    CHECK(repo->walk("/a", {}, [&](const Node&) { return ++seen < 2; }) == 2);
}

TEMPLATE_TEST_CASE("walking 12,000 nodes streams with flat memory and may write while it walks",
                   "[repository][slow]", SqliteRepoBackend, PgRepoBackend) {
    WHARF_REPO_BACKEND(backend);
    auto repo = backend.open();
    const std::string text(8 * 1024, 'w');  // 12,000 x 8 KiB = 96 MiB if loaded at once
    {
        auto s = repo->open_session({.batch_size = 2000});
        s->create_folders("/content");
        s->create(page("/content/site"));
        for (int i = 0; i < 12'000; ++i)
            s->create(
                page("/content/site/p" + std::to_string(i), text, {{"i", Property::long_(i)}}));
        s->commit();
    }
    auto rss_kib = [] {
        std::ifstream in("/proc/self/status");
        std::string line;
        while (std::getline(in, line))
            if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
        return 0L;
    };
    long baseline = rss_kib(), peak = baseline;
    std::uint64_t visited = 0, text_bytes = 0;
    auto writer = repo->open_session({.batch_size = 100});
    repo->walk("/content/site", {.include_root = false}, [&](const Node& n) {
        text_bytes += n.text.size();
        if (++visited % 1000 == 0) {
            peak = std::max(peak, rss_kib());
            // Writing while walking: the walk reads its snapshot.
            writer->set_properties(n.path, {{"seen", Property::boolean(true)}});
        }
        return true;
    });
    writer->commit();
    CHECK(visited == 12'000);
    CHECK(text_bytes == 12'000 * text.size());
    INFO("RSS grew by " << (peak - baseline) << " KiB during the walk");
    CHECK(peak - baseline < 40 * 1024);
    std::uint64_t seen = 0;
    repo->walk("/content/site", {.with_properties = true}, [&](const Node& n) {
        seen += n.properties.count("seen");
        return true;
    });
    CHECK(seen == 12);
    CHECK(repo->count("/content/site", {.include_root = false}) == 12'000);
}

TEMPLATE_TEST_CASE("binaries stream in and out, and a digest mismatch stores nothing",
                   "[repository][blob]", SqliteRepoBackend, PgRepoBackend) {
    WHARF_REPO_BACKEND(backend);
    auto repo = backend.open();
    std::string big(5 * 1024 * 1024 + 17, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131) >> 3);
    auto w = repo->write_binary();
    for (std::size_t off = 0; off < big.size(); off += 100'000)
        w->write(big.data() + off, std::min<std::size_t>(100'000, big.size() - off));
    CHECK(w->size() == big.size());
    auto info = w->finish();
    CHECK(info.size == big.size());
    CHECK(info.sha256.size() == 64);
    CHECK(fs::exists(repo->blobs().path_of(info.sha256)));
    CHECK(repo->blobs().path_of(info.sha256).parent_path().filename() == info.sha256.substr(2, 2));

    auto s = repo->open_session();
    s->create_folders("/content/dam");
    Node a;
    a.path = "/content/dam/big.bin";
    a.kind = NodeKind::asset;
    a.binary = info;
    s->create(a);
    s->commit();
    auto r = repo->read_binary("/content/dam/big.bin");
    REQUIRE(r);
    CHECK(r->info().sha256 == info.sha256);
    std::string back;
    std::vector<char> buf(70'000);
    while (auto n = r->read(buf.data(), buf.size())) back.append(buf.data(), n);
    CHECK(back == big);
    r->seek(big.size() - 10);
    CHECK(r->read(buf.data(), buf.size()) == 10);
    CHECK_THROWS_AS(r->seek(big.size() + 1), RepositoryError);
    CHECK(repo->read_binary("/content/dam") == nullptr);
    CHECK(repo->read_binary("/content/none") == nullptr);

    // The same content again is stored once; uppercase expected digests are fine.
    auto again = repo->write_binary();
    again->write(big.data(), big.size());
    std::string upper = info.sha256;
    for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    CHECK(again->finish({}, upper).sha256 == info.sha256);

    auto count_files = [&] {
        std::size_t n = 0;
        for (auto& e : fs::recursive_directory_iterator(backend.blob_dir()))
            n += e.is_regular_file();
        return n;
    };
    auto files = count_files();
    auto bad = repo->write_binary();
    bad->write("tampered", 8);
    require_error(Code::io, "digest mismatch", [&] { bad->finish({}, std::string(64, '0')); });
    CHECK(count_files() == files);
    {
        auto dropped = repo->write_binary();
        dropped->write("half", 4);
        CHECK(count_files() == files + 1);  // the temporary file
    }
    CHECK(count_files() == files);

    // MIME: sniffed when not given.
    const char png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\1\0\0\0\1\x08\x02\0\0\0";
    auto m = repo->write_binary();
    m->write(png, sizeof png - 1);
    CHECK(m->finish().mime_type == "image/png");
}

TEMPLATE_TEST_CASE("garbage collection removes unreferenced binaries past the grace period only",
                   "[repository][blob]", SqliteRepoBackend, PgRepoBackend) {
    WHARF_REPO_BACKEND(backend);
    auto repo = backend.open();
    auto s = repo->open_session();
    s->create_folders("/content/dam");
    s->create(asset(*repo, "/content/dam/keep.txt", "keep"));
    s->create(asset(*repo, "/content/dam/shared1.txt", "shared"));
    s->create(asset(*repo, "/content/dam/shared2.txt", "shared"));
    s->create(asset(*repo, "/content/dam/gone.txt", "gone"));
    s->commit();
    auto gone = repo->get("/content/dam/gone.txt")->binary->sha256;
    auto shared = repo->get("/content/dam/shared1.txt")->binary->sha256;
    s->remove("/content/dam/gone.txt");
    s->remove("/content/dam/shared1.txt");
    s->commit();
    auto young = store(*repo, "written but not yet used");

    auto stats = repo->collect_garbage(std::chrono::hours(1));
    CHECK(stats.binaries_removed == 0);                         // all younger than the grace period
    CHECK(host::check_repository(*repo).problems.size() == 2);  // two warnings, no errors
    CHECK(errors_of(*repo) == 0);

    stats = repo->collect_garbage(std::chrono::seconds(-1));
    CHECK(stats.binaries_seen == 4);
    CHECK(stats.binaries_removed == 2);
    CHECK_FALSE(repo->blobs().size_of(gone));
    CHECK_FALSE(repo->blobs().size_of(young.sha256));
    CHECK(repo->blobs().size_of(shared));  // still used by shared2
    auto r = repo->read_binary("/content/dam/keep.txt");
    REQUIRE(r);
    CHECK(host::check_repository(*repo).problems.empty());
}

TEST_CASE("check reports index rows, binaries and parents that do not match", "[repository]") {
    TempDir dir("repo");
    auto repo = SqliteRepository::open(dir.path());
    auto s = repo->open_session();
    s->create_folders("/content/dam");
    s->create(asset(*repo, "/content/dam/a.txt", "A"));
    s->create(page("/content/p", "<a href=\"/content/dam/a.txt\">a</a>",
                   {{"r", Property::path("/content/dam/a.txt")}}));
    s->commit();
    REQUIRE(host::check_repository(*repo).problems.empty());
    {
        auto c = repo->lease();
        c->exec("DELETE FROM refs WHERE property = 'r'");
        c->exec(
            "INSERT INTO refs VALUES ((SELECT id FROM nodes WHERE path = '/content/p'), "
            "'x', '/content/bogus')");
        c->exec("INSERT INTO refs VALUES (9999, 'y', '/content/p')");
        c->exec("UPDATE nodes SET parent_id = 1 WHERE path = '/content/dam'");
    }
    fs::remove(repo->blobs().path_of(repo->get("/content/dam/a.txt")->binary->sha256));
    auto report = host::check_repository(*repo);
    std::set<std::string> kinds;
    for (const auto& p : report.problems) kinds.insert(host::to_string(p.kind));
    CHECK(kinds == std::set<std::string>{"index_missing", "index_extra", "index_orphan", "bad_node",
                                         "missing_binary"});
    CHECK(report.errors() == 5);
    CHECK_FALSE(report.ok());
}

TEST_CASE("a directory tree imports as folders and assets with MIME types from extensions",
          "[repository][import]") {
    TempDir dir("repo");
    fs::create_directories(dir / "src/images/icons");
    fs::create_directories(dir / "src/empty");
    std::ofstream(dir / "src/readme.txt") << "hello";
    std::ofstream(dir / "src/images/photo.JPG") << "not really a jpeg";
    std::ofstream(dir / "src/images/icons/x.svg") << "<svg/>";
    std::ofstream(dir / "src/images/noext") << "%PDF-1.4\n";
    fs::create_symlink(dir / "src/readme.txt", dir / "src/link.txt");
    auto repo = SqliteRepository::open(dir / "data");
    auto stats =
        host::import_directory(*repo, dir / "src", "/content/dam/import", {.batch_size = 2});
    CHECK(stats.assets == 4);
    CHECK(stats.folders == 3);
    CHECK(stats.skipped == 1);
    CHECK(repo->get("/content/dam/import/empty")->kind == NodeKind::folder);
    CHECK(repo->get("/content/dam/import/images/photo.JPG")->binary->mime_type == "image/jpeg");
    CHECK(repo->get("/content/dam/import/images/icons/x.svg")->binary->mime_type ==
          "image/svg+xml");
    CHECK(repo->get("/content/dam/import/images/noext")->binary->mime_type == "application/pdf");
    CHECK(repo->get("/content/dam/import/readme.txt")->binary->size == 5);
    // Again, over the top: existing assets get the new binary.
    std::ofstream(dir / "src/readme.txt") << "hello again";
    host::import_directory(*repo, dir / "src", "/content/dam/import");
    CHECK(repo->get("/content/dam/import/readme.txt")->binary->size == 11);
    CHECK(errors_of(*repo) == 0);
    fs::create_directories(dir / "bad/a\tb");
    require_error(Code::invalid_path, "control character",
                  [&] { host::import_directory(*repo, dir / "bad", "/content/dam/bad"); });
}

TEST_CASE("the generator is deterministic by seed and makes what it says", "[repository][gen]") {
    TempDir dir("repo");
    host::ContentGeneratorOptions o;
    o.assets = 250;
    o.pages = 40;
    o.references_per_page = 5;
    o.live_copies = 2;
    auto listing = [](const Repository& repo) {
        std::vector<std::string> out;
        repo.walk("/", {}, [&](const Node& n) {
            std::string line = n.path + "|" + n.text + "|" + (n.binary ? n.binary->sha256 : "");
            for (const auto& [k, p] : n.properties)
                line += "|" + k + std::to_string(p.values.size());
            out.push_back(line);
            return true;
        });
        return out;
    };
    auto a = SqliteRepository::open(dir / "a");
    auto b = SqliteRepository::open(dir / "b");
    auto stats = host::generate_content(*a, o);
    host::generate_content(*b, o);
    CHECK(listing(*a) == listing(*b));
    CHECK(stats.assets == 250);
    CHECK(stats.pages == 1 + 1 + 40);  // root, one section of 50, pages
    CHECK(stats.references == 200);
    CHECK(stats.live_copies == 2);
    CHECK(a->count("/content/gen/lc2", {}) == 42);
    CHECK(a->live_relationships("/content/gen/en").size() == 2);
    CHECK(a->get(host::generated_asset_path(o, 249))->properties.at("gen:index").values[0] ==
          Scalar(std::int64_t{249}));
    CHECK(errors_of(*a) == 0);
    o.seed = 2;
    auto c = SqliteRepository::open(dir / "c");
    host::generate_content(*c, o);
    CHECK(listing(*a) != listing(*c));
}

TEMPLATE_TEST_CASE("two sessions on one repository take turns batch by batch", "[repository]",
                   SqliteRepoBackend, PgRepoBackend) {
    WHARF_REPO_BACKEND(backend);
    auto repo = backend.open();
    {
        auto s = repo->open_session();
        s->create_folders("/t");
        s->commit();
    }
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t)
        threads.emplace_back([&, t] {
            auto s = repo->open_session({.batch_size = 50});
            for (int i = 0; i < 500; ++i)
                s->create(folder("/t/" + std::to_string(t) + "-" + std::to_string(i)));
            s->commit();
        });
    for (auto& t : threads) t.join();
    CHECK(repo->count("/t", {.include_root = false}) == 1000);
    CHECK(errors_of(*repo) == 0);
}
