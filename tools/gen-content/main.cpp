// wharf-gen-content: fills a repository data directory with deterministic
// content (assets, pages with references, live copies) and prints what it
// made. The same options and seed give the same repository on every machine.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "repository/generator.hpp"
#include "repository/repository_check.hpp"
#include "repository/sqlite_repository.hpp"

namespace {

constexpr const char* kUsage =
    "usage: wharf-gen-content --data-dir DIR [options]\n"
    "  --seed N               (1)\n"
    "  --assets N             (1000)     --assets-root PATH  (/content/dam/gen)\n"
    "  --assets-per-folder N  (100)      --folders-per-group N (10)\n"
    "  --pages N              (100)      --pages-root PATH   (/content/gen/en)\n"
    "  --pages-per-section N  (50)       --refs-per-page N   (10)\n"
    "  --live-copies N        (0)        --live-root PATH    (/content/gen)\n"
    "  --min-bytes N (64)  --max-bytes N (512)  --batch N (1000)\n"
    "  --check                verify the repository afterwards (exit 1 on errors)\n";

}  // namespace

int main(int argc, char** argv) {
    wharf::host::ContentGeneratorOptions o;
    std::string data_dir;
    bool check = false;
    try {
        for (int i = 1; i < argc; ++i) {
            std::string arg = argv[i];
            if (arg == "--help" || arg == "-h") {
                std::fputs(kUsage, stdout);
                return 0;
            }
            if (arg == "--check") {
                check = true;
                continue;
            }
            if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
            std::string value = argv[++i];
            auto number = [&] { return std::stoull(value); };
            if (arg == "--data-dir")
                data_dir = value;
            else if (arg == "--seed")
                o.seed = number();
            else if (arg == "--assets")
                o.assets = number();
            else if (arg == "--assets-root")
                o.assets_root = value;
            else if (arg == "--assets-per-folder")
                o.assets_per_folder = number();
            else if (arg == "--folders-per-group")
                o.folders_per_group = number();
            else if (arg == "--pages")
                o.pages = number();
            else if (arg == "--pages-root")
                o.pages_root = value;
            else if (arg == "--pages-per-section")
                o.pages_per_section = number();
            else if (arg == "--refs-per-page")
                o.references_per_page = number();
            else if (arg == "--live-copies")
                o.live_copies = number();
            else if (arg == "--live-root")
                o.live_root = value;
            else if (arg == "--min-bytes")
                o.min_binary_bytes = number();
            else if (arg == "--max-bytes")
                o.max_binary_bytes = number();
            else if (arg == "--batch")
                o.batch_size = number();
            else
                throw std::invalid_argument("unknown option " + arg);
        }
        if (data_dir.empty()) throw std::invalid_argument("--data-dir is required");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wharf-gen-content: %s\n%s", e.what(), kUsage);
        return 2;
    }
    try {
        auto start = std::chrono::steady_clock::now();
        auto repo = wharf::host::SqliteRepository::open(data_dir);
        auto stats = wharf::host::generate_content(*repo, o);
        double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf(
            "generated folders=%llu assets=%llu pages=%llu references=%llu "
            "live_copies=%llu bytes=%llu seconds=%.2f\n",
            static_cast<unsigned long long>(stats.folders),
            static_cast<unsigned long long>(stats.assets),
            static_cast<unsigned long long>(stats.pages),
            static_cast<unsigned long long>(stats.references),
            static_cast<unsigned long long>(stats.live_copies),
            static_cast<unsigned long long>(stats.bytes), seconds);
        if (check) {
            auto report = wharf::host::check_repository(*repo);
            for (const auto& p : report.problems)
                std::printf("%s\n", wharf::host::format(p).c_str());
            if (!report.ok()) return 1;
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wharf-gen-content: %s\n", e.what());
        return 1;
    }
}
