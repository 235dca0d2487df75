// bench_metadata: the metadata plugin's CSV export and import against raw floors.
//
//   bench_metadata [--batch B] [--runs R] [--dir DIR] [N ...]
//       (default: 10000 100000, B = 100, R = 3)
//
// For each N a child process (so that its peaks are that run's own) builds a
// repository of N assets in folders of 1,000 under /content/dam/bench, each
// with 10 properties of mixed types: four Strings (one with a comma and quotes
// on every tenth asset, so it is quoted), a String multi-value (3 values), two
// Longs, a Double, a Boolean, a Date and a Path (which the reference index
// records). The same assets without properties go to two more repositories,
// the import targets. Then:
//
//   export  the real metadata plugin (plugins/metadata.so, loaded by the
//           host's PluginManager as wharfd loads it) exports the folder:
//           validate, count, describe and run, as the submission service
//           calls them. Floor: one plain SQLite SELECT of the same nodes and
//           property rows (every column read, nothing built), plus writing the
//           CSV bytes the plugin wrote to a file (64 KiB writes).
//   import  the plugin imports that CSV (stored as an asset) into the first
//           bare repository, `batch_size` B, validate + count + describe +
//           run. Floor: reading the same CSV bytes from a file (64 KiB reads),
//           plus the same rows written to the second bare repository with
//           plain statements: per asset its id by path, 10 property upserts,
//           its Path value's reference rows replaced, `modified` touched; B
//           assets and a checkpoint row per transaction. The values the floor
//           writes are prepared outside its timed sections.
//
// Each is run R times, the plugin and its floor in turns (each import into a
// fresh copy), and the shortest time of each side is kept: on a shared machine
// the spread between runs is larger than the difference being measured. Both
// sides use the repository's pragmas (WAL, synchronous=NORMAL). The end states
// are compared (property rows, their bytes, reference rows) and the run fails
// if they differ. Peak RSS (VmHWM) is the plugin phases' own: it is reset
// (clear_refs) once the host and plugin are loaded, so it is that baseline
// plus what the operation adds, in the first round (before any floor). The
// repositories are built by a child process. Prints a Markdown
// table; no assertions on times. Run a Release build.
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/log.hpp"
#include "bench_util.hpp"
#include "modules/plugin_manager.hpp"
#include "modules/service_registry.hpp"
#include "repository/path.hpp"
#include "repository/sqlite_repository.hpp"
#include "repository/value_codec.hpp"
#include "wharf/jobs.hpp"
#include "wharf/operations.hpp"

namespace fs = std::filesystem;
using namespace wharf;
using bench::Clock;
using bench::seconds_since;
using boost::property_tree::ptree;

namespace {

constexpr const char* kRoot = "/content/dam/bench";
constexpr const char* kCsvAsset = "/var/import/bench.csv";
constexpr std::uint64_t kAssetsPerFolder = 1000;
constexpr std::size_t kChunk = 64 * 1024;

void fail(const std::string& what) {
    std::fprintf(stderr, "bench_metadata: %s\n", what.c_str());
    std::exit(1);
}

// Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

double rss_mib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    return 0;
}

std::string padded(std::uint64_t n, int width) {
    auto s = std::to_string(n);
    return std::string(width - std::min<std::size_t>(width, s.size()), '0') + s;
}

std::string folder_of(std::uint64_t i) {
    return std::string(kRoot) + "/f" + padded(i / kAssetsPerFolder, 4);
}

std::string asset_path(std::uint64_t i) { return folder_of(i) + "/a" + padded(i, 7) + ".jpg"; }

// The 10 properties of asset i of n.
PropertyMap properties_of(std::uint64_t i, std::uint64_t n) {
    PropertyMap p;
    auto k = static_cast<std::int64_t>(i);
    p["dc:title"] = Property::string(i % 10 == 0 ? "Asset " + std::to_string(i) + ", \"quoted\""
                                                 : "Asset " + std::to_string(i));
    p["dc:description"] =
        Property::string("A generated asset for the metadata benchmark, number " +
                         std::to_string(i) + " of " + std::to_string(n));
    p["dc:format"] = Property::string("image/jpeg");
    p["dc:rights"] = Property::string("(c) Wharf bench " + std::to_string(i % 97));
    p["dc:subject"] =
        Property::multi(PropertyType::string, {std::string("bench"), "group-" + std::to_string(i % 7),
                                               "tag-" + std::to_string(i % 101)});
    p["xmp:Rating"] = Property::long_(k % 6);
    p["dam:size"] = Property::long_(100'000 + k * 37);
    p["tiff:XResolution"] = Property::double_(72.0 + static_cast<double>(i % 5) * 0.5);
    p["dam:isPublished"] = Property::boolean(i % 3 == 0);
    p["dc:created"] = Property::date(Date(std::chrono::milliseconds(1'700'000'000'000LL + k * 1000)));
    p["related"] = Property::path(asset_path((i * 7919 + 1) % n));
    return p;
}

// --- the plugin, as the host runs it --------------------------------------------------

// A JobContext of job 1 that keeps checkpoints and the attached result, and
// counts the rest.
class BenchContext final : public JobContext {
public:
    explicit BenchContext(ptree payload) : payload_(std::move(payload)) { job_.id = 1; }
    const Job& job() const override { return job_; }
    const ptree& payload() const override { return payload_; }
    void init_progress(std::int64_t) override {}
    void increment_progress(std::int64_t) override {}
    void log(std::string_view) override {}
    void report_row(std::vector<std::string>) override { ++report_rows; }
    void checkpoint(std::string_view key, std::string_view value) override {
        checkpoints_[std::string(key)] = std::string(value);
    }
    std::optional<std::string> checkpoint(std::string_view key) const override {
        auto it = checkpoints_.find(std::string(key));
        if (it == checkpoints_.end()) return std::nullopt;
        return it->second;
    }
    bool is_stopped() const override { return false; }
    void attach_result(const fs::path& file, std::string_view, std::string_view) override {
        result = file;
    }

    fs::path result;
    std::uint64_t report_rows = 0;

private:
    Job job_;
    ptree payload_;
    std::map<std::string, std::string> checkpoints_;
};

// metadata.so from the build's plugin folder, deployed by a PluginManager
// (with the out-of-process probe) onto `repository`.
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
        auto target = work_dir / "plugins" / "metadata.so";
        fs::copy_file(fs::path(WHARF_PLUGIN_DIR) / "metadata.so", target,
                      fs::copy_options::overwrite_existing);
        plugins_->deploy(target);
    }
    ~PluginHost() {
        plugins_->stop_all();
        registration_->unregister();
    }
    PluginHost(const PluginHost&) = delete;
    PluginHost& operator=(const PluginHost&) = delete;

    std::shared_ptr<Operation> operation(const std::string& name) {
        auto found = registry_.find(interfaces::kOperation, {{"operation.name", name}});
        if (!found) fail("operation " + name + " is not registered; build the metadata plugin");
        return std::static_pointer_cast<Operation>(found->service);
    }

private:
    std::shared_ptr<host::SqliteRepository> repository_;
    host::ServiceRegistryImpl registry_;
    std::shared_ptr<ServiceRegistration> registration_;
    std::unique_ptr<host::PluginManager> plugins_;
};

struct Phase {
    double seconds = 0;
    double base_mib = 0;  // RSS with the host and plugin loaded, before the operation
    double peak_mib = 0;  // VmHWM during the operation
};

// Validate, count, describe and run, as the submission service calls them.
Phase run_operation(PluginHost& host, const std::string& name, const ptree& request,
                    BenchContext& context) {
    auto operation = host.operation(name);
    Phase out;
    out.base_mib = rss_mib();
    reset_peak_rss();
    auto t0 = Clock::now();
    operation->validate(request);
    auto count = operation->count(request);
    operation->describe(request, count);
    auto result = operation->run(context);
    out.seconds = seconds_since(t0);
    out.peak_mib = static_cast<double>(bench::peak_rss_kib()) / 1024.0;
    if (result.outcome != JobResult::Outcome::succeeded)
        fail(name + " did not succeed: " + result.message);
    return out;
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
    std::string text(const std::string& sql) {
        auto* s = prepare(sql);
        std::string out;
        if (step(s)) {
            for (int i = 0; i < sqlite3_column_count(s); ++i) {
                auto* v = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
                out += (i ? " " : "") + std::string(v ? v : "null");
            }
            sqlite3_reset(s);
        }
        return out;
    }

private:
    sqlite3* db_ = nullptr;
    std::vector<sqlite3_stmt*> statements_;
};

void bind_text(sqlite3_stmt* s, int i, std::string_view v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

// A property value as the repository stores it (value_codec.hpp).
void bind_value(sqlite3_stmt* s, int i, const Property& p) {
    if (host::repo::needs_packing(p)) {
        auto packed = host::repo::pack_values(p.type, p.values);
        sqlite3_bind_blob(s, i, packed.data(), static_cast<int>(packed.size()), SQLITE_TRANSIENT);
        return;
    }
    const auto& v = p.values.front();
    if (auto text = std::get_if<std::string>(&v)) {
        bind_text(s, i, *text);
    } else if (auto path = std::get_if<PathRef>(&v)) {
        bind_text(s, i, path->path);
    } else if (auto l = std::get_if<std::int64_t>(&v)) {
        sqlite3_bind_int64(s, i, *l);
    } else if (auto b = std::get_if<bool>(&v)) {
        sqlite3_bind_int64(s, i, *b ? 1 : 0);
    } else if (auto d = std::get_if<double>(&v)) {
        sqlite3_bind_double(s, i, *d);
    } else if (auto date = std::get_if<Date>(&v)) {
        sqlite3_bind_int64(s, i, date->time_since_epoch().count());
    }
}

// The export's read: every asset's node and property rows, in path order.
double floor_read(const fs::path& repo_dir, std::uint64_t& rows) {
    Raw raw(repo_dir / "repository.db");
    auto t0 = Clock::now();
    auto* q = raw.prepare(
        "SELECT n.id, n.path, p.name, p.type, p.multiple, p.value FROM nodes n LEFT JOIN "
        "properties p ON p.node_id = n.id WHERE n.path >= ?1 AND n.path < ?3 AND (n.path = ?1 OR "
        "n.path >= ?2) AND n.kind = " +
        std::to_string(static_cast<int>(NodeKind::asset)) + " ORDER BY n.path");
    auto r = host::repo::subtree_range(kRoot);
    bind_text(q, 1, r.low);
    bind_text(q, 2, r.children);
    bind_text(q, 3, r.high);
    std::uint64_t bytes = 0;
    std::int64_t last = -1;
    rows = 0;
    while (raw.step(q)) {
        auto id = sqlite3_column_int64(q, 0);
        if (id != last) ++rows;
        last = id;
        bytes += static_cast<std::uint64_t>(sqlite3_column_bytes(q, 1) + sqlite3_column_bytes(q, 2) +
                                            sqlite3_column_bytes(q, 5)) +
                 static_cast<std::uint64_t>(sqlite3_column_int(q, 3) + sqlite3_column_int(q, 4));
    }
    double s = seconds_since(t0);
    if (bytes == 0) fail("the floor read found nothing");
    return s;
}

double floor_write_file(const std::string& bytes, const fs::path& file) {
    auto t0 = Clock::now();
    {
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        for (std::size_t at = 0; at < bytes.size(); at += kChunk)
            out.write(bytes.data() + at,
                      static_cast<std::streamsize>(std::min(kChunk, bytes.size() - at)));
        out.flush();
        if (!out) fail("cannot write " + file.string());
    }
    return seconds_since(t0);
}

double floor_read_file(const fs::path& file, std::uint64_t expected) {
    auto t0 = Clock::now();
    std::ifstream in(file, std::ios::binary);
    std::vector<char> buffer(kChunk);
    std::uint64_t total = 0;
    while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0)
        total += static_cast<std::uint64_t>(in.gcount());
    double s = seconds_since(t0);
    if (total != expected) fail("the floor read " + std::to_string(total) + " CSV bytes");
    return s;
}

// The import's writes, B assets and a checkpoint per transaction.
double floor_write(const fs::path& repo_dir, std::uint64_t n, std::size_t batch) {
    Raw raw(repo_dir / "repository.db");
    auto* find = raw.prepare("SELECT id FROM nodes WHERE path = ?1");
    auto* upsert = raw.prepare(
        "INSERT INTO properties(node_id, name, type, multiple, value) VALUES (?1, ?2, ?3, ?4, ?5) "
        "ON CONFLICT(node_id, name) DO UPDATE SET type = excluded.type, multiple = "
        "excluded.multiple, value = excluded.value");
    auto* unref = raw.prepare("DELETE FROM refs WHERE from_id = ?1 AND property = ?2");
    auto* ref = raw.prepare("INSERT OR IGNORE INTO refs(from_id, property, to_path) VALUES (?1, ?2, ?3)");
    auto* touch = raw.prepare("UPDATE nodes SET modified = ?2 WHERE id = ?1");
    auto* checkpoint = raw.prepare("INSERT OR REPLACE INTO checkpoints(name, value) VALUES (?1, ?2)");
    double seconds = 0;
    std::vector<std::pair<std::string, PropertyMap>> rows;
    for (std::uint64_t first = 0; first < n; first += batch) {
        rows.clear();
        for (std::uint64_t i = first; i < std::min<std::uint64_t>(n, first + batch); ++i)
            rows.emplace_back(asset_path(i), properties_of(i, n));
        auto t0 = Clock::now();
        raw.exec("BEGIN IMMEDIATE");
        for (const auto& [path, properties] : rows) {
            bind_text(find, 1, path);
            if (!raw.step(find)) fail("no node " + path);
            auto id = sqlite3_column_int64(find, 0);
            sqlite3_reset(find);
            for (const auto& [name, property] : properties) {
                sqlite3_bind_int64(upsert, 1, id);
                bind_text(upsert, 2, name);
                sqlite3_bind_int64(upsert, 3, static_cast<std::int64_t>(property.type));
                sqlite3_bind_int64(upsert, 4, property.multiple ? 1 : 0);
                bind_value(upsert, 5, property);
                raw.run(upsert);
                sqlite3_bind_int64(unref, 1, id);
                bind_text(unref, 2, name);
                raw.run(unref);
                if (property.type == PropertyType::path) {
                    for (const auto& v : property.values) {
                        sqlite3_bind_int64(ref, 1, id);
                        bind_text(ref, 2, name);
                        bind_text(ref, 3, std::get<PathRef>(v).path);
                        raw.run(ref);
                    }
                }
            }
            sqlite3_bind_int64(touch, 1, id);
            sqlite3_bind_int64(touch, 2, 1'700'000'000'000LL);
            raw.run(touch);
        }
        bind_text(checkpoint, 1, "bench/import");
        bind_text(checkpoint, 2, "next=" + std::to_string(first + batch + 2));
        raw.run(checkpoint);
        raw.exec("COMMIT");
        seconds += seconds_since(t0);
    }
    return seconds;
}

// What the source and both import targets must agree on.
std::string end_state(const fs::path& repo_dir) {
    Raw raw(repo_dir / "repository.db");
    return raw.text(
               "SELECT count(*), sum(length(CAST(value AS BLOB))), sum(type), sum(multiple) FROM "
               "properties") +
           " refs " + raw.text("SELECT count(*) FROM refs");
}

// --- setup ----------------------------------------------------------------------------

// N bare assets (one shared binary), closed and checkpointed.
void build_bare(const fs::path& repo_dir, std::uint64_t n) {
    auto repository = host::SqliteRepository::open(repo_dir);
    auto writer = repository->write_binary();
    std::string bytes(256, 'j');
    writer->write(bytes.data(), bytes.size());
    auto binary = writer->finish("image/jpeg");
    auto session = repository->open_session({2000});
    std::string current;
    for (std::uint64_t i = 0; i < n; ++i) {
        if (folder_of(i) != current) {
            current = folder_of(i);
            session->create_folders(current);
        }
        Node node;
        node.path = asset_path(i);
        node.kind = NodeKind::asset;
        node.binary = binary;
        session->create(node);
    }
    session->commit();
    repository.reset();
    Raw(repo_dir / "repository.db").exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

void copy_repository(const fs::path& from, const fs::path& to) {
    fs::create_directories(to);
    fs::copy(from / "blobs", to / "blobs", fs::copy_options::recursive);
    fs::copy_file(from / "repository.db", to / "repository.db");
}

void add_properties(Repository& repository, std::uint64_t n) {
    auto session = repository.open_session({2000});
    for (std::uint64_t i = 0; i < n; ++i) session->set_properties(asset_path(i), properties_of(i, n));
    session->commit();
}

void put_csv(Repository& repository, const fs::path& file) {
    auto writer = repository.write_binary();
    std::ifstream in(file, std::ios::binary);
    std::vector<char> buffer(kChunk);
    while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0)
        writer->write(buffer.data(), static_cast<std::size_t>(in.gcount()));
    Node node;
    node.path = kCsvAsset;
    node.kind = NodeKind::asset;
    node.binary = writer->finish("text/csv");
    auto session = repository.open_session();
    session->create_folders("/var/import");
    session->create(node);
    session->commit();
}

std::string read_file(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The best (shortest) of several runs; the memory of the first, which runs
// before any floor in this process (the floors hold the CSV in memory).
struct Best {
    double seconds = 1e300;
    double base_mib = 0, peak_mib = 0;
    int runs = 0;
    void add(const Phase& p) {
        seconds = std::min(seconds, p.seconds);
        if (runs++ == 0) {
            base_mib = p.base_mib;
            peak_mib = p.peak_mib;
        }
    }
    void add(double s) { seconds = std::min(seconds, s); }
};

int run_one(std::uint64_t n, std::size_t batch, int runs, const fs::path& dir) {
    host::set_log_level("warn");
    fs::remove_all(dir);
    fs::create_directories(dir);
    // The repositories are built by a child, so that this process starts
    // measuring with nothing of that work in its heap.
    auto setup = Clock::now();
    pid_t pid = ::fork();
    if (pid == 0) {
        build_bare(dir / "bare", n);
        copy_repository(dir / "bare", dir / "source");
        for (int k = 0; k < runs; ++k)
            for (const char* side : {"import-wharf-", "import-floor-"})
                copy_repository(dir / "bare", dir / (side + std::to_string(k)));
        fs::remove_all(dir / "bare");
        auto source = host::SqliteRepository::open(dir / "source");
        add_properties(*source, n);
        std::_Exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("the setup failed");
    std::fprintf(stderr, "N=%llu: set up in %.1f s\n", static_cast<unsigned long long>(n),
                 seconds_since(setup));

    const fs::path csv_file = dir / "export.csv";
    std::uint64_t csv_bytes = 0;
    Best wharf_export, floor_export, wharf_import, floor_import;
    double read_rows = 1e300, write_bytes = 1e300, read_bytes = 1e300, write_rows = 1e300;
    // In rounds: the plugin's export and import, then their floors.
    for (int k = 0; k < runs; ++k) {
        const auto round = std::to_string(k);
        {
            auto source = host::SqliteRepository::open(dir / "source");
            PluginHost host(source, dir / ("work-export-" + round));
            ptree request;
            request.put("folder", kRoot);
            BenchContext context(request);
            wharf_export.add(run_operation(host, "metadata-export", request, context));
            fs::rename(context.result, csv_file);
            csv_bytes = fs::file_size(csv_file);
        }
        {
            auto target = host::SqliteRepository::open(dir / ("import-wharf-" + round));
            put_csv(*target, csv_file);
            PluginHost host(target, dir / ("work-import-" + round));
            ptree request;
            request.put("csv", kCsvAsset);
            request.put("batch_size", batch);
            BenchContext context(request);
            wharf_import.add(run_operation(host, "metadata-import", request, context));
            if (context.report_rows != 1)
                fail(std::to_string(context.report_rows - 1) + " rows refused by the import");
        }

        std::uint64_t floor_rows = 0;
        double read = floor_read(dir / "source", floor_rows);
        if (floor_rows != n) fail("the floor read " + std::to_string(floor_rows) + " assets");
        double write = 0;
        {
            auto bytes = read_file(csv_file);
            write = floor_write_file(bytes, dir / "floor.csv");
        }
        floor_export.add(read + write);
        read_rows = std::min(read_rows, read);
        write_bytes = std::min(write_bytes, write);

        read = floor_read_file(dir / "floor.csv", csv_bytes);
        write = floor_write(dir / ("import-floor-" + round), n, batch);
        floor_import.add(read + write);
        read_bytes = std::min(read_bytes, read);
        write_rows = std::min(write_rows, write);

        auto source_state = end_state(dir / "source");
        auto wharf_state = end_state(dir / ("import-wharf-" + round));
        auto floor_state = end_state(dir / ("import-floor-" + round));
        if (source_state != wharf_state || source_state != floor_state)
            fail("end states differ: source " + source_state + ", plugin import " + wharf_state +
                 ", floor import " + floor_state);
    }

    auto line = [&](const std::string& what, const Best& wharf, const Best& floor) {
        std::printf("| %llu | %s | %.0f | %.0f | %.2f | %.1f MiB (%.1f + %.1f) |\n",
                    static_cast<unsigned long long>(n), what.c_str(), n / wharf.seconds,
                    n / floor.seconds, wharf.seconds / floor.seconds, wharf.peak_mib,
                    wharf.base_mib, wharf.peak_mib - wharf.base_mib);
        using wharf::bench::format;
        std::string op = what.substr(0, what.find(' '));
        double ratio = wharf.seconds / floor.seconds;
        wharf::bench::summary(
            format("metadata: %s %llu assets x 10 properties", op.c_str(),
                   static_cast<unsigned long long>(n)),
            format("%.0f rows/s", n / wharf.seconds),
            format("%.0f rows/s (raw SQLite + file)", n / floor.seconds), ratio, "<= 3 x floor",
            ratio <= 3);
        wharf::bench::summary(
            format("metadata: %s peak RSS, N = %llu", op.c_str(),
                   static_cast<unsigned long long>(n)),
            format("%.1f MiB (%.1f + %.1f)", wharf.peak_mib, wharf.base_mib,
                   wharf.peak_mib - wharf.base_mib),
            "", NAN, "< 64 MiB, flat in N", wharf.peak_mib < 64);
    };
    line("export (validate, count, run)", wharf_export, floor_export);
    line("import (validate, count, run; batches of " + std::to_string(batch) + ")", wharf_import,
         floor_import);
    std::printf("| %llu | CSV %.1f MiB; floor parts (best of %d): SQLite read %.2f s, file write "
                "%.2f s, file read %.2f s, SQLite write %.2f s | | | | |\n",
                static_cast<unsigned long long>(n), static_cast<double>(csv_bytes) / (1 << 20),
                runs, read_rows, write_bytes, read_bytes, write_rows);
    std::fflush(stdout);
    fs::remove_all(dir);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::uint64_t> sizes;
    std::size_t batch = 100;
    int runs = 3;
    fs::path dir = fs::temp_directory_path() / ("wharf-bench-metadata-" + std::to_string(::getpid()));
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--child" && i + 4 < argc)
            return run_one(std::stoull(argv[i + 1]), std::stoull(argv[i + 2]),
                           std::stoi(argv[i + 3]), argv[i + 4]);
        if (a == "--batch" && i + 1 < argc) {
            batch = std::stoull(argv[++i]);
        } else if (a == "--runs" && i + 1 < argc) {
            runs = std::max(1, std::stoi(argv[++i]));
        } else if (a == "--dir" && i + 1 < argc) {
            dir = argv[++i];
        } else if (!a.empty() && a.find_first_not_of("0123456789") == std::string::npos) {
            sizes.push_back(std::stoull(a));
        } else {
            std::fprintf(stderr, "usage: bench_metadata [--batch B] [--runs R] [--dir DIR] [N ...]\n");
            return 2;
        }
    }
    if (sizes.empty()) sizes = {10'000, 100'000};
    if (batch < 1 || batch > 100) {
        std::fprintf(stderr, "bench_metadata: --batch must be 1 to 100\n");
        return 2;
    }
    std::printf("| N | operation | wharf rows/s | floor rows/s | wharf time / floor time | "
                "peak RSS (base + operation) |\n");
    std::printf("|---|---|---|---|---|---|\n");
    std::fflush(stdout);
    for (auto n : sizes) {
        // A child per N: its peaks are that run's own.
        pid_t pid = ::fork();
        if (pid == 0) {
            auto self = fs::read_symlink("/proc/self/exe").string();
            auto child_dir = (dir / std::to_string(n)).string();
            auto ns = std::to_string(n), bs = std::to_string(batch), rs = std::to_string(runs);
            execl(self.c_str(), self.c_str(), "--child", ns.c_str(), bs.c_str(), rs.c_str(),
                  child_dir.c_str(), static_cast<char*>(nullptr));
            std::_Exit(127);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            std::fprintf(stderr, "bench_metadata: run with N=%llu failed\n",
                         static_cast<unsigned long long>(n));
            return 1;
        }
    }
    fs::remove_all(dir);
    return 0;
}
