#include "base/ptree_json.hpp"

#include <algorithm>

namespace wharf::host {

nlohmann::json ptree_to_json(const boost::property_tree::ptree& tree) {
    if (tree.empty()) return nlohmann::json(tree.data());
    bool is_array = std::all_of(tree.begin(), tree.end(),
                                [](const auto& child) { return child.first.empty(); });
    if (is_array) {
        nlohmann::json array = nlohmann::json::array();
        for (const auto& [key, child] : tree) array.push_back(ptree_to_json(child));
        return array;
    }
    nlohmann::json object = nlohmann::json::object();
    for (const auto& [key, child] : tree) object[key] = ptree_to_json(child);
    return object;
}

boost::property_tree::ptree json_to_ptree(const nlohmann::json& json) {
    boost::property_tree::ptree tree;
    if (json.is_object()) {
        for (const auto& [key, value] : json.items()) tree.push_back({key, json_to_ptree(value)});
    } else if (json.is_array()) {
        for (const auto& value : json) tree.push_back({"", json_to_ptree(value)});
    } else if (json.is_string()) {
        tree.put_value(json.get<std::string>());
    } else if (!json.is_null()) {
        tree.put_value(json.dump());
    }
    return tree;
}

}  // namespace wharf::host
