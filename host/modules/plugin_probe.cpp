#include "modules/plugin_probe.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/property_tree/json_parser.hpp>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <sstream>

#include "base/error.hpp"
#include "modules/plugin_library.hpp"

extern char** environ;

namespace wharf::host {
namespace {

std::string signal_text(int sig) {
    const char* name = ::strsignal(sig);
    return "signal " + std::to_string(sig) + " (" + (name ? name : "unknown") + ")";
}

}  // namespace

ProbeResult probe_plugin(const std::filesystem::path& probe_executable,
                         const std::filesystem::path& file, std::chrono::milliseconds timeout) {
    ProbeResult result;
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
        result.message = std::string("probe: pipe failed: ") + std::strerror(errno);
        return result;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    std::string exe = probe_executable.string();
    std::string arg = file.string();
    char* argv[] = {exe.data(), arg.data(), nullptr};
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (rc != 0) {
        ::close(out[0]);
        result.message = "probe: cannot run " + exe + ": " + std::strerror(rc);
        return result;
    }

    std::string output;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool timed_out = false;
    std::array<char, 4096> buf{};
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        pollfd pfd{out[0], POLLIN, 0};
        int n = ::poll(&pfd, 1, static_cast<int>(left.count()));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            timed_out = n == 0;
            break;
        }
        ssize_t got = ::read(out[0], buf.data(), buf.size());
        if (got <= 0) break;  // EOF: the child closed stdout (exited)
        if (output.size() < 4 * 1024 * 1024) output.append(buf.data(), static_cast<size_t>(got));
    }
    ::close(out[0]);
    if (timed_out) ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out) {
        result.outcome = ProbeResult::Outcome::hung;
        result.message = "probe hung: loading the plugin did not finish within " +
                         std::to_string(timeout.count()) + " ms";
        return result;
    }
    if (WIFSIGNALED(status)) {
        result.outcome = ProbeResult::Outcome::crashed;
        result.message = "probe crashed while loading the plugin: " + signal_text(WTERMSIG(status));
        return result;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    boost::property_tree::ptree doc;
    try {
        std::istringstream in(output);
        boost::property_tree::read_json(in, doc);
    } catch (const std::exception&) {
        result.outcome = ProbeResult::Outcome::crashed;
        result.message = "probe exited with code " + std::to_string(code) + " without a result";
        return result;
    }
    if (code != 0) {
        result.outcome = ProbeResult::Outcome::refused;
        result.message = doc.get<std::string>("error", "probe refused the plugin");
        return result;
    }
    result.outcome = ProbeResult::Outcome::ok;
    result.abi_major = doc.get<std::uint32_t>("abi_major", 0);
    result.abi_minor = doc.get<std::uint32_t>("abi_minor", 0);
    result.sdk_version = doc.get<std::string>("sdk_version", "");
    if (auto m = doc.get_child_optional("manifest")) {
        result.has_manifest = true;
        result.manifest = *m;
    }
    return result;
}

int run_probe(const std::filesystem::path& file) {
    boost::property_tree::ptree doc;
    int code = 0;
    try {
        auto lib = PluginLibrary::load(file, false);
        const auto& entry = lib->entry();
        doc.put("abi_major", entry.abi_major);
        doc.put("abi_minor", entry.abi_minor);
        // Only a compatible entry may be called: its layout is known.
        if (!check_abi(entry.abi_major, entry.abi_minor)) {
            doc.put("sdk_version", entry.sdk_version ? entry.sdk_version : "");
            doc.add_child("manifest", entry.manifest());
        }
    } catch (const std::exception& e) {
        doc.put("error", e.what());
        code = 2;
    }
    boost::property_tree::write_json(std::cout, doc, false);
    std::cout.flush();
    // Skip static destructors of the plugin: a probe only reads.
    std::_Exit(code);
}

}  // namespace wharf::host
