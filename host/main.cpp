// wharfd: the Wharf host. Loads configs/wharf.yaml, starts the host
// (app/host.hpp: its parts and their order), and runs until SIGTERM or
// SIGINT, then stops plugins in reverse start order, then the job engine, and
// exits 0.
#include <signal.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include "app/host.hpp"
#include "base/log.hpp"
#include "config/host_settings.hpp"
#include "wharf/version.hpp"

namespace {

void usage(std::ostream& out) {
    out << "usage: wharfd --config DIR\n"
           "       wharfd --version\n";
}

}  // namespace

int main(int argc, char** argv) {
    std::filesystem::path config_dir;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--version") {
            std::cout << "wharfd " << WHARF_HOST_VERSION << " (SDK ABI " << wharf::kSdkAbiMajor
                      << "." << wharf::kSdkAbiMinor << ", SDK " << wharf::kSdkVersion << ")\n";
            return 0;
        } else if (arg == "--config" && i + 1 < argc) {
            config_dir = argv[++i];
        } else if (arg == "--help" || arg == "-h") {
            usage(std::cout);
            return 0;
        } else {
            std::cerr << "wharfd: unknown argument '" << arg << "'\n";
            usage(std::cerr);
            return 64;
        }
    }
    if (config_dir.empty()) {
        usage(std::cerr);
        return 64;
    }

    // Block the stop signals in every thread; main waits for them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    auto log = wharf::host::logger("host");
    try {
        auto settings = wharf::host::load_host_settings(config_dir);
        wharf::host::set_log_level(settings.log_level);
        std::filesystem::create_directories(settings.data_dir);
        log->info("wharfd starting version={} abi={}.{} config={} data={} plugins={}",
                  WHARF_HOST_VERSION, wharf::kSdkAbiMajor, wharf::kSdkAbiMinor,
                  settings.config_dir.string(), settings.data_dir.string(),
                  settings.plugins_dir.string());

        wharf::host::Host host(std::move(settings));
        log->info("wharfd ready plugins={} api=http://{}", host.plugin_count(), host.address());

        int sig = 0;
        sigwait(&stop_signals, &sig);
        log->info("wharfd stopping signal={}", strsignal(sig));
        host.stop();
    } catch (const std::exception& e) {
        log->error("wharfd cannot start: {}", e.what());
        return 1;
    }
    log->info("wharfd stopped");
    return 0;
}
