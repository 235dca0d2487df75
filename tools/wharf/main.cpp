// wharf: the Wharf admin CLI. Offline commands (config validate) work on files;
// the others talk to a running wharfd over its HTTP API (api_client.hpp says
// how the server and token are found, and the exit codes).
#include <CLI/CLI.hpp>

#include "api_client.hpp"
#include "commands.hpp"
#include "wharf/version.hpp"

int main(int argc, char** argv) {
    CLI::App app{"wharf: administer a Wharf job host"};
    app.set_version_flag("--version", std::string("wharf ") + WHARF_HOST_VERSION + " (SDK " +
                                          wharf::kSdkVersion + ")");
    app.footer(
        "Server and token: --server/--token/--token-file, else WHARF_SERVER/WHARF_TOKEN, else "
        "~/.config/wharf/cli.yaml (server, token, token_file), else http://127.0.0.1:8420.\n"
        "Exit codes: 0 ok, 1 failed or problems found, 2 usage, 3 server unreachable, "
        "4 not authorized, 5 not found, 6 conflict.");
    app.require_subcommand(1);
    // Global options may follow the subcommand: `wharf jobs list --json`.
    app.fallthrough();
    wharf::cli::add_global_options(app);
    int exit_code = 0;
    wharf::cli::add_config_commands(app, exit_code);
    wharf::cli::add_jobs_commands(app, exit_code);
    wharf::cli::add_status_commands(app, exit_code);
    wharf::cli::add_op_commands(app, exit_code);
    wharf::cli::add_repo_commands(app, exit_code);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    return exit_code;
}
