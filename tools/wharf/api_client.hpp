#pragma once
// What the `wharf` commands that talk to a running wharfd share: where the
// server is and which token to send, one HTTP session, JSON in and out, and
// the mapping from HTTP answers to exit codes. Requests go through
// host::HttpClient; an event stream (a followed job log) through cpp-httplib's
// client directly, which hands the body over as it arrives.
//
// Server and token come from, in this order: the flags (--server, --token,
// --token-file), the environment (WHARF_SERVER, WHARF_TOKEN), the CLI config
// file (--cli-config, else $WHARF_CLI_CONFIG, else
// $XDG_CONFIG_HOME/wharf/cli.yaml or ~/.config/wharf/cli.yaml, with keys
// `server`, `token` and `token_file`), then http://127.0.0.1:8420.
//
// Exit codes of the server commands (see kExit*): 0 done, 1 the server
// refused or failed, 2 usage, 3 server unreachable, 4 not authorized (401 or
// 403), 5 not found, 6 conflict (the job's state does not allow it).

#include <CLI/CLI.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "http/http_client.hpp"

namespace wharf::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;
inline constexpr int kExitUnauthorized = 4;
inline constexpr int kExitNotFound = 5;
inline constexpr int kExitConflict = 6;

/// Options every server command understands (set on the top-level app).
struct GlobalOptions {
    std::string server;
    std::string token;
    std::string token_file;
    std::string cli_config;
    bool json = false;
};

GlobalOptions& global_options();

/// Adds --server, --token, --token-file, --cli-config and --json to `app`.
void add_global_options(CLI::App& app);

/// Thrown by commands: printed as `wharf: message` with the exit code.
struct CommandError {
    int exit_code = kExitFailed;
    std::string message;
};

/// One Server-Sent Event (text/event-stream): `event` is "" for a plain
/// message; `data` holds the data: fields joined with "\n".
struct StreamEvent {
    std::string event;
    std::string id;
    std::string data;
};

/// A session with the server named by the options (resolved on construction).
class ApiSession {
public:
    ApiSession();
    const std::string& server() const noexcept { return server_; }

    /// Sends a request; returns the response for 2xx, throws CommandError with
    /// the server's error message and the matching exit code otherwise.
    host::HttpResponse call(const std::string& method, const std::string& path,
                            const std::string& body = {});
    /// call() and parse the body as JSON.
    nlohmann::json call_json(const std::string& method, const std::string& path,
                             const std::string& body = {});

    /// GETs a text/event-stream and hands each event to `on_event` as it
    /// arrives. Returns true when the server ended the stream, false when the
    /// connection broke off before. Throws CommandError as call() does for a
    /// refusal (non-2xx) or a server it cannot reach.
    bool stream_events(const std::string& path,
                       const std::function<void(const StreamEvent&)>& on_event);

private:
    std::string server_;
    std::string token_;
    std::unique_ptr<host::HttpClient> client_;
};

/// Runs `command`, printing a CommandError and returning its exit code.
int run_command(const std::function<void()>& command);

/// Prints rows as aligned columns (the first row is the header).
void print_table(const std::vector<std::vector<std::string>>& rows);

/// A JSON value as a short text for tables ("" for null).
std::string text_of(const nlohmann::json& value);

}  // namespace wharf::cli
