// bench_repository: the content repository against raw SQLite floors.
//
//   bench_repository [--refs R] [--dir DIR] [N ...]     (default: 10000 100000, R = 1000000)
//
// For each N a child process (so VmHWM is that run's own peak) imports N small
// assets, walks them, builds an index of R references (pages with Path
// properties pointing at random assets) and asks for the referrers of the
// first 10,000 assets' subtree. Each is compared, in the same run, with the
// equivalent raw SQLite work as a floor: the same schema, the same
// statements through the bare C API, and for the import the same blob file
// writes (sha256, temp file, fsync, rename, directory fsync). Prints a
// Markdown table; no assertions. Run a Release build.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "base/sha256.hpp"
#include "bench_util.hpp"
#include "repository/sqlite_repository.hpp"

namespace fs = std::filesystem;
using namespace wharf;
using bench::Clock;

namespace {

constexpr std::uint64_t kAssetsPerFolder = 1000;
constexpr std::uint64_t kSubtreeAssets = 10'000;  // folder group d000: 10 folders of 1000
constexpr std::size_t kBatch = 500;
constexpr std::uint64_t kRefsPerPage = 100;

using bench::seconds_since;

std::string padded(std::uint64_t n, int width) {
    auto s = std::to_string(n);
    return std::string(width - std::min<std::size_t>(width, s.size()), '0') + s;
}

std::string folder_of(std::uint64_t i) {
    auto folder = i / kAssetsPerFolder;
    return "/content/dam/bench/d" + padded(folder / 10, 3) + "/f" + padded(folder, 4);
}

std::string asset_path(std::uint64_t i) { return folder_of(i) + "/a" + padded(i, 7) + ".txt"; }

std::string asset_bytes(std::uint64_t i) {
    std::string s = "bench asset " + std::to_string(i) + "\n";
    while (s.size() < 200) s += static_cast<char>('a' + (s.size() * 7 + i) % 26);
    return s;
}

std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// --- raw SQLite ---------------------------------------------------------------------

void check(int rc, sqlite3* db, const char* what) {
    if (rc != SQLITE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE) {
        std::fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
        std::exit(1);
    }
}

struct Raw {
    sqlite3* db = nullptr;
    explicit Raw(const fs::path& file) {
        check(sqlite3_open(file.c_str(), &db), db, "open");
        exec(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16000;"
            "PRAGMA temp_store=FILE;");
    }
    ~Raw() { sqlite3_close(db); }
    void exec(const char* sql) { check(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), db, sql); }
    sqlite3_stmt* prepare(const std::string& sql) {
        sqlite3_stmt* s = nullptr;
        check(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr), db, sql.c_str());
        return s;
    }
};

void text(sqlite3_stmt* s, int i, const std::string& v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

void fsync_dir(const fs::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    ::fsync(fd);
    ::close(fd);
}

/// The blob store's work without its abstractions.
std::string raw_store_blob(const fs::path& root, const std::string& bytes, std::uint64_t n) {
    auto sha = host::sha256_hex(bytes);
    auto tmp = root / "tmp" / ("raw-" + std::to_string(n));
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) std::exit(1);
    ::fsync(fd);
    ::close(fd);
    auto dir = root / sha.substr(0, 2) / sha.substr(2, 2);
    if (::mkdir(dir.parent_path().c_str(), 0755) == 0) fsync_dir(root);
    if (::mkdir(dir.c_str(), 0755) == 0) fsync_dir(dir.parent_path());
    ::rename(tmp.c_str(), (dir / sha).c_str());
    fsync_dir(dir);
    return sha;
}

double raw_import(const fs::path& data, std::uint64_t n) {
    // The repository's own schema, then plain statements.
    host::SqliteRepository::open(data);
    Raw raw(data / "repository.db");
    auto t0 = Clock::now();
    auto folder_insert = raw.prepare(
        "INSERT INTO nodes(path, parent_id, kind, ord, created, modified) VALUES (?1, ?2, 0, 0, 0, "
        "0)");
    auto node_insert = raw.prepare(
        "INSERT INTO nodes(path, parent_id, kind, ord, blob_sha, blob_size, mime, created, "
        "modified) VALUES (?1, ?2, 1, ?3, ?4, ?5, 'text/plain', ?6, ?6)");
    auto prop_insert = raw.prepare(
        "INSERT INTO properties(node_id, name, type, multiple, value) VALUES (?1, ?2, ?3, 0, ?4)");
    auto add_folder = [&](const std::string& path, std::int64_t parent) {
        text(folder_insert, 1, path);
        sqlite3_bind_int64(folder_insert, 2, parent);
        check(sqlite3_step(folder_insert), raw.db, "folder");
        sqlite3_reset(folder_insert);
        return sqlite3_last_insert_rowid(raw.db);
    };
    raw.exec("BEGIN IMMEDIATE");
    auto content = add_folder("/content", 1);
    auto dam = add_folder("/content/dam", content);
    auto bench = add_folder("/content/dam/bench", dam);
    std::int64_t group = 0, folder = 0;
    std::string group_path, folder_path;
    for (std::uint64_t i = 0; i < n; ++i) {
        if (i % kBatch == 0 && i > 0) {
            raw.exec("COMMIT");
            raw.exec("BEGIN IMMEDIATE");
        }
        auto f = folder_of(i);
        if (f != folder_path) {
            auto g = f.substr(0, f.rfind('/'));
            if (g != group_path) {
                group = add_folder(g, bench);
                group_path = g;
            }
            folder = add_folder(f, group);
            folder_path = f;
        }
        auto bytes = asset_bytes(i);
        auto sha = raw_store_blob(data / "blobs", bytes, i);
        text(node_insert, 1, asset_path(i));
        sqlite3_bind_int64(node_insert, 2, folder);
        sqlite3_bind_int64(node_insert, 3, static_cast<std::int64_t>(i % kAssetsPerFolder));
        text(node_insert, 4, sha);
        sqlite3_bind_int64(node_insert, 5, static_cast<std::int64_t>(bytes.size()));
        sqlite3_bind_int64(node_insert, 6, 1'700'000'000'000LL);
        check(sqlite3_step(node_insert), raw.db, "node");
        sqlite3_reset(node_insert);
        auto id = sqlite3_last_insert_rowid(raw.db);
        sqlite3_bind_int64(prop_insert, 1, id);
        text(prop_insert, 2, "dc:title");
        sqlite3_bind_int64(prop_insert, 3, 0);
        text(prop_insert, 4, "Asset " + std::to_string(i));
        check(sqlite3_step(prop_insert), raw.db, "prop");
        sqlite3_reset(prop_insert);
        sqlite3_bind_int64(prop_insert, 1, id);
        text(prop_insert, 2, "bench:index");
        sqlite3_bind_int64(prop_insert, 3, 1);
        sqlite3_bind_int64(prop_insert, 4, static_cast<std::int64_t>(i));
        check(sqlite3_step(prop_insert), raw.db, "prop");
        sqlite3_reset(prop_insert);
    }
    raw.exec("COMMIT");
    double s = seconds_since(t0);
    sqlite3_finalize(folder_insert);
    sqlite3_finalize(node_insert);
    sqlite3_finalize(prop_insert);
    return s;
}

const char* kRange = "path >= ?1 AND path < ?3 AND (path = ?1 OR path >= ?2)";

void bind_range(sqlite3_stmt* s, const std::string& root) {
    text(s, 1, root);
    text(s, 2, root + "/");
    text(s, 3, root + "0");
}

/// Raw walk: the same rows, columns read, nothing built.
std::uint64_t raw_walk(Raw& raw, const std::string& root, bool with_properties) {
    std::string sql =
        with_properties
            ? std::string(
                  "SELECT n.id, n.path, n.kind, n.ord, n.blob_sha, n.blob_size, n.mime, "
                  "n.created, n.modified, n.text, p.name, p.type, p.value FROM nodes n "
                  "LEFT JOIN properties p ON p.node_id = n.id WHERE n.") +
                  "path >= ?1 AND n.path < ?3 AND (n.path = ?1 OR n.path >= ?2) ORDER BY n.path"
            : std::string(
                  "SELECT id, path, kind, ord, blob_sha, blob_size, mime, created, "
                  "modified FROM nodes WHERE ") +
                  kRange + " ORDER BY path";
    auto s = raw.prepare(sql);
    bind_range(s, root);
    std::uint64_t rows = 0, bytes = 0;
    std::int64_t last = -1;
    while (sqlite3_step(s) == SQLITE_ROW) {
        auto id = sqlite3_column_int64(s, 0);
        if (id != last) ++rows;
        last = id;
        bytes += sqlite3_column_bytes(s, 1) + sqlite3_column_bytes(s, 4);
        if (with_properties) bytes += sqlite3_column_bytes(s, 10) + sqlite3_column_bytes(s, 12);
    }
    sqlite3_finalize(s);
    return rows + (bytes == 0);
}

std::uint64_t raw_referrers(Raw& raw, const std::string& root) {
    auto s = raw.prepare(
        "SELECT n.path, r.property, r.to_path FROM refs r JOIN nodes n ON n.id = r.from_id "
        "WHERE r.to_path >= ?1 AND r.to_path < ?3 AND (r.to_path = ?1 OR r.to_path >= ?2)");
    bind_range(s, root);
    std::uint64_t rows = 0, bytes = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        ++rows;
        bytes +=
            sqlite3_column_bytes(s, 0) + sqlite3_column_bytes(s, 1) + sqlite3_column_bytes(s, 2);
    }
    sqlite3_finalize(s);
    return rows + (bytes == 0);
}

// --- one N ----------------------------------------------------------------------------

struct Row {
    std::string what;
    double wharf_rate;
    double floor_rate;
    std::string unit;
};

template <class F>
double best_of(int runs, F&& f) {
    double best = 1e300;
    for (int i = 0; i < runs; ++i) {
        auto t0 = Clock::now();
        f();
        best = std::min(best, seconds_since(t0));
    }
    return best;
}

int run_one(std::uint64_t n, std::uint64_t refs, const fs::path& dir) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::vector<Row> rows;

    // Import through the repository: binary writer + create, batches of 500.
    auto repo = host::SqliteRepository::open(dir / "wharf");
    auto t0 = Clock::now();
    {
        auto session = repo->open_session({kBatch});
        std::string current;
        for (std::uint64_t i = 0; i < n; ++i) {
            auto f = folder_of(i);
            if (f != current) {
                session->create_folders(f);
                current = f;
            }
            auto bytes = asset_bytes(i);
            auto writer = repo->write_binary();
            writer->write(bytes.data(), bytes.size());
            Node asset;
            asset.path = asset_path(i);
            asset.kind = NodeKind::asset;
            asset.binary = writer->finish("text/plain");
            asset.properties["dc:title"] = Property::string("Asset " + std::to_string(i));
            asset.properties["bench:index"] = Property::long_(static_cast<std::int64_t>(i));
            session->create(asset);
        }
        session->commit();
    }
    double wharf_import = seconds_since(t0);
    double floor_import = raw_import(dir / "raw", n);
    rows.push_back({"import assets", n / wharf_import, n / floor_import, "assets/s"});

    // Walks (best of 3, warm cache).
    const std::string root = "/content/dam/bench";
    std::uint64_t walked = 0;
    double wharf_walk = best_of(3, [&] {
        walked = repo->walk(root, {.with_properties = false}, [](const Node&) { return true; });
    });
    Raw raw_wharf_db(dir / "wharf" / "repository.db");
    std::uint64_t raw_walked = 0;
    double floor_walk = best_of(3, [&] { raw_walked = raw_walk(raw_wharf_db, root, false); });
    rows.push_back(
        {"walk (path, kind, binary)", walked / wharf_walk, raw_walked / floor_walk, "nodes/s"});
    double wharf_walk_p =
        best_of(3, [&] { walked = repo->walk(root, {}, [](const Node&) { return true; }); });
    double floor_walk_p = best_of(3, [&] { raw_walked = raw_walk(raw_wharf_db, root, true); });
    rows.push_back(
        {"walk with properties", walked / wharf_walk_p, raw_walked / floor_walk_p, "nodes/s"});

    // The reference index: pages with 100 Path values each, random assets.
    t0 = Clock::now();
    {
        auto session = repo->open_session({100});
        session->create_folders("/content/site");
        for (std::uint64_t p = 0; p * kRefsPerPage < refs; ++p) {
            std::vector<Scalar> targets;
            for (std::uint64_t k = 0; k < kRefsPerPage; ++k)
                targets.emplace_back(PathRef{asset_path(mix(p * kRefsPerPage + k) % n)});
            Node page;
            page.path = "/content/site/p" + padded(p, 6);
            page.kind = NodeKind::page;
            page.properties["refs"] = Property::multi(PropertyType::path, std::move(targets));
            session->create(page);
        }
        session->commit();
    }
    double index_build = seconds_since(t0);
    const std::string subtree = "/content/dam/bench/d000";
    std::uint64_t found = 0;
    double wharf_refs = best_of(3, [&] {
        found = repo->referrers_under(subtree, false, [](const Reference&) { return true; });
    });
    std::uint64_t raw_found = 0;
    double floor_refs = best_of(3, [&] { raw_found = raw_referrers(raw_wharf_db, subtree); });
    rows.push_back({"referrers of a " + std::to_string(std::min(n, kSubtreeAssets)) +
                        "-asset subtree (" + std::to_string(found) + " rows of " +
                        std::to_string(refs) + ")",
                    found / wharf_refs, raw_found / floor_refs, "rows/s"});

    for (const auto& r : rows)
        std::printf("| %llu | %s | %.0f %s | %.0f %s | %.2f |\n",
                    static_cast<unsigned long long>(n), r.what.c_str(), r.wharf_rate,
                    r.unit.c_str(), r.floor_rate, r.unit.c_str(), r.floor_rate / r.wharf_rate);
    std::printf("| %llu | building the index (%llu refs via the API) | %.0f refs/s | | |\n",
                static_cast<unsigned long long>(n), static_cast<unsigned long long>(refs),
                refs / index_build);
    std::printf("| %llu | peak RSS (VmHWM) | %.1f MiB | | |\n", static_cast<unsigned long long>(n),
                bench::peak_rss_kib() / 1024.0);
    for (const auto& r : rows) {
        double ratio = r.floor_rate / r.wharf_rate;
        bench::summary(bench::format("repository: %s, N = %llu", r.what.c_str(),
                                     static_cast<unsigned long long>(n)),
                       bench::format("%.0f %s", r.wharf_rate, r.unit.c_str()),
                       bench::format("%.0f %s (raw SQLite)", r.floor_rate, r.unit.c_str()), ratio,
                       "<= 3 x floor", ratio <= 3);
    }
    bench::summary(bench::format("repository: peak RSS, N = %llu",
                                 static_cast<unsigned long long>(n)),
                   bench::mib(bench::peak_rss_kib()), "", NAN, "flat in N", std::nullopt);
    std::fflush(stdout);
    repo.reset();
    fs::remove_all(dir);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::uint64_t> sizes;
    std::uint64_t refs = 1'000'000;
    fs::path dir = fs::temp_directory_path() / ("wharf-bench-repo-" + std::to_string(::getpid()));
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--child" && i + 3 < argc)
            return run_one(std::stoull(argv[i + 1]), std::stoull(argv[i + 2]), argv[i + 3]);
        if (a == "--refs" && i + 1 < argc) {
            refs = std::stoull(argv[++i]);
        } else if (a == "--dir" && i + 1 < argc) {
            dir = argv[++i];
        } else {
            sizes.push_back(std::stoull(a));
        }
    }
    if (sizes.empty()) sizes = {10'000, 100'000};
    std::printf("| N | operation | wharf | raw SQLite floor | wharf time / floor time |\n");
    std::printf("|---|---|---|---|---|\n");
    std::fflush(stdout);
    for (auto n : sizes) {
        // A child per N: VmHWM is then that run's own peak.
        pid_t pid = ::fork();
        if (pid == 0) {
            auto self = fs::read_symlink("/proc/self/exe").string();
            auto child_dir = (dir / std::to_string(n)).string();
            auto ns = std::to_string(n), rs = std::to_string(refs);
            execl(self.c_str(), self.c_str(), "--child", ns.c_str(), rs.c_str(), child_dir.c_str(),
                  static_cast<char*>(nullptr));
            std::_Exit(127);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            std::fprintf(stderr, "bench_repository: run with N=%llu failed\n",
                         static_cast<unsigned long long>(n));
            return 1;
        }
    }
    fs::remove_all(dir);
    return 0;
}
