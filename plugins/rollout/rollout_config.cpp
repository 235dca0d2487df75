#include "rollout_config.hpp"

#include <set>
#include <stdexcept>

namespace wharf::rollout {

const std::vector<std::pair<std::string, Action>>& action_names() {
    static const std::vector<std::pair<std::string, Action>> names = {
        {"contentCopy", kContentCopy},
        {"contentDelete", kContentDelete},
        {"contentUpdate", kContentUpdate},
        {"referencesUpdate", kReferencesUpdate},
        {"orderChildren", kOrderChildren},
    };
    return names;
}

std::string describe(ActionSet set) {
    std::string out;
    for (const auto& [name, bit] : action_names())
        if (set & bit) out += (out.empty() ? "" : ", ") + name;
    return out.empty() ? "none" : out;
}

bool RolloutConfig::excludes(std::string_view property) const {
    for (const auto& pattern : excluded_properties) {
        if (!pattern.empty() && pattern.back() == '*') {
            auto prefix = std::string_view(pattern).substr(0, pattern.size() - 1);
            if (property.substr(0, prefix.size()) == prefix) return true;
        } else if (property == pattern) {
            return true;
        }
    }
    return false;
}

ConfigSchema rollout_config_schema() {
    ConfigSchema s;
    s.name = "rollout";
    s.description = "MSM rollout configs: the actions a rollout applies to live copies";
    s.factory = true;
    auto title = make_field("title", ConfigType::string, "the config's name for people", "");
    auto actions = make_field("actions", ConfigType::list,
                              "what a rollout does, in any order: contentCopy, contentDelete, "
                              "contentUpdate, referencesUpdate, orderChildren");
    actions.required = true;
    actions.minimum = 1;
    actions.maximum = 5;
    auto action = make_field("", ConfigType::string, "an action");
    for (const auto& [name, bit] : action_names()) action.one_of.push_back(name);
    actions.item.push_back(action);
    auto excluded = make_field("excluded_properties", ConfigType::list,
                               "page properties rollouts neither copy, change nor remove: "
                               "names, or prefixes ending in '*' (jcr:*)");
    excluded.maximum = 1000;
    excluded.item.push_back(make_field("", ConfigType::string, "a property name or prefix*"));
    s.fields = {title, actions, excluded};
    return s;
}

RolloutConfig parse_rollout_config(const std::string& name,
                                   const boost::property_tree::ptree& values) {
    RolloutConfig c;
    c.name = name;
    c.title = values.get<std::string>("title", "");
    std::size_t i = 0;
    if (auto list = values.get_child_optional("actions")) {
        for (const auto& [key, item] : *list) {
            const auto& text = item.data();
            bool known = false;
            for (const auto& [action, bit] : action_names()) {
                if (action != text) continue;
                known = true;
                if (c.actions & bit)
                    throw std::invalid_argument("actions." + std::to_string(i) + ": '" + text +
                                                "' is listed twice");
                c.actions |= bit;
            }
            if (!known)
                throw std::invalid_argument("actions." + std::to_string(i) + ": unknown action '" +
                                            text + "'");
            ++i;
        }
    }
    if (c.actions == 0) throw std::invalid_argument("actions: list at least one action");
    i = 0;
    if (auto list = values.get_child_optional("excluded_properties")) {
        for (const auto& [key, item] : *list) {
            const auto& p = item.data();
            auto field = "excluded_properties." + std::to_string(i++);
            if (p.empty() || p == "*")
                throw std::invalid_argument(field + ": give a property name or a prefix ending "
                                                    "in '*'");
            auto star = p.find('*');
            if (star != std::string::npos && star != p.size() - 1)
                throw std::invalid_argument(field + ": '" + p +
                                            "': '*' may only end a prefix (jcr:*)");
            if (p.find('/') != std::string::npos)
                throw std::invalid_argument(field + ": '" + p +
                                            "': a property name has no '/'");
            c.excluded_properties.push_back(p);
        }
    }
    return c;
}

void RolloutConfigs::put(RolloutConfig config) {
    std::lock_guard lock(mutex_);
    auto name = config.name;
    configs_[name] = std::move(config);
}

void RolloutConfigs::remove(const std::string& name) {
    std::lock_guard lock(mutex_);
    configs_.erase(name);
}

std::optional<RolloutConfig> RolloutConfigs::find(const std::string& name) const {
    std::lock_guard lock(mutex_);
    auto it = configs_.find(name);
    if (it == configs_.end()) return std::nullopt;
    return it->second;
}

std::vector<std::string> RolloutConfigs::names() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [name, c] : configs_) out.push_back(name);
    return out;
}

}  // namespace wharf::rollout
