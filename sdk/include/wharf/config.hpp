#pragma once
// Configuration as plugins see it: schemas they declare, values they receive.
//
// Every configuration file under the host's config directory belongs to one
// consumer, which declares its schema: the keys, their types, ranges, enums,
// defaults, whether each is required, and what it means. A plugin declares its
// schemas in its manifest (so `wharf config validate` can check files without
// starting the plugin) and receives values through PluginContext::config().
//
// A file is parsed and validated completely before anything changes; the
// consumer then receives the whole new configuration at once as a
// boost::property_tree::ptree with defaults filled in. A consumer may still
// refuse an update by returning a reason; the previous configuration then stays
// in force and the refusal is reported against the file like any other.
//
// Names: a schema's `name` is the file's path below the config directory
// without `.yaml` (`operations/delete` for `configs/operations/delete.yaml`).
// A factory schema (`factory = true`) names a directory instead
// (`rollout` for `configs/rollout/<instance>.yaml`): each file is one instance.
//
// Values in the delivered ptree are strings as boost::property_tree stores
// them; read them with `get<T>(key)`. Lists are children with empty keys.
//
// Files a configuration names (a token file, a template) are best given
// relative to the config directory, which Config::directory() returns: the
// same configs/ tree then works wherever the host is installed.
//
// ABI: Config::directory() was added at the end of Config in SDK ABI 1.2. A
// plugin built against 1.1 keeps loading on a 1.2 host (it never calls it); a
// plugin built against 1.2 is refused by a 1.1 host, whose Config has no such
// entry (see version.hpp).

#include <boost/property_tree/ptree.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wharf {

enum class ConfigType {
    string,
    integer,  ///< 64-bit signed
    number,   ///< double
    boolean,
    list,     ///< a YAML sequence; item type in ConfigField::item
    map,      ///< a YAML mapping with free keys; value type in ConfigField::item
    object,   ///< a YAML mapping with the keys in ConfigField::fields
};

/// One key of a schema. Recursive through `fields` (object) and `item`
/// (list and map: exactly one element describing each entry).
struct ConfigField {
    std::string name;
    ConfigType type = ConfigType::string;
    std::string description;
    bool required = false;
    /// Default as YAML scalar text ("0.5", "true", "01:00"); absent = no default.
    std::optional<std::string> default_value;
    /// Inclusive bounds for integer and number (and list length, map size).
    std::optional<double> minimum;
    std::optional<double> maximum;
    /// Allowed values for a string (an enum); empty = any.
    std::vector<std::string> one_of;
    /// Extra syntax check for strings, by name: "cron", "topic-pattern",
    /// "topic", "listen-address", "path", "email", "url". Unknown names are a
    /// schema error at plugin install.
    std::string format;
    std::vector<ConfigField> fields;
    std::vector<ConfigField> item;
};

/// A field with the common parts filled in; set ranges, enums, format,
/// `required` and children on the result.
inline ConfigField make_field(std::string name, ConfigType type, std::string description,
                              std::optional<std::string> default_value = std::nullopt) {
    ConfigField f;
    f.name = std::move(name);
    f.type = type;
    f.description = std::move(description);
    f.default_value = std::move(default_value);
    return f;
}

struct ConfigSchema {
    std::string name;         ///< e.g. "operations/delete" or, for factories, "rollout"
    std::string description;  ///< one line, shown by `wharf config validate`
    bool factory = false;     ///< a directory of instance files instead of one file
    std::vector<ConfigField> fields;
};

/// Reason a consumer gives when it refuses an update; std::nullopt accepts it.
using ConfigVerdict = std::optional<std::string>;

/// Handle to a subscription; dropping it unsubscribes.
class ConfigSubscription {
public:
    virtual ~ConfigSubscription() = default;
};

/// A plugin's view of the configuration it declared.
class Config {
public:
    static constexpr const char* kInterfaceName = "wharf.Config";
    virtual ~Config() = default;

    /// The configuration in force for schema `name` (defaults applied). For a
    /// schema with no file yet, the defaults. REQUIRES: the plugin declared
    /// `name` in its manifest (otherwise throws std::invalid_argument).
    virtual boost::property_tree::ptree current(std::string_view name) const = 0;

    /// Instances in force for factory schema `name`: instance name -> values.
    virtual std::vector<std::pair<std::string, boost::property_tree::ptree>> instances(
        std::string_view name) const = 0;

    /// Calls `on_update` with every validated new version of `name`, on the
    /// config thread, until the handle is dropped or the plugin stops. For a
    /// factory schema the callback receives each instance as
    /// (instance, values) and removals as (instance, std::nullopt).
    virtual std::unique_ptr<ConfigSubscription> subscribe(
        std::string_view name,
        std::function<ConfigVerdict(const std::string& instance,
                                    const std::optional<boost::property_tree::ptree>& values)>
            on_update) = 0;

    /// The host's configuration directory (`wharfd --config DIR`), absolute and
    /// lexically normal, e.g. "/etc/wharf/configs". Resolve a relative path a
    /// configuration names against it: `directory() / "secrets/eu.token"`, and
    /// normalise the result (`lexically_normal()`), so that "../x" names x beside
    /// the config directory. A host without configuration files (defaults only,
    /// e.g. an embedded host in a test) returns its working directory at the
    /// plugin's start. Fixed for the life of this object; never throws.
    /// Added at the end of Config in SDK ABI 1.2.
    virtual std::filesystem::path directory() const = 0;
};

// --- schema <-> ptree, used by the manifest -------------------------------------------

namespace detail {

inline const char* to_string(ConfigType t) {
    switch (t) {
        case ConfigType::string: return "string";
        case ConfigType::integer: return "integer";
        case ConfigType::number: return "number";
        case ConfigType::boolean: return "boolean";
        case ConfigType::list: return "list";
        case ConfigType::map: return "map";
        case ConfigType::object: return "object";
    }
    return "string";
}

inline std::optional<ConfigType> config_type_from_string(std::string_view s) {
    for (auto t : {ConfigType::string, ConfigType::integer, ConfigType::number,
                   ConfigType::boolean, ConfigType::list, ConfigType::map, ConfigType::object}) {
        if (s == to_string(t)) return t;
    }
    return std::nullopt;
}

inline boost::property_tree::ptree to_ptree(const ConfigField& f) {
    boost::property_tree::ptree p;
    p.put("name", f.name);
    p.put("type", to_string(f.type));
    if (!f.description.empty()) p.put("description", f.description);
    if (f.required) p.put("required", "true");
    if (f.default_value) p.put("default", *f.default_value);
    if (f.minimum) p.put("minimum", *f.minimum);
    if (f.maximum) p.put("maximum", *f.maximum);
    if (!f.format.empty()) p.put("format", f.format);
    if (!f.one_of.empty()) {
        boost::property_tree::ptree list;
        for (const auto& v : f.one_of) list.push_back({"", boost::property_tree::ptree(v)});
        p.add_child("one_of", list);
    }
    if (!f.fields.empty()) {
        boost::property_tree::ptree list;
        for (const auto& c : f.fields) list.push_back({"", to_ptree(c)});
        p.add_child("fields", list);
    }
    if (!f.item.empty()) p.add_child("item", to_ptree(f.item.front()));
    return p;
}

inline ConfigField config_field_from_ptree(const boost::property_tree::ptree& p) {
    ConfigField f;
    f.name = p.get<std::string>("name", "");
    f.type = config_type_from_string(p.get<std::string>("type", "string"))
                 .value_or(ConfigType::string);
    f.description = p.get<std::string>("description", "");
    f.required = p.get<bool>("required", false);
    if (auto d = p.get_optional<std::string>("default")) f.default_value = *d;
    if (auto v = p.get_optional<double>("minimum")) f.minimum = *v;
    if (auto v = p.get_optional<double>("maximum")) f.maximum = *v;
    f.format = p.get<std::string>("format", "");
    if (auto l = p.get_child_optional("one_of"))
        for (const auto& [k, v] : *l) f.one_of.push_back(v.data());
    if (auto l = p.get_child_optional("fields"))
        for (const auto& [k, v] : *l) f.fields.push_back(config_field_from_ptree(v));
    if (auto i = p.get_child_optional("item")) f.item.push_back(config_field_from_ptree(*i));
    return f;
}

inline boost::property_tree::ptree to_ptree(const ConfigSchema& s) {
    boost::property_tree::ptree p;
    p.put("name", s.name);
    if (!s.description.empty()) p.put("description", s.description);
    if (s.factory) p.put("factory", "true");
    boost::property_tree::ptree list;
    for (const auto& f : s.fields) list.push_back({"", to_ptree(f)});
    p.add_child("fields", list);
    return p;
}

inline ConfigSchema config_schema_from_ptree(const boost::property_tree::ptree& p) {
    ConfigSchema s;
    s.name = p.get<std::string>("name", "");
    s.description = p.get<std::string>("description", "");
    s.factory = p.get<bool>("factory", false);
    if (auto l = p.get_child_optional("fields"))
        for (const auto& [k, v] : *l) s.fields.push_back(config_field_from_ptree(v));
    return s;
}

}  // namespace detail
}  // namespace wharf
