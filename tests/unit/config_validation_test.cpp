// The pieces under ConfigAdmin and `wharf config validate`: safe YAML loading,
// schema validation and defaults, topic patterns, queue helpers, file naming,
// wharf.yaml loading, and the shipped configs/.
#include <catch2/catch.hpp>

#include "base/error.hpp"
#include "config/host_schemas.hpp"
#include "config/host_settings.hpp"
#include "config/queue_config.hpp"
#include "config/schema_catalog.hpp"
#include "config/schema_validator.hpp"
#include "config/yaml_document.hpp"
#include "fixtures/config/config_test_support.hpp"
#include "wharf/queues.hpp"

using namespace wharf::host;
using namespace wharf::test_config;
namespace pt = boost::property_tree;

namespace {

ValidationResult validate(const std::string& yaml, const wharf::ConfigSchema& schema,
                          const ConfigCheck& check = {}) {
    auto parsed = parse_yaml(yaml, "t.yaml");
    REQUIRE(parsed.ok());
    return validate_document(parsed.document ? &*parsed.document : nullptr, schema, "t.yaml",
                             check);
}

}  // namespace

TEST_CASE("parsed YAML keeps 1-based lines and columns and tells quoted from plain", "[config]") {
    auto r = parse_yaml("a: 1\nb:\n  - \"2\"\n  - x\n", "f.yaml");
    REQUIRE(r.ok());
    const auto& doc = *r.document;
    REQUIRE(doc.entries.size() == 2);
    CHECK(doc.entries[0].key_mark == SourceMark{1, 1});
    CHECK(doc.entries[0].value.mark == SourceMark{1, 4});
    CHECK_FALSE(doc.entries[0].value.quoted);
    const auto& items = doc.entries[1].value.items;
    REQUIRE(items.size() == 2);
    CHECK(items[0].mark == SourceMark{3, 5});
    CHECK(items[0].quoted);
    CHECK(items[1].text == "x");
}

TEST_CASE("duplicate keys, aliases and oversized input are refused before validation", "[config]") {
    auto dup = parse_yaml("a:\n  b: 1\n  c: 2\n  b: 3\n", "f.yaml");
    REQUIRE(dup.errors.size() == 1);
    CHECK(dup.errors[0].to_string() == "f.yaml:4:3: duplicate key 'b' (first defined at line 2)");
    // The same key in different mappings is fine.
    CHECK(parse_yaml("a: {x: 1}\nb: {x: 1}\n", "f.yaml").ok());

    auto alias = parse_yaml("a: &x 1\nb: *x\n", "f.yaml");
    REQUIRE_FALSE(alias.ok());
    CHECK(alias.errors[0].mark == SourceMark{2, 4});

    YamlLimits small;
    small.max_bytes = 10;
    auto big = parse_yaml("a: 12345678901\n", "f.yaml", small);
    REQUIRE_FALSE(big.ok());
    CHECK_THAT(big.errors[0].message,
               Catch::Contains("file too large (15 bytes; the limit is 10)"));

    CHECK(parse_yaml("\xEF\xBB\xBF"
                     "a: 1\n",
                     "f.yaml")
              .ok());                                             // BOM
    CHECK(parse_yaml("a: caf\xC3\xA9\n", "f.yaml").ok());         // UTF-8
    CHECK_FALSE(parse_yaml("a: \xED\xA0\x80\n", "f.yaml").ok());  // surrogate
    CHECK(parse_yaml("a: x\tb\n", "f.yaml").ok());                // a tab inside a value is fine
}

TEST_CASE("validation fills defaults in schema order and normalises scalars", "[config]") {
    auto r =
        validate("topics: [wharf/a]\nkeep_jobs: no\nretries: +3\n", queue_schema(), check_queue);
    REQUIRE(r.ok());
    std::vector<std::string> keys;
    for (const auto& [k, v] : r.values) keys.push_back(k);
    CHECK(keys == std::vector<std::string>{"title", "topics", "type", "max_parallel", "retries",
                                           "retry_delay_ms", "retry_backoff", "retry_delay_max_ms",
                                           "priority", "ranking", "keep_jobs"});
    CHECK(r.values.get<std::string>("keep_jobs") == "false");
    CHECK(r.values.get<std::string>("retries") == "3");
    CHECK(r.values.get<double>("max_parallel") == 0.5);
    CHECK(r.values.get<int>("retry_delay_ms") == 2000);
    CHECK(r.values.get_child("topics").front().second.data() == "wharf/a");

    auto n = validate("{}", notifications_schema());
    REQUIRE(n.ok());
    CHECK(n.values.get<int>("smtp.port") == 25);  // an absent object still gets its defaults
    CHECK(n.values.get<std::string>("smtp.tls") == "none");
    CHECK(n.values.get_child("recipients").empty());
    CHECK_FALSE(n.values.get_optional<std::string>("smtp.credentials_file"));
}

TEST_CASE("validation reports every problem in the file, not only the first", "[config]") {
    auto r = validate("topics: []\ntype: fifo\nretries: x\nbogus: 1\n", queue_schema());
    REQUIRE(r.errors.size() == 4);
    CHECK(r.errors[0].to_string() ==
          "t.yaml:4:1: unknown key 'bogus' (known keys: title, topics, "
          "type, max_parallel, retries, retry_delay_ms, retry_backoff, "
          "retry_delay_max_ms, priority, ranking, keep_jobs)");
    CHECK(r.errors[1].to_string() == "t.yaml:1:9: 'topics' has 0 items; it needs at least 1");
    CHECK(r.errors[2].mark == SourceMark{2, 7});
    CHECK(r.errors[3].mark == SourceMark{3, 10});
    CHECK(r.values.empty());
}

TEST_CASE("the closest known key is suggested for typos only", "[config]") {
    std::vector<std::string> keys{"max_parallel", "retries", "retry_delay_ms", "topics"};
    CHECK(closest_match("max_paralell", keys) == "max_parallel");
    CHECK(closest_match("maxParallel", keys) == "max_parallel");
    CHECK(closest_match("retires", keys) == "retries");
    CHECK(closest_match("retry_delay", keys) == "retry_delay_ms");
    CHECK(closest_match("Topics", keys) == "topics");
    CHECK_FALSE(closest_match("colour", keys));
}

TEST_CASE("topic patterns follow Sling's queue syntax", "[config]") {
    using wharf::queue_topic_matches;
    CHECK(queue_topic_matches("wharf/page/move", "wharf/page/move"));
    CHECK_FALSE(queue_topic_matches("wharf/page/move", "wharf/page/move/x"));
    CHECK(queue_topic_matches("wharf/page/.", "wharf/page/move"));
    CHECK_FALSE(queue_topic_matches("wharf/page/.", "wharf/page/move/x"));
    CHECK_FALSE(queue_topic_matches("wharf/page/.", "wharf/page"));
    CHECK(queue_topic_matches("wharf/*", "wharf/asset/delete"));
    CHECK(queue_topic_matches("wharf/**", "wharf/asset/delete"));
    CHECK(queue_topic_matches("wharf*", "wharf/asset"));
    CHECK_FALSE(queue_topic_matches("wharf/*", "wharf"));
    CHECK_FALSE(queue_topic_matches("wharf/*", "wharfx/a"));
    CHECK(queue_topic_matches("*", "anything/at/all"));

    CHECK_FALSE(check_queue_topic_pattern("wharf/asset/delete"));
    CHECK_FALSE(check_queue_topic_pattern("wharf/*"));
    CHECK_FALSE(check_queue_topic_pattern("wharf/."));
    CHECK_FALSE(check_queue_topic_pattern("*"));
    CHECK(check_queue_topic_pattern("")->message == "topic pattern is empty");
    CHECK(check_queue_topic_pattern("wharf//a")->offset == 5);
    CHECK(check_queue_topic_pattern("wharf/a/")->message == "topic pattern must not end with '/'");
    CHECK(check_queue_topic_pattern("wharf/*/a"));
    CHECK(check_queue_topic_pattern("wharf/a b")->offset == 7);
    CHECK(check_topic("wharf/*"));
    CHECK_FALSE(check_topic("wharf/asset-x/de_lete"));
}

TEST_CASE("max_parallel resolves counts, all cores and fractions of the cores", "[config]") {
    CHECK(resolve_max_parallel(0.5, 8) == 4);
    CHECK(resolve_max_parallel(0.5, 3) == 2);  // round(1.5)
    CHECK(resolve_max_parallel(0.5, 1) == 1);
    CHECK(resolve_max_parallel(0.1, 4) == 1);  // never below 1
    CHECK(resolve_max_parallel(-1, 6) == 6);
    CHECK(resolve_max_parallel(3, 2) == 3);  // a count may exceed the cores
    CHECK(detect_cores() >= 1);

    auto check = [](const std::string& v) {
        return check_queue(
                   validate("topics: [a]\nmax_parallel: " + v + "\n", queue_schema()).values)
            .empty();
    };
    CHECK(check("1"));
    CHECK(check("-1"));
    CHECK(check("0.75"));
    CHECK(check("64"));
    CHECK_FALSE(check("0"));
    CHECK_FALSE(check("-2"));
    CHECK_FALSE(check("2.5"));
    CHECK_FALSE(check("1.0001"));

    auto ordered = queue_settings(
        "q", validate("topics: [a]\ntype: ordered\nmax_parallel: 8\n", queue_schema()).values, 8);
    CHECK(ordered.max_parallel == 1);
    CHECK(ordered.type == wharf::QueueType::ordered);
}

TEST_CASE("retry delays back off and stop at the cap", "[config]") {
    wharf::QueueSettings q;
    q.retry_delay = std::chrono::milliseconds(2000);
    q.retry_backoff = 2;
    q.retry_delay_max = std::chrono::milliseconds(10000);
    CHECK(q.delay_before_retry(1).count() == 2000);
    CHECK(q.delay_before_retry(2).count() == 4000);
    CHECK(q.delay_before_retry(3).count() == 8000);
    CHECK(q.delay_before_retry(4).count() == 10000);
    CHECK(q.delay_before_retry(100000).count() == 10000);
}

TEST_CASE("config file names: yaml files only, no hidden, swap or backup files", "[config]") {
    CHECK(config_key("queues/default.yaml") == "queues/default");
    CHECK(config_key("purge.yml") == "purge");
    CHECK_FALSE(config_key("queues/.default.yaml.swp"));
    CHECK_FALSE(config_key("queues/default.yaml~"));
    CHECK_FALSE(config_key("queues/4913"));
    CHECK_FALSE(config_key("queues/.default.yaml"));
    CHECK_FALSE(config_key(".git/config.yaml"));
    CHECK_FALSE(config_key("queues/default.yaml.tmp"));
    CHECK_FALSE(config_key("README.md"));
    CHECK(check_instance_name("page-move-and-rollout") == std::nullopt);
    CHECK(check_instance_name("my queue"));
    CHECK(check_instance_name("-x"));
}

TEST_CASE("schemas with mistakes are refused with the field named", "[config]") {
    wharf::ConfigSchema s;
    s.name = "operations/x";
    wharf::ConfigField f;
    f.name = "limit";
    f.type = wharf::ConfigType::integer;
    f.default_value = "ten";
    s.fields.push_back(f);
    auto problems = check_schema(s);
    REQUIRE(problems.size() == 1);
    CHECK_THAT(problems[0], Catch::Contains("operations/x: 'limit': invalid default"));

    s.fields[0].default_value = "10";
    s.fields[0].minimum = 20;
    CHECK_FALSE(check_schema(s).empty());
    s.fields[0].minimum.reset();
    CHECK(check_schema(s).empty());
    s.name = "Operations/X";
    CHECK_FALSE(check_schema(s).empty());
    for (const auto& host : host_schemas()) {
        INFO(host.schema.name);
        CHECK(check_schema(host.schema).empty());
    }
}

TEST_CASE("the shipped configs validate and wharf.yaml loads into HostSettings", "[config]") {
    SchemaCatalog catalog;
    std::vector<wharf::ConfigSchema> schemas;
    std::vector<ConfigCheck> checks;
    for (auto& h : host_schemas()) {
        schemas.push_back(h.schema);
        checks.push_back(h.check);
    }
    REQUIRE_FALSE(catalog.declare(kHostOwner, schemas, checks));
    auto configs = fs::path(WHARF_SOURCE_DIR) / "configs";
    auto report = validate_tree(configs, "configs", catalog);
    for (const auto& e : report.errors) FAIL(e.to_string());
    // Without the plugins, only the files plugins declare are left unchecked.
    CHECK(report.files >= 9);
    CHECK(report.undeclared.size() >= 3);
    for (const auto& e : report.undeclared) {
        INFO(e.to_string());
        CHECK((e.file.rfind("configs/operations/", 0) == 0 ||
               e.file.rfind("configs/rollout/", 0) == 0));
        CHECK(e.message.rfind("no plugin declares ", 0) == 0);
    }

    auto settings = load_host_settings(configs);
    CHECK(settings.data_dir == (configs / "../var").lexically_normal());
    CHECK(settings.plugins_dir == (configs / "../build/plugins").lexically_normal());
    CHECK(settings.listen == "127.0.0.1:8420");
    CHECK(settings.log_level == "info");
    CHECK(settings.plugin_start_timeout == std::chrono::milliseconds(10000));
    CHECK(settings.drain_timeout == std::chrono::milliseconds(30000));
    CHECK(settings.cores == 0);
}

TEST_CASE("a bad wharf.yaml stops load_host_settings with every problem located", "[config]") {
    TempTree tree(false);
    write_in_place(tree / "wharf.yaml", "listen: nowhere\nlog_levl: info\n");
    try {
        load_host_settings(tree.path());
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::invalid_argument);
        std::string file = (tree / "wharf.yaml").string();
        CHECK_THAT(e.what(), Catch::Contains(file + ":1:9: invalid listen-address"));
        CHECK_THAT(e.what(), Catch::Contains(file + ":2:1: unknown key 'log_levl' (did you mean "
                                                    "'log_level'?)"));
    }
    fs::remove(tree / "wharf.yaml");
    auto defaults = load_host_settings(tree.path());
    CHECK(defaults.listen == "127.0.0.1:8420");
    CHECK(defaults.plugins_dir == (tree.path() / "../build/plugins").lexically_normal());
}
