// The metadata plugin (plugins/metadata) in a whole host: export and import
// round trip between two repositories, Adobe's sample header layout, bad rows
// in the report while good rows apply, malformed headers refused with nothing
// changed, sync below the threshold and a job above it with a downloadable
// result, the CSV upload, and a SIGKILLed import that resumes. The SIGKILL
// child is this test binary running the hidden case "[.metadata_crash_child]".
#include <catch2/catch.hpp>
#include <httplib.h>

#include <csignal>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <regex>

#include "fixtures/metadata/metadata_host.hpp"
#include "support/child_process.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace wharf;
using wharf::test::eventually;
using wharf::test::make_request;
using wharf::test::metadata_of;
using wharf::test::MetadataHost;
using wharf::test::read_text;
using wharf::test::ResultContext;

namespace {

Date at(std::int64_t millis) { return Date(std::chrono::milliseconds(millis)); }

// Properties that exercise every type and every quoting rule.
PropertyMap tricky(int i) {
    PropertyMap p;
    p["dc:title"] = Property::string("Ünïcødé ✓ 日本 #" + std::to_string(i));
    p["dc:description"] = Property::string("say \"hi\", then; line1\nline2\r\nline3");
    p["formula"] = Property::string(i % 2 ? "=SUM(A1:A9)" : "'=already quoted");
    p["minus"] = Property::string("-5 apples");
    p["spaces"] = Property::string("  leading and trailing  ");
    p["tabbed"] = Property::string("tab\tinside");
    p["dc:subject"] = Property::multi(PropertyType::string, {std::string("x|y"),
                                                             std::string("back\\slash"),
                                                             std::string("plain, with comma")});
    p["xmp:Rating"] = Property::long_(-9000000000LL + i);
    p["positions"] = Property::multi(PropertyType::long_, {std::int64_t{1}, std::int64_t{-2}});
    p["tiff:XResolution"] = Property::double_(0.1 + i);
    p["ratios"] = Property::multi(PropertyType::double_, {1e300, -2.5e-300, 3.0});
    p["dam:isPublished"] = Property::boolean(i % 3 == 0);
    p["created"] = Property::date(at(1700000000123LL + i));
    p["shots"] = Property::multi(PropertyType::date, {at(0), at(-86400000LL * 400 + 7)});
    p["related"] = Property::path("/content/dam/src/a" + std::to_string(i));
    return p;
}

std::string csv_path_in(MetadataHost& host, const std::string& content,
                        const std::string& path = "/var/import/data.csv") {
    host.put_file(path, content);
    return path;
}

}  // namespace

TEST_CASE("an exported folder imports into a second repository with equal metadata",
          "[metadata]") {
    MetadataHost source;
    REQUIRE(source.active());
    for (int i = 0; i < 12; ++i)
        source.asset("/content/dam/src/" + std::string(i < 6 ? "" : "sub/") + "a" +
                         std::to_string(i),
                     tricky(i));
    source.asset("/content/dam/src/bare");  // no metadata: an empty row
    ResultContext exported(make_request({{"folder", "/content/dam/src"}}));
    auto result = source.operation("metadata-export")->run(exported);
    INFO(result.message);
    REQUIRE(result.outcome == JobResult::Outcome::succeeded);
    CHECK(exported.result_name == "metadata-src.csv");
    CHECK(exported.result_type == "text/csv; charset=utf-8");
    auto csv = read_text(exported.result_file);
    CHECK(csv.rfind("assetPath,created{{Date}},dam:isPublished{{Boolean}},dc:description{{String}}",
                    0) == 0);
    CHECK(csv.find("dc:subject{{String: multi}}") != std::string::npos);
    CHECK(csv.find("'=SUM(A1:A9)") != std::string::npos);   // guarded formula
    CHECK(csv.find("x\\|y|back\\\\slash") != std::string::npos);  // escaped multi-values
    CHECK(csv.find("2023-11-14T22:13:20.123Z") != std::string::npos);
    CHECK(exported.total() == 13);

    MetadataHost target;
    for (const auto& [path, properties] : metadata_of(*source.repository, "/content/dam/src"))
        target.asset(path);
    auto file = csv_path_in(target, csv);
    ResultContext imported(make_request({{"csv", file}}));
    auto import = target.operation("metadata-import")->run(imported);
    INFO(import.message);
    REQUIRE(import.outcome == JobResult::Outcome::succeeded);
    CHECK(import.message == "applied 13 rows; 0 rows refused");
    REQUIRE(imported.rows().size() == 1);  // the report's header only
    CHECK(metadata_of(*target.repository, "/content/dam/src") ==
          metadata_of(*source.repository, "/content/dam/src"));
}

TEST_CASE("an export with a semicolon separator, chosen properties and no subfolders",
          "[metadata]") {
    MetadataHost host;
    host.asset("/content/dam/f/a", tricky(1));
    host.asset("/content/dam/f/sub/b", tricky(2));
    boost::property_tree::ptree request = make_request(
        {{"folder", "/content/dam/f"}, {"subfolders", "false"}, {"separator", ";"},
         {"formula_protection", "false"}});
    boost::property_tree::ptree names;
    for (const char* n : {"formula", "xmp:Rating", "missing"})
        names.push_back({"", boost::property_tree::ptree(n)});
    request.add_child("properties", names);
    ResultContext ctx(request);
    REQUIRE(host.operation("metadata-export")->run(ctx).outcome == JobResult::Outcome::succeeded);
    CHECK(read_text(ctx.result_file) ==
          "assetPath;formula{{String}};xmp:Rating{{Long}};missing{{String}}\r\n"
          "/content/dam/f/a;=SUM(A1:A9);-8999999999;\r\n");
}

TEST_CASE("a CSV in Adobe's sample layout imports with its types, multi-values and date formats",
          "[metadata]") {
    MetadataHost host;
    const std::string a = "/content/dam/we-retail/en/activities/biking/cycling_1.jpg";
    const std::string b = "/content/dam/we-retail/en/activities/biking/cycling_2.jpg";
    host.asset(a, {{"keep", Property::string("untouched")}});
    host.asset(b);
    auto file = csv_path_in(
        host, read_text(fs::path(WHARF_SOURCE_DIR) / "tests/fixtures/metadata/adobe-sample-layout.csv"));
    ResultContext ctx(make_request({{"csv", file}}));
    auto result = host.operation("metadata-import")->run(ctx);
    INFO(result.message);
    REQUIRE(result.outcome == JobResult::Outcome::succeeded);
    CHECK(result.message == "applied 2 rows; 0 rows refused");
    auto first = host.repository->get(a)->properties;
    CHECK(first.at("dc:title") == Property::string("Cycling, downhill"));
    CHECK(first.at("dc:subject") ==
          Property::multi(PropertyType::string,
                          {std::string("bike"), std::string("outdoor"), std::string("summer")}));
    CHECK(first.at("photoshop:DateCreated") == Property::date(at(1496312130000LL)));
    CHECK(first.at("commerce:positions") ==
          Property::multi(PropertyType::long_, {std::int64_t{1}, std::int64_t{2}, std::int64_t{3}}));
    CHECK(first.at("xmp:Rating") == Property::long_(5));
    CHECK(first.at("tiff:XResolution") == Property::double_(72.5));
    CHECK(first.at("dam:isPublished") == Property::boolean(true));
    CHECK(first.at("dc:description") == Property::string("A rider on a trail"));
    CHECK(first.at("prism:publicationDate") == Property::date(at(1483142400000LL)));
    CHECK(first.at("keep") == Property::string("untouched"));
    auto second = host.repository->get(b)->properties;
    CHECK(second.at("photoshop:DateCreated") == Property::date(at(1496383200000LL)));
    CHECK(second.at("commerce:positions") ==
          Property::multi(PropertyType::double_, {4.0, 5.5}));
    CHECK(second.at("dc:description") == Property::string("Two riders, \"fast\""));
    CHECK(second.at("dam:isPublished") == Property::boolean(false));
}

TEST_CASE("bad rows are reported with row, asset, column, value and reason; good rows apply",
          "[metadata]") {
    MetadataHost host;
    host.asset("/content/dam/b/one", {{"n", Property::long_(1)}});
    host.asset("/content/dam/b/two", {{"n", Property::long_(2)}});
    host.asset("/content/dam/b/three", {{"n", Property::long_(3)}, {"t", Property::string("x")}});
    host.folder("/content/dam/b/folder");
    std::string csv =
        "assetPath,n{{Long}},t{{String}},d{{Date}}\n"
        "/content/dam/b/one,10,first,\n"                        // row 2: good
        "/content/dam/b/missing,11,,\n"                         // row 3: unknown asset
        "/content/dam/b/two,twelve,,2020-13-01T00:00:00Z\n"     // row 4: two bad cells
        "/content/dam/b/two,12,too,many,cells\n"                // row 5: wrong count
        "/content/dam/b/two,12,\xff\xfe,\n"                     // row 6: bad encoding
        "/content/dam/b/folder,1,,\n"                           // row 7: not an asset
        "/content/dam/b/three,30,{{clear}},2021-02-03T04:05:06.789+01:00\n";  // row 8: good
    auto file = csv_path_in(host, csv);
    ResultContext ctx(make_request({{"csv", file}, {"batch_size", "2"}}));
    auto result = host.operation("metadata-import")->run(ctx);
    REQUIRE(result.outcome == JobResult::Outcome::succeeded);
    CHECK(result.message == "applied 2 rows; 5 rows refused (see the report)");
    std::vector<std::vector<std::string>> expected = {
        {"row", "assetPath", "column", "value", "reason"},
        {"3", "/content/dam/b/missing", "assetPath", "/content/dam/b/missing",
         "no asset at this path"},
        {"4", "/content/dam/b/two", "n", "twelve", "'twelve' is not a whole number (Long)"},
        {"4", "/content/dam/b/two", "d", "2020-13-01T00:00:00Z",
         "'2020-13-01T00:00:00Z' is not a date in the format yyyy-MM-dd'T'HH:mm:ss.SSSXXX"},
        {"5", "/content/dam/b/two", "", "", "the row has 5 cells, the header 4"},
        {"6", "/content/dam/b/two", "t", "\xff\xfe", "not valid UTF-8"},
        {"7", "/content/dam/b/folder", "assetPath", "/content/dam/b/folder", "not an asset"},
    };
    CHECK(ctx.rows() == expected);
    CHECK(host.repository->get("/content/dam/b/one")->properties ==
          PropertyMap{{"n", Property::long_(10)}, {"t", Property::string("first")}});
    CHECK(host.repository->get("/content/dam/b/two")->properties ==
          PropertyMap{{"n", Property::long_(2)}});
    CHECK(host.repository->get("/content/dam/b/three")->properties ==
          PropertyMap{{"n", Property::long_(30)}, {"d", Property::date(at(1612321506789LL))}});
}

TEST_CASE("a malformed header refuses the import naming the column and changes nothing",
          "[metadata]") {
    MetadataHost host;
    host.asset("/content/dam/h/a", {{"n", Property::long_(1)}});
    auto before = metadata_of(*host.repository, "/content/dam");
    auto op = host.operation("metadata-import");
    struct Case {
        std::string csv, message;
    };
    std::vector<Case> cases = {
        {"assetPath,n{{Long}},t{{Strng}}\n/content/dam/h/a,5,x\n",
         "header column 3 't{{Strng}}': unknown type 'Strng'"},
        {"assetPath,n{{Long}\n/content/dam/h/a,5\n",
         "header column 2 'n{{Long}': the type must end with '}}'"},
        {"path,n{{Long}}\n/content/dam/h/a,5\n", "the header has no asset path column 'assetPath'"},
        {"assetPath,n{{Long}},n{{String}}\n/content/dam/h/a,5,6\n",
         "header column 3 'n{{String}}': property 'n' appears twice"},
        {"assetPath,{{Long}}\n/content/dam/h/a,5\n",
         "header column 2 '{{Long}}': the property name is empty"},
        {"assetPath,n{{Boolean: DateFormat: yyyy}}\n/content/dam/h/a,true\n",
         "DateFormat is only for Date columns"},
        {"assetPath,n{{Long}}\n/content/dam/h/a,\"5\n", "row 2, column 2: a quoted field is not closed"},
        {"assetPath,n{{Long}}\n/content/dam/h/a,5\"x\n", "row 2, column 2: malformed quoting"},
        {"", "is empty: no header row"},
    };
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const auto& c = cases[i];
        INFO(c.csv);
        auto file = csv_path_in(host, c.csv, "/var/import/bad" + std::to_string(i) + ".csv");
        auto request = make_request({{"csv", file}});
        try {
            op->validate(request);
            FAIL("accepted");
        } catch (const OperationRefused& e) {
            CHECK(e.field() == "csv");
            CHECK_THAT(e.what(), Catch::Contains(c.message));
        }
        ResultContext ctx(request);
        auto result = op->run(ctx);
        CHECK(result.outcome == JobResult::Outcome::error);
        CHECK_THAT(result.message, Catch::Contains(c.message));
        auto sub = host.submission->submit("metadata-import", request, "otto");
        CHECK(sub.mode == host::SubmissionResult::Mode::refused);
        CHECK(host.repository->get("/content/dam/h/a")->properties ==
              PropertyMap{{"n", Property::long_(1)}});
    }
    // Only the refused files were added; no asset's metadata changed.
    auto after = metadata_of(*host.repository, "/content/dam");
    CHECK(after == before);
}

TEST_CASE("bad export and import requests are refused naming the field", "[metadata]") {
    MetadataHost host;
    host.asset("/content/dam/r/a");
    auto refused = [&](const char* op, const boost::property_tree::ptree& r) -> std::string {
        try {
            host.operation(op)->validate(r);
        } catch (const OperationRefused& e) {
            return e.field() + ": " + e.what();
        }
        return "accepted";
    };
    CHECK(refused("metadata-export", make_request({{"folder", "/content/dam/none"}})) ==
          "folder: no folder at '/content/dam/none'");
    CHECK(refused("metadata-export", make_request({{"folder", "/content/dam/r/a"}})) ==
          "folder: '/content/dam/r/a' is not a folder");
    CHECK(refused("metadata-export", make_request({{"folder", "/content/dam/r"},
                                                   {"separator", ",,"}})) ==
          "separator: 'separator' must be one ASCII character other than a quote, a backslash "
          "or a line break (\\t for a tab), not ',,'");
    CHECK(refused("metadata-export", make_request({{"folder", "/content/dam/r"}, {"x", "1"}})) ==
          "x: unknown field 'x' (known: folder, subfolders, properties, separator, "
          "multi_delimiter, formula_protection)");
    CHECK(refused("metadata-import", make_request({{"csv", "/content/dam/r/none.csv"}})) ==
          "csv: no CSV file (an asset) at '/content/dam/r/none.csv'");
    CHECK(refused("metadata-import", make_request({{"csv", "/content/dam/r/a"},
                                                   {"batch_size", "101"}})) ==
          "batch_size: 'batch_size' must be a whole number from 1 to 100, not '101'");
}

TEST_CASE("export and import run at once up to the threshold and as jobs above it, with the "
          "CSV downloadable and removed with the job",
          "[metadata]") {
    MetadataHost host(3);
    for (int i = 0; i < 3; ++i)
        host.asset("/content/dam/t/a" + std::to_string(i), {{"n", Property::long_(i)}});
    host.start_http();
    auto op = host.client(wharf::test::kMetaOperator);
    auto viewer = host.client(wharf::test::kMetaViewer);

    // At the threshold: the CSV comes back in the answer.
    auto sync = op->post_json("/api/operations/metadata-export", R"({"folder":"/content/dam/t"})");
    INFO(sync.body);
    REQUIRE(sync.status == 200);
    auto body = nlohmann::json::parse(sync.body);
    CHECK(body["mode"] == "sync");
    CHECK(body["result"]["file_name"] == "metadata-t.csv");
    CHECK(body["result"]["content"] ==
          "assetPath,n{{Long}}\r\n/content/dam/t/a0,0\r\n/content/dam/t/a1,1\r\n"
          "/content/dam/t/a2,2\r\n");
    auto results = host.dir / "data/plugins/metadata/results";
    CHECK(fs::is_empty(results));  // the inline run left nothing behind

    // One more: a job whose result is GET /api/jobs/{id}/result.
    host.asset("/content/dam/t/a3", {{"n", Property::long_(3)}});
    auto queued = op->post_json("/api/operations/metadata-export", R"({"folder":"/content/dam/t"})");
    REQUIRE(queued.status == 202);
    auto id = nlohmann::json::parse(queued.body)["id"].get<JobId>();
    auto view = host.wait_final(id);
    REQUIRE(view);
    INFO(view->job.result_message);
    REQUIRE(view->job.state == JobState::succeeded);
    auto download = viewer->get("/api/jobs/" + std::to_string(id) + "/result");
    REQUIRE(download.status == 200);
    CHECK(download.header("Content-Disposition") == "attachment; filename=\"metadata-t.csv\"");
    CHECK(download.header("Content-Type") == "text/csv; charset=utf-8");
    CHECK(download.body.find("/content/dam/t/a3,3\r\n") != std::string::npos);
    CHECK(fs::exists(results / std::to_string(id) / "metadata-t.csv"));

    // Deleting the job deletes its result.
    CHECK(op->del("/api/jobs/" + std::to_string(id)).status == 204);
    CHECK_FALSE(fs::exists(results / std::to_string(id)));
    CHECK(viewer->get("/api/jobs/" + std::to_string(id) + "/result").status == 404);

    // The import of a CSV uploaded as the body, fields in the query string.
    auto upload = op->request("POST", "/api/operations/metadata-import?batch_size=2",
                              "assetPath,n{{Long}}\n/content/dam/t/a0,100\n", "text/csv");
    INFO(upload.body);
    REQUIRE(upload.status == 200);
    CHECK(nlohmann::json::parse(upload.body)["message"] == "applied 1 rows; 0 rows refused");
    CHECK(host.repository->get("/content/dam/t/a0")->properties.at("n") == Property::long_(100));
    CHECK(metadata_of(*host.repository, "/var/uploads").empty());  // removed once imported
    // A refused upload leaves nothing behind either.
    auto bad = op->request("POST", "/api/operations/metadata-import",
                           "assetPath,n{{Lng}}\n/content/dam/t/a0,7\n", "text/csv");
    CHECK(bad.status == 400);
    CHECK(nlohmann::json::parse(bad.body)["error"]["field"] == "csv");
    CHECK(metadata_of(*host.repository, "/var/uploads").empty());
    CHECK(host.repository->get("/content/dam/t/a0")->properties.at("n") == Property::long_(100));
}

TEST_CASE("a CSV upload larger than the JSON body limit is streamed and imports; one past "
          "max_upload_bytes gets 413 and leaves no file and no change",
          "[metadata]") {
    MetadataHost host;
    const std::string big(110 * 1024, 'x');
    std::string csv = "assetPath,dc:description{{String}},n{{Long}}\r\n";
    for (int i = 0; i < 30; ++i) {
        host.asset("/content/dam/u/a" + std::to_string(i), {{"n", Property::long_(-1)}});
        csv += "/content/dam/u/a" + std::to_string(i) + "," + big + std::to_string(i) + "," +
               std::to_string(i) + "\r\n";
    }
    REQUIRE(csv.size() > 3 * 1024 * 1024);
    const auto before = metadata_of(*host.repository, "/content/dam/u");

    host::HttpServerOptions ho;
    ho.listen = "127.0.0.1:0";
    ho.users_file = host.dir / "configs/users.yaml";
    ho.max_upload_bytes = 256 * 1024;  // the JSON limit stays 1 MiB
    host::HttpBackends b;
    b.jobs = host.engine->manager().get();
    b.store = host.store.get();
    b.registry = &host.registry;
    b.operations = host.submission.get();
    host.server = std::make_unique<host::HttpServer>(ho, b);
    host.server->start();
    auto op = host.client(wharf::test::kMetaOperator);
    const auto temporaries = host.dir / "data/repository/blobs/tmp";
    REQUIRE(fs::is_directory(temporaries));
    auto nothing_left = [&] {
        CHECK(fs::is_empty(temporaries));
        CHECK(metadata_of(*host.repository, "/var/uploads").empty());
        CHECK(metadata_of(*host.repository, "/content/dam/u") == before);
    };

    // Just past the limit (so that the client has sent it all when the answer
    // comes), declared: refused before a byte is read.
    const auto over = csv.substr(0, 300 * 1024);
    auto declared = op->request("POST", "/api/operations/metadata-import", over, "text/csv");
    CHECK(declared.status == 413);
    CHECK(nlohmann::json::parse(declared.body)["error"]["code"] == "payload_too_large");
    nothing_left();

    // Past the upload limit, chunked (no length): refused while it streams.
    {
        httplib::Client client("127.0.0.1", host.server->port());
        client.set_bearer_token_auth(wharf::test::kMetaOperator.c_str());
        std::size_t sent = 0;
        auto chunked = client.Post(
            "/api/operations/metadata-import",
            [&](std::size_t, httplib::DataSink& sink) {
                auto n = std::min<std::size_t>(64 * 1024, over.size() - sent);
                sink.write(over.data() + sent, n);
                sent += n;
                if (sent == over.size()) sink.done();
                return true;
            },
            "text/csv");
        REQUIRE(chunked);
        INFO(chunked->body);
        CHECK(chunked->status == 413);
        CHECK(chunked->body.find("the uploaded CSV is too large (at most 262144 bytes)") !=
              std::string::npos);
    }
    nothing_left();
    // A JSON body to the same route keeps the 1 MiB limit.
    CHECK(op->post_json("/api/operations/metadata-import",
                        R"({"csv":")" + std::string(2 * 1024 * 1024, 'p') + R"("})")
              .status == 413);

    // Within the upload limit of a server with the default (256 MiB): 3 MiB imports.
    host.server->stop();
    host.start_http();
    op = host.client(wharf::test::kMetaOperator);
    auto upload = op->request("POST", "/api/operations/metadata-import?batch_size=7", csv, "text/csv");
    INFO(upload.body.substr(0, 500));
    REQUIRE(upload.status == 200);
    CHECK(nlohmann::json::parse(upload.body)["message"] == "applied 30 rows; 0 rows refused");
    auto after = metadata_of(*host.repository, "/content/dam/u");
    REQUIRE(after.size() == 30);
    for (int i = 0; i < 30; ++i) {
        const auto& p = after.at("/content/dam/u/a" + std::to_string(i));
        CHECK(p.at("n") == Property::long_(i));
        CHECK(p.at("dc:description") == Property::string(big + std::to_string(i)));
    }
    CHECK(metadata_of(*host.repository, "/var/uploads").empty());
    CHECK(fs::is_empty(temporaries));
}

// The child side of the SIGKILL test: a slowed-down import as job 42 on the
// data directory named by WHARF_METADATA_CRASH_DIR. Hidden: only the parent runs it.
TEST_CASE("metadata crash child", "[.metadata_crash_child]") {
    const char* dir = std::getenv("WHARF_METADATA_CRASH_DIR");
    if (!dir) return;
    // The host's own temp folder goes inside the parent's: a SIGKILLed child
    // cannot remove it, the parent's TempDir does.
    ::setenv("TMPDIR", dir, 1);
    MetadataHost host(100, fs::path(dir) / "data");
    ResultContext ctx(make_request({{"csv", "/var/import/crash.csv"}, {"batch_size", "10"}}), 42);
    ctx.on_progress = [] { std::this_thread::sleep_for(25ms); };
    auto result = host.operation("metadata-import")->run(ctx);
    wharf::test::write_text(fs::path(dir) / "child-result.txt", result.message + "\n");
    REQUIRE(result.outcome == JobResult::Outcome::succeeded);
}

TEST_CASE("an import SIGKILLed mid-batch resumes from its checkpoint to the same end state",
          "[metadata][crash]") {
    const int rows = 400;
    std::string csv = "assetPath,n{{Long}},tags{{String: multi}}\n";
    for (int i = 0; i < rows; ++i)
        csv += "/content/dam/crash/a" + std::to_string(i) + "," +
               (i % 37 == 5 ? "oops" : std::to_string(i * 7)) + ",t" + std::to_string(i) + "|x\n";
    auto prepare = [&](MetadataHost& h) {
        for (int i = 0; i < rows; ++i)
            h.asset("/content/dam/crash/a" + std::to_string(i), {{"n", Property::long_(-1)}});
        h.put_file("/var/import/crash.csv", csv);
    };
    MetadataHost reference;
    prepare(reference);
    ResultContext whole(make_request({{"csv", "/var/import/crash.csv"}, {"batch_size", "10"}}), 42);
    REQUIRE(reference.operation("metadata-import")->run(whole).outcome ==
            JobResult::Outcome::succeeded);

    wharf::test::TempDir crash{"wharf-metadata-crash"};
    std::string checkpoint_name = "wharf.metadata/import/job/42";
    {
        MetadataHost parent(100, crash / "data");
        prepare(parent);
    }
    auto repo = host::SqliteRepository::open(crash / "data/repository");
    auto run_child = [&](bool kill) {
        ::setenv("WHARF_METADATA_CRASH_DIR", crash.path().c_str(), 1);
        wharf::test::ChildProcess child(
            {fs::read_symlink("/proc/self/exe").string(), "[.metadata_crash_child]"},
            crash / (kill ? "child1.log" : "child2.log"));
        ::unsetenv("WHARF_METADATA_CRASH_DIR");
        if (kill) {
            REQUIRE(eventually(
                [&] {
                    auto c = repo->checkpoint(checkpoint_name);
                    return c && c->rfind("next=102;", 0) == 0;
                },
                60s));
            child.signal(SIGKILL);
        }
        auto status = child.wait(120s);
        REQUIRE(status);
        return *status;
    };
    auto killed = run_child(true);
    CHECK((WIFSIGNALED(killed) && WTERMSIG(killed) == SIGKILL));
    auto cp = repo->checkpoint(checkpoint_name);
    REQUIRE(cp);
    // Whole batches only: the checkpoint names the row after the last one.
    std::uint64_t next = std::stoull(cp->substr(5));
    CHECK((next - 2) % 10 == 0);
    CHECK(next < static_cast<std::uint64_t>(rows) + 2);
    auto half = metadata_of(*repo, "/content/dam/crash");
    for (std::uint64_t i = 0; i < static_cast<std::uint64_t>(rows); ++i) {
        bool applied = half.at("/content/dam/crash/a" + std::to_string(i)).at("n") !=
                       Property::long_(-1);
        bool bad = i % 37 == 5;
        INFO("row " << i + 2 << " checkpoint " << *cp);
        CHECK(applied == (i + 2 < next && !bad));
    }

    auto finished = run_child(false);
    CHECK((WIFEXITED(finished) && WEXITSTATUS(finished) == 0));
    CHECK_FALSE(repo->checkpoint(checkpoint_name));
    CHECK(metadata_of(*repo, "/content/dam/crash") ==
          metadata_of(*reference.repository, "/content/dam/crash"));
}
