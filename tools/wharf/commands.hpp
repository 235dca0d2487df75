#pragma once
// Subcommands of the `wharf` CLI. Each group lives in its own file and adds
// itself to the CLI11 app with an add_*_commands function called from main;
// a command's callback stores its exit code in `exit_code`.
//
// Exit codes: 0 success, 1 the command found problems or the server refused
// or failed, 2 usage, 3 server unreachable, 4 not authorized (401/403),
// 5 not found, 6 conflict (api_client.hpp).

#include <CLI/CLI.hpp>

namespace wharf::cli {

/// `wharf config validate DIR [--plugins DIR] [--probe PATH]`.
void add_config_commands(CLI::App& app, int& exit_code);

/// `wharf jobs list|show|log|stop|delete|report|submit`.
void add_jobs_commands(CLI::App& app, int& exit_code);

/// `wharf queues`, `wharf plugins`.
void add_status_commands(CLI::App& app, int& exit_code);

/// `wharf op OPERATION [key=value ...] [--wait]`.
void add_op_commands(CLI::App& app, int& exit_code);

/// `wharf repo check|import|generate|gc` (offline, on the repository's data dir).
void add_repo_commands(CLI::App& app, int& exit_code);

}  // namespace wharf::cli
