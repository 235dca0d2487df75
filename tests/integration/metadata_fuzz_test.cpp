// A bounded fuzz loop over the metadata CSV reader, through the real import
// operation: deterministic seed, inputs built from CSV fragments, random bytes
// and mutations of a valid file. Every input must be parsed (the import runs
// and every refused row is reported with its row number) or refused with a
// position (row and column, or the header column at fault).
#include <catch2/catch.hpp>

#include <random>
#include <regex>

#include "fixtures/metadata/metadata_host.hpp"

using namespace wharf;
using wharf::test::make_request;
using wharf::test::MetadataHost;
using wharf::test::ResultContext;

TEST_CASE("the CSV reader parses or refuses with a position every fuzzed input", "[metadata]") {
    MetadataHost host;
    host.asset("/content/dam/z/a", {{"n", Property::long_(1)}});
    host.asset("/content/dam/z/b");
    const std::vector<std::string> pieces = {
        ",", ";", "\"", "\"\"", "\n", "\r\n", "\r", "|", "\\", "{{", "}}", "{{String}}",
        "{{Long: multi}}", "{{Date: DateFormat: dd/MM/yyyy}}", "{{ Number : multi }}",
        "assetPath", "/content/dam/z/a", "/content/dam/z/b", "/content/dam/none", "x", "12",
        "-3.5e7", "true", "2020-02-29T23:59:59.999+05:30", "31/12/1999", "{{clear}}", "=cmd",
        "'", " ", "\t", "\xc3\xa9", "\xe2\x9c\x93", "\xff", "\xc3", "\xef\xbb\xbf", std::string(1, '\0')};
    const std::string valid =
        "assetPath,n{{Long}},t{{String: multi}},d{{Date}}\n"
        "/content/dam/z/a,5,a|b\\|c,2020-01-01T00:00:00.000Z\n"
        "\"/content/dam/z/b\",\"6\",\"x,y\",\n";
    std::mt19937 random(20261204);
    auto op = host.operation("metadata-import");
    const std::regex position(R"(row \d+, column \d+|header column \d+|no asset path column|is empty)");
    int parsed = 0, refused = 0;
    for (int i = 0; i < 300; ++i) {
        std::string input;
        switch (random() % 3) {
            case 0:  // fragments
                input = "assetPath";
                for (int n = static_cast<int>(random() % 40); n > 0; --n)
                    input += pieces[random() % pieces.size()];
                break;
            case 1:  // random bytes after a valid header
                input = "assetPath,n{{Long}}\n";
                for (int n = static_cast<int>(random() % 200); n > 0; --n)
                    input.push_back(static_cast<char>(random() % 256));
                break;
            default: {  // mutations of a valid file
                input = valid;
                for (int n = 1 + static_cast<int>(random() % 4); n > 0; --n) {
                    auto at = random() % (input.size() + 1);
                    switch (random() % 3) {
                        case 0:
                            input.insert(at, pieces[random() % pieces.size()]);
                            break;
                        case 1:
                            if (at < input.size()) input.erase(at, 1 + random() % 5);
                            break;
                        default:
                            if (at < input.size()) input[at] = static_cast<char>(random() % 256);
                    }
                }
            }
        }
        auto path = "/var/fuzz/f" + std::to_string(i) + ".csv";
        host.put_file(path, input);
        auto request = make_request({{"csv", path}});
        INFO("input #" << i << ": " << input);
        try {
            op->validate(request);
        } catch (const OperationRefused& e) {
            ++refused;
            CHECK(std::regex_search(e.what(), position));
            continue;
        }
        ++parsed;
        ResultContext ctx(request);
        auto result = op->run(ctx);
        INFO(result.message);
        REQUIRE(result.outcome == JobResult::Outcome::succeeded);
        REQUIRE_FALSE(ctx.rows().empty());
        for (std::size_t r = 1; r < ctx.rows().size(); ++r) {
            const auto& row = ctx.rows()[r];
            REQUIRE(row.size() == 5);
            CHECK(std::stoull(row[0]) >= 2);
            CHECK_FALSE(row[4].empty());
        }
    }
    // The loop reached both outcomes.
    CHECK(parsed > 20);
    CHECK(refused > 20);
}
