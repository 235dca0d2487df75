// bench_operations: the move and delete plugins against raw SQLite floors.
//
//   bench_operations [--assets N,...] [--refs R,...] [--dir DIR]
//       (default: --assets 10000,100000, R = 10 x N for each N, DIR under /dev/shm)
//
// For each N a child process generates a repository with the host's content
// generator: N assets in folders of 1,000 under /content/dam/bench, and pages with 100 references each (half Path
// property values, half links in page text), enough pages that about R of
// those references point into /content/dam/bench. The database is then copied
// (binaries hard-linked), so that each measurement starts from the same
// bytes:
//
//   move    the real move plugin (plugins/move/move.so, loaded by the host's
//           PluginManager as wharfd loads it) moves /content/dam/bench to
//           /content/dam/moved/bench and rewrites every reference to it
//           (validate, count and run, as the submission service calls them).
//           Floor: the same rows changed with plain statements through the
//           SQLite C API in batches of the same size (250 referrers): one
//           UPDATE of the subtree's paths, then per referrer its Path values
//           and text rewritten (the repository's own value codec and link
//           rewriter, which are pure functions) and its index rows updated.
//   delete  the real delete plugin deletes /content/dam/bench (N assets and
//           their folders) from a copy with the pages removed (no references
//           in the way). Floor: DELETE of each node's property, reference and
//           node rows by id, 500 nodes per transaction, as the plugin's batch.
//
// Both sides use the repository's pragmas (WAL, synchronous=NORMAL, 16 MB
// cache). Report rows and job log lines go to a counting JobContext (what
// the job store does with them is measured by bench_jobs). The end states are
// compared (node and reference counts, no reference left to the old paths) and
// the run fails if they differ. Each measurement runs in a fresh process, so
// the peak RSS (VmHWM) reported is its own. Prints a Markdown table; no
// assertions on times. Run a Release build.
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "base/log.hpp"
#include "modules/plugin_manager.hpp"
#include "modules/service_registry.hpp"
#include "repository/generator.hpp"
#include "repository/links.hpp"
#include "repository/path.hpp"
#include "repository/sqlite_repository.hpp"
#include "repository/value_codec.hpp"
#include "wharf/jobs.hpp"
#include "wharf/operations.hpp"

namespace fs = std::filesystem;
using namespace wharf;
using Clock = std::chrono::steady_clock;
using boost::property_tree::ptree;

namespace {

constexpr const char* kSource = "/content/dam/bench";
constexpr const char* kDestinationParent = "/content/dam/moved";
constexpr const char* kTarget = "/content/dam/moved/bench";
constexpr std::uint64_t kRefsPerPage = 100;
constexpr std::size_t kMoveBatch = 250;    // MoveOperation::kReferrerBatch
constexpr std::size_t kDeleteBatch = 500;  // operations/delete.yaml batch_size default

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Peak RSS since the last reset_peak_rss(), in MiB.
double peak_rss_mib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    return 0;
}

// Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0), so
// each phase reports its own peak.
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

void fail(const std::string& what) {
    std::fprintf(stderr, "bench_operations: %s\n", what.c_str());
    std::exit(1);
}

// --- raw SQLite -----------------------------------------------------------------------

class Raw {
public:
    explicit Raw(const fs::path& file) {
        if (sqlite3_open(file.c_str(), &db_) != SQLITE_OK) fail("open " + file.string());
        exec(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;"
            "PRAGMA temp_store=FILE; PRAGMA cache_size=-16000;");
    }
    ~Raw() {
        for (auto* s : statements_) sqlite3_finalize(s);
        sqlite3_close(db_);
    }
    Raw(const Raw&) = delete;
    Raw& operator=(const Raw&) = delete;

    void exec(const std::string& sql) {
        char* error = nullptr;
        if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK)
            fail(sql + ": " + (error ? error : "?"));
    }
    sqlite3_stmt* prepare(const std::string& sql) {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK)
            fail(sql + ": " + sqlite3_errmsg(db_));
        statements_.push_back(s);
        return s;
    }
    bool step(sqlite3_stmt* s) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) return true;
        if (rc != SQLITE_DONE) fail(std::string("step: ") + sqlite3_errmsg(db_));
        sqlite3_reset(s);
        return false;
    }
    void run(sqlite3_stmt* s) {
        while (step(s)) {
        }
    }
    std::int64_t scalar(const std::string& sql) {
        auto* s = prepare(sql);
        std::int64_t v = step(s) ? sqlite3_column_int64(s, 0) : 0;
        sqlite3_reset(s);
        return v;
    }
    sqlite3* db() const { return db_; }

private:
    sqlite3* db_ = nullptr;
    std::vector<sqlite3_stmt*> statements_;
};

void bind_text(sqlite3_stmt* s, int i, std::string_view v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

std::string column(sqlite3_stmt* s, int i) {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_blob(s, i));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s, i))) : std::string();
}

// The subtree bounds as the repository binds them (?1 root, ?2 children, ?3 end).
const char* kInRange = " >= ?1 AND %s < ?3 AND (%s = ?1 OR %s >= ?2)";

std::string in_range(const char* column) {
    char buffer[160];
    std::snprintf(buffer, sizeof buffer, kInRange, column, column, column);
    return std::string(column) + buffer;
}

void bind_range(sqlite3_stmt* s, std::string_view root) {
    auto r = host::repo::subtree_range(root);
    bind_text(s, 1, r.low);
    bind_text(s, 2, r.children);
    bind_text(s, 3, r.high);
}

struct Outcome {
    double seconds = 0;
    std::uint64_t items = 0;  // references rewritten (move) or nodes deleted (delete)
    double peak_mib = 0;
};

Outcome raw_move(const fs::path& db_file) {
    Raw raw(db_file);
    reset_peak_rss();
    auto t0 = Clock::now();
    Outcome out;
    raw.exec("BEGIN IMMEDIATE");
    {
        auto* paths = raw.prepare("UPDATE nodes SET path = ?4 || substr(path, length(?1) + 1) WHERE " +
                                  in_range("path"));
        bind_range(paths, kSource);
        bind_text(paths, 4, kTarget);
        raw.run(paths);
        auto* root = raw.prepare(
            "UPDATE nodes SET parent_id = (SELECT id FROM nodes WHERE path = ?1) WHERE path = ?2");
        bind_text(root, 1, kDestinationParent);
        bind_text(root, 2, kTarget);
        raw.run(root);
    }
    raw.exec("COMMIT");

    // The referrers, found once; then their rows, a batch at a time.
    std::vector<std::int64_t> referrers;
    {
        auto* q = raw.prepare("SELECT DISTINCT from_id FROM refs WHERE " + in_range("to_path"));
        bind_range(q, kSource);
        while (raw.step(q)) referrers.push_back(sqlite3_column_int64(q, 0));
    }
    auto* properties = raw.prepare(
        "SELECT name, value FROM properties WHERE node_id = ?1 AND type = " +
        std::to_string(static_cast<int>(PropertyType::path)));
    auto* set_property =
        raw.prepare("UPDATE properties SET value = ?3 WHERE node_id = ?1 AND name = ?2");
    auto* text = raw.prepare("SELECT text FROM nodes WHERE id = ?1");
    auto* set_text = raw.prepare("UPDATE nodes SET text = ?2 WHERE id = ?1");
    auto* refs = raw.prepare("UPDATE refs SET to_path = ?4 || substr(to_path, length(?1) + 1) "
                             "WHERE from_id = ?5 AND " +
                             in_range("+to_path"));  // '+': by the key, not the to_path index
    bind_range(refs, kSource);
    bind_text(refs, 4, kTarget);
    const std::string from = kSource, to = kTarget;
    auto rewrite = [&](std::string& path) {
        if (!host::repo::is_same_or_under(path, from)) return false;
        path = host::repo::replace_prefix(path, from, to);
        return true;
    };
    for (std::size_t i = 0; i < referrers.size(); i += kMoveBatch) {
        raw.exec("BEGIN IMMEDIATE");
        for (std::size_t k = i; k < std::min(referrers.size(), i + kMoveBatch); ++k) {
            auto id = referrers[k];
            sqlite3_bind_int64(properties, 1, id);
            struct Changed {
                std::string name, value;
                bool packed;
            };
            std::vector<Changed> changed;
            while (raw.step(properties)) {
                auto name = column(properties, 0);
                auto value = column(properties, 1);
                std::uint64_t n = 0;
                const bool packed = sqlite3_column_type(properties, 1) == SQLITE_BLOB;
                if (packed) {
                    auto values = host::repo::unpack_values(PropertyType::path, value);
                    for (auto& v : values) n += rewrite(std::get<PathRef>(v).path);
                    if (n > 0) value = host::repo::pack_values(PropertyType::path, values);
                } else {
                    n += rewrite(value);
                }
                if (n == 0) continue;
                out.items += n;
                changed.push_back({std::move(name), std::move(value), packed});
            }
            for (const auto& c : changed) {
                sqlite3_bind_int64(set_property, 1, id);
                bind_text(set_property, 2, c.name);
                if (c.packed)
                    sqlite3_bind_blob(set_property, 3, c.value.data(),
                                      static_cast<int>(c.value.size()), SQLITE_TRANSIENT);
                else
                    bind_text(set_property, 3, c.value);
                raw.run(set_property);
            }
            sqlite3_bind_int64(text, 1, id);
            std::string body;
            if (raw.step(text)) body = column(text, 0);
            sqlite3_reset(text);
            if (auto n = host::repo::rewrite_links(body, from, to); n > 0) {
                out.items += n;
                sqlite3_bind_int64(set_text, 1, id);
                bind_text(set_text, 2, body);
                raw.run(set_text);
            }
            sqlite3_bind_int64(refs, 5, id);
            raw.run(refs);
        }
        raw.exec("COMMIT");
    }
    out.seconds = seconds_since(t0);
    out.peak_mib = peak_rss_mib();
    return out;
}

Outcome raw_delete(const fs::path& db_file) {
    Raw raw(db_file);
    reset_peak_rss();
    auto t0 = Clock::now();
    Outcome out;
    // Assets first, then the folders deepest first, as the plugin orders them.
    std::vector<std::int64_t> ids;
    {
        auto* q = raw.prepare("SELECT id FROM nodes WHERE " + in_range("path") +
                              " ORDER BY kind <> " +
                              std::to_string(static_cast<int>(NodeKind::asset)) +
                              ", length(path) - length(replace(path, '/', '')) DESC, path");
        bind_range(q, kSource);
        while (raw.step(q)) ids.push_back(sqlite3_column_int64(q, 0));
    }
    auto* properties = raw.prepare("DELETE FROM properties WHERE node_id = ?1");
    auto* refs = raw.prepare("DELETE FROM refs WHERE from_id = ?1");
    auto* nodes = raw.prepare("DELETE FROM nodes WHERE id = ?1");
    for (std::size_t i = 0; i < ids.size(); i += kDeleteBatch) {
        raw.exec("BEGIN IMMEDIATE");
        for (std::size_t k = i; k < std::min(ids.size(), i + kDeleteBatch); ++k) {
            for (auto* s : {properties, refs, nodes}) {
                sqlite3_bind_int64(s, 1, ids[k]);
                raw.run(s);
            }
            out.items += static_cast<std::uint64_t>(sqlite3_changes(raw.db()));
        }
        raw.exec("COMMIT");
    }
    out.seconds = seconds_since(t0);
    out.peak_mib = peak_rss_mib();
    return out;
}

// --- the plugins, as the host runs them ---------------------------------------------

// A JobContext that keeps checkpoints and counts the rest.
class CountingContext final : public JobContext {
public:
    explicit CountingContext(ptree payload) : payload_(std::move(payload)) { job_.id = 1; }
    const Job& job() const override { return job_; }
    const ptree& payload() const override { return payload_; }
    void init_progress(std::int64_t total) override { total_ = total; }
    void increment_progress(std::int64_t steps) override { done_ += steps; }
    void log(std::string_view) override { ++lines_; }
    void report_row(std::vector<std::string>) override { ++job_.report_rows; }
    void checkpoint(std::string_view key, std::string_view value) override {
        checkpoints_[std::string(key)] = std::string(value);
    }
    std::optional<std::string> checkpoint(std::string_view key) const override {
        auto it = checkpoints_.find(std::string(key));
        if (it == checkpoints_.end()) return std::nullopt;
        return it->second;
    }
    bool is_stopped() const override { return false; }

private:
    Job job_;
    ptree payload_;
    std::int64_t total_ = 0, done_ = 0, lines_ = 0;
    std::map<std::string, std::string> checkpoints_;
};

// The plugins in the build's plugin folder, deployed by a PluginManager (with
// the out-of-process probe) onto `repository`, which is registered as the
// wharf.Repository service.
class PluginHost {
public:
    PluginHost(std::shared_ptr<host::SqliteRepository> repository, const fs::path& work_dir)
        : repository_(std::move(repository)) {
        registration_ = registry_.register_service(
            host::Owner{"bench", 0}, nullptr, interfaces::kRepository,
            std::static_pointer_cast<void>(std::static_pointer_cast<Repository>(repository_)),
            {}, 0);
        fs::create_directories(work_dir / "plugins");
        host::PluginManagerOptions po;
        po.plugins_dir = work_dir / "plugins";
        po.cache_dir = work_dir / "plugin-cache";
        po.plugin_data_dir = work_dir / "plugin-data";
        po.probe_executable = WHARF_PROBE_EXECUTABLE;
        po.watch = false;
        plugins_ = std::make_unique<host::PluginManager>(registry_, po);
        plugins_->start();
        for (const char* name : {"move.so", "delete.so"}) {
            auto target = work_dir / "plugins" / name;
            fs::copy_file(fs::path(WHARF_PLUGIN_DIR) / name, target,
                          fs::copy_options::overwrite_existing);
            plugins_->deploy(target);
        }
    }
    ~PluginHost() {
        plugins_->stop_all();
        registration_->unregister();
    }
    PluginHost(const PluginHost&) = delete;
    PluginHost& operator=(const PluginHost&) = delete;

    std::shared_ptr<Operation> operation(const std::string& name) {
        auto found = registry_.find(interfaces::kOperation, {{"operation.name", name}});
        if (!found) fail("operation " + name + " is not registered; build the move and delete plugins");
        return std::static_pointer_cast<Operation>(found->service);
    }

private:
    std::shared_ptr<host::SqliteRepository> repository_;
    host::ServiceRegistryImpl registry_;
    std::shared_ptr<ServiceRegistration> registration_;
    std::unique_ptr<host::PluginManager> plugins_;
};

// Validate, count and run, as the submission service does for an inline run.
Outcome run_operation(const fs::path& repo_dir, const fs::path& work_dir, const std::string& name,
                      const ptree& request, std::uint64_t* items_from_message) {
    auto repository = host::SqliteRepository::open(repo_dir);
    PluginHost host(repository, work_dir);
    auto operation = host.operation(name);
    reset_peak_rss();
    auto t0 = Clock::now();
    operation->validate(request);
    operation->count(request);
    CountingContext context(request);
    auto result = operation->run(context);
    Outcome out;
    out.seconds = seconds_since(t0);
    out.peak_mib = peak_rss_mib();
    if (result.outcome != JobResult::Outcome::succeeded) fail(name + " did not succeed: " + result.message);
    // "rewrote 123 references" / "deleted 123 nodes": the plugin's own count.
    std::istringstream words(result.message);
    std::string word, previous;
    while (words >> word) {
        if ((word == "references" || word == "nodes") && !previous.empty() &&
            std::isdigit(static_cast<unsigned char>(previous.front()))) {
            previous.erase(std::remove(previous.begin(), previous.end(), ','), previous.end());
            *items_from_message = std::stoull(previous);
        }
        previous = word;
    }
    return out;
}

ptree move_request() {
    ptree request, sources;
    sources.push_back({"", ptree(kSource)});
    request.add_child("sources", sources);
    request.put("destination", kDestinationParent);
    return request;
}

ptree delete_request() {
    ptree request, paths;
    paths.push_back({"", ptree(kSource)});
    request.add_child("paths", paths);
    return request;
}

// The database file alone, WAL folded in; binaries hard-linked.
void copy_repository(const fs::path& from, const fs::path& to) {
    fs::create_directories(to);
    fs::copy(from / "blobs", to / "blobs",
             fs::copy_options::recursive | fs::copy_options::create_hard_links);
    fs::copy_file(from / "repository.db", to / "repository.db");
}

void checkpoint_wal(const fs::path& repo_dir) {
    Raw raw(repo_dir / "repository.db");
    raw.exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

// What both sides must agree on after the change.
std::string end_state(const fs::path& repo_dir) {
    Raw raw(repo_dir / "repository.db");
    auto q = [&](const std::string& sql) { return std::to_string(raw.scalar(sql)); };
    auto r = host::repo::subtree_range(kSource);
    std::string old_refs = "SELECT count(*) FROM refs WHERE to_path >= '" + r.low +
                           "' AND to_path < '" + r.high + "'";
    return "nodes=" + q("SELECT count(*) FROM nodes") + " refs=" + q("SELECT count(*) FROM refs") +
           " refs_to_old=" + q(old_refs) +
           " properties=" + q("SELECT count(*) FROM properties");
}

// One measurement in a process of its own (exec'd afresh, so that its peak
// RSS is that measurement's alone); it leaves "seconds items peak" in a file.
Outcome measure(const std::string& phase, const fs::path& dir) {
    auto result = dir / ("result-" + phase);
    pid_t pid = ::fork();
    if (pid == 0) {
        auto self = fs::read_symlink("/proc/self/exe").string();
        execl(self.c_str(), self.c_str(), "--phase", phase.c_str(), dir.c_str(),
              static_cast<char*>(nullptr));
        std::_Exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail(phase + " failed");
    Outcome out;
    std::ifstream(result) >> out.seconds >> out.items >> out.peak_mib;
    return out;
}

int run_phase(const std::string& phase, const fs::path& dir) {
    host::set_log_level("warn");
    Outcome out;
    std::uint64_t items = 0;
    if (phase == "move-wharf") {
        out = run_operation(dir / phase, dir / "host-move", "asset-move", move_request(), &items);
        out.items = items;
    } else if (phase == "move-raw") {
        out = raw_move(dir / phase / "repository.db");
    } else if (phase == "delete-wharf") {
        out = run_operation(dir / phase, dir / "host-delete", "asset-delete", delete_request(),
                            &items);
        out.items = items;
    } else if (phase == "delete-raw") {
        out = raw_delete(dir / phase / "repository.db");
    } else {
        return 2;
    }
    std::ofstream(dir / ("result-" + phase)) << out.seconds << ' ' << out.items << ' '
                                             << out.peak_mib << '\n';
    return 0;
}

struct Row {
    std::string what;
    std::string unit;
    Outcome wharf, floor;
};

int run_one(std::uint64_t n, std::uint64_t refs, const fs::path& dir) {
    host::set_log_level("warn");
    fs::remove_all(dir);
    fs::create_directories(dir);
    const auto gen = dir / "gen";
    auto setup = Clock::now();
    {
        auto repository = host::SqliteRepository::open(gen);
        host::ContentGeneratorOptions o;
        o.assets_root = kSource;
        o.assets = n;
        o.assets_per_folder = 1000;
        o.folders_per_group = 10;
        o.pages_root = "/content/site/en";
        // 8 in 10 generated references point at assets.
        o.pages = std::max<std::uint64_t>(1, (refs * 10 / 8 + kRefsPerPage - 1) / kRefsPerPage);
        o.pages_per_section = 100;
        o.references_per_page = kRefsPerPage;
        o.min_binary_bytes = 64;
        o.max_binary_bytes = 128;
        o.batch_size = 2000;
        host::generate_content(*repository, o);
        auto s = repository->open_session();
        s->create_folders(kDestinationParent);
        s->commit();
    }
    checkpoint_wal(gen);
    std::uint64_t into = 0;
    {
        Raw raw(gen / "repository.db");
        auto r = host::repo::subtree_range(kSource);
        into = static_cast<std::uint64_t>(
            raw.scalar("SELECT count(*) FROM refs WHERE to_path >= '" + r.low +
                       "' AND to_path < '" + r.high + "'"));
    }
    // The delete starts from the same tree without the pages.
    const auto assets_only = dir / "assets-only";
    copy_repository(gen, assets_only);
    {
        Raw raw(assets_only / "repository.db");
        raw.exec(
            "BEGIN; DELETE FROM refs; DELETE FROM properties WHERE node_id IN (SELECT id FROM "
            "nodes WHERE path >= '/content/site' AND path < '/content/site0');"
            "DELETE FROM nodes WHERE path >= '/content/site' AND path < '/content/site0'; COMMIT;"
            "PRAGMA wal_checkpoint(TRUNCATE)");
    }
    for (const char* copy : {"move-wharf", "move-raw"}) copy_repository(gen, dir / copy);
    for (const char* copy : {"delete-wharf", "delete-raw"})
        copy_repository(assets_only, dir / copy);
    std::fprintf(stderr, "N=%llu: %llu references into %s, set up in %.1f s\n",
                 static_cast<unsigned long long>(n), static_cast<unsigned long long>(into), kSource,
                 seconds_since(setup));

    std::vector<Row> rows;
    {
        Row row{"move " + std::to_string(n) + " assets, rewrite " + std::to_string(into) +
                    " references",
                "refs/s", {}, {}};
        row.wharf = measure("move-wharf", dir);
        row.floor = measure("move-raw", dir);
        auto a = end_state(dir / "move-wharf"), b = end_state(dir / "move-raw");
        if (a != b || row.wharf.items != row.floor.items)
            fail("move end states differ: wharf " + a + " rewrote " +
                 std::to_string(row.wharf.items) + "; raw " + b + " rewrote " +
                 std::to_string(row.floor.items));
        rows.push_back(row);
    }
    {
        Row row{"delete " + std::to_string(n) + " assets (and their folders)", "nodes/s", {}, {}};
        row.wharf = measure("delete-wharf", dir);
        row.floor = measure("delete-raw", dir);
        auto a = end_state(dir / "delete-wharf"), b = end_state(dir / "delete-raw");
        if (a != b || row.wharf.items != row.floor.items)
            fail("delete end states differ: wharf " + a + "; raw " + b);
        rows.push_back(row);
    }
    for (const auto& r : rows)
        std::printf("| %llu | %s | %.2f s, %.0f %s | %.2f s, %.0f %s | %.2f | %.1f / %.1f MiB |\n",
                    static_cast<unsigned long long>(n), r.what.c_str(), r.wharf.seconds,
                    r.wharf.items / r.wharf.seconds, r.unit.c_str(), r.floor.seconds,
                    r.floor.items / r.floor.seconds, r.unit.c_str(),
                    r.wharf.seconds / r.floor.seconds, r.wharf.peak_mib, r.floor.peak_mib);
    for (const auto& r : rows) {
        using wharf::bench::format;
        std::string op = r.what.substr(0, r.what.find(' '));
        double ratio = r.wharf.seconds / r.floor.seconds;
        wharf::bench::summary(
            "operations: " + r.what,
            format("%.0f %s (%.2f s)", r.wharf.items / r.wharf.seconds, r.unit.c_str(),
                   r.wharf.seconds),
            format("%.0f %s (raw SQLite)", r.floor.items / r.floor.seconds, r.unit.c_str()),
            ratio, "<= 3 x floor", ratio <= 3);
        wharf::bench::summary(
            format("operations: %s peak RSS, N = %llu", op.c_str(),
                   static_cast<unsigned long long>(n)),
            format("%.1f MiB", r.wharf.peak_mib), format("%.1f MiB (raw SQLite)", r.floor.peak_mib),
            r.wharf.peak_mib / r.floor.peak_mib, "flat in N", std::nullopt);
    }
    std::fflush(stdout);
    fs::remove_all(dir);
    return 0;
}

std::vector<std::uint64_t> numbers(const std::string& list) {
    std::vector<std::uint64_t> out;
    std::stringstream in(list);
    std::string item;
    while (std::getline(in, item, ',')) out.push_back(std::stoull(item));
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::uint64_t> sizes, refs;
    fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    fs::path dir = base / ("wharf-bench-ops-" + std::to_string(::getpid()));
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--phase" && i + 2 < argc) return run_phase(argv[i + 1], argv[i + 2]);
        if (a == "--child" && i + 3 < argc)
            return run_one(std::stoull(argv[i + 1]), std::stoull(argv[i + 2]), argv[i + 3]);
        if (a == "--assets" && i + 1 < argc) {
            sizes = numbers(argv[++i]);
        } else if (a == "--refs" && i + 1 < argc) {
            refs = numbers(argv[++i]);
        } else if (a == "--dir" && i + 1 < argc) {
            dir = argv[++i];
        } else {
            std::fprintf(stderr,
                         "usage: bench_operations [--assets N,...] [--refs R,...] [--dir DIR]\n");
            return 2;
        }
    }
    if (sizes.empty()) sizes = {10'000, 100'000};
    std::printf(
        "| N | operation | wharf (time, rate) | raw SQLite floor | wharf time / floor time | "
        "peak RSS wharf / floor |\n");
    std::printf("|---|---|---:|---:|---:|---:|\n");
    std::fflush(stdout);
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        auto n = sizes[i];
        auto r = refs.empty() ? 10 * n : refs[std::min(i, refs.size() - 1)];
        // A child per N: its peak RSS is that run's own.
        pid_t pid = ::fork();
        if (pid == 0) {
            auto self = fs::read_symlink("/proc/self/exe").string();
            auto child_dir = (dir / std::to_string(n)).string();
            auto ns = std::to_string(n), rs = std::to_string(r);
            execl(self.c_str(), self.c_str(), "--child", ns.c_str(), rs.c_str(), child_dir.c_str(),
                  static_cast<char*>(nullptr));
            std::_Exit(127);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            std::fprintf(stderr, "bench_operations: run with N=%llu failed\n",
                         static_cast<unsigned long long>(n));
            fs::remove_all(dir);
            return 1;
        }
    }
    fs::remove_all(dir);
    return 0;
}
