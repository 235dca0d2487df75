// The rollout plugin (plugins/rollout) loaded through a real PluginManager
// with its configuration from a ConfigAdmin (the shipped rollout/standard.yaml
// and operations/rollout.yaml, plus configs a test adds), on a
// SqliteRepository in a temp dir: live copy creation and rollouts inline and
// as jobs, each action on its own, cancelled inheritance, reference rewrite,
// deletions, refusals, stop and resume.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "integration/rollout_test_support.hpp"
#include "jobs/job_engine.hpp"
#include "jobs/sqlite_job_store.hpp"
#include "repository/generator.hpp"
#include "support/operation_checks.hpp"
#include "support/repository_seed.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace wharf;
using wharf::host::SqliteRepository;
using wharf::test::check_refused;
using wharf::test::create_request;
using wharf::test::eventually;
using wharf::test::MemoryContext;
using wharf::test::mirror_differences;
using wharf::test::repository_errors;
using wharf::test::repository_fingerprint;
using wharf::test::rollout_request;
using wharf::test::RolloutPluginHost;
using wharf::test::TempDir;

namespace {

struct Fixture {
    TempDir dir{"wharf-rollout"};
    std::shared_ptr<SqliteRepository> repo = SqliteRepository::open(dir / "repo");
    std::unique_ptr<RolloutPluginHost> host;

    void load(const std::map<std::string, std::string>& configs = {},
              const std::string& operation_yaml = {}) {
        host = std::make_unique<RolloutPluginHost>(repo, dir / "host", configs, operation_yaml);
        REQUIRE(host->create());
        REQUIRE(host->rollout());
    }

    void folder(const std::string& path) { test::create_folder(*repo, path); }

    void page(const std::string& path, std::string text = {}, PropertyMap properties = {}) {
        test::create_page(*repo, path, std::move(text), std::move(properties));
    }

    void set(const std::string& path, PropertyMap properties) {
        auto s = repo->open_session();
        s->set_properties(path, properties);
        s->commit();
    }

    void text(const std::string& path, std::string text) {
        auto s = repo->open_session();
        s->set_text(path, std::move(text));
        s->commit();
    }

    void order(const std::string& path, std::int64_t order) {
        auto s = repo->open_session();
        s->set_order(path, order);
        s->commit();
    }

    void remove(const std::string& path) {
        auto s = repo->open_session();
        s->remove(path);
        s->commit();
    }

    void cancel(const std::string& path, InheritanceCancel c) {
        auto s = repo->open_session();
        s->set_inheritance_cancel(path, c);
        s->commit();
    }

    JobResult run(const std::shared_ptr<Operation>& op, const boost::property_tree::ptree& request,
                  MemoryContext* out = nullptr) {
        op->validate(request);
        MemoryContext local(request);
        auto& ctx = out ? *out : local;
        auto result = op->run(ctx);
        UNSCOPED_INFO(result.message);
        return result;
    }

    std::string title(const std::string& path) const {
        auto n = repo->get(path);
        if (!n) return "<missing>";
        auto it = n->properties.find("jcr:title");
        if (it == n->properties.end()) return "<none>";
        return std::get<std::string>(it->second.values.front());
    }

    // Children's names in order.
    std::vector<std::string> children(const std::string& path) const {
        std::vector<std::string> out;
        for (const auto& n : repo->children(path, std::nullopt, 1000).nodes)
            out.emplace_back(n.name());
        return out;
    }

    // A small site: /content/site/en (blueprint) with a, b, b/one, c; links
    // from a to b and from c into the dam.
    void site() {
        folder("/content/site");
        folder("/content/dam/img");
        page("/content/site/en", "", {{"jcr:title", Property::string("EN")}});
        page("/content/site/en/a", R"(<a href="/content/site/en/b.html#top">b</a>)",
             {{"jcr:title", Property::string("A")},
              {"related", Property::path("/content/site/en/b")}});
        page("/content/site/en/b", "", {{"jcr:title", Property::string("B")}});
        page("/content/site/en/b/one", "", {{"jcr:title", Property::string("B1")}});
        page("/content/site/en/c", R"(<img src="/content/dam/img/x.png">)",
             {{"jcr:title", Property::string("C")},
              {"jcr:created", Property::string("by-blueprint")}});
    }
};

Property title(const std::string& t) { return Property::string(t); }

std::size_t rows_with(const MemoryContext& ctx, std::size_t column, const std::string& value) {
    return static_cast<std::size_t>(std::count_if(
        ctx.rows().begin(), ctx.rows().end(),
        [&](const auto& row) { return row.size() > column && row[column] == value; }));
}

host::ContentGeneratorOptions generated(std::uint64_t pages) {
    host::ContentGeneratorOptions o;
    o.assets = 100;
    o.assets_per_folder = 50;
    o.folders_per_group = 2;
    o.pages = pages;
    o.pages_per_section = 50;
    o.references_per_page = 4;
    o.min_binary_bytes = 16;
    o.max_binary_bytes = 32;
    return o;
}

}  // namespace

TEST_CASE("live copies of a 1,000-page blueprint are created and a rollout brings blueprint "
          "edits, new pages, deletions and a new order to all 3",
          "[rollout]") {
    Fixture f;
    auto options = generated(1000);
    host::generate_content(*f.repo, options);
    f.load();
    const std::string bp = options.pages_root;  // /content/gen/en
    const std::vector<std::string> lcs = {"/content/gen/lc1", "/content/gen/lc2",
                                          "/content/gen/lc3"};
    WalkOptions pages;
    pages.assets = pages.folders = false;
    const auto blueprint_pages = f.repo->count(bp, pages);
    REQUIRE(blueprint_pages == 1021);  // the root, 20 sections, 1,000 leaves

    for (const auto& lc : lcs) {
        auto request = create_request(bp, lc);
        CHECK(f.host->create()->count(request) == blueprint_pages);
        MemoryContext ctx(request);
        REQUIRE(f.run(f.host->create(), request, &ctx).outcome == JobResult::Outcome::succeeded);
        CHECK(ctx.done() == ctx.total());
        CHECK(rows_with(ctx, 3, "created") == blueprint_pages);
        auto rel = f.repo->live_relationship_of(lc);
        REQUIRE(rel);
        CHECK(rel->blueprint == bp);
        CHECK(rel->deep);
        CHECK(rel->rollout_configs == std::vector<std::string>{"standard"});
        CHECK(mirror_differences(*f.repo, bp, lc).empty());
    }
    // No live page links into the blueprint: referencesUpdate pointed them home.
    std::uint64_t into_blueprint = 0;
    f.repo->referrers_under(bp, false, [&](const Reference& r) {
        if (r.from_path.rfind("/content/gen/lc", 0) == 0) ++into_blueprint;
        return true;
    });
    CHECK(into_blueprint == 0);

    // Edit the blueprint: titles, a text, a new page, a deleted section, a new order.
    f.set(bp + "/s000/page-000001", {{"jcr:title", title("edited")}});
    f.set(bp + "/s001/page-000060", {{"extra", Property::long_(7)}});
    f.text(bp + "/s002/page-000100", "<a href=\"" + bp + "/s003/page-000150.html\">new</a>");
    f.page(bp + "/s000/page-new", "", {{"jcr:title", title("new")}});
    f.remove(bp + "/s019");
    f.order(bp + "/s001", -5);
    const auto now_pages = f.repo->count(bp, pages);

    auto request = rollout_request(bp);
    CHECK(f.host->rollout()->count(request) == now_pages * 3);
    CHECK(f.host->rollout()->describe(request, 2913) ==
          "Roll out '/content/gen/en' to all its live copies (2,913 pages x live copies)");
    CHECK(now_pages == 971);
    MemoryContext ctx(request);
    REQUIRE(f.run(f.host->rollout(), request, &ctx).outcome == JobResult::Outcome::succeeded);
    for (const auto& lc : lcs) {
        INFO(lc);
        CHECK(mirror_differences(*f.repo, bp, lc).empty());
        CHECK(f.title(lc + "/s000/page-000001") == "edited");
        CHECK_FALSE(f.repo->get(lc + "/s019"));
        CHECK(f.repo->get(lc + "/s002/page-000100")->text ==
              "<a href=\"" + lc + "/s003/page-000150.html\">new</a>");
        CHECK(f.children(lc).front() == "s001");
    }
    CHECK(rows_with(ctx, 3, "created") == 3);
    CHECK(rows_with(ctx, 3, "deleted") == 3);  // s19 with its pages, once per live copy
    CHECK(rows_with(ctx, 3, "updated") == 3 * 4);
    CHECK(rows_with(ctx, 3, "unchanged") == 3 * (now_pages - 5));
    CHECK(ctx.rows().front() == std::vector<std::string>{"blueprint page", "live page",
                                                         "live copy", "outcome", "message"});
    CHECK(ctx.done() == ctx.total());
    CHECK(repository_errors(*f.repo) == 0);

    // A second rollout has nothing to do.
    MemoryContext again(request);
    REQUIRE(f.run(f.host->rollout(), request, &again).outcome == JobResult::Outcome::succeeded);
    CHECK(rows_with(again, 3, "unchanged") == 3 * now_pages);
}

TEST_CASE("each rollout action does its own part and nothing else", "[rollout]") {
    const std::map<std::string, std::string> configs = {
        {"copy", "actions: [contentCopy]\n"},
        {"delete", "actions: [contentDelete]\n"},
        {"update", "actions: [contentUpdate]\n"},
        {"references", "actions: [referencesUpdate]\n"},
        {"order", "actions: [orderChildren]\n"},
    };
    const std::string bp = "/content/site/en", lc = "/content/site/fr";
    for (const auto& [name, yaml] : configs) {
        SECTION(name) {
            Fixture f;
            f.site();
            f.load(configs);
            REQUIRE(f.run(f.host->create(), create_request(bp, lc, {name})).outcome ==
                    JobResult::Outcome::succeeded);
            // Blueprint edits every action could act on.
            f.set(bp + "/a", {{"jcr:title", title("A2")}});
            f.page(bp + "/d", "", {{"jcr:title", title("D")}});
            f.remove(bp + "/b/one");
            f.order(bp + "/c", -1);
            // A live page still linking into the blueprint.
            f.text(lc + "/b", R"(<a href="/content/site/en/a.html">a</a>)");
            f.set(lc + "/b", {{"see", Property::path("/content/site/en/c")}});

            MemoryContext ctx(rollout_request(bp));
            REQUIRE(f.run(f.host->rollout(), rollout_request(bp), &ctx).outcome ==
                    JobResult::Outcome::succeeded);
            const bool copy = name == "copy", del = name == "delete", update = name == "update",
                       refs = name == "references", order = name == "order";
            CHECK(f.repo->get(lc + "/d").has_value() == copy);
            CHECK(f.repo->get(lc + "/b/one").has_value() == !del);
            CHECK(f.title(lc + "/a") == (update ? "A2" : "A"));
            auto b = f.repo->get(lc + "/b");
            REQUIRE(b);
            if (update) {
                // The blueprint's own text and properties, links not rewritten.
                CHECK(b->text.empty());
                CHECK_FALSE(b->properties.count("see"));
            } else if (refs) {
                CHECK(b->text == R"(<a href="/content/site/fr/a.html">a</a>)");
                CHECK(b->properties.at("see") == Property::path("/content/site/fr/c"));
            } else {
                CHECK(b->text == R"(<a href="/content/site/en/a.html">a</a>)");
                CHECK(b->properties.at("see") == Property::path("/content/site/en/c"));
            }
            auto kids = f.children(lc);
            CHECK((kids.front() == "c") == order);
            CHECK(repository_errors(*f.repo) == 0);
        }
    }
}

TEST_CASE("creating a live copy rewrites references into the blueprint to live copy paths and "
          "leaves other references and excluded properties alone",
          "[rollout]") {
    Fixture f;
    f.site();
    f.page("/content/site/en/links",
           R"(<a href='/content/site/en.html'>home</a> <a HREF = "/content/site/en/b.html?x=1#top">b</a> )"
           R"(<img src="/content/dam/img/x.png"> <a href="/content/site/english/z.html">other</a>)",
           {{"many", Property::multi(PropertyType::path,
                                     {Scalar(PathRef{"/content/site/en/a"}),
                                      Scalar(PathRef{"/content/dam/img/x.png"}),
                                      Scalar(PathRef{"/content/site/en"})})}});
    f.load();
    REQUIRE(f.run(f.host->create(), create_request("/content/site/en", "/content/site/fr"))
                .outcome == JobResult::Outcome::succeeded);
    auto live = f.repo->get("/content/site/fr/links");
    REQUIRE(live);
    CHECK(live->text ==
          R"(<a href='/content/site/fr.html'>home</a> <a HREF = "/content/site/fr/b.html?x=1#top">b</a> )"
          R"(<img src="/content/dam/img/x.png"> <a href="/content/site/english/z.html">other</a>)");
    CHECK(live->properties.at("many") ==
          Property::multi(PropertyType::path, {Scalar(PathRef{"/content/site/fr/a"}),
                                               Scalar(PathRef{"/content/dam/img/x.png"}),
                                               Scalar(PathRef{"/content/site/fr"})}));
    CHECK(f.repo->get("/content/site/fr/a")->properties.at("related") ==
          Property::path("/content/site/fr/b"));
    CHECK(f.repo->get("/content/site/fr/a")->text ==
          R"(<a href="/content/site/fr/b.html#top">b</a>)");
    // jcr:created* is excluded by the standard config: not copied.
    CHECK_FALSE(f.repo->get("/content/site/fr/c")->properties.count("jcr:created"));
    // The reference index sees the live copy's links.
    std::uint64_t refs = 0;
    f.repo->referrers("/content/site/fr/b", [&](const Reference& r) {
        refs += r.from_path == "/content/site/fr/a" || r.from_path == "/content/site/fr/links";
        return true;
    });
    CHECK(refs == 3);  // a: text and property; links: text
    CHECK(repository_errors(*f.repo) == 0);
}

TEST_CASE("cancelled inheritance keeps a live page, its subpages or single properties as they "
          "are, and re-enabling it syncs only at the next rollout",
          "[rollout]") {
    Fixture f;
    f.site();
    f.page("/content/site/en/c/deep");
    f.load();
    const std::string bp = "/content/site/en", lc = "/content/site/fr";
    REQUIRE(f.run(f.host->create(), create_request(bp, lc)).outcome ==
            JobResult::Outcome::succeeded);
    f.cancel(lc + "/a", {true, false, {}});                 // the page only
    f.cancel(lc + "/b", {true, true, {}});                  // and its subpages
    f.cancel(lc + "/c", {false, false, {"jcr:title", "wharf:text"}});  // two "properties"
    f.set(lc + "/a", {{"jcr:title", title("local A")}});
    f.set(lc + "/c", {{"jcr:title", title("local C")}});
    f.text(lc + "/c", "local text");
    for (auto p : {"/a", "/b", "/b/one", "/c"})
        f.set(bp + p, {{"jcr:title", title(std::string("new") + p)}, {"x", Property::long_(1)}});
    f.text(bp + "/c", "blueprint text");
    f.remove(bp + "/b/one");  // its live page is under a cancelled page: kept
    f.page(bp + "/b/two");    // nor is a new page created under it

    MemoryContext ctx(rollout_request(bp));
    REQUIRE(f.run(f.host->rollout(), rollout_request(bp), &ctx).outcome ==
            JobResult::Outcome::succeeded);
    CHECK(f.title(lc + "/a") == "local A");
    CHECK_FALSE(f.repo->get(lc + "/a")->properties.count("x"));
    CHECK(f.title(lc + "/b") == "B");
    CHECK(f.title(lc + "/b/one") == "B1");
    CHECK_FALSE(f.repo->get(lc + "/b/two"));
    auto c = f.repo->get(lc + "/c");
    CHECK(f.title(lc + "/c") == "local C");    // cancelled property kept
    CHECK(c->properties.at("x") == Property::long_(1));  // the others follow
    CHECK(c->text == "local text");
    CHECK(f.repo->get(lc + "/c/deep"));
    CHECK(rows_with(ctx, 4, "inheritance cancelled for the page") == 1);
    CHECK(rows_with(ctx, 4, "inheritance cancelled for the page and the pages under it") == 1);
    CHECK(rows_with(ctx, 3, "skipped") == 4);  // a, b, b/two, and b/one kept though gone

    // Re-enabling does not sync by itself ...
    f.cancel(lc + "/a", {});
    CHECK(f.title(lc + "/a") == "local A");
    // ... the next rollout does.
    REQUIRE(f.run(f.host->rollout(), rollout_request(bp)).outcome ==
            JobResult::Outcome::succeeded);
    CHECK(f.title(lc + "/a") == "new/a");
    CHECK(f.title(lc + "/b") == "B");
    CHECK(repository_errors(*f.repo) == 0);
}

TEST_CASE("a page deleted from the blueprint is removed from every live copy it was rolled out "
          "to, and only from those chosen",
          "[rollout]") {
    Fixture f;
    f.site();
    f.load();
    const std::string bp = "/content/site/en";
    for (auto lc : {"/content/site/fr", "/content/site/de", "/content/site/it"})
        REQUIRE(f.run(f.host->create(), create_request(bp, lc)).outcome ==
                JobResult::Outcome::succeeded);
    f.remove(bp + "/b");
    MemoryContext ctx(rollout_request(bp, {"/content/site/fr", "/content/site/de"}));
    REQUIRE(f.run(f.host->rollout(), rollout_request(bp, {"/content/site/fr", "/content/site/de"}),
                  &ctx)
                .outcome == JobResult::Outcome::succeeded);
    CHECK_FALSE(f.repo->get("/content/site/fr/b"));
    CHECK_FALSE(f.repo->get("/content/site/de/b/one"));
    CHECK(f.repo->get("/content/site/it/b/one"));
    REQUIRE(rows_with(ctx, 3, "deleted") == 2);
    auto row = *std::find_if(ctx.rows().begin(), ctx.rows().end(),
                             [](const auto& r) { return r[3] == "deleted"; });
    CHECK(row[0] == "/content/site/en/b");
    CHECK(row[4] == "blueprint page gone; 2 pages removed");
    CHECK(repository_errors(*f.repo) == 0);
}

TEST_CASE("a shallow live copy holds the blueprint page only and its rollout touches that page",
          "[rollout]") {
    Fixture f;
    f.site();
    f.load();
    auto request = create_request("/content/site/en", "/content/site/fr", {}, false);
    CHECK(f.host->create()->count(request) == 1);
    REQUIRE(f.run(f.host->create(), request).outcome == JobResult::Outcome::succeeded);
    CHECK(f.repo->get("/content/site/fr"));
    CHECK(f.children("/content/site/fr").empty());
    CHECK_FALSE(f.repo->live_relationship_of("/content/site/fr")->deep);
    f.set("/content/site/en", {{"jcr:title", title("EN2")}});
    REQUIRE(f.run(f.host->rollout(), rollout_request("/content/site/en")).outcome ==
            JobResult::Outcome::succeeded);
    CHECK(f.title("/content/site/fr") == "EN2");
    CHECK(f.children("/content/site/fr").empty());
}

TEST_CASE("every bad live copy or rollout request is refused naming the field and changes "
          "nothing",
          "[rollout]") {
    Fixture f;
    f.site();
    f.page("/content/site/en/a/sub");
    f.folder("/content/other");
    f.page("/content/other/x");
    f.load();
    REQUIRE(f.run(f.host->create(), create_request("/content/site/en", "/content/site/fr"))
                .outcome == JobResult::Outcome::succeeded);
    {
        // Set up behind the plugin's back, as an older install might have:
        // /content/other/x follows fr/b with a config that is gone, and
        // en/c/loop follows fr/a, which follows en (a cycle).
        auto s = f.repo->open_session();
        s->set_live_relationship({"/content/site/fr/b", "/content/other/x", {"gone"}, true, {}});
        s->set_live_relationship({"/content/site/fr/a", "/content/site/en/c/loop", {"standard"},
                                  true, {}});
        s->commit();
    }
    const auto before = repository_fingerprint(*f.repo);

    struct Case {
        const char* what;
        bool create;
        boost::property_tree::ptree request;
        std::string field, value, message;
    };
    auto with = [](boost::property_tree::ptree r, const std::string& key, const std::string& v) {
        r.put(key, v);
        return r;
    };
    std::vector<Case> cases = {
        {"blueprint not found", true, create_request("/content/site/nope", "/content/site/es"),
         "blueprint", "/content/site/nope", "'/content/site/nope' does not exist"},
        {"rollout of a missing blueprint", false, rollout_request("/content/site/nope"),
         "blueprint", "/content/site/nope", "does not exist"},
        {"blueprint is a folder", true, create_request("/content/site", "/content/es"),
         "blueprint", "/content/site", "is a folder, not a page"},
        {"live copy of itself", true, create_request("/content/site/en", "/content/site/en"),
         "target", "/content/site/en", "cannot be a live copy of itself"},
        {"live copy inside the blueprint", true,
         create_request("/content/site/en", "/content/site/en/a/copy"), "target",
         "/content/site/en/a/copy", "lies inside the blueprint"},
        {"target exists", true, create_request("/content/site/en", "/content/site/fr"), "target",
         "/content/site/fr", "exists"},
        {"target parent missing", true, create_request("/content/site/en", "/content/nope/es"),
         "target", "/content/nope/es", "'/content/nope' does not exist"},
        {"cycle", true, create_request("/content/site/fr/a", "/content/site/en/b/loop"),
         "target", "/content/site/en/b/loop", "would make a cycle"},
        {"rollout cycle", false, rollout_request("/content/site/fr/a"), "live_copies",
         "/content/site/en/c/loop", "would make a cycle"},
        {"unknown rollout config", true,
         create_request("/content/site/en", "/content/site/es", {"standard", "nope"}),
         "rollout_configs[1]", "nope", "'nope' is not a rollout config"},
        {"rollout config twice", true,
         create_request("/content/site/en", "/content/site/es", {"standard", "standard"}),
         "rollout_configs[1]", "standard", "listed twice"},
        {"not a blueprint", false, rollout_request("/content/other/x"), "blueprint",
         "/content/other/x", "has no live copies"},
        {"rollout to itself", false, rollout_request("/content/site/en", {"/content/site/en"}),
         "live_copies[0]", "/content/site/en", "out to itself"},
        {"not its live copy", false,
         rollout_request("/content/site/en", {"/content/site/fr", "/content/other"}),
         "live_copies[1]", "/content/other", "is not a live copy of '/content/site/en'"},
        {"live copy with an unknown rollout config", false,
         rollout_request("/content/site/fr/b"), "live_copies", "/content/other/x",
         "rollout config 'gone', which is not in force"},
        {"bad path", true, create_request("/content/site/en", "/content/site/../x"), "target",
         "/content/site/../x", "segment '..' at byte"},
        {"bad deep", false, with(rollout_request("/content/site/en"), "deep", "maybe"), "deep",
         "maybe", "not true or false"},
        {"unknown field", false, with(rollout_request("/content/site/en"), "livecopies", "x"),
         "livecopies", "x", "is not a field of rollout"},
        {"excluded path outside the blueprint", true,
         with(create_request("/content/site/en", "/content/site/es"), "excluded_paths",
              "/content/other"),
         "excluded_paths[0]", "/content/other", "not a page below the blueprint"},
    };
    for (const auto& c : cases) {
        SECTION(c.what) {
            auto op = c.create ? f.host->create() : f.host->rollout();
            check_refused(*op, c.request, c.field, c.value, c.message);
            // Run as a job anyway, it changed nothing either.
            CHECK(repository_fingerprint(*f.repo) == before);
        }
    }
}
