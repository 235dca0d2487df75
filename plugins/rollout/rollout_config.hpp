#pragma once
// Rollout configs: what a rollout does to a live copy, one factory instance
// per file (`configs/rollout/<name>.yaml`, schema "rollout"), named by the
// live relationships that use it.
//
// A config lists its actions (contentCopy, contentDelete, contentUpdate,
// referencesUpdate, orderChildren) and the properties they leave alone
// (`excluded_properties`: exact names, or a prefix ending in '*').
//
// RolloutConfigs is the set in force: replaced instance by instance from the
// configuration thread, read by operations on any thread (a mutex guards it;
// readers get copies).

#include <wharf/config.hpp>

#include <boost/property_tree/ptree.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::rollout {

/// One rollout action, as a bit in an ActionSet.
enum Action : unsigned {
    kContentCopy = 1u << 0,       ///< create live pages missing in the live copy
    kContentDelete = 1u << 1,     ///< remove live pages whose blueprint page is gone
    kContentUpdate = 1u << 2,     ///< copy properties and text from the blueprint page
    kReferencesUpdate = 1u << 3,  ///< point links into the blueprint at the live copy
    kOrderChildren = 1u << 4,     ///< mirror the order of child pages
};
using ActionSet = unsigned;

/// The action names as configs spell them, in a fixed order.
const std::vector<std::pair<std::string, Action>>& action_names();
/// "contentCopy, contentUpdate" for the actions in `set`.
std::string describe(ActionSet set);

struct RolloutConfig {
    std::string name;   ///< the instance (file) name
    std::string title;  ///< for people
    ActionSet actions = 0;
    std::vector<std::string> excluded_properties;  ///< names, or prefixes ending in '*'

    /// Whether `property` is one of excluded_properties (or matches a prefix).
    bool excludes(std::string_view property) const;
};

/// The "rollout" factory schema declared in the manifest.
ConfigSchema rollout_config_schema();

/// Reads a validated instance; throws std::invalid_argument naming the key
/// for what the schema cannot say (a repeated action, a bad pattern).
RolloutConfig parse_rollout_config(const std::string& name,
                                   const boost::property_tree::ptree& values);

/// The rollout configs in force, by name.
class RolloutConfigs {
public:
    void put(RolloutConfig config);
    void remove(const std::string& name);
    std::optional<RolloutConfig> find(const std::string& name) const;
    std::vector<std::string> names() const;

private:
    mutable std::mutex mutex_;
    std::map<std::string, RolloutConfig> configs_;
};

}  // namespace wharf::rollout
