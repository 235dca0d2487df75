// wharf: the Wharf admin CLI. Offline commands (config validate) work on files;
// later commands talk to a running wharfd over its HTTP API.
#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "wharf/version.hpp"

int main(int argc, char** argv) {
    CLI::App app{"wharf: administer a Wharf job host"};
    app.set_version_flag("--version", std::string("wharf ") + WHARF_HOST_VERSION + " (SDK " +
                                          wharf::kSdkVersion + ")");
    app.require_subcommand(1);
    int exit_code = 0;
    wharf::cli::add_config_commands(app, exit_code);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    return exit_code;
}
