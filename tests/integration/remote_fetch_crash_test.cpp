// Remote fetch jobs interrupted in the middle of a large transfer (64 MiB,
// rate-limited on the local side so that there is a middle): the remote
// wharfd SIGKILLed and started again on the same port (the transfer resumes
// with Range and every digest is right), the job stopped by a user (nothing
// half-written stays; the same request later fetches the rest), and the local
// wharfd SIGKILLed (the job runs again and does not fetch finished assets
// twice).
#include <catch2/catch.hpp>
#include <set>

#include "integration/remote_fetch_test_support.hpp"

using namespace std::chrono_literals;
using Json = nlohmann::json;
using wharf::test::eventually;
using wharf::test::FetchPair;
using wharf::test::FetchPairOptions;

namespace {

constexpr std::uint64_t kLarge = 64ull << 20;
const std::string kRequestRoot = "/content/dam/big";

// 64 MiB plus a few small assets, fetched at ~24 MiB/s per transfer.
FetchPairOptions slow_options() {
    FetchPairOptions o;
    o.threshold = "1048576";
    o.parallel_transfers = 2;
    o.retries = 20;
    o.retry_delay_ms = 200;
    o.src_extra = "    max_bytes_per_second: 25000000\n";
    return o;
}

void seed_large(wharf::Repository& repo) {
    wharf::test::seed_asset(repo, kRequestRoot + "/large.bin", kLarge, 7);
    for (int i = 0; i < 6; ++i)
        wharf::test::seed_asset(repo, kRequestRoot + "/small/s" + std::to_string(i) + ".bin",
                                1000 + i * 4096, 100 + i);
}

Json request() {
    return {{"remote", "src"}, {"paths", {kRequestRoot}}, {"destination", "/content/dam/copy"}};
}

// Seeds the remote with the large tree, starts both hosts and submits the fetch.
wharf::host::HttpResponse submit_large_fetch(FetchPair& pair) {
    {
        auto repo = pair.remote.open_repository();
        seed_large(*repo);
    }
    pair.start();
    return pair.submit(request());
}

// Waits until the job has moved between `low` and `high` bytes (a transfer
// in its middle). Returns the job as last seen.
Json wait_for_bytes(FetchPair& pair, long long id, long long low, long long high) {
    Json state;
    bool reached = eventually(
        [&] {
            state = pair.job(id);
            auto done = state["progress"]["done"].get<long long>();
            return state["final"].get<bool>() || (done >= low && done <= high);
        },
        60s);
    INFO(state.dump());
    REQUIRE(reached);
    REQUIRE_FALSE(state["final"].get<bool>());
    return state;
}

}  // namespace

TEST_CASE(
    "the remote SIGKILLed in the middle of a 64 MiB transfer and restarted on the same "
    "port: the job resumes with Range and every digest is right",
    "[remote-fetch][wharfd][crash]") {
    FetchPair pair(slow_options());
    auto response = submit_large_fetch(pair);
    INFO(response.body);
    REQUIRE(response.status == 202);
    auto id = Json::parse(response.body)["id"].get<long long>();

    wait_for_bytes(pair, id, 16 << 20, 40 << 20);
    pair.remote.kill();
    // Down for a moment: the transfer's retries wait with back-off.
    REQUIRE(
        eventually([&] { return pair.log(id).find("retry 1 of 20") != std::string::npos; }, 30s));
    pair.remote.start();

    auto state = pair.wait_final(id, 120s);
    INFO(state.dump());
    CHECK(state["state"] == "succeeded");
    CHECK(state["retry_count"] == 0);  // the run itself got over it
    auto log = pair.log(id);
    INFO(log);
    // It continued where the connection dropped, it did not start again.
    CHECK_THAT(log, Catch::Contains("after ") && Catch::Contains(" bytes; retry 1 of 20"));
    CHECK_THAT(log, !Catch::Contains("starting the transfer again from byte 0"));
    CHECK(pair.local_tree("/content/dam/copy/big") == pair.remote_tree(kRequestRoot));
    CHECK(pair.local_blob_files().second == 0);
}

TEST_CASE(
    "a remote fetch job stopped mid-transfer leaves no half-written asset; the same "
    "request again fetches only what is missing",
    "[remote-fetch][wharfd][crash]") {
    FetchPair pair(slow_options());
    auto response = submit_large_fetch(pair);
    REQUIRE(response.status == 202);
    auto id = Json::parse(response.body)["id"].get<long long>();
    wait_for_bytes(pair, id, 8 << 20, 40 << 20);
    REQUIRE(pair.local_api->post_json("/api/jobs/" + std::to_string(id) + "/stop", "{}").status ==
            200);
    auto state = pair.wait_final(id, 30s);
    INFO(state.dump());
    CHECK(state["state"] == "stopped");
    CHECK(pair.local_api->get("/api/repo/nodes?path=/content/dam/copy/big/large.bin").status ==
          404);
    // The partial binary went with its writer.
    CHECK(eventually([&] { return pair.local_blob_files().second == 0; }, 10s));

    response = pair.submit(request());
    REQUIRE(response.status == 202);
    auto again = Json::parse(response.body)["id"].get<long long>();
    state = pair.wait_final(again, 120s);
    INFO(state.dump());
    CHECK(state["state"] == "succeeded");
    CHECK(pair.local_tree("/content/dam/copy/big") == pair.remote_tree(kRequestRoot));
    // What the stopped job had fetched is not fetched again.
    auto rows = pair.report(again);
    std::size_t fetched = 0, skipped = 0;
    for (const auto& r : rows) {
        if (r.find(",fetched,") != std::string::npos) ++fetched;
        if (r.find(",skipped,already fetched") != std::string::npos) ++skipped;
    }
    CHECK(fetched + skipped == 7);
    CHECK(skipped >= 1);
    CHECK_THAT(state["result_message"].get<std::string>(),
               Catch::Contains(std::to_string(skipped) + " already fetched"));
}

TEST_CASE(
    "the local wharfd SIGKILLed during a remote fetch job: the job runs again after the "
    "restart and fetches no finished asset twice",
    "[remote-fetch][wharfd][crash]") {
    FetchPair pair(slow_options());
    auto response = submit_large_fetch(pair);
    REQUIRE(response.status == 202);
    auto id = Json::parse(response.body)["id"].get<long long>();
    wait_for_bytes(pair, id, 16 << 20, 40 << 20);
    pair.local.kill();
    pair.local.start();
    pair.local_api = pair.local.client(wharf::test::kLocalOperatorToken);

    auto state = pair.wait_final(id, 120s);
    INFO(state.dump());
    CHECK(state["state"] == "succeeded");
    CHECK(state["retry_count"] == 1);
    CHECK(pair.local_tree("/content/dam/copy/big") == pair.remote_tree(kRequestRoot));
    // One header, then each asset at most once.
    auto rows = pair.report(id);
    std::set<std::string> seen;
    for (std::size_t i = 1; i < rows.size(); ++i) {
        auto remote_path = rows[i].substr(0, rows[i].find(','));
        CHECK(seen.insert(remote_path).second);
    }
    CHECK(seen.count(kRequestRoot + "/large.bin") == 1);
}
