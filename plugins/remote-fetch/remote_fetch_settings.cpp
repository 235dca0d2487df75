#include "remote_fetch_settings.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace wharf_remote_fetch {
namespace {

using wharf::ConfigField;
using wharf::ConfigType;

ConfigField integer(const char* name, const char* description, const char* fallback, double minimum,
                    double maximum) {
    auto f = wharf::make_field(name, ConfigType::integer, description,
                               fallback ? std::optional<std::string>(fallback) : std::nullopt);
    f.minimum = minimum;
    f.maximum = maximum;
    return f;
}

}  // namespace

long FetchSettings::retry_delay(int attempt) const {
    double delay = static_cast<double>(retry_delay_ms) * std::pow(retry_backoff, attempt - 1);
    return static_cast<long>(std::min(delay, static_cast<double>(retry_delay_max_ms)));
}

wharf::ConfigSchema config_schema() {
    wharf::ConfigSchema s;
    s.name = kConfigName;
    s.description = "Remote fetch of assets from another Wharf (AEM: Connected Assets fetch)";
    auto email = wharf::make_field("email_enabled", ConfigType::boolean,
                                   "Send an e-mail when a remote fetch job ends", "false");
    auto backoff =
        wharf::make_field("retry_backoff", ConfigType::number,
                          "Each retry waits this many times longer than the previous", "2");
    backoff.minimum = 1;
    backoff.maximum = 10;

    auto url = wharf::make_field("url", ConfigType::string,
                                 "Base URL of the remote wharfd, e.g. http://dam-eu.example:8420");
    url.required = true;
    url.format = "url";
    auto token = wharf::make_field(
        "token_file", ConfigType::string,
        "File holding the bearer token (viewer role on the remote); a relative path is "
        "resolved against the config directory");
    token.required = true;
    auto remote = wharf::make_field("", ConfigType::object, "One remote deployment");
    remote.fields = {
        url, token,
        integer("connect_timeout_ms", "Overrides connect_timeout_ms", nullptr, 100, 600000),
        integer("transfer_timeout_ms", "Overrides transfer_timeout_ms", nullptr, 0, 86400000),
        integer("max_bytes_per_second", "Overrides max_bytes_per_second", nullptr, 0, 1e12)};
    auto remotes = wharf::make_field("remotes", ConfigType::map,
                                     "Remote deployments by name (the request's 'remote')");
    remotes.item.push_back(remote);

    s.fields = {
        integer("threshold",
                "Total bytes of a request above which it becomes a job; at or below it, it runs "
                "at once",
                "104857600", 0, 1e15),
        email,
        integer("parallel_transfers", "Assets transferred at once", "4", 1, 32),
        integer("connect_timeout_ms", "Time to connect to a remote", "10000", 100, 600000),
        integer("transfer_timeout_ms",
                "Longest time one asset's transfer may take (0: no limit; the low-speed limit "
                "still applies)",
                "0", 0, 86400000),
        integer("low_speed_limit", "Bytes per second below which a transfer counts as stalled",
                "1024", 0, 1e9),
        integer("low_speed_time_ms", "How long a transfer may stay below low_speed_limit", "30000",
                1000, 3600000),
        integer("retries", "Retries of a request after a network error or a 5xx answer", "5", 0,
                100),
        integer("retry_delay_ms", "Delay before the first retry", "1000", 0, 3600000),
        backoff,
        integer("retry_delay_max_ms", "Longest delay between retries", "30000", 0, 86400000),
        integer("max_bytes_per_second", "Bandwidth limit per transfer (0: none)", "0", 0, 1e12),
        remotes,
    };
    return s;
}

FetchSettings settings_from(const boost::property_tree::ptree& values,
                            const std::filesystem::path& config_dir) {
    FetchSettings s;
    s.threshold = values.get<std::uint64_t>("threshold", s.threshold);
    s.parallel_transfers = values.get<std::size_t>("parallel_transfers", s.parallel_transfers);
    s.connect_timeout_ms = values.get<long>("connect_timeout_ms", s.connect_timeout_ms);
    s.transfer_timeout_ms = values.get<long>("transfer_timeout_ms", s.transfer_timeout_ms);
    s.low_speed_limit = values.get<long>("low_speed_limit", s.low_speed_limit);
    s.low_speed_time_ms = values.get<long>("low_speed_time_ms", s.low_speed_time_ms);
    s.retries = values.get<int>("retries", s.retries);
    s.retry_delay_ms = values.get<long>("retry_delay_ms", s.retry_delay_ms);
    s.retry_backoff = values.get<double>("retry_backoff", s.retry_backoff);
    s.retry_delay_max_ms = values.get<long>("retry_delay_max_ms", s.retry_delay_max_ms);
    s.max_bytes_per_second = values.get<std::uint64_t>("max_bytes_per_second", 0);
    if (auto remotes = values.get_child_optional("remotes")) {
        for (const auto& [name, r] : *remotes) {
            RemoteSettings remote;
            remote.name = name;
            remote.url = r.get<std::string>("url", "");
            while (!remote.url.empty() && remote.url.back() == '/') remote.url.pop_back();
            remote.token_file = r.get<std::string>("token_file", "");
            if (remote.token_file.is_relative())
                remote.token_file = (config_dir / remote.token_file).lexically_normal();
            remote.connect_timeout_ms = r.get<long>("connect_timeout_ms", s.connect_timeout_ms);
            remote.transfer_timeout_ms = r.get<long>("transfer_timeout_ms", s.transfer_timeout_ms);
            remote.max_bytes_per_second =
                r.get<std::uint64_t>("max_bytes_per_second", s.max_bytes_per_second);
            s.remotes[name] = remote;
        }
    }
    return s;
}

std::optional<std::string> check(const FetchSettings& settings) {
    if (settings.retry_delay_max_ms < settings.retry_delay_ms)
        return "retry_delay_max_ms (" + std::to_string(settings.retry_delay_max_ms) +
               ") is below retry_delay_ms (" + std::to_string(settings.retry_delay_ms) + ")";
    for (const auto& [name, remote] : settings.remotes) {
        bool ok = !name.empty() && std::isalnum(static_cast<unsigned char>(name[0]));
        for (char c : name)
            ok = ok &&
                 (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
        if (!ok)
            return "remote name '" + name +
                   "' is not valid: use letters, digits, '-', '_' and '.', starting with a letter "
                   "or digit";
        if (remote.url.rfind("http://", 0) != 0 && remote.url.rfind("https://", 0) != 0)
            return "remotes." + name + ".url '" + remote.url +
                   "' must start with http:// or https://";
        try {
            (void)read_token(remote.token_file);
        } catch (const std::exception& e) {
            return "remotes." + name + ".token_file: " + e.what();
        }
    }
    return std::nullopt;
}

std::string read_token(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read token file '" + file.string() + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    auto token = ss.str();
    auto not_space = [](unsigned char c) { return !std::isspace(c); };
    token.erase(token.begin(), std::find_if(token.begin(), token.end(), not_space));
    token.erase(std::find_if(token.rbegin(), token.rend(), not_space).base(), token.end());
    if (token.empty()) throw std::runtime_error("token file '" + file.string() + "' is empty");
    if (token.find_first_of("\r\n") != std::string::npos)
        throw std::runtime_error("token file '" + file.string() + "' holds more than one line");
    return token;
}

}  // namespace wharf_remote_fetch
