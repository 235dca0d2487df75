#pragma once
// Safe loading of one YAML configuration file into a small tree that keeps
// every value's line and column.
//
// Configuration files come from admins and editors, so the loader refuses
// before parsing what YAML libraries handle badly or silently: files over a
// size limit (checked before reading), binary content, invalid UTF-8, and tabs
// in indentation. It then parses with yaml-cpp's event API rather than
// YAML::Node so that it can refuse what a node tree hides: duplicate keys
// (yaml-cpp keeps both), aliases (an alias bomb expands exponentially when the
// tree is walked), complex keys, custom tags, more than one document, and
// nesting or node counts beyond the limits.
//
// Every refusal is a ConfigError naming file, line and column. Functions here
// are pure and thread-safe; YamlValue is a plain value tree.

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config_error.hpp"

namespace wharf::host {

struct YamlLimits {
    std::size_t max_bytes = 1024 * 1024;  ///< files above this are refused unread
    int max_depth = 32;                   ///< nesting of mappings and sequences
    std::size_t max_nodes = 50000;        ///< scalars, mappings and sequences in total
};

struct YamlEntry;

/// A YAML value with its position. Mappings keep their entries in file order.
struct YamlValue {
    enum class Kind { null, scalar, sequence, mapping };
    Kind kind = Kind::null;
    SourceMark mark;
    std::string text;     ///< scalar text
    bool quoted = false;  ///< scalar was quoted, a block scalar or tagged !!str: never a number
    std::vector<YamlValue> items;    ///< sequence
    std::vector<YamlEntry> entries;  ///< mapping
};

struct YamlEntry {
    std::string key;
    SourceMark key_mark;
    YamlValue value;
};

struct YamlLoadResult {
    /// The document; std::nullopt when there were errors or the input holds no
    /// document at all (empty, or only comments).
    std::optional<YamlValue> document;
    std::vector<ConfigError> errors;
    bool ok() const noexcept { return errors.empty(); }
};

/// Reads a file whole, refusing it unread when it is larger than `max_bytes`.
/// Returns the bytes, or the error (at 1:1) naming the size or the I/O failure.
std::variant<std::string, ConfigError> read_config_bytes(const std::filesystem::path& file,
                                                         const std::string& display_name,
                                                         std::size_t max_bytes);

/// Checks and parses `bytes`; `display_name` names the file in errors.
YamlLoadResult parse_yaml(std::string_view bytes, const std::string& display_name,
                          const YamlLimits& limits = {});

/// A short description of a value's kind for messages: "a list", "a mapping",
/// "nothing (null)", or the quoted scalar.
std::string describe(const YamlValue& value);

}  // namespace wharf::host
