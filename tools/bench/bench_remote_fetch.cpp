// Remote fetch throughput: a real wharfd serves N assets (default 1,000
// adding up to 1 GiB) on 127.0.0.1; a second wharfd with the remote-fetch
// plugin fetches them all in one synchronous request (listing, metadata,
// streamed binaries verified by sha256, one repository transaction per
// asset). The peers, in the same run against the same server, fetching the
// same binaries with the same number of parallel transfers into files, with
// no verification: the `curl` CLI (--parallel, one thread), and libcurl easy
// handles on as many threads as Wharf uses (each writing its files with
// write(2)). Rounds alternate the three; the best time of each is kept. Data lives on /dev/shm when
// it has room, so that the disk does not decide.
//
// Usage: bench_remote_fetch [total_mib=1024] [assets=1000] [parallel=4] [rounds=2]
#include <curl/curl.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include "bench_util.hpp"
#include "integration/wharfd_pair_support.hpp"

namespace fs = std::filesystem;
using Json = nlohmann::json;
using wharf::bench::Clock;
using wharf::bench::seconds_since;

namespace {

const std::string kViewer = "bench-viewer-token-0123456789";
const std::string kOperator = "bench-operator-token-0123456789";

std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

fs::path scratch_root(std::uint64_t bytes) {
    struct statvfs s {};
    if (::statvfs("/dev/shm", &s) == 0 &&
        static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize > bytes * 3 + (512ull << 20))
        return "/dev/shm";
    return fs::temp_directory_path();
}

size_t write_fd(char* data, size_t size, size_t count, void* user) {
    auto fd = *static_cast<int*>(user);
    auto n = size * count;
    std::size_t done = 0;
    while (done < n) {
        auto w = ::write(fd, data + done, n - done);
        if (w <= 0) return 0;
        done += static_cast<std::size_t>(w);
    }
    return n;
}

// libcurl easy handles, one per thread, each taking the next path: returns
// false when a transfer failed.
bool libcurl_fetch(const std::string& base, const std::vector<std::string>& paths,
                   const fs::path& out, int threads) {
    std::atomic<std::size_t> next{0};
    std::atomic<bool> ok{true};
    std::vector<std::thread> pool;
    const std::string auth = "Authorization: Bearer " + kViewer;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&] {
            CURL* curl = curl_easy_init();
            curl_slist* headers = curl_slist_append(nullptr, auth.c_str());
            for (auto i = next++; i < paths.size(); i = next++) {
                char* escaped = curl_easy_escape(curl, paths[i].c_str(), 0);
                auto url = base + "/api/repo/binary?path=" + escaped;
                curl_free(escaped);
                int fd =
                    ::open((out / std::to_string(i)).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
                curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
                curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
                curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
                curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 256L * 1024);
                curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_fd);
                curl_easy_setopt(curl, CURLOPT_WRITEDATA, &fd);
                long status = 0;
                if (curl_easy_perform(curl) != CURLE_OK) ok = false;
                curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
                if (status != 200) ok = false;
                ::close(fd);
            }
            curl_slist_free_all(headers);
            curl_easy_cleanup(curl);
        });
    }
    for (auto& t : pool) t.join();
    return ok;
}

std::uint64_t bytes_in(const fs::path& dir) {
    std::uint64_t bytes = 0;
    for (const auto& e : fs::directory_iterator(dir)) bytes += e.file_size();
    return bytes;
}

}  // namespace

int main(int argc, char** argv) {
    const std::uint64_t total_mib = argc > 1 ? std::stoull(argv[1]) : 1024;
    const std::size_t assets = argc > 2 ? std::stoul(argv[2]) : 1000;
    const int parallel = argc > 3 ? std::stoi(argv[3]) : 4;
    const int rounds = argc > 4 ? std::stoi(argv[4]) : 2;
    const std::uint64_t total = total_mib << 20;
    const std::uint64_t each = total / assets;
    const auto root =
        scratch_root(total) / ("wharf-bench-remote-fetch-" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root);
    struct Cleanup {
        fs::path p;
        ~Cleanup() {
            std::error_code ec;
            fs::remove_all(p, ec);
        }
    } cleanup{root};

    std::cerr << "seeding " << assets << " assets of " << each << " bytes in " << root << "\n";
    wharf::test::WharfdHost remote(root / "remote", "remote");
    remote.set_users({{{"reader", "viewer", kViewer}}});
    {
        auto repo = remote.open_repository();
        for (std::size_t i = 0; i < assets; ++i)
            wharf::test::seed_asset(*repo,
                                    "/content/dam/bench/f" + std::to_string(i / 100) + "/a" +
                                        std::to_string(i) + ".bin",
                                    each, i + 1);
    }
    remote.start();

    wharf::test::WharfdHost local(root / "local", "local");
    local.set_users({{{"otto", "operator", kOperator}}});
    local.add_plugin("remote-fetch");
    local.write_config("remote.token", kViewer);
    local.write_config(
        "operations/remote-fetch.yaml",
        "threshold: 1000000000000000\nparallel_transfers: " + std::to_string(parallel) +
            "\nremotes:\n  src:\n    url: " + remote.url() + "\n    token_file: remote.token\n");

    // The same binaries for curl, by path, from the remote's own listing.
    std::vector<std::string> paths;
    {
        auto api = remote.client(kViewer);
        for (const auto& [path, what] : wharf::test::api_tree(*api, "/content/dam/bench"))
            if (what.rfind("asset", 0) == 0) paths.push_back("/content/dam/bench" + path);
    }
    if (paths.size() != assets) {
        std::cerr << "listing has " << paths.size() << " assets, expected " << assets << "\n";
        return 1;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    // The CLI is Debian's `curl` package, which tools/deps.sh does not need to
    // build Wharf: without it that row is left out.
    const bool have_curl_cli = fs::exists("/usr/bin/curl");
    double best_curl = 1e300, best_libcurl = 1e300, best_wharf = 1e300;
    std::string load_before = load_average();
    for (int round = 0; round < rounds; ++round) {
        if (have_curl_cli) {
            auto out = root / "curl-out";
            fs::create_directories(out);
            auto config = root / "curl.config";
            {
                std::ofstream c(config);
                c << "header = \"Authorization: Bearer " << kViewer << "\"\n";
                for (std::size_t i = 0; i < paths.size(); ++i)
                    c << "url = \"" << remote.url()
                      << "/api/repo/binary?path=" << wharf::host::url_encode(paths[i])
                      << "\"\noutput = \"" << (out / std::to_string(i)).string() << "\"\n";
            }
            auto start = Clock::now();
            wharf::test::ChildProcess curl(
                {"/usr/bin/curl", "-s", "-S", "-f", "--parallel", "--parallel-max",
                 std::to_string(parallel), "--config", config.string()},
                root / "curl.log");
            auto status = curl.wait(std::chrono::minutes(30));
            double t = seconds_since(start);
            auto bytes = bytes_in(out);
            if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0 ||
                bytes != each * assets) {
                std::cerr << "curl failed: " << curl.output() << " bytes=" << bytes << "\n";
                return 1;
            }
            best_curl = std::min(best_curl, t);
            fs::remove_all(out);
        }
        {
            auto out = root / "libcurl-out";
            fs::create_directories(out);
            auto start = Clock::now();
            bool ok = libcurl_fetch(remote.url(), paths, out, parallel);
            double t = seconds_since(start);
            if (!ok || bytes_in(out) != each * assets) {
                std::cerr << "libcurl fetch failed\n";
                return 1;
            }
            best_libcurl = std::min(best_libcurl, t);
            fs::remove_all(out);
        }
        {
            fs::remove_all(root / "local/var");
            fs::create_directories(root / "local/var");
            local.start();
            auto api = local.client(kOperator);
            Json request{{"remote", "src"},
                         {"paths", {"/content/dam/bench"}},
                         {"destination", "/content/dam/copy"}};
            auto start = Clock::now();
            auto response = api->post_json("/api/operations/remote-fetch", request.dump());
            double t = seconds_since(start);
            auto body = Json::parse(response.body, nullptr, false);
            if (response.status != 200 || body.is_discarded() || body["outcome"] != "succeeded") {
                std::cerr << "wharf fetch failed: " << response.status << " " << response.body
                          << "\n";
                return 1;
            }
            best_wharf = std::min(best_wharf, t);
            local.stop();
        }
    }
    std::string load_after = load_average();
    remote.stop();
    curl_global_cleanup();

    const double mb = static_cast<double>(each * assets) / 1e6;
    std::printf(
        "Remote fetch of %zu assets, %.1f MiB (%llu bytes each), %d parallel transfers, "
        "best of %d rounds, data in %s\n\n",
        assets, static_cast<double>(each * assets) / 1048576.0,
        static_cast<unsigned long long>(each), parallel, rounds,
        root.parent_path().string().c_str());
    std::printf("| fetcher | time | MB/s | Wharf's rate / this one's |\n|---|---:|---:|---:|\n");
    if (have_curl_cli)
        std::printf(
            "| curl CLI (--parallel-max %d, one thread, to files, no verification) | %.2f s | "
            "%.1f | %.2f |\n",
            parallel, best_curl, mb / best_curl, best_curl / best_wharf);
    else
        std::printf("| curl CLI | not installed (apt-get install curl) | | |\n");
    std::printf(
        "| libcurl easy, %d threads, to files with write(2), no verification | %.2f s | "
        "%.1f | %.2f |\n",
        parallel, best_libcurl, mb / best_libcurl, best_libcurl / best_wharf);
    std::printf(
        "| Wharf remote-fetch (listing, metadata, sha256 verified, assets created) | "
        "%.2f s | %.1f | 1.00 |\n",
        best_wharf, mb / best_wharf);
    std::printf("\nload average before: %s; after: %s\n", load_before.c_str(), load_after.c_str());
    {
        using wharf::bench::format;
        double peer = have_curl_cli ? best_curl : best_libcurl;
        double ratio = peer / best_wharf;
        wharf::bench::summary(
            format("remote fetch: %.0f MiB in %zu assets, sha256 verified, rate vs %s",
                   static_cast<double>(each * assets) / 1048576.0, assets,
                   have_curl_cli ? "curl" : "libcurl (no curl CLI)"),
            format("%.1f MB/s (%.2f s)", mb / best_wharf, best_wharf),
            format("%.1f MB/s (%s, no verification)", mb / peer,
                   have_curl_cli ? "curl --parallel" : "libcurl"),
            ratio, ">= 0.70 x curl", ratio >= 0.70);
    }
    return 0;
}
