#pragma once
// Validation of a parsed config file against a wharf::ConfigSchema, producing
// the boost::property_tree::ptree a consumer receives.
//
// validate_document checks everything and reports every problem it finds
// (wrong type, out of range, not in the enum, unknown key with the closest
// known key, missing required key, bad format), each with the line and column
// of the offending key or value. Only when there is none is `values` the
// configuration to deliver: schema order, defaults filled, integers and
// booleans normalised ("+5" -> "5", "yes" -> "true"), lists as children with
// empty keys.
//
// A ConfigCheck adds rules that a schema cannot express (max_parallel's
// count-or-fraction rule); it sees the values with defaults filled and names
// the key it complains about.
//
// check_schema checks a schema itself (plugins declare theirs): names, types,
// formats, bounds and that every default is valid.
//
// Pure functions; thread-safe.

#include <boost/property_tree/ptree.hpp>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_error.hpp"
#include "config/topic_pattern.hpp"
#include "config/yaml_document.hpp"
#include "wharf/config.hpp"

namespace wharf::host {

/// A problem found by a ConfigCheck: the key path (`smtp.port`, `topics.0`)
/// and the reason.
struct CheckProblem {
    std::string key;
    std::string message;
};

using ConfigCheck =
    std::function<std::vector<CheckProblem>(const boost::property_tree::ptree& values)>;

struct ValidationResult {
    boost::property_tree::ptree values;
    std::map<std::string, SourceMark> marks;  ///< key path -> where its value is
    std::vector<ConfigError> errors;
    bool ok() const noexcept { return errors.empty(); }
};

/// Validates `document` (std::nullptr: no file, i.e. all defaults) against
/// `schema`. `file` names the file in errors.
ValidationResult validate_document(const YamlValue* document, const wharf::ConfigSchema& schema,
                                   const std::string& file, const ConfigCheck& check = {});

/// Problems with the schema itself, each naming the field; empty when valid.
std::vector<std::string> check_schema(const wharf::ConfigSchema& schema);

/// Whether `format` is one of the formats the SDK documents.
bool is_known_format(std::string_view format);

/// Why `value` does not have `format`, or std::nullopt.
std::optional<FormatProblem> check_format(std::string_view format, std::string_view value);

/// The candidate closest to `word` by edit distance (case-insensitive), if
/// close enough to be a likely typo.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

}  // namespace wharf::host
