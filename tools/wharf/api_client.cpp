#include "api_client.hpp"

#include <httplib.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "base/error.hpp"

namespace fs = std::filesystem;

namespace wharf::cli {
namespace {

std::string env(const char* name) {
    const char* value = std::getenv(name);
    return value ? value : "";
}

std::string read_token_file(const std::string& file) {
    std::ifstream in(file);
    if (!in) throw CommandError{kExitUsage, "cannot read the token file " + file};
    std::string token;
    std::getline(in, token);
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
    return token;
}

fs::path cli_config_path(const GlobalOptions& o) {
    if (!o.cli_config.empty()) return o.cli_config;
    if (auto e = env("WHARF_CLI_CONFIG"); !e.empty()) return e;
    if (auto xdg = env("XDG_CONFIG_HOME"); !xdg.empty()) return fs::path(xdg) / "wharf/cli.yaml";
    if (auto home = env("HOME"); !home.empty()) return fs::path(home) / ".config/wharf/cli.yaml";
    return {};
}

struct FileSettings {
    std::string server;
    std::string token;
};

FileSettings read_cli_config(const GlobalOptions& o) {
    FileSettings out;
    auto path = cli_config_path(o);
    std::error_code ec;
    if (path.empty() || !fs::exists(path, ec)) {
        if (!o.cli_config.empty())
            throw CommandError{kExitUsage, "no such CLI config file: " + o.cli_config};
        return out;
    }
    try {
        auto doc = YAML::LoadFile(path.string());
        if (!doc.IsMap() && !doc.IsNull())
            throw CommandError{kExitUsage, path.string() +
                                               ": expected a mapping of server, token, "
                                               "token_file"};
        for (const auto& entry : doc) {
            auto key = entry.first.as<std::string>();
            auto mark = entry.first.Mark();
            auto where = path.string() + ":" + std::to_string(mark.line + 1) + ":" +
                         std::to_string(mark.column + 1) + ": ";
            if (!entry.second.IsScalar())
                throw CommandError{kExitUsage, where + "'" + key + "' must be a string"};
            auto value = entry.second.as<std::string>();
            if (key == "server") {
                out.server = value;
            } else if (key == "token") {
                out.token = value;
            } else if (key == "token_file") {
                out.token = read_token_file(value);
            } else {
                throw CommandError{kExitUsage,
                                   where + "unknown key '" + key + "' (server, token, token_file)"};
            }
        }
    } catch (const YAML::Exception& e) {
        throw CommandError{kExitUsage, path.string() + ":" + std::to_string(e.mark.line + 1) + ":" +
                                           std::to_string(e.mark.column + 1) + ": " + e.msg};
    }
    return out;
}

int exit_code_for(int status) {
    if (status == 401 || status == 403) return kExitUnauthorized;
    if (status == 404) return kExitNotFound;
    if (status == 409) return kExitConflict;
    return kExitFailed;
}

// The CommandError for a refusal: the server's error message when it sent one.
CommandError refusal(int status, const std::string& body) {
    std::string message = "HTTP " + std::to_string(status);
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_object()) {
        const auto& e = j["error"];
        message = e.value("message", message) + " (" + e.value("code", std::string("error")) +
                  ", HTTP " + std::to_string(status) + ")";
    }
    return CommandError{exit_code_for(status), message};
}

// Splits a text/event-stream into events as its bytes arrive (the
// WHATWG HTML "event stream interpretation", less `retry`).
class EventStreamParser {
public:
    explicit EventStreamParser(const std::function<void(const StreamEvent&)>& on_event)
        : on_event_(on_event) {}

    void feed(const char* data, std::size_t size) {
        for (std::size_t i = 0; i < size; ++i) {
            char c = data[i];
            if (after_cr_ && c == '\n') {
                after_cr_ = false;
                continue;
            }
            after_cr_ = c == '\r';
            if (c == '\n' || c == '\r') {
                line_end();
            } else {
                line_.push_back(c);
            }
        }
    }

private:
    void line_end() {
        std::string line;
        line.swap(line_);
        if (line.empty()) {
            if (has_data_ || !event_.event.empty()) on_event_(event_);
            event_ = {};
            has_data_ = false;
            return;
        }
        if (line.front() == ':') return;  // a comment (keep-alive)
        auto colon = line.find(':');
        std::string field = line.substr(0, colon);
        std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.erase(0, 1);
        if (field == "data") {
            if (has_data_) event_.data.push_back('\n');
            event_.data += value;
            has_data_ = true;
        } else if (field == "event") {
            event_.event = value;
        } else if (field == "id") {
            event_.id = value;
        }
    }

    const std::function<void(const StreamEvent&)>& on_event_;
    std::string line_;
    StreamEvent event_;
    bool has_data_ = false;
    bool after_cr_ = false;
};

}  // namespace

GlobalOptions& global_options() {
    static GlobalOptions options;
    return options;
}

void add_global_options(CLI::App& app) {
    auto& o = global_options();
    app.add_option("--server", o.server,
                   "wharfd address, e.g. http://127.0.0.1:8420 (env WHARF_SERVER)");
    app.add_option("--token", o.token,
                   "API token (env WHARF_TOKEN; visible to ps: prefer the "
                   "environment or --token-file)");
    app.add_option("--token-file", o.token_file, "file whose first line is the API token");
    app.add_option("--cli-config", o.cli_config,
                   "CLI config file (default ~/.config/wharf/cli.yaml)");
    app.add_flag("--json", o.json, "print the server's JSON instead of text");
}

ApiSession::ApiSession() {
    const auto& o = global_options();
    FileSettings file;
    bool need_file = o.server.empty() && env("WHARF_SERVER").empty();
    need_file =
        need_file || (o.token.empty() && o.token_file.empty() && env("WHARF_TOKEN").empty());
    if (need_file) file = read_cli_config(o);
    server_ = !o.server.empty()              ? o.server
              : !env("WHARF_SERVER").empty() ? env("WHARF_SERVER")
              : !file.server.empty()         ? file.server
                                             : "http://127.0.0.1:8420";
    token_ = !o.token.empty()              ? o.token
             : !o.token_file.empty()       ? read_token_file(o.token_file)
             : !env("WHARF_TOKEN").empty() ? env("WHARF_TOKEN")
                                           : file.token;
    host::HttpClientOptions options;
    options.bearer_token = token_;
    try {
        client_ = std::make_unique<host::HttpClient>(server_, options);
    } catch (const host::Error& e) {
        throw CommandError{kExitUsage, e.what()};
    }
}

host::HttpResponse ApiSession::call(const std::string& method, const std::string& path,
                                    const std::string& body) {
    host::HttpResponse response;
    try {
        response = client_->request(method, path, body, body.empty() ? "" : "application/json");
    } catch (const host::Error& e) {
        throw CommandError{kExitUnreachable, e.what()};
    }
    if (response.status >= 200 && response.status < 300) return response;
    throw refusal(response.status, response.body);
}

bool ApiSession::stream_events(const std::string& path,
                               const std::function<void(const StreamEvent&)>& on_event) {
    httplib::Client client(client_->base_url());
    client.set_connection_timeout(std::chrono::seconds(5));
    // The server sends a keep-alive comment every 10 s on a quiet stream.
    client.set_read_timeout(std::chrono::seconds(30));
    if (!token_.empty()) client.set_bearer_token_auth(token_);
    int status = 0;
    std::string refused_body;
    EventStreamParser parser(on_event);
    auto result = client.Get(
        path, httplib::Headers{{"Accept", "text/event-stream"}},
        [&](const httplib::Response& response) {
            status = response.status;
            return true;
        },
        [&](const char* data, std::size_t size) {
            if (status >= 200 && status < 300) {
                parser.feed(data, size);
            } else if (refused_body.size() < 64 * 1024) {
                refused_body.append(data, size);
            }
            return true;
        });
    if (status == 0)
        throw CommandError{kExitUnreachable, "cannot reach " + client_->base_url() + ": " +
                                                 httplib::to_string(result.error())};
    if (status < 200 || status >= 300) throw refusal(status, refused_body);
    return static_cast<bool>(result);
}

nlohmann::json ApiSession::call_json(const std::string& method, const std::string& path,
                                     const std::string& body) {
    auto response = call(method, path, body);
    auto j = nlohmann::json::parse(response.body, nullptr, false);
    if (j.is_discarded())
        throw CommandError{kExitFailed, "the server at " + server_ + " did not answer JSON"};
    return j;
}

int run_command(const std::function<void()>& command) {
    try {
        command();
        return kExitOk;
    } catch (const CommandError& e) {
        std::cerr << "wharf: " << e.message << "\n";
        return e.exit_code;
    } catch (const std::exception& e) {
        std::cerr << "wharf: " << e.what() << "\n";
        return kExitFailed;
    }
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> widths;
    for (const auto& row : rows)
        for (std::size_t i = 0; i < row.size(); ++i) {
            if (widths.size() <= i) widths.push_back(0);
            widths[i] = std::max(widths[i], row[i].size());
        }
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
        }
        std::cout << line << "\n";
    }
}

std::string text_of(const nlohmann::json& value) {
    if (value.is_null()) return "";
    if (value.is_string()) return value.get<std::string>();
    return value.dump();
}

}  // namespace wharf::cli
