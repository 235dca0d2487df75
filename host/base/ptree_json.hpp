#pragma once
// Property trees <-> JSON (nlohmann-json): how job payloads are stored and how
// the API reads and writes them. Leaves of a ptree are strings; a node whose
// children all have empty keys is a JSON array.

#include <boost/property_tree/ptree.hpp>
#include <nlohmann/json.hpp>

namespace wharf::host {

/// A tree as JSON: objects, arrays (children with empty keys) and strings.
nlohmann::json ptree_to_json(const boost::property_tree::ptree& tree);

/// JSON as a tree: strings as they are, numbers and booleans as their JSON
/// text, null as an empty value.
boost::property_tree::ptree json_to_ptree(const nlohmann::json& json);

}  // namespace wharf::host
