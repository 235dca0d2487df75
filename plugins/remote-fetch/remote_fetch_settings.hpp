#pragma once
// The remote fetch plugin's configuration (operations/remote-fetch.yaml):
// its schema, and the values in force as a plain struct. Named remotes carry
// a base URL and a token file (read at each use, so a rotated token needs no
// config edit; a relative path is resolved against the host's config
// directory, wharf::Config::directory(), and normalised: `secrets/eu.token`
// is <configs>/secrets/eu.token, `../secrets/eu.token` lies beside it) and
// may override the timeouts and the bandwidth limit.
//
// Values are copied: a run works with the settings it started with.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <wharf/config.hpp>

namespace wharf_remote_fetch {

inline constexpr const char* kConfigName = "operations/remote-fetch";
inline constexpr const char* kTopic = "wharf/remote/fetch";
/// Property set on every fetched asset: "<remote>:<remote path>". A re-run
/// recognises an asset it already fetched by it (and by its sha256).
inline constexpr const char* kSourceProperty = "wharf:remoteSource";

struct RemoteSettings {
    std::string name;
    std::string url;                   ///< base URL without a trailing '/', e.g. http://dam-eu:8420
    std::filesystem::path token_file;  ///< absolute once resolved
    long connect_timeout_ms = 0;
    long transfer_timeout_ms = 0;
    std::uint64_t max_bytes_per_second = 0;
};

struct FetchSettings {
    std::uint64_t threshold = 100ull * 1024 * 1024;
    std::size_t parallel_transfers = 4;
    long connect_timeout_ms = 10000;
    long transfer_timeout_ms = 0;  ///< 0: no limit for one asset (the low-speed limit applies)
    long low_speed_limit = 1024;   ///< bytes/s; slower than this for low_speed_time_ms aborts
    long low_speed_time_ms = 30000;
    int retries = 5;
    long retry_delay_ms = 1000;
    double retry_backoff = 2.0;
    long retry_delay_max_ms = 30000;
    std::uint64_t max_bytes_per_second = 0;  ///< per transfer; 0 = unlimited
    std::map<std::string, RemoteSettings> remotes;

    /// The delay before retry number `attempt` (1-based).
    long retry_delay(int attempt) const;
};

/// The schema the manifest declares.
wharf::ConfigSchema config_schema();

/// The settings from validated values. Relative token files are resolved
/// against `config_dir` (the host's wharf::Config::directory(), absolute) and
/// normalised lexically ("a/../b" is "b"); absolute ones are kept as given.
FetchSettings settings_from(const boost::property_tree::ptree& values,
                            const std::filesystem::path& config_dir);

/// What the schema cannot check (remote names, usable token files, delays in
/// order): a reason to refuse the file, or std::nullopt.
std::optional<std::string> check(const FetchSettings& settings);

/// The token in `file`: its content without surrounding white space. Throws
/// std::runtime_error naming the file when it cannot be read or is empty.
std::string read_token(const std::filesystem::path& file);

}  // namespace wharf_remote_fetch
