#pragma once
// Test support: a throwaway PostgreSQL server (Debian's postgresql package) for
// the PostgreSQL job store and cluster tests.
//
// The server runs `initdb` and `postgres` from /usr/lib/postgresql/<n>/bin on
// a temporary data directory, listening on 127.0.0.1 on a free port with
// trust authentication for the user `wharf`. initdb refuses to run as root,
// so when the tests run as root (CI) both programs run as Debian's unprivileged
// `postgres` user (setuid in the forked child) on a directory chowned to it.
//
// Lifetime: PgServer::shared() starts one server per test process on first use
// (initdb + start take about a second; ctest runs each test case in its own
// process, so there each test case gets its own server) and stops it by its PID
// when the process exits (SIGINT, then SIGKILL after a deadline), removing the
// data directory. The server is started with PR_SET_PDEATHSIG(SIGKILL), so it
// cannot outlive a test process that crashes or is killed; its backends end
// when they see the postmaster gone. Call shared() from the test's own thread
// (the parent-death signal follows the thread that forked).
//
// Each test takes a fresh database from create_database(), so tests sharing the
// server never see each other's rows.
//
// When PostgreSQL is not installed, shared() returns nullptr and says why;
// every other failure (initdb or the server failing) throws, so a broken setup
// fails the tests instead of skipping them.
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "integration/notify_test_support.hpp"
#include "support/temp_dir.hpp"

namespace wharf::test {

/// The bin folder of the newest installed PostgreSQL with initdb and postgres,
/// or an empty path.
inline std::filesystem::path postgres_bin_dir() {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path root = "/usr/lib/postgresql";
    std::vector<std::pair<int, fs::path>> found;
    for (const auto& entry : fs::directory_iterator(root, ec)) {
        fs::path bin = entry.path() / "bin";
        if (!fs::exists(bin / "initdb") || !fs::exists(bin / "postgres")) continue;
        try {
            found.emplace_back(std::stoi(entry.path().filename().string()), bin);
        } catch (const std::exception&) {
        }
    }
    if (found.empty()) return {};
    return std::max_element(found.begin(), found.end())->second;
}

class PgServer {
public:
    /// The server shared by the tests of this process, started on first use;
    /// nullptr when PostgreSQL is not installed (`why_not` says so). Throws
    /// std::runtime_error when it is installed but does not start.
    static PgServer* shared(std::string* why_not = nullptr) {
        static std::unique_ptr<PgServer> server;
        static std::string missing;
        if (!server && missing.empty()) {
            if (postgres_bin_dir().empty()) {
                missing =
                    "PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/initdb): "
                    "PostgreSQL tests skipped; `tools/deps.sh test` installs it";
            } else {
                server = std::make_unique<PgServer>();
            }
        }
        if (why_not) *why_not = missing;
        return server.get();
    }

    /// Starts a server of its own (initdb on a new temp directory, then
    /// postgres). Tests run without fsync (faster, and nothing outlives the
    /// test anyway); `durable` turns fsync and full page writes on, as a
    /// production server runs (benchmarks). Throws std::runtime_error with the
    /// programs' output on failure.
    explicit PgServer(bool durable = false) : dir_(stale_dirs_removed("wharf-pg")) {
        bin_ = postgres_bin_dir();
        if (bin_.empty()) throw std::runtime_error("PostgreSQL is not installed");
        if (::geteuid() == 0) {
            // initdb refuses root: run as Debian's unprivileged postgres user.
            const passwd* pw = ::getpwnam("postgres");
            if (!pw) {
                throw std::runtime_error(
                    "running as root and there is no `postgres` user to run PostgreSQL as");
            }
            run_as_ = std::pair<uid_t, gid_t>{pw->pw_uid, pw->pw_gid};
            if (::chown(dir_.path().c_str(), pw->pw_uid, pw->pw_gid) != 0) {
                throw std::runtime_error("cannot chown " + dir_.path().string() + " to postgres");
            }
        }
        auto data = dir_.path() / "data";
        pid_t initdb = spawn({(bin_ / "initdb").string(), "-D", data.string(), "-U", "wharf",
                              "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"},
                             dir_.path() / "initdb.log");
        if (!wait_exit(initdb, std::chrono::seconds(120))) {
            ::kill(initdb, SIGKILL);
            ::waitpid(initdb, nullptr, 0);
            throw std::runtime_error("initdb did not finish: " + read(dir_.path() / "initdb.log"));
        }
        if (exit_status_ != 0) {
            throw std::runtime_error("initdb failed: " + read(dir_.path() / "initdb.log"));
        }
        // The free port can be taken between choosing and binding it: try again.
        std::string failures;
        for (int attempt = 0; attempt < 3 && pid_ <= 0; ++attempt) {
            port_ = free_port();
            auto log = dir_.path() / ("server-" + std::to_string(port_) + ".log");
            pid_t pid = spawn({(bin_ / "postgres").string(), "-D", data.string(), "-p",
                               std::to_string(port_), "-c", "listen_addresses=127.0.0.1", "-c",
                               "unix_socket_directories=" + dir_.path().string(), "-c",
                               durable ? "fsync=on" : "fsync=off", "-c",
                               durable ? "full_page_writes=on" : "full_page_writes=off", "-c",
                               "max_connections=200"},
                              log);
            if (wait_ready(pid, std::chrono::seconds(60))) {
                pid_ = pid;
            } else {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, nullptr, 0);
                failures += read(log);
            }
        }
        if (pid_ <= 0) throw std::runtime_error("PostgreSQL did not start: " + failures);
    }

    ~PgServer() {
        if (pid_ > 0) {
            ::kill(pid_, SIGINT);  // fast shutdown: ends sessions, no waiting for clients
            if (!wait_exit(pid_, std::chrono::seconds(20))) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, nullptr, 0);
            }
        }
    }

    PgServer(const PgServer&) = delete;
    PgServer& operator=(const PgServer&) = delete;

    pid_t pid() const noexcept { return pid_; }
    std::uint16_t port() const noexcept { return port_; }

    /// The URL of `database` on this server.
    std::string url(const std::string& database) const {
        return "postgresql://wharf@127.0.0.1:" + std::to_string(port_) + "/" + database;
    }

    /// Creates a new, empty database and returns its URL.
    std::string create_database() {
        static std::atomic<int> counter{0};
        std::string name = "wharf_test_" + std::to_string(counter++);
        pqxx::connection c(url("postgres"));
        pqxx::nontransaction n(c);
        n.exec("CREATE DATABASE " + name);
        return url(name);
    }

    /// Everything the server wrote to its log so far.
    std::string log() const {
        return read(dir_.path() / ("server-" + std::to_string(port_) + ".log"));
    }

private:
    // Removes the directories of earlier test processes that were killed
    // before they could clean up (their servers died with them); returns
    // `prefix` for the new directory.
    static std::string stale_dirs_removed(const std::string& prefix) {
        namespace fs = std::filesystem;
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(fs::temp_directory_path(), ec)) {
            std::string name = entry.path().filename().string();
            if (name.rfind(prefix + "-", 0) != 0) continue;
            pid_t owner = 0;
            try {
                owner = static_cast<pid_t>(std::stol(name.substr(prefix.size() + 1)));
            } catch (const std::exception&) {
                continue;
            }
            if (owner > 0 && ::kill(owner, 0) != 0 && errno == ESRCH) fs::remove_all(entry, ec);
        }
        return prefix;
    }

    // Starts `argv` with output to `log`, as the postgres user when running as
    // root, killed when this thread's process dies.
    pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& log) {
        std::vector<std::string> args = argv;
        std::vector<char*> cargs;
        for (auto& a : args) cargs.push_back(a.data());
        cargs.push_back(nullptr);
        std::string path_env = "PATH=/usr/bin:/bin", lang_env = "LC_ALL=C";
        std::vector<char*> env = {path_env.data(), lang_env.data(), nullptr};
        std::string log_path = log.string();
        pid_t parent = ::getpid();
        auto ids = run_as_;
        pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error("fork failed");
        if (pid == 0) {
            // Only async-signal-safe calls until exec.
            int out = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            int in = ::open("/dev/null", O_RDONLY);
            if (out < 0 || in < 0) ::_exit(126);
            ::dup2(in, STDIN_FILENO);
            ::dup2(out, STDOUT_FILENO);
            ::dup2(out, STDERR_FILENO);
            if (ids) {
                if (::setgroups(0, nullptr) != 0 || ::setgid(ids->second) != 0 ||
                    ::setuid(ids->first) != 0)
                    ::_exit(126);
            }
            // After setuid: changing credentials clears the parent-death signal.
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(125);
            ::execve(cargs[0], cargs.data(), env.data());
            ::_exit(127);
        }
        return pid;
    }

    // Waits for `pid` to exit up to `timeout`; records its exit status.
    bool wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (true) {
            int status = 0;
            if (::waitpid(pid, &status, WNOHANG) == pid) {
                exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                return true;
            }
            if (std::chrono::steady_clock::now() >= deadline) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }

    // Waits until the server accepts connections; false if it exited or the
    // deadline passed.
    bool wait_ready(pid_t pid, std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid, &status, WNOHANG) == pid) return false;
            try {
                pqxx::connection c("postgresql://wharf@127.0.0.1:" + std::to_string(port_) +
                                   "/postgres?connect_timeout=2");
                return true;
            } catch (const pqxx::broken_connection&) {
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
        }
        return false;
    }

    static std::string read(const std::filesystem::path& file) {
        std::ifstream in(file);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

    TempDir dir_;
    std::filesystem::path bin_;
    std::optional<std::pair<uid_t, gid_t>> run_as_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
    int exit_status_ = -1;
};

}  // namespace wharf::test
