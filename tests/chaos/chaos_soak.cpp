// wharf_chaos_soak: proof under fire. Starts a real wharfd on a temporary data
// directory (127.0.0.1, a free port) with a generated repository and, for a
// bounded time, does at random what operators and users do: submits every
// installed operation and thousands of plain jobs over HTTP, replaces plugin
// binaries with another build of them (atomic rename), edits queue files
// (valid and invalid edits, removal and re-adding), stops and deletes jobs, and
// SIGKILLs the host then restarts it on the same data directory. Then it lets
// the host drain and checks invariants, printing each with its counts, and a
// summary. A violated invariant prints the seed and the command that replays
// the same sequence of decisions (the host's timing still differs), and the
// program exits 1.
//
// The driver is single-threaded: every request completes (or the host dies)
// before the next decision, so a kill never lands inside one of its requests
// and every answer is known. wharfd is started through `setpriv --pdeathsig
// KILL` where available, so it dies with the driver even if the driver is
// SIGKILLed; SIGTERM/SIGINT/SIGHUP of the driver and every error path kill it
// by its PID.
//
// Exit codes: 0 all invariants held, 1 a violation, 2 the soak could not run
// (bad command line, wharfd would not start), 130/143 interrupted.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "base/sha256.hpp"
#include "http/http_client.hpp"
#include "http/users.hpp"
#include "repository/generator.hpp"
#include "repository/sqlite_repository.hpp"
#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using wharf::test::ChildProcess;
using wharf::test::eventually;

// --- the host's PID for the signal handlers -----------------------------------------------

std::atomic<pid_t> g_host_pid{0};

extern "C" void on_fatal_signal(int sig) {
    pid_t pid = g_host_pid.load();
    if (pid > 0) ::kill(pid, SIGKILL);
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

void on_terminate() {
    pid_t pid = g_host_pid.load();
    if (pid > 0) ::kill(pid, SIGKILL);
    std::abort();
}

struct Fatal : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// --- options --------------------------------------------------------------------------------

struct Options {
    std::uint64_t seed = 0;
    double seconds = 600;
    long rounds = 0;  // 0: no limit on rounds
    int kills = -1;   // -1: one per 11 s of soak, at least 5
    std::uint64_t assets = 0, pages = 0;
    double drain_seconds = 0;
    fs::path work_dir;
    bool keep = false;
    fs::path wharfd = WHARF_WHARFD_EXECUTABLE;
    fs::path cli = WHARF_CLI_EXECUTABLE;
    fs::path plugin_dir = WHARF_PLUGIN_DIR;
    fs::path chaos_plugin_dir = WHARF_CHAOS_PLUGIN_DIR;
    fs::path fixture_dir = WHARF_FIXTURE_DIR;
    fs::path source_dir = WHARF_SOURCE_DIR;
    std::string argv0;
};

const char* kUsage =
    "usage: wharf_chaos_soak [--seconds S] [--rounds N] [--kills K] [--seed N]\n"
    "                        [--assets N] [--pages N] [--drain-seconds S] [--work-dir DIR] "
    "[--keep]\n"
    "  --seconds S   how long the chaos lasts (default 600)\n"
    "  --rounds N    stop after N rounds of actions, if that comes first\n"
    "  --kills K     SIGKILLs of wharfd, spread over the run (default: S/11, at least 5)\n"
    "  --seed N      the seed of every decision (default: random, printed)\n"
    "  --assets N    generated assets (default 2000, 300 when S <= 120)\n"
    "  --pages N     generated blueprint pages (default 200, 60 when S <= 120)\n"
    "  --work-dir D  keep everything in D (default: a temporary directory, removed when\n"
    "                the soak passes, kept and printed when it fails)\n"
    "  --keep        keep the temporary directory even when the soak passes\n";

Options parse(int argc, char** argv) {
    Options o;
    o.argv0 = argv[0];
    bool seeded = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
            return argv[++i];
        };
        auto number = [&](const std::string& v) {
            std::size_t used = 0;
            double d = std::stod(v, &used);
            if (used != v.size() || d < 0) throw std::invalid_argument(a + ": not a number: " + v);
            return d;
        };
        if (a == "--seconds")
            o.seconds = number(value());
        else if (a == "--rounds")
            o.rounds = static_cast<long>(number(value()));
        else if (a == "--kills")
            o.kills = static_cast<int>(number(value()));
        else if (a == "--seed") {
            o.seed = std::stoull(value());
            seeded = true;
        } else if (a == "--assets")
            o.assets = static_cast<std::uint64_t>(number(value()));
        else if (a == "--pages")
            o.pages = static_cast<std::uint64_t>(number(value()));
        else if (a == "--drain-seconds")
            o.drain_seconds = number(value());
        else if (a == "--work-dir")
            o.work_dir = value();
        else if (a == "--keep")
            o.keep = true;
        else if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        } else
            throw std::invalid_argument("unknown option " + a);
    }
    if (!seeded) o.seed = std::random_device{}() ^ (static_cast<std::uint64_t>(::getpid()) << 32);
    bool short_run = o.seconds <= 120;
    if (o.kills < 0) o.kills = std::max(5, static_cast<int>(o.seconds / 11));
    if (o.assets == 0) o.assets = short_run ? 300 : 2000;
    if (o.pages == 0) o.pages = short_run ? 60 : 200;
    if (o.assets < 200) throw std::invalid_argument("--assets must be at least 200");
    if (o.pages < 20) throw std::invalid_argument("--pages must be at least 20");
    if (o.drain_seconds == 0) o.drain_seconds = short_run ? 150 : 300;
    return o;
}

// --- small helpers --------------------------------------------------------------------------

void write_file(const fs::path& file, const std::string& text) {
    fs::create_directories(file.parent_path());
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw Fatal("cannot write " + file.string());
}

// Writes `text` to `target` as editors and deploy tools do: a temporary file
// beside it, then rename(2) into place.
void write_atomically(const fs::path& target, const std::string& text) {
    auto tmp = target.parent_path() / ("." + target.filename().string() + ".chaos-tmp");
    write_file(tmp, text);
    fs::rename(tmp, target);
}

std::string read_file(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string tail_lines(const std::string& text, std::size_t lines) {
    std::size_t pos = text.size();
    for (std::size_t n = 0; n <= lines && pos > 0; ++n) {
        pos = text.rfind('\n', pos - 1);
        if (pos == std::string::npos) return text;
    }
    return text.substr(pos + 1);
}

long long unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string csv_cell(const std::string& v) {
    if (v.find_first_of(",\"\r\n") == std::string::npos && (v.empty() || v.front() != ' '))
        return v;
    std::string out = "\"";
    for (char c : v) {
        if (c == '"') out.push_back('"');
        out.push_back(c);
    }
    return out + "\"";
}

// Records in an RFC 4180 text (quotes may hold line breaks), header included.
std::size_t csv_records(const std::string& text) {
    std::size_t records = 0;
    bool quoted = false, in_record = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '"') quoted = !quoted;
        if (!quoted && (c == '\n' || c == '\r')) {
            if (in_record) ++records;
            in_record = false;
            continue;
        }
        in_record = true;
    }
    return records + (in_record ? 1 : 0);
}

bool is_final(const std::string& state) {
    return state == "succeeded" || state == "error" || state == "stopped" || state == "given_up";
}

// --- the host -------------------------------------------------------------------------------

class Host {
public:
    Host(fs::path config_dir, fs::path log_dir, std::string token)
        : config_dir_(std::move(config_dir)),
          log_dir_(std::move(log_dir)),
          token_(std::move(token)) {}
    ~Host() { kill(); }

    void start(const fs::path& wharfd) {
        ++incarnation_;
        log_ = log_dir_ / ("wharfd-" + std::to_string(incarnation_) + ".log");
        std::vector<std::string> argv;
        if (fs::exists("/usr/bin/setpriv"))
            argv = {"/usr/bin/setpriv", "--pdeathsig", "KILL", "--"};
        argv.insert(argv.end(), {wharfd.string(), "--config", config_dir_.string()});
        process_ = std::make_unique<ChildProcess>(argv, log_);
        g_host_pid = process_->pid();
        std::string address;
        bool ready = eventually(
            [&] {
                if (process_->wait(0ms)) return true;
                auto out = process_->output();
                auto at = out.find("http listening address=");
                if (out.find("wharfd ready") == std::string::npos || at == std::string::npos)
                    return false;
                at += std::strlen("http listening address=");
                address = out.substr(at, out.find_first_of(" \n", at) - at);
                return true;
            },
            90s);
        if (!ready || address.empty())
            throw Fatal("wharfd did not become ready (log " + log_.string() + "):\n" +
                        tail_lines(process_->output(), 30));
        wharf::host::HttpClientOptions o;
        o.bearer_token = token_;
        o.read_timeout = 60s;
        client_ = std::make_unique<wharf::host::HttpClient>("http://" + address, o);
    }

    void kill() {
        if (!process_) return;
        process_->signal(SIGKILL);
        process_->wait(30s);
        g_host_pid = 0;
        client_.reset();
        process_.reset();
    }

    // SIGTERM, then the wait status (nullopt if it did not exit in time: then killed).
    std::optional<int> stop() {
        if (!process_) return std::nullopt;
        process_->signal(SIGTERM);
        auto status = process_->wait(60s);
        kill();
        return status;
    }

    // The wait status if the host has exited on its own.
    std::optional<int> exited() { return process_ ? process_->wait(0ms) : std::nullopt; }
    bool up() const { return process_ && client_; }
    pid_t pid() const { return process_ ? process_->pid() : 0; }
    int incarnation() const { return incarnation_; }
    const fs::path& log() const { return log_; }
    wharf::host::HttpClient& api() {
        if (!client_) throw Fatal("wharfd is not running");
        return *client_;
    }

private:
    fs::path config_dir_, log_dir_, log_;
    std::string token_;
    int incarnation_ = 0;
    std::unique_ptr<ChildProcess> process_;
    std::unique_ptr<wharf::host::HttpClient> client_;
};

// --- what the soak did, and what it expects -------------------------------------------------

enum class Expect { succeeded, error, any };

struct TrackedJob {
    std::int64_t id = 0;
    std::string topic;
    std::string what;  // plain job kind or operation name
    Expect expect = Expect::succeeded;
    bool stop_acknowledged = false;
    bool deleted = false;
    bool plain = true;
    bool recorder = false;
    std::string final_state;  // as the store has it after the drain
};

// A folder of generated assets that operations move and delete as a whole.
struct Unit {
    std::string original;
    std::vector<std::string> locations;  // every path it was moved to (first: original)
    std::string current;                 // where it is when not busy
    std::vector<std::string> assets;     // asset names
    bool busy = false;
    bool dead = false;  // a delete of it was submitted
    bool delete_succeeded = false;
    std::set<std::string> assets_deleted;     // by a succeeded sync delete
    std::set<std::string> assets_maybe_gone;  // by a delete that did not succeed
};

struct Import {
    int number = 0;
    std::vector<std::pair<std::string, int>> rows;  // asset path, row index
    std::string bad_asset;                          // a row refused on purpose, or ""
    std::string outcome;                            // final job state or sync outcome
    std::int64_t job = 0;
};

struct PendingOp {
    explicit PendingOp(std::string op, int unit_index = -1)
        : operation(std::move(op)), unit(unit_index) {}
    std::string operation;
    int unit = -1;
    std::string page;  // page name for page-move
    std::string target;
    std::string request;  // the body, for a move: sent again to finish a stopped one
    bool resent = false;  // this is that second sending
    int import = -1;
    std::size_t export_rows = 0;
};

struct PluginSlot {
    std::string file;                   // name in the plugins dir
    std::vector<fs::path> variants;     // builds to swap between
    std::vector<std::string> versions;  // manifest version of each
    std::size_t current = 0;
};

struct QueueModel {
    QueueModel(std::string f, std::string n, std::string t)
        : file(std::move(f)), name(std::move(n)), topic(std::move(t)) {}
    std::string file;  // queues/<name>.yaml
    std::string name;
    std::string topic;       // its topic pattern
    std::string last_valid;  // the last valid content written
    bool on_disk = true;
    bool disk_valid = true;
    std::string disk;                     // content on disk
    std::optional<std::string> in_force;  // content the host should have in force
    Json settings;                        // the settings of in_force
};

class Soak {
public:
    explicit Soak(Options o) : o_(std::move(o)), rng_(o_.seed) {}

    int run();

private:
    // setup
    void prepare();
    void generate_repository();
    std::string queue_yaml(QueueModel& q, Json& settings);
    // host
    void start_host();
    void restart_after_kill();
    Json call(const std::string& method, const std::string& path, const std::string& body,
              const std::string& type, int& status);
    Json get(const std::string& path, int& status) { return call("GET", path, "", "", status); }
    void check_host_alive(const std::string& during);
    bool wait_plugins_active(std::chrono::seconds timeout);
    // actions
    void act();
    void enqueue_plain();
    void submit_delete();
    void submit_move();
    void submit_page_move();
    void submit_export();
    void submit_import();
    void submit_rollout();
    void submit_live_copy();
    void stop_job();
    void delete_job();
    void swap_plugin();
    void edit_queue();
    void remove_or_readd_queue();
    void kill_host();
    void resolve_pending(bool all);
    void resolve(std::int64_t id, const PendingOp& op, const std::string& state);
    void track_operation(const std::string& op, const Json& answer, int status, PendingOp pending);
    bool node_exists(const std::string& path);
    // final
    bool swapped_recently(const std::string& operation) const;
    void drain();
    void converge_live_copies();
    void refresh_backlog();
    void check_jobs();
    void check_config();
    void check_plugins();
    void check_offline();
    void check_recorder_log();
    void summary(double elapsed);

    void violate(const std::string& invariant, const std::string& detail);
    void note(const std::string& line);
    void invariant(const std::string& name, std::size_t checked, std::size_t bad,
                   const std::string& counts);
    double elapsed() const {
        return std::chrono::duration<double>(Clock::now() - started_).count();
    }
    template <class T>
    const T& pick(const std::vector<T>& v) {
        return v[std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng_)];
    }
    int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
    bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }

    Options o_;
    std::mt19937_64 rng_;
    fs::path dir_;
    bool remove_dir_ = false;  // a temporary directory, removed when the soak passes
    std::string token_;
    std::unique_ptr<Host> host_;
    Clock::time_point started_;

    wharf::host::ContentGeneratorOptions gen_;
    std::vector<Unit> units_;
    std::vector<std::string> stable_assets_;  // metadata only; never moved or deleted
    std::vector<std::string> stable_folders_;
    std::map<std::string, std::string> pages_;  // blueprint page name -> path when not busy
    std::set<std::string> busy_pages_;
    std::vector<std::string> sections_;
    std::set<std::string> blueprint_page_names_;
    std::vector<std::string> live_copies_;
    std::vector<std::string> force_deleted_;  // folders deleted with force (dangling refs allowed)
    std::set<std::string> force_deleted_names_;  // assets deleted one by one with force
    std::vector<Import> imports_;
    std::vector<QueueModel> queues_;
    std::vector<PluginSlot> plugins_;

    std::map<std::string, Clock::time_point> last_swap_;  // plugin file -> when
    std::map<std::int64_t, TrackedJob> jobs_;
    std::vector<std::int64_t> plain_ids_;
    std::map<std::int64_t, PendingOp> pending_;
    std::vector<long long> kill_times_ms_;
    std::map<pid_t, bool> killed_pids_;

    // counters
    std::map<std::string, long> count_;
    std::vector<std::string> violations_;
    std::map<std::string, long> violations_by_invariant_;
    std::vector<std::string> invariant_lines_;
    static constexpr long kMaxBacklog = 800;
    long backlog_ = 0;  // queued jobs, refreshed every 2 s
    long rounds_ = 0;
    int kills_done_ = 0;
    int moved_names_ = 0;
};

void Soak::note(const std::string& line) {
    std::printf("[%7.1fs] %s\n", elapsed(), line.c_str());
    std::fflush(stdout);
}

void Soak::violate(const std::string& invariant_name, const std::string& detail) {
    ++violations_by_invariant_[invariant_name];
    if (violations_.size() < 200) violations_.push_back(invariant_name + ": " + detail);
    note("VIOLATION " + invariant_name + ": " + detail);
}

void Soak::invariant(const std::string& name, std::size_t checked, std::size_t bad,
                     const std::string& counts) {
    std::string line = std::string(bad == 0 ? "| ok " : "| **FAIL** ") + "| " + name + " | " +
                       std::to_string(checked) + " | " + std::to_string(bad) + " | " + counts +
                       " |";
    invariant_lines_.push_back(line);
}

// --- setup ----------------------------------------------------------------------------------

std::string random_token(std::mt19937_64& rng) {
    static const char* hex = "0123456789abcdef";
    std::string t;
    for (int i = 0; i < 64; ++i) t.push_back(hex[rng() % 16]);
    return t;
}

void Soak::prepare() {
    if (o_.work_dir.empty()) {
        dir_ = fs::temp_directory_path() / ("wharf-chaos-" + std::to_string(::getpid()) + "-" +
                                            std::to_string(std::random_device{}()));
        fs::create_directories(dir_);
        remove_dir_ = !o_.keep;
    } else {
        dir_ = fs::absolute(o_.work_dir);
        if (fs::exists(dir_) && !fs::is_empty(dir_))
            throw Fatal("--work-dir " + dir_.string() + " is not empty");
        fs::create_directories(dir_);
    }
    // The token comes from the OS, not the seed: a replay needs no secret.
    std::mt19937_64 token_rng(std::random_device{}());
    token_ = random_token(token_rng);

    auto configs = dir_ / "configs";
    fs::copy(o_.source_dir / "configs", configs, fs::copy_options::recursive);
    write_file(configs / "wharf.yaml",
               "data_dir: ../var\n"
               "plugins_dir: ../plugins\n"
               "listen: 127.0.0.1:0\n"
               "log_level: info\n"
               "drain_timeout_ms: 2000\n"
               "jobs:\n"
               "  stop_grace_ms: 5000\n"
               "  shutdown_grace_ms: 3000\n"
               "  flush_interval_ms: 200\n");
    write_file(configs / "users.yaml",
               "users:\n  - name: chaos\n    role: admin\n    token_sha256: " +
                   wharf::host::token_sha256(token_) + "\n");
    write_file(configs / "purge.yaml", "enabled: false\n");  // every job stays to be checked
    // Low thresholds and small batches: the operations become jobs and a kill
    // lands between two batches.
    write_file(configs / "operations/delete.yaml", "threshold: 8\nbatch_size: 3\n");
    write_file(configs / "operations/move.yaml",
               "threshold: 8\nthreshold_references: 40\nbatch_size: 5\n");
    write_file(configs / "operations/page-move.yaml", "threshold: 3\nbatch_size: 2\n");
    write_file(configs / "operations/metadata-export.yaml", "threshold: 20\n");
    write_file(configs / "operations/metadata-import.yaml", "threshold: 10\n");
    write_file(configs / "operations/rollout.yaml", "threshold: 30\nbatch_size: 10\n");

    queues_.emplace_back("queues/chaos-a.yaml", "chaos-a", "chaos/a/*");
    queues_.emplace_back("queues/chaos-b.yaml", "chaos-b", "chaos/b/*");
    queues_.emplace_back("queues/chaos-fixtures.yaml", "chaos-fixtures", "test/*");
    for (auto& q : queues_) {
        Json settings;
        q.disk = q.last_valid = queue_yaml(q, settings);
        q.in_force = q.disk;
        q.settings = settings;
        write_file(configs / q.file, q.disk);
    }

    // Plugins: the first-party ones, the recorder, three job fixtures. Every
    // build the soak swaps in is copied first, so a rebuild cannot change it.
    auto plugins = dir_ / "plugins";
    auto builds = dir_ / "builds";
    fs::create_directories(plugins);
    fs::create_directories(builds);
    auto keep = [&](const fs::path& from, const std::string& as) {
        if (!fs::exists(from))
            throw Fatal("missing build " + from.string() + " (build the chaos targets)");
        fs::copy_file(from, builds / as, fs::copy_options::overwrite_existing);
        return builds / as;
    };
    for (std::string p : {"delete", "move", "metadata", "rollout"}) {
        PluginSlot s;
        s.file = p + ".so";
        s.variants = {keep(o_.plugin_dir / s.file, p + "-a.so"),
                      keep(o_.chaos_plugin_dir / "rebuild" / s.file, p + "-b.so")};
        s.versions = {"1.0.0", "1.0.0"};
        plugins_.push_back(s);
    }
    {
        PluginSlot s;
        s.file = "chaos_recorder.so";
        s.variants = {keep(o_.chaos_plugin_dir / "chaos_recorder_v1.so", "recorder-1.so"),
                      keep(o_.chaos_plugin_dir / "chaos_recorder_v2.so", "recorder-2.so")};
        s.versions = {"1.0.0", "2.0.0"};
        plugins_.push_back(s);
    }
    for (std::string p : {"jobs_noop", "jobs_flaky", "jobs_thrower"}) {
        PluginSlot s;
        s.file = p + ".so";
        s.variants = {keep(o_.fixture_dir / s.file, p + ".so")};
        s.versions = {"1.0.0"};
        plugins_.push_back(s);
    }
    for (auto& s : plugins_) fs::copy_file(s.variants[0], plugins / s.file);
    fs::create_directories(dir_ / "logs");
    generate_repository();
}

void Soak::generate_repository() {
    gen_.seed = o_.seed;
    gen_.assets = o_.assets;
    gen_.assets_per_folder = 10;
    gen_.folders_per_group = 10;
    gen_.pages = o_.pages;
    gen_.pages_per_section = 20;
    gen_.references_per_page = 6;
    gen_.live_copies = o_.seconds <= 120 ? 1 : 2;
    gen_.min_binary_bytes = 16;
    gen_.max_binary_bytes = 64;
    auto started = Clock::now();
    auto repository = wharf::host::SqliteRepository::open(dir_ / "var/repository");
    auto stats = wharf::host::generate_content(*repository, gen_);
    {
        auto s = repository->open_session();
        s->create_folders("/content/dam/chaos-moved-a");
        s->create_folders("/content/dam/chaos-moved-b");
        s->commit();
    }
    // Units: every folder of assets outside d0; d0's assets are the stable set
    // that metadata operations use.
    std::map<std::string, std::vector<std::string>> folders;
    for (std::uint64_t n = 0; n < gen_.assets; ++n) {
        auto path = wharf::host::generated_asset_path(gen_, n);
        auto slash = path.rfind('/');
        folders[path.substr(0, slash)].push_back(path.substr(slash + 1));
    }
    // d000, the first group of folders, is the stable set.
    auto first = wharf::host::generated_asset_path(gen_, 0);
    first = first.substr(0, first.rfind('/'));
    const std::string stable_root = first.substr(0, first.rfind('/') + 1);
    for (auto& [folder, names] : folders) {
        if (folder.rfind(stable_root, 0) == 0) {
            stable_folders_.push_back(folder);
            for (auto& n : names) stable_assets_.push_back(folder + "/" + n);
            continue;
        }
        Unit u;
        u.original = u.current = folder;
        u.locations = {folder};
        u.assets = names;
        units_.push_back(u);
    }
    wharf::WalkOptions pages_only;
    pages_only.assets = pages_only.folders = false;
    pages_only.with_properties = false;
    pages_only.include_root = false;
    repository->walk(gen_.pages_root, pages_only, [&](const wharf::Node& n) {
        std::string name(n.name());
        blueprint_page_names_.insert(name);
        if (name.rfind("page-", 0) == 0)
            pages_[name] = n.path;
        else
            sections_.push_back(n.path);
        return true;
    });
    for (std::uint64_t c = 0; c < gen_.live_copies; ++c)
        live_copies_.push_back(gen_.live_root + "/lc" + std::to_string(c));
    note("repository generated: " + std::to_string(stats.assets) + " assets, " +
         std::to_string(stats.pages) + " pages, " + std::to_string(stats.references) +
         " references, " + std::to_string(stats.live_copies) + " live copies in " +
         std::to_string(
             std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started).count()) +
         " s; " + std::to_string(units_.size()) + " folders to move and delete, " +
         std::to_string(stable_assets_.size()) + " assets for metadata, " +
         std::to_string(pages_.size()) + " pages to move");
}

// A valid queue file with random settings; `settings` gets what the API should show.
std::string Soak::queue_yaml(QueueModel& q, Json& settings) {
    static const std::vector<std::string> types = {"parallel", "parallel", "ordered",
                                                   "topic-round-robin"};
    static const std::vector<double> parallel = {1, 2, 3, 4, -1, 0.5};
    static const std::vector<std::string> priorities = {"low", "normal", "high"};
    settings = Json::object();
    settings["title"] =
        "chaos queue " + q.name + " edit " + std::to_string(++count_["queue versions"]);
    settings["topics"] = Json::array({q.topic});
    settings["type"] = pick(types);
    settings["max_parallel_configured"] = pick(parallel);
    settings["retries"] = uniform(20, 60);
    settings["retry_delay_ms"] = uniform(10, 200);
    settings["priority"] = pick(priorities);
    std::ostringstream y;
    y << "title: \"" << settings["title"].get<std::string>() << "\"\n"
      << "topics:\n  - " << q.topic << "\n"
      << "type: " << settings["type"].get<std::string>() << "\n"
      << "max_parallel: " << settings["max_parallel_configured"].get<double>() << "\n"
      << "retries: " << settings["retries"].get<int>() << "\n"
      << "retry_delay_ms: " << settings["retry_delay_ms"].get<int>() << "\n"
      << "retry_backoff: 1\n"
      << "priority: " << settings["priority"].get<std::string>() << "\n"
      << "keep_jobs: true\n";
    return y.str();
}

// --- the host -------------------------------------------------------------------------------

void Soak::start_host() {
    host_->start(o_.wharfd);
    // A queue file's in-force content after a start is what is on disk, if valid.
    for (auto& q : queues_)
        q.in_force = q.on_disk && q.disk_valid ? std::optional(q.disk) : std::nullopt;
    if (!wait_plugins_active(60s))
        violate("plugins start",
                "not every plugin active 60 s after a start (log " + host_->log().string() + ")");
}

bool Soak::wait_plugins_active(std::chrono::seconds timeout) {
    return eventually(
        [&] {
            int status = 0;
            auto body = get("/api/plugins", status);
            if (status != 200) return false;
            std::size_t active = 0;
            for (const auto& p : body["plugins"])
                if (p["state"] == "active") ++active;
            return active == plugins_.size();
        },
        timeout);
}

void Soak::check_host_alive(const std::string& during) {
    auto status = host_->exited();
    if (!status) return;
    std::string how = WIFSIGNALED(*status) ? "signal " + std::to_string(WTERMSIG(*status))
                                           : "exit " + std::to_string(WEXITSTATUS(*status));
    violate("the host keeps running", "wharfd (pid " + std::to_string(host_->pid()) +
                                          ") ended on its own with " + how + " during " + during +
                                          "; log " + host_->log().string() + ":\n" +
                                          tail_lines(read_file(host_->log()), 15));
    host_->kill();
    start_host();
}

Json Soak::call(const std::string& method, const std::string& path, const std::string& body,
                const std::string& type, int& status) {
    status = 0;
    for (int attempt = 0; attempt < 2; ++attempt) {
        try {
            auto r = host_->api().request(method, path, body, type);
            status = r.status;
            ++count_["http requests"];
            auto parsed = Json::parse(r.body, nullptr, false);
            return parsed.is_discarded() ? Json() : parsed;
        } catch (const std::exception& e) {
            ++count_["http requests failed"];
            check_host_alive(method + " " + path);
            if (attempt == 1)
                violate("the API answers", method + " " + path + " failed twice: " + e.what());
        }
    }
    return Json();
}

bool Soak::node_exists(const std::string& path) {
    int status = 0;
    get("/api/repo/nodes?path=" + wharf::host::url_encode(path) + "&limit=1", status);
    if (status != 200 && status != 404)
        violate("the API answers",
                "GET /api/repo/nodes?path=" + path + " answered " + std::to_string(status));
    return status == 200;
}

// --- actions --------------------------------------------------------------------------------

void Soak::act() {
    int roll = uniform(0, 99);
    if (roll < 38)
        enqueue_plain();
    else if (roll < 45)
        submit_delete();
    else if (roll < 53)
        submit_move();
    else if (roll < 58)
        submit_page_move();
    else if (roll < 62)
        submit_export();
    else if (roll < 68)
        submit_import();
    else if (roll < 72)
        submit_rollout();
    else if (roll < 73)
        submit_live_copy();
    else if (roll < 80)
        stop_job();
    else if (roll < 85)
        delete_job();
    else if (roll < 90)
        swap_plugin();
    else if (roll < 98)
        edit_queue();
    else
        remove_or_readd_queue();
}

void Soak::enqueue_plain() {
    int n = uniform(5, 20);
    // Decided from the seed whatever the backlog, so a replay decides alike.
    if (backlog_ > kMaxBacklog) {
        ++count_["enqueues skipped (backlog over 800)"];
        return;
    }
    for (int i = 0; i < n; ++i) {
        TrackedJob t;
        Json payload = {{"tag", "chaos-" + std::to_string(++count_["plain seq"])}};
        int kind = uniform(0, 99);
        if (kind < 70) {
            t.recorder = true;
            t.topic = std::string(kind < 40 ? "chaos/a/" : "chaos/b/") + (chance(0.5) ? "x" : "y");
            int speed = uniform(0, 99);
            payload["ms"] = speed < 70   ? uniform(0, 5)
                            : speed < 95 ? uniform(10, 60)
                                         : uniform(100, 400);
            int outcome = uniform(0, 99);
            if (outcome < 5) {
                payload["outcome"] = "error";
                t.expect = Expect::error;
                t.what = "recorder error";
            } else if (outcome < 8) {
                payload["outcome"] = "throw";
                t.expect = Expect::error;
                t.what = "recorder throw";
            } else if (outcome < 15) {
                payload["fail_times"] = uniform(1, 3);
                t.what = "recorder retried";
            } else {
                t.what = "recorder";
            }
        } else if (kind < 85) {
            t.topic = "test/noop";
            t.what = "noop fixture";
        } else if (kind < 95) {
            t.topic = "test/flaky";
            payload["fail_times"] = uniform(1, 2);
            t.what = "flaky fixture";
        } else {
            t.topic = "test/throw";
            t.what = "thrower fixture";
            t.expect = Expect::error;
        }
        int status = 0;
        auto answer =
            call("POST", "/api/jobs", Json{{"topic", t.topic}, {"payload", payload}}.dump(),
                 "application/json", status);
        if (status != 201 || !answer.contains("id")) {
            violate("jobs are accepted", "POST /api/jobs " + t.topic + " answered " +
                                             std::to_string(status) + " " + answer.dump());
            continue;
        }
        t.id = answer["id"].get<std::int64_t>();
        jobs_[t.id] = t;
        plain_ids_.push_back(t.id);
        ++count_["plain jobs submitted"];
    }
}

void Soak::track_operation(const std::string& op, const Json& answer, int status,
                           PendingOp pending) {
    ++count_["operations submitted"];
    if (status == 202 && answer.contains("id")) {
        TrackedJob t;
        t.id = answer["id"].get<std::int64_t>();
        t.topic = answer.contains("job") ? answer["job"].value("topic", "") : "";
        t.what = op;
        t.plain = false;
        jobs_[t.id] = t;
        pending_.insert_or_assign(t.id, pending);
        ++count_["operations as jobs: " + op];
        return;
    }
    if (status == 200) {
        ++count_["operations run at once: " + op];
        std::string outcome = answer.value("outcome", "");
        if (outcome != "succeeded")
            violate("operations succeed",
                    op + " run at once ended " + outcome + ": " + answer.value("message", ""));
        if (op == "metadata-export" && outcome == "succeeded") {
            std::string content =
                answer.contains("result") ? answer["result"].value("content", "") : "";
            if (csv_records(content) != pending.export_rows + 1)
                violate("a metadata export is complete",
                        "inline export has " + std::to_string(csv_records(content)) +
                            " records, expected " + std::to_string(pending.export_rows + 1));
        }
        resolve(0, pending, outcome);
        return;
    }
    if (status == 400) {
        ++count_["operations refused: " + op];
        resolve(0, pending, "refused");
        return;
    }
    if (status == 404 && answer.contains("error") &&
        answer["error"].value("code", "") == "unknown_operation" && swapped_recently(op)) {
        // The plugin is being replaced: between the old version's stop and
        // the new one's start the operation is not registered. A clear
        // refusal that changes nothing; counted and reported, not hidden.
        ++count_["operations refused during their plugin's upgrade (404 unknown_operation)"];
        resolve(0, pending, "refused");
        return;
    }
    violate("operations are accepted",
            op + " answered " + std::to_string(status) + " " + answer.dump());
    resolve(0, pending, "unknown");
}

void Soak::submit_delete() {
    std::vector<int> free;
    for (std::size_t i = 0; i < units_.size(); ++i)
        if (!units_[i].busy && !units_[i].dead) free.push_back(static_cast<int>(i));
    if (free.size() < 8) return;  // keep some to move
    int u = pick(free);
    auto& unit = units_[u];
    bool force = chance(0.75);
    PendingOp op{"asset-delete", u};
    Json request = {{"force", force}};
    if (chance(0.3)) {
        // A few assets of the folder: at or below the threshold, runs at once.
        std::vector<std::string> left;
        for (auto& a : unit.assets)
            if (!unit.assets_deleted.count(a) && !unit.assets_maybe_gone.count(a))
                left.push_back(a);
        if (left.size() < 4) return;
        std::shuffle(left.begin(), left.end(), rng_);
        left.resize(static_cast<std::size_t>(uniform(1, 3)));
        Json paths = Json::array();
        for (auto& a : left) {
            paths.push_back(unit.current + "/" + a);
            if (force) force_deleted_names_.insert(a);
        }
        request["paths"] = paths;
        op.target = Json(left).dump();
        op.operation = "asset-delete-assets";
    } else {
        request["paths"] = Json::array({unit.current});
        if (force) force_deleted_.push_back(unit.current);
        unit.dead = true;
    }
    unit.busy = true;
    int status = 0;
    auto answer =
        call("POST", "/api/operations/asset-delete", request.dump(), "application/json", status);
    if (!force && status == 400) {
        // Refused for its referrers: nothing may have changed.
        unit.dead = false;
        if (op.operation == "asset-delete" && !node_exists(unit.current))
            violate("a refused request changes nothing",
                    "delete of " + unit.current + " was refused but the folder is gone");
    }
    track_operation("asset-delete", answer, status, op);
}

void Soak::submit_move() {
    std::vector<int> free;
    for (std::size_t i = 0; i < units_.size(); ++i)
        if (!units_[i].busy && !units_[i].dead) free.push_back(static_cast<int>(i));
    if (free.empty()) return;
    int u = pick(free);
    auto& unit = units_[u];
    std::string destination =
        chance(0.5) ? "/content/dam/chaos-moved-a" : "/content/dam/chaos-moved-b";
    if (unit.current.rfind(destination + "/", 0) == 0)
        destination =
            destination.back() == 'a' ? "/content/dam/chaos-moved-b" : "/content/dam/chaos-moved-a";
    std::string name = "u" + std::to_string(u) + "-m" + std::to_string(++moved_names_);
    PendingOp op{"asset-move", u};
    op.target = destination + "/" + name;
    unit.locations.push_back(op.target);
    unit.busy = true;
    Json request = {{"sources", Json::array({unit.current})},
                    {"destination", destination},
                    {"names", Json::array({name})}};
    op.request = request.dump();
    int status = 0;
    auto answer =
        call("POST", "/api/operations/asset-move", op.request, "application/json", status);
    track_operation("asset-move", answer, status, op);
}

void Soak::submit_page_move() {
    std::vector<std::string> free;
    for (auto& [name, path] : pages_)
        if (!busy_pages_.count(name)) free.push_back(name);
    if (free.empty() || sections_.size() < 2) return;
    auto name = pick(free);
    auto from = pages_[name];
    auto parent = from.substr(0, from.rfind('/'));
    std::string destination = pick(sections_);
    if (destination == parent) return;
    PendingOp op{"page-move"};
    op.page = name;
    op.target = destination + "/" + name;
    busy_pages_.insert(name);
    Json request = {{"sources", Json::array({from})}, {"destination", destination}};
    op.request = request.dump();
    int status = 0;
    auto answer = call("POST", "/api/operations/page-move", op.request, "application/json", status);
    track_operation("page-move", answer, status, op);
}

void Soak::submit_export() {
    PendingOp op{"metadata-export"};
    std::string folder;
    if (chance(0.5)) {
        folder = pick(stable_folders_);
        op.export_rows = 10;
    } else {
        folder = stable_folders_.front().substr(0, stable_folders_.front().rfind('/'));
        op.export_rows = stable_assets_.size();
    }
    int status = 0;
    auto answer = call("POST", "/api/operations/metadata-export", Json{{"folder", folder}}.dump(),
                       "application/json", status);
    track_operation("metadata-export", answer, status, op);
}

void Soak::submit_import() {
    Import im;
    im.number = static_cast<int>(imports_.size());
    auto assets = stable_assets_;
    std::shuffle(assets.begin(), assets.end(), rng_);
    int rows = chance(0.5) ? uniform(2, 9) : uniform(11, 40);
    std::string k = std::to_string(im.number);
    std::string csv = "assetPath,chaos:s" + k + "{{String}},chaos:n" + k + "{{Long}},chaos:t" + k +
                      "{{String: multi}}\r\n";
    for (int r = 0; r < rows; ++r) {
        im.rows.push_back({assets[static_cast<std::size_t>(r)], r});
        csv += csv_cell(assets[static_cast<std::size_t>(r)]) + "," +
               csv_cell("v" + k + "-" + std::to_string(r) + ", \"quoted\"") + "," +
               std::to_string(im.number * 1000 + r) + "," +
               csv_cell("a" + k + "|b" + std::to_string(r)) + "\r\n";
    }
    if (chance(0.3)) {
        // One row refused on purpose (a Long that is not a number): not applied.
        im.bad_asset = assets[static_cast<std::size_t>(rows)];
        csv += csv_cell(im.bad_asset) + ",bad,twelve,x\r\n";
    }
    imports_.push_back(im);
    PendingOp op{"metadata-import"};
    op.import = im.number;
    int status = 0;
    auto answer =
        call("POST", "/api/operations/metadata-import?batch_size=" + std::to_string(uniform(1, 8)),
             csv, "text/csv", status);
    if (status == 202 && answer.contains("id"))
        imports_.back().job = answer["id"].get<std::int64_t>();
    track_operation("metadata-import", answer, status, op);
}

void Soak::submit_rollout() {
    std::string blueprint = chance(0.4) ? gen_.pages_root : pick(sections_);
    int status = 0;
    auto answer = call("POST", "/api/operations/rollout", Json{{"blueprint", blueprint}}.dump(),
                       "application/json", status);
    track_operation("rollout", answer, status, PendingOp{"rollout"});
}

void Soak::submit_live_copy() {
    if (live_copies_.size() >= gen_.live_copies + 3) return;
    std::string target = gen_.live_root + "/chaos-lc" + std::to_string(live_copies_.size());
    live_copies_.push_back(target);
    int status = 0;
    auto answer = call("POST", "/api/operations/live-copy-create",
                       Json{{"blueprint", gen_.pages_root}, {"target", target}}.dump(),
                       "application/json", status);
    track_operation("live-copy-create", answer, status, PendingOp{"live-copy-create"});
}

void Soak::stop_job() {
    if (jobs_.empty()) return;
    // Mostly recent jobs: those are the ones still running or waiting.
    std::int64_t newest = jobs_.rbegin()->first;
    auto it = jobs_.lower_bound(std::max<std::int64_t>(1, newest - uniform(0, 60)));
    if (it == jobs_.end() || it->second.deleted) return;
    int status = 0;
    auto answer = call("POST", "/api/jobs/" + std::to_string(it->first) + "/stop", "", "", status);
    ++count_["stop requests"];
    if (status == 200) {
        it->second.stop_acknowledged = true;
        ++count_["stop requests acknowledged"];
    } else if (status == 409) {
        ++count_["stop requests refused (job already final)"];
    } else {
        violate("every submitted job exists", "POST /api/jobs/" + std::to_string(it->first) +
                                                  "/stop answered " + std::to_string(status));
    }
}

void Soak::delete_job() {
    if (plain_ids_.empty()) return;
    auto id = pick(plain_ids_);
    auto& t = jobs_[id];
    if (t.deleted) return;
    int status = 0;
    auto answer = call("DELETE", "/api/jobs/" + std::to_string(id), "", "", status);
    ++count_["delete requests"];
    if (status == 204) {
        t.deleted = true;
        ++count_["jobs deleted"];
    } else if (status == 409) {
        ++count_["delete requests refused (queued or active)"];
    } else {
        violate("every submitted job exists", "DELETE /api/jobs/" + std::to_string(id) +
                                                  " answered " + std::to_string(status) + " " +
                                                  answer.dump());
    }
}

void Soak::swap_plugin() {
    std::vector<std::size_t> swappable;
    for (std::size_t i = 0; i < plugins_.size(); ++i)
        if (plugins_[i].variants.size() > 1) swappable.push_back(i);
    auto& slot = plugins_[pick(swappable)];
    slot.current = (slot.current + 1) % slot.variants.size();
    auto target = dir_ / "plugins" / slot.file;
    wharf::test::install_file(slot.variants[slot.current], target);
    last_swap_[slot.file] = Clock::now();
    ++count_["plugin swaps"];
    if (chance(0.5)) return;  // checked at the end; a kill may come first
    auto hash = wharf::host::sha256_file(target);
    bool applied = eventually(
        [&] {
            int status = 0;
            auto body = get("/api/plugins", status);
            for (const auto& p : body["plugins"])
                if (p["file"] == slot.file && p["content_sha256"] == hash && p["state"] == "active")
                    return true;
            return false;
        },
        30s);
    if (!applied)
        violate("a plugin swap applies", slot.file + " -> " +
                                             slot.variants[slot.current].filename().string() +
                                             " not active 30 s after the rename");
}

std::string invalid_queue_yaml(const std::string& valid, int kind, std::string& what) {
    auto replace = [&](const std::string& key, const std::string& line) {
        std::istringstream in(valid);
        std::string out, l;
        while (std::getline(in, l)) out += (l.rfind(key + ":", 0) == 0 ? line : l) + "\n";
        return out;
    };
    switch (kind) {
        case 0:
            what = "max_parallel 1.5";
            return replace("max_parallel", "max_parallel: 1.5");
        case 1:
            what = "max_parallel 0";
            return replace("max_parallel", "max_parallel: 0");
        case 2:
            what = "unknown key";
            return valid + "retires: 5\n";
        case 3:
            what = "unclosed flow sequence";
            return replace("topics", "topics: [chaos/a/*");
        case 4:
            what = "tab indentation";
            return valid + "extra:\n\t- x\n";
        case 5:
            what = "unknown type";
            return replace("type", "type: sideways");
        case 6:
            what = "negative retry delay";
            return replace("retry_delay_ms", "retry_delay_ms: -3");
        case 7:
            what = "duplicate key";
            return valid + "retries: 7\n";
        case 8:
            what = "empty file";
            return "";
        case 9:
            what = "alias";
            return valid + "anchor: &x 1\nalias: *x\n";
        case 10:
            what = "not UTF-8";
            return replace("title", "title: \"\xff\xfe\"");
        default:
            what = "text, not a mapping";
            return "just some words\n";
    }
}

void Soak::edit_queue() {
    auto& q = queues_[static_cast<std::size_t>(uniform(0, static_cast<int>(queues_.size()) - 1))];
    auto path = dir_ / "configs" / q.file;
    if (!q.on_disk) return;
    auto previous = q.in_force;
    if (chance(0.55)) {
        Json settings;
        std::string yaml = queue_yaml(q, settings);
        write_atomically(path, yaml);
        q.disk = q.last_valid = yaml;
        q.disk_valid = true;
        ++count_["config edits valid"];
        // Always waited for: a valid save followed at once by an invalid one
        // may legitimately settle on the invalid one alone.
        auto hash = wharf::host::sha256_hex(yaml);
        bool applied = eventually(
            [&] {
                int status = 0;
                auto body = get("/api/config", status);
                for (const auto& f : body["files"])
                    if (f["file"] == q.file)
                        return f["applied_sha256"] == hash && f["state"] == "applied";
                return false;
            },
            20s);
        if (!applied) violate("a valid edit applies", q.file + " not in force 20 s after the save");
        q.in_force = yaml;
        q.settings = settings;
        return;
    }
    std::string what;
    std::string yaml = invalid_queue_yaml(q.last_valid, uniform(0, 11), what);
    write_atomically(path, yaml);
    q.disk = yaml;
    q.disk_valid = false;
    ++count_["config edits invalid"];
    ++count_["invalid edit: " + what];
    std::string previous_hash = previous ? wharf::host::sha256_hex(*previous) : "";
    std::string seen;
    bool refused = eventually(
        [&] {
            int status = 0;
            auto body = get("/api/config", status);
            for (const auto& f : body["files"]) {
                if (f["file"] != q.file) continue;
                seen = f.dump();
                if (f["state"] != "refused" || f["errors"].empty()) return false;
                return f["applied_sha256"] == previous_hash;
            }
            return false;
        },
        20s);
    if (!refused) {
        violate("an invalid edit is refused and the last good one stays",
                q.file + " (" + what + "): " + seen);
        return;
    }
    // The refusal names the file, the line and the column.
    int status = 0;
    auto body = get("/api/config", status);
    for (const auto& f : body["files"])
        if (f["file"] == q.file) {
            auto err = f["errors"][0];
            if (err.value("text", "").rfind(q.file + ":", 0) != 0 || err.value("line", 0) < 1)
                violate("a refusal names where", q.file + " (" + what + "): " + err.dump());
        }
}

void Soak::remove_or_readd_queue() {
    auto& q = queues_[static_cast<std::size_t>(uniform(0, static_cast<int>(queues_.size()) - 1))];
    auto path = dir_ / "configs" / q.file;
    if (q.on_disk) {
        fs::remove(path);
        q.on_disk = false;
        q.in_force.reset();
        ++count_["queue files removed"];
        bool gone = eventually(
            [&] {
                int status = 0;
                auto body = get("/api/queues", status);
                for (const auto& qq : body["queues"])
                    if (qq["name"] == q.name && qq["state"] == "live") return false;
                return status == 200;
            },
            20s);
        if (!gone)
            violate("a removed queue goes", q.name + " still live 20 s after its file was removed");
        return;
    }
    Json settings;
    std::string yaml = queue_yaml(q, settings);
    write_atomically(path, yaml);
    q.disk = q.last_valid = yaml;
    q.disk_valid = true;
    q.on_disk = true;
    ++count_["queue files re-added"];
    auto hash = wharf::host::sha256_hex(yaml);
    bool applied = eventually(
        [&] {
            int status = 0;
            auto body = get("/api/config", status);
            for (const auto& f : body["files"])
                if (f["file"] == q.file) return f["applied_sha256"] == hash;
            return false;
        },
        20s);
    if (!applied) violate("a valid edit applies", q.file + " re-added but not in force after 20 s");
    q.in_force = yaml;
    q.settings = settings;
}

void Soak::kill_host() {
    kill_times_ms_.push_back(unix_ms());
    killed_pids_[host_->pid()] = true;
    host_->kill();
    ++kills_done_;
    start_host();
    note("kill " + std::to_string(kills_done_) + "/" + std::to_string(o_.kills) +
         ": restarted as pid " + std::to_string(host_->pid()) + " (" +
         std::to_string(jobs_.size()) + " jobs tracked, " + std::to_string(pending_.size()) +
         " operation jobs pending)");
}

void Soak::resolve(std::int64_t id, const PendingOp& op, const std::string& state) {
    // A move stopped after its subtree moved may not have rewritten every
    // reference yet; as the README tells a user, the same request again
    // finishes it (from its checkpoint). The unit or page stays busy until then.
    if ((op.operation == "asset-move" || op.operation == "page-move") && state == "stopped" &&
        !op.request.empty() && node_exists(op.target)) {
        ++count_["stopped moves finished by sending the same request again"];
        PendingOp again = op;
        again.resent = true;
        int status = 0;
        auto answer = call("POST", "/api/operations/" + op.operation, op.request,
                           "application/json", status);
        track_operation(op.operation, answer, status, again);
        return;
    }
    // Refused when the stopped run had finished its work (a stop that came
    // after the last batch still ends the job stopped, and the request's
    // source is gone): nothing left to do, and the references into the
    // moved tree are checked at the end like every other.
    if (op.resent && state == "refused")
        ++count_["stopped moves whose resend was refused (the run had finished)"];
    if (op.operation == "asset-move" || op.operation == "asset-delete" ||
        op.operation == "asset-delete-assets") {
        auto& unit = units_[static_cast<std::size_t>(op.unit)];
        unit.busy = false;
        if (op.operation == "asset-move") {
            if (state == "succeeded")
                unit.current = op.target;
            else if (state == "refused" && !op.resent)
                unit.locations.pop_back();
            else if (node_exists(op.target))
                unit.current = op.target;
        } else if (op.operation == "asset-delete") {
            if (state == "succeeded") unit.delete_succeeded = true;
            if (state == "refused") unit.dead = false;
        } else {
            auto names = Json::parse(op.target).get<std::vector<std::string>>();
            for (auto& n : names) {
                if (state == "succeeded")
                    unit.assets_deleted.insert(n);
                else if (state != "refused")
                    unit.assets_maybe_gone.insert(n);
            }
        }
    } else if (op.operation == "page-move") {
        busy_pages_.erase(op.page);
        if (state == "succeeded" || (state != "refused" && node_exists(op.target)))
            pages_[op.page] = op.target;
    } else if (op.operation == "metadata-import") {
        imports_[static_cast<std::size_t>(op.import)].outcome = state;
    } else if (op.operation == "metadata-export" && id != 0 && state == "succeeded") {
        wharf::host::HttpResponse r;
        try {
            r = host_->api().get("/api/jobs/" + std::to_string(id) + "/result");
        } catch (const std::exception&) {
            check_host_alive("a result download");
            return;
        }
        int status = r.status;
        if (status != 200 || csv_records(r.body) != op.export_rows + 1)
            violate("a metadata export is complete",
                    "job " + std::to_string(id) + " result: HTTP " + std::to_string(status) + ", " +
                        std::to_string(csv_records(r.body)) + " records, expected " +
                        std::to_string(op.export_rows + 1));
    }
}

void Soak::resolve_pending(bool all) {
    std::vector<std::int64_t> done;
    for (auto& [id, op] : pending_) {
        int status = 0;
        auto job = get("/api/jobs/" + std::to_string(id), status);
        if (status != 200) continue;
        std::string state = job.value("state", "");
        if (!is_final(state)) continue;
        resolve(id, op, state);
        done.push_back(id);
        if (!all && done.size() > 20) break;
    }
    for (auto id : done) pending_.erase(id);
}

// --- the run --------------------------------------------------------------------------------

int Soak::run() {
    started_ = Clock::now();
    std::printf("# Wharf chaos soak\n\nseed %llu, %.0f s, %d kills%s\n\n",
                static_cast<unsigned long long>(o_.seed), o_.seconds, o_.kills,
                o_.rounds ? (", at most " + std::to_string(o_.rounds) + " rounds").c_str() : "");
    try {
        prepare();
    } catch (...) {
        if (remove_dir_) fs::remove_all(dir_);
        throw;
    }
    note("work directory " + dir_.string() + " (kept if the soak fails)");
    host_ = std::make_unique<Host>(dir_ / "configs", dir_ / "logs", token_);
    start_host();
    note("wharfd pid " + std::to_string(host_->pid()) + " ready");

    auto chaos_start = Clock::now();
    auto progress = [&] {
        double by_time =
            std::chrono::duration<double>(Clock::now() - chaos_start).count() / o_.seconds;
        double by_rounds =
            o_.rounds ? static_cast<double>(rounds_) / static_cast<double>(o_.rounds) : 0;
        return std::max(by_time, by_rounds);
    };
    auto last_resolve = Clock::now();
    auto last_note = Clock::now();
    while (progress() < 1.0) {
        // Kills are spread evenly over the run, each at a random point of its slot.
        if (kills_done_ < o_.kills && progress() >= (kills_done_ + 1.0) / (o_.kills + 1.0)) {
            kill_host();
            continue;
        }
        act();
        ++rounds_;
        if (Clock::now() - last_resolve > 2s) {
            resolve_pending(false);
            refresh_backlog();
            last_resolve = Clock::now();
        }
        if (Clock::now() - last_note > 30s) {
            note(std::to_string(rounds_) + " rounds, " + std::to_string(jobs_.size()) + " jobs, " +
                 std::to_string(kills_done_) + " kills, " + std::to_string(count_["plugin swaps"]) +
                 " swaps, " + std::to_string(violations_.size()) + " violations");
            last_note = Clock::now();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(uniform(0, 30)));
    }
    while (kills_done_ < o_.kills) kill_host();  // --rounds ended it early
    double chaos_seconds = std::chrono::duration<double>(Clock::now() - chaos_start).count();
    note("chaos over after " + std::to_string(rounds_) + " rounds; draining");

    drain();
    converge_live_copies();
    check_jobs();
    check_config();
    check_plugins();
    auto status = host_->stop();
    bool clean = status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
    invariant("wharfd stops cleanly on SIGTERM after the soak", 1, clean ? 0 : 1,
              status ? "wait status " + std::to_string(*status) : "did not exit in 60 s");
    if (!clean) violate("wharfd stops cleanly", "log " + host_->log().string());
    check_offline();
    check_recorder_log();
    summary(chaos_seconds);
    if (!violations_by_invariant_.empty()) return 1;
    if (remove_dir_) fs::remove_all(dir_);
    return 0;
}

void Soak::drain() {
    auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(o_.drain_seconds));
    std::string waiting;
    while (Clock::now() < deadline) {
        check_host_alive("the drain");
        resolve_pending(true);
        waiting.clear();
        for (std::string state : {"queued", "active", "failed", "scheduled"}) {
            int status = 0;
            auto body = get("/api/jobs?state=" + state + "&limit=5", status);
            if (status == 200 && !body["jobs"].empty())
                waiting += state + " (e.g. job " +
                           std::to_string(body["jobs"][0].value("id", std::int64_t{0})) + ") ";
        }
        if (waiting.empty() && pending_.empty()) break;
        std::this_thread::sleep_for(500ms);
    }
    invariant("no job queued, active, failed (waiting for a retry) or scheduled after the drain", 1,
              waiting.empty() ? 0 : 1, waiting.empty() ? "drained" : "still " + waiting);
    if (!waiting.empty())
        violate("the host drains",
                "after " + std::to_string(o_.drain_seconds) + " s still " + waiting);
    note("drained");
}

bool Soak::swapped_recently(const std::string& operation) const {
    static const std::map<std::string, std::string> owner = {
        {"asset-delete", "delete.so"},      {"asset-move", "move.so"},
        {"page-move", "move.so"},           {"metadata-export", "metadata.so"},
        {"metadata-import", "metadata.so"}, {"rollout", "rollout.so"},
        {"live-copy-create", "rollout.so"}};
    auto o = owner.find(operation);
    if (o == owner.end()) return false;
    auto at = last_swap_.find(o->second);
    return at != last_swap_.end() && Clock::now() - at->second < 10s;
}

void Soak::refresh_backlog() {
    int status = 0;
    auto body = get("/api/queues", status);
    if (status != 200) return;
    long queued = 0;
    for (const auto& q : body["queues"])
        if (q.contains("jobs"))
            queued += q["jobs"].value("queued", 0L) + q["jobs"].value("failed", 0L);
    backlog_ = queued;
}

// Live copies follow their blueprint only when rolled out: a section rollout
// or a page move since the last rollout leaves links in live copies to live
// pages that are gone or not created yet. After the chaos one rollout of the
// whole blueprint to every live copy must succeed and bring them up to date;
// the reference check comes after it.
void Soak::converge_live_copies() {
    std::size_t stale = 0;
    {
        auto repository = wharf::host::SqliteRepository::open(dir_ / "var/repository");
        repository->referrers_under(gen_.live_root, false, [&](const wharf::Reference& r) {
            if (r.from_path.rfind(gen_.pages_root + "/", 0) != 0 &&
                r.from_path != gen_.pages_root && !repository->get(r.to_path) &&
                r.to_path.rfind(gen_.live_root + "/", 0) == 0)
                ++stale;
            return true;
        });
    }
    count_["stale live copy links before the final rollout"] = static_cast<long>(stale);
    int status = 0;
    auto answer = call("POST", "/api/operations/rollout",
                       Json{{"blueprint", gen_.pages_root}}.dump(), "application/json", status);
    std::string outcome = status == 200 ? answer.value("outcome", "") : "";
    if (status == 202) {
        auto id = answer["id"].get<std::int64_t>();
        TrackedJob t;
        t.id = id;
        t.what = "final rollout";
        t.plain = false;
        jobs_[id] = t;
        eventually(
            [&] {
                auto job = get("/api/jobs/" + std::to_string(id), status);
                outcome = job.value("state", "");
                return is_final(outcome);
            },
            std::chrono::seconds(static_cast<long>(o_.drain_seconds)));
    }
    bool ok = outcome == "succeeded";
    if (!ok)
        violate("a final full rollout succeeds",
                "HTTP " + std::to_string(status) + ", " + outcome + " " + answer.dump());
    invariant("a full rollout of the blueprint after the chaos succeeds", 1, ok ? 0 : 1,
              std::to_string(live_copies_.size()) + " live copies; before it " +
                  std::to_string(stale) +
                  " links in live copies pointed at live pages not (yet) there");
}

void Soak::check_jobs() {
    // Every job in the store, by id: the tracked ones must all be there.
    std::map<std::int64_t, Json> all;
    std::string cursor;
    for (;;) {
        int status = 0;
        auto body =
            get("/api/jobs?limit=1000" + (cursor.empty() ? "" : "&cursor=" + cursor), status);
        if (status != 200) {
            violate("the API answers", "GET /api/jobs answered " + std::to_string(status));
            return;
        }
        for (auto& j : body["jobs"]) all[j["id"].get<std::int64_t>()] = j;
        if (body["next_cursor"].is_null()) break;
        cursor = std::to_string(body["next_cursor"].get<std::int64_t>());
    }
    std::size_t lost = 0, not_final = 0, unexpected = 0, deleted_but_there = 0, duplicate_tags = 0;
    std::map<std::string, long> by_state, by_what;
    std::map<std::string, std::int64_t> tags;
    long stop_acked_other = 0, stop_acked_stopped = 0;
    for (auto& [id, t] : jobs_) {
        auto it = all.find(id);
        if (t.deleted) {
            if (it != all.end()) {
                ++deleted_but_there;
                violate("a deleted job is gone",
                        "job " + std::to_string(id) + " answered 204 to DELETE but is listed");
            }
            continue;
        }
        if (it == all.end()) {
            ++lost;
            violate("every submitted job exists",
                    "job " + std::to_string(id) + " (" + t.what + ") is not in the store");
            continue;
        }
        const auto& j = it->second;
        std::string state = j.value("state", "");
        t.final_state = state;
        ++by_state[state];
        if (!is_final(state) || j["finished"].is_null()) {
            ++not_final;
            violate("every job ends in a final state",
                    "job " + std::to_string(id) + " (" + t.what + ") is " + state);
            continue;
        }
        if (t.plain) {
            auto tag = j["payload"].value("tag", "");
            if (!tag.empty() && !tags.emplace(tag, id).second) {
                ++duplicate_tags;
                violate("no job is stored twice", "jobs " + std::to_string(tags[tag]) + " and " +
                                                      std::to_string(id) + " carry tag " + tag);
            }
        }
        if (t.stop_acknowledged) {
            if (state == "stopped")
                ++stop_acked_stopped;
            else
                ++stop_acked_other;
            continue;
        }
        bool explained_give_up =
            state == "given_up" && j.value("retry_count", 0) >= j.value("max_retries", 0);
        bool ok = t.expect == Expect::any ||
                  (t.expect == Expect::succeeded && state == "succeeded") ||
                  (t.expect == Expect::error && state == "error") || explained_give_up;
        if (explained_give_up) ++count_["jobs given up after their retries (explained)"];
        if (!ok) {
            ++unexpected;
            ++by_what[t.what + " ended " + state];
            violate("a job ends as its consumer said",
                    "job " + std::to_string(id) + " (" + t.what + ", " + t.topic + ") ended " +
                        state + ": " + j.value("result_message", "") + " (retries " +
                        std::to_string(j.value("retry_count", 0)) + ")");
        }
    }
    // Jobs the soak did not submit (none expected): all final too.
    std::size_t foreign = 0, foreign_not_final = 0;
    for (auto& [id, j] : all) {
        if (jobs_.count(id)) continue;
        ++foreign;
        if (!is_final(j.value("state", ""))) ++foreign_not_final;
    }
    std::string states;
    for (auto& [s, n] : by_state) states += s + " " + std::to_string(n) + ", ";
    count_["jobs in store"] = static_cast<long>(all.size());
    for (auto& [s, n] : by_state) count_["final state " + s] = n;
    invariant("every submitted job exists (none lost; deleted ones gone)", jobs_.size(),
              lost + deleted_but_there,
              std::to_string(lost) + " lost, " + std::to_string(count_["jobs deleted"]) +
                  " deleted by the soak");
    invariant("every job ended in exactly one final state", jobs_.size(),
              not_final + duplicate_tags,
              states + std::to_string(duplicate_tags) + " stored twice; " +
                  std::to_string(foreign) + " jobs not submitted by the soak, " +
                  std::to_string(foreign_not_final) + " of them not final");
    if (foreign_not_final)
        violate(
            "every job ends in a final state",
            std::to_string(foreign_not_final) + " jobs not submitted by the soak are not final");
    std::string expected = std::to_string(unexpected) + " unexpected";
    for (auto& [w, n] : by_what) expected += "; " + w + ": " + std::to_string(n);
    invariant(
        "every job ended as its consumer said (succeeded / error; given up only after its retries)",
        jobs_.size(), unexpected,
        expected + "; stop acknowledged while not final: " + std::to_string(stop_acked_stopped) +
            " ended stopped, " + std::to_string(stop_acked_other) +
            " ended otherwise (finished first)");
}

void Soak::check_config() {
    int status = 0;
    auto config = get("/api/config", status);
    auto queues = get("/api/queues", status);
    std::size_t bad = 0;
    std::string counts;
    for (auto& q : queues_) {
        const Json* file = nullptr;
        for (const auto& f : config["files"])
            if (f["file"] == q.file) file = &f;
        std::string want = q.in_force ? wharf::host::sha256_hex(*q.in_force) : "";
        std::string have = file ? (*file)["applied_sha256"].get<std::string>() : "";
        const Json* live = nullptr;
        for (const auto& qq : queues["queues"])
            if (qq["name"] == q.name && qq["state"] == "live") live = &qq;
        std::string why;
        if (want != have)
            why = "applied sha256 " + have.substr(0, 12) + ", expected " + want.substr(0, 12);
        else if (q.in_force && !live)
            why = "the queue is not live";
        else if (!q.in_force && live)
            why = "a queue without a valid file is live";
        else if (live) {
            for (auto key : {"title", "topics", "type", "retries", "retry_delay_ms", "priority"})
                if ((*live)[key] != q.settings[key])
                    why += std::string(key) + " " + (*live)[key].dump() +
                           " != " + q.settings[key].dump() + " ";
            if ((*live)["max_parallel_configured"].get<double>() !=
                q.settings["max_parallel_configured"].get<double>())
                why += "max_parallel " + (*live)["max_parallel_configured"].dump();
        }
        if (!q.on_disk)
            counts += q.file + ": removed (no queue); ";
        else
            counts +=
                q.file + ": " + (q.disk_valid ? "valid" : "invalid") + " on disk, " +
                (q.in_force ? "in force v" +
                                  std::to_string(file ? (*file)["applied_version"].get<int>() : 0)
                            : std::string("none in force")) +
                "; ";
        if (!why.empty()) {
            ++bad;
            violate("the configuration in force equals the last valid files", q.file + ": " + why);
        }
    }
    invariant(
        "the configuration in force equals the last valid files (GET /api/config, /api/queues)",
        queues_.size(), bad,
        counts + std::to_string(count_["config edits valid"]) + " valid and " +
            std::to_string(count_["config edits invalid"]) + " invalid edits");
}

void Soak::check_plugins() {
    // Old versions unload once nothing of them is alive: give them a moment.
    std::string why;
    std::size_t bad = 0;
    eventually(
        [&] {
            why.clear();
            bad = 0;
            int status = 0;
            auto body = get("/api/plugins", status);
            for (auto& slot : plugins_) {
                auto hash = wharf::host::sha256_file(dir_ / "plugins" / slot.file);
                const Json* p = nullptr;
                for (const auto& pp : body["plugins"])
                    if (pp["file"] == slot.file) p = &pp;
                std::string w;
                if (!p)
                    w = "not listed";
                else if ((*p)["state"] != "active")
                    w = "state " + (*p)["state"].get<std::string>() + ": " +
                        (*p)["reason"].get<std::string>();
                else if ((*p)["content_sha256"] != hash)
                    w = "runs another build than the file";
                else if ((*p)["version"] != slot.versions[slot.current])
                    w = "version " + (*p)["version"].get<std::string>();
                else if (!(*p)["last_error"].get<std::string>().empty())
                    w = "last_error " + (*p)["last_error"].get<std::string>();
                else if ((*p)["loaded_versions"].get<int>() != 1)
                    w = std::to_string((*p)["loaded_versions"].get<int>()) +
                        " versions still loaded";
                if (!w.empty()) {
                    ++bad;
                    why += slot.file + ": " + w + "; ";
                }
            }
            if (body["plugins"].size() != plugins_.size()) {
                ++bad;
                why += std::to_string(body["plugins"].size()) + " plugins listed, " +
                       std::to_string(plugins_.size()) + " files";
            }
            return bad == 0;
        },
        30s);
    if (bad) violate("no plugin in an unexplained state", why);
    invariant(
        "every plugin active, running the build in its file, one version loaded, no last_error "
        "(GET /api/plugins)",
        plugins_.size(), bad,
        std::to_string(count_["plugin swaps"]) + " swaps" + (why.empty() ? "" : "; " + why));
}

void Soak::check_offline() {
    // wharf repo check, as an operator runs it.
    auto out_file = dir_ / "logs/repo-check.txt";
    std::string command = o_.cli.string() + " repo check --config " + (dir_ / "configs").string() +
                          " > " + out_file.string() + " 2>&1";
    int rc = std::system(command.c_str());
    auto out = read_file(out_file);
    bool ok = rc == 0 && out.find("wharf repo check: ok") != std::string::npos;
    invariant(
        "`wharf repo check` passes (index rows match properties and links, binaries present, "
        "parents and kinds, quick_check)",
        1, ok ? 0 : 1, tail_lines(out, 1).substr(0, tail_lines(out, 1).find('\n')));
    if (!ok) violate("wharf repo check passes", tail_lines(out, 20));

    auto repository = wharf::host::SqliteRepository::open(dir_ / "var/repository");
    // Where every generated asset and blueprint page is now.
    std::map<std::string, std::vector<std::string>> assets, pages;
    wharf::WalkOptions walk;
    walk.with_properties = false;
    repository->walk("/content", walk, [&](const wharf::Node& n) {
        std::string name(n.name());
        if (n.kind == wharf::NodeKind::asset && name.rfind("asset-", 0) == 0)
            assets[name].push_back(n.path);
        if (n.kind == wharf::NodeKind::page && n.path.rfind(gen_.pages_root + "/", 0) == 0)
            pages[name].push_back(n.path);
        return true;
    });
    std::size_t bad = 0, checked = 0, moved_units = 0, deleted_units = 0, partial = 0;
    for (auto& u : units_) {
        ++checked;
        std::vector<std::string> present;
        for (auto& l : u.locations)
            if (repository->get(l)) present.push_back(l);
        std::sort(present.begin(), present.end());
        present.erase(std::unique(present.begin(), present.end()), present.end());
        if (u.locations.size() > 1) ++moved_units;
        std::string why;
        if (u.delete_succeeded) {
            ++deleted_units;
            if (!present.empty()) why = "deleted but " + present[0] + " exists";
            for (auto& a : u.assets)
                if (assets.count(a)) why += " " + a + " still at " + assets[a][0];
        } else if (u.dead) {
            ++partial;
            if (present.size() > 1) why = "in two places: " + present[0] + " and " + present[1];
            for (auto& a : u.assets)
                if (assets[a].size() > 1)
                    why += " " + a + " in " + std::to_string(assets[a].size()) + " places";
        } else {
            if (present.size() != 1) {
                why = "at " + std::to_string(present.size()) + " of its locations";
                for (auto& l : u.locations) why += " " + l;
            } else {
                for (auto& a : u.assets) {
                    auto& at = assets[a];
                    if (u.assets_deleted.count(a)) {
                        if (!at.empty()) why += " " + a + " deleted but at " + at[0];
                    } else if (u.assets_maybe_gone.count(a)) {
                        if (at.size() > 1)
                            why += " " + a + " in " + std::to_string(at.size()) + " places";
                    } else if (at.size() != 1 || at[0] != present[0] + "/" + a) {
                        why += " " + a + " at " + std::to_string(at.size()) + " places" +
                               (at.empty() ? "" : " (" + at[0] + ")") + ", expected under " +
                               present[0];
                    }
                }
            }
        }
        if (!why.empty()) {
            ++bad;
            violate("every moved asset is at exactly one place", u.original + ": " + why);
        }
    }
    for (auto& a : stable_assets_) {
        ++checked;
        auto name = a.substr(a.rfind('/') + 1);
        if (assets[name].size() != 1 || assets[name][0] != a) {
            ++bad;
            violate("every moved asset is at exactly one place",
                    a + " (never moved) is at " + std::to_string(assets[name].size()) + " places");
        }
    }
    std::size_t page_bad = 0;
    for (auto& name : blueprint_page_names_)
        if (pages[name].size() != 1) {
            ++page_bad;
            violate(
                "every moved page is at exactly one place",
                name + " is at " + std::to_string(pages[name].size()) + " places in the blueprint");
        }
    for (auto& [name, at] : pages)
        if (!blueprint_page_names_.count(name)) {
            ++page_bad;
            violate("every moved page is at exactly one place",
                    "unexpected page " + at[0] + " in the blueprint");
        }
    invariant(
        "every asset folder moved or deleted is at exactly one place with exactly its assets; "
        "untouched assets where they were",
        checked, bad,
        std::to_string(moved_units) + " folders moved, " + std::to_string(deleted_units) +
            " deleted, " + std::to_string(partial) + " with a delete that did not succeed");
    invariant("every blueprint page (page moves) is at exactly one place",
              blueprint_page_names_.size(), page_bad,
              std::to_string(count_["operations as jobs: page-move"] +
                             count_["operations run at once: page-move"]) +
                  " page moves submitted");

    // Every reference points at an existing node, except into what a forced delete removed.
    std::size_t refs = 0, dangling = 0, allowed = 0;
    repository->referrers_under("/", false, [&](const wharf::Reference& r) {
        ++refs;
        if (repository->get(r.to_path)) return true;
        for (auto& f : force_deleted_)
            if (r.to_path == f || r.to_path.rfind(f + "/", 0) == 0) {
                ++allowed;
                return true;
            }
        if (force_deleted_names_.count(r.to_path.substr(r.to_path.rfind('/') + 1))) {
            ++allowed;
            return true;
        }
        ++dangling;
        if (dangling <= 20)
            violate("every reference points at an existing node",
                    r.from_path + " (" + r.property + ") -> " + r.to_path);
        return true;
    });
    invariant(
        "every reference points at an existing node (except into what a forced delete removed)",
        refs, dangling,
        std::to_string(allowed) + " left dangling by forced deletes (reported by them)");

    // Metadata imports: each row applied whole or not at all; succeeded imports completely.
    std::size_t rows = 0, import_bad = 0, applied_rows = 0;
    std::map<std::string, long> outcomes;
    for (auto& im : imports_) {
        ++outcomes[im.outcome.empty() ? "unresolved" : im.outcome];
        std::string k = std::to_string(im.number);
        auto check_row = [&](const std::string& asset, std::optional<int> row, bool must) {
            ++rows;
            auto node = repository->get(asset);
            if (!node) return;
            auto& p = node->properties;
            bool s = p.count("chaos:s" + k), n = p.count("chaos:n" + k), t = p.count("chaos:t" + k);
            std::string why;
            if (!row) {
                if (s || n || t) why = "the refused row was applied";
            } else if (s || n || t) {
                ++applied_rows;
                auto r = std::to_string(*row);
                if (!(s && n && t))
                    why = "row applied in part";
                else if (p["chaos:s" + k] !=
                             wharf::Property::string("v" + k + "-" + r + ", \"quoted\"") ||
                         p["chaos:n" + k] != wharf::Property::long_(im.number * 1000 + *row) ||
                         p["chaos:t" + k] !=
                             wharf::Property::multi(wharf::PropertyType::string,
                                                    {std::string("a" + k), std::string("b" + r)}))
                    why = "values differ from the CSV";
            } else if (must) {
                why = "not applied although the import succeeded";
            }
            if (!why.empty()) {
                ++import_bad;
                violate("every metadata import is fully applied",
                        "import " + k + " (job " + std::to_string(im.job) + ", " + im.outcome +
                            ") " + asset + ": " + why);
            }
        };
        for (auto& [asset, row] : im.rows) check_row(asset, row, im.outcome == "succeeded");
        if (!im.bad_asset.empty()) check_row(im.bad_asset, std::nullopt, false);
    }
    std::string oc;
    for (auto& [s, n] : outcomes) oc += s + " " + std::to_string(n) + ", ";
    invariant(
        "every metadata import row is applied whole or not at all; every succeeded import "
        "completely; refused rows not at all",
        rows, import_bad,
        std::to_string(imports_.size()) + " imports (" + oc + std::to_string(applied_rows) +
            " rows applied)");
}

void Soak::check_recorder_log() {
    // begin/ok lines of the recorder, per job and per host process.
    auto log = dir_ / "var/plugins/chaos.recorder/runs.log";
    std::ifstream in(log);
    std::map<std::int64_t, std::vector<std::pair<pid_t, long long>>> oks;
    std::map<std::int64_t, long> begins;
    std::string event;
    long long pid = 0, id = 0, retry = 0, version = 0, ms = 0;
    while (in >> event >> pid >> id >> retry >> version >> ms) {
        if (event == "begin")
            ++begins[id];
        else
            oks[id].push_back({static_cast<pid_t>(pid), ms});
    }
    std::size_t twice_same_life = 0, rerun_after_kill = 0, late = 0, succeeded_without_run = 0,
                checked = 0;
    long long worst_gap = 0;
    for (auto& [jid, t] : jobs_) {
        if (!t.recorder || t.deleted) continue;
        ++checked;
        auto& o = oks[jid];
        std::map<pid_t, int> per_pid;
        for (auto& [p, when] : o) ++per_pid[p];
        for (auto& [p, n] : per_pid)
            if (n > 1) {
                ++twice_same_life;
                violate("no job succeeds twice", "job " + std::to_string(jid) + " succeeded " +
                                                     std::to_string(n) + " times in wharfd pid " +
                                                     std::to_string(p));
            }
        if (per_pid.size() > 1) {
            // Allowed only when the earlier success was cut off by a kill
            // before the store committed it: the kill must follow closely.
            ++rerun_after_kill;
            for (std::size_t i = 0; i + 1 < o.size(); ++i) {
                long long next_kill = -1;
                for (auto k : kill_times_ms_)
                    if (k >= o[i].second) {
                        next_kill = k;
                        break;
                    }
                long long gap = next_kill < 0 ? -1 : next_kill - o[i].second;
                worst_gap = std::max(worst_gap, gap);
                if (!killed_pids_.count(o[i].first) || gap < 0 || gap > 5000) {
                    ++late;
                    violate("no job succeeds twice",
                            "job " + std::to_string(jid) + " succeeded in pid " +
                                std::to_string(o[i].first) +
                                " and again later; the next kill came " + std::to_string(gap) +
                                " ms after the first success");
                }
            }
        }
    }
    for (auto& [jid, t] : jobs_) {
        // A recorder job the store calls succeeded must have recorded its success.
        if (!t.recorder || t.deleted || t.final_state != "succeeded" || !oks[jid].empty()) continue;
        ++succeeded_without_run;
        violate("no job succeeds without running",
                "job " + std::to_string(jid) + " is succeeded but the recorder never finished it");
    }
    long total_begins = 0;
    for (auto& [jid, n] : begins) total_begins += n;
    invariant(
        "no job succeeded twice (recorder: at most one success per job per wharfd life; a second "
        "only after a kill cut the first off)",
        checked, twice_same_life + late + succeeded_without_run,
        std::to_string(total_begins) + " runs recorded; " + std::to_string(rerun_after_kill) +
            " jobs ran to success again after a kill within " + std::to_string(worst_gap) +
            " ms of their first success (not committed yet)");
}

void Soak::summary(double chaos_seconds) {
    std::printf(
        "\n## Invariants\n\n| | invariant | checked | violations | counts "
        "|\n|---|---|---:|---:|---|\n");
    for (auto& l : invariant_lines_) std::printf("%s\n", l.c_str());
    long final_total = 0;
    std::string finals;
    for (auto& [k, v] : count_)
        if (k.rfind("final state ", 0) == 0) {
            final_total += v;
            finals += k.substr(12) + " " + std::to_string(v) + ", ";
        }
    std::printf("\n## Summary\n\n| what | count |\n|---|---:|\n");
    std::printf("| seed | %llu |\n", static_cast<unsigned long long>(o_.seed));
    std::printf("| chaos time | %.0f s (%ld rounds) |\n", chaos_seconds, rounds_);
    std::printf("| jobs submitted (plain + operations as jobs) | %zu |\n", jobs_.size());
    std::printf("| plain jobs submitted | %ld |\n", count_["plain jobs submitted"]);
    std::printf("| operations submitted (at once + as jobs + refused) | %ld |\n",
                count_["operations submitted"]);
    std::printf("| jobs by final state | %s(%ld) |\n", finals.c_str(), final_total);
    std::printf("| jobs deleted by the soak | %ld |\n", count_["jobs deleted"]);
    std::printf("| SIGKILLs of wharfd | %d |\n", kills_done_);
    std::printf("| plugin swaps | %ld |\n", count_["plugin swaps"]);
    std::printf("| config edits valid / invalid | %ld / %ld |\n", count_["config edits valid"],
                count_["config edits invalid"]);
    std::printf("| queue files removed / re-added | %ld / %ld |\n", count_["queue files removed"],
                count_["queue files re-added"]);
    long violations = 0;
    for (auto& [name, n] : violations_by_invariant_) violations += n;
    std::printf("| violations | %ld |\n", violations);
    std::printf("\nDetails:");
    for (auto& [k, v] : count_)
        if (k.rfind("final state", 0) != 0 && k != "plain seq" && k != "queue versions")
            std::printf(" %s %ld;", k.c_str(), v);
    std::printf("\n");
    if (!violations_by_invariant_.empty()) {
        std::printf("\n## Violations\n\n");
        for (auto& v : violations_) std::printf("- %s\n", v.c_str());
        std::printf(
            "\nFAILED. Replay the same sequence of decisions (the host's timing differs) with:\n\n"
            "    %s --seed %llu --seconds %.0f --kills %d --assets %llu --pages %llu%s\n\n"
            "The work directory (logs/wharfd-*.log, var/, configs/) is kept: %s\n",
            o_.argv0.c_str(), static_cast<unsigned long long>(o_.seed), o_.seconds, o_.kills,
            static_cast<unsigned long long>(o_.assets), static_cast<unsigned long long>(o_.pages),
            o_.rounds ? (" --rounds " + std::to_string(o_.rounds)).c_str() : "",
            dir_.string().c_str());
    } else {
        std::printf("\nPASSED (seed %llu).\n", static_cast<unsigned long long>(o_.seed));
    }
}

}  // namespace

int main(int argc, char** argv) {
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGABRT, SIGSEGV})
        ::signal(sig, on_fatal_signal);
    std::set_terminate(on_terminate);
    Options options;
    try {
        options = parse(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wharf_chaos_soak: %s\n%s", e.what(), kUsage);
        return 2;
    }
    int rc = 2;
    std::unique_ptr<Soak> soak;
    try {
        soak = std::make_unique<Soak>(options);
        rc = soak->run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wharf_chaos_soak: cannot go on: %s\nseed %llu\n", e.what(),
                     static_cast<unsigned long long>(options.seed));
        rc = 2;
    }
    soak.reset();  // kills wharfd if it still runs
    return rc;
}
