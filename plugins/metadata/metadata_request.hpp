#pragma once
// Request fields both metadata operations share: strings, booleans and the
// one-character separator and multi-value delimiter, each refused with the
// field named (wharf::OperationRefused) when malformed.

#include <boost/property_tree/ptree.hpp>
#include <set>
#include <string>
#include <wharf/operations.hpp>

namespace wharf_metadata {

inline void check_fields(const boost::property_tree::ptree& request,
                         const std::set<std::string>& known, const std::string& list) {
    for (const auto& [key, value] : request) {
        if (!known.count(key))
            throw wharf::OperationRefused(key, value.data(),
                                          "unknown field '" + key + "' (known: " + list + ")");
    }
}

inline bool bool_field(const boost::property_tree::ptree& request, const char* name,
                       bool fallback) {
    auto value = request.get_optional<std::string>(name);
    if (!value || value->empty()) return fallback;
    if (*value == "true" || *value == "1") return true;
    if (*value == "false" || *value == "0") return false;
    throw wharf::OperationRefused(
        name, *value, std::string("'") + name + "' must be true or false, not '" + *value + "'");
}

inline char char_field(const boost::property_tree::ptree& request, const char* name,
                       char fallback) {
    auto value = request.get_optional<std::string>(name);
    if (!value || value->empty()) return fallback;
    std::string text = *value == "\\t" ? std::string("\t") : *value;
    if (text.size() != 1 || text[0] == '"' || text[0] == '\r' || text[0] == '\n' ||
        text[0] == '\\' || static_cast<unsigned char>(text[0]) >= 0x80)
        throw wharf::OperationRefused(name, *value,
                                      std::string("'") + name +
                                          "' must be one ASCII character other than a quote, a "
                                          "backslash or a line break (\\t for a tab), not '" +
                                          *value + "'");
    return text[0];
}

}  // namespace wharf_metadata
