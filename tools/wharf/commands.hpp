#pragma once
// Subcommands of the `wharf` CLI. Each group lives in its own file and adds
// itself to the CLI11 app with an add_*_commands function called from main;
// a command's callback stores its exit code in `exit_code`.
//
// Exit codes: 0 success, 1 the command found problems (or failed), 2 usage.

#include <CLI/CLI.hpp>

namespace wharf::cli {

/// `wharf config validate DIR [--plugins DIR] [--probe PATH]`.
void add_config_commands(CLI::App& app, int& exit_code);

}  // namespace wharf::cli
