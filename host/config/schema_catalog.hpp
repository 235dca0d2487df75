#pragma once
// SchemaCatalog: which schema owns which configuration file, and the checks
// that turn a file's bytes into validated values. Shared by ConfigAdmin (at
// run time) and `wharf config validate` (offline), so both apply exactly the
// same rules.
//
// File names: a file `a/b.yaml` (or `.yml`) below the config directory has the
// key `a/b`. It belongs to the schema named `a/b`, or else to the factory
// schema named `a` as its instance `b`. Hidden files and folders, editor
// backups (`x.yaml~`), swap files (`.x.yaml.swp`) and anything not ending in
// .yaml/.yml are not configuration files at all. Two files whose keys differ
// only in case or extension collide; the one seen first keeps the name.
//
// Ownership and threading: the catalog owns copies of the schemas. It is not
// synchronised; ConfigAdmin guards it with its own mutex.

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/schema_validator.hpp"
#include "config/yaml_document.hpp"
#include "wharf/config.hpp"

namespace wharf::host {

struct CatalogEntry {
    wharf::ConfigSchema schema;
    std::string owner;  ///< "host" or a plugin id
    ConfigCheck check;  ///< extra rules; may be empty
};

struct CatalogMatch {
    std::shared_ptr<const CatalogEntry> entry;
    std::string instance;  ///< factory instance name; empty for a single file
};

class SchemaCatalog {
public:
    /// Adds every schema of `owner` or none: returns why not when a schema is
    /// invalid or its name is taken by another owner (a redeclaration by the
    /// same owner replaces its schemas).
    std::optional<std::string> declare(const std::string& owner,
                                       const std::vector<wharf::ConfigSchema>& schemas,
                                       const std::vector<ConfigCheck>& checks = {});

    /// Removes the owner's schemas; returns their names.
    std::vector<std::string> retract(const std::string& owner);

    std::shared_ptr<const CatalogEntry> find(std::string_view name) const;
    std::optional<CatalogMatch> match(std::string_view key) const;
    std::vector<std::shared_ptr<const CatalogEntry>> entries() const;

private:
    std::map<std::string, std::shared_ptr<const CatalogEntry>, std::less<>> by_name_;
};

/// `queues/default.yaml` -> `queues/default`; std::nullopt for a path that is
/// not a configuration file (hidden, backup, swap, other extension).
/// `relative` is relative to the config directory.
std::optional<std::string> config_key(const std::filesystem::path& relative);

/// The key files collide on (case folded).
std::string collision_key(std::string_view key);

/// The refusal for a file whose key collides with `other_file`'s.
std::string collision_message(const CatalogMatch& match, std::string_view key,
                              const std::string& other_file);

/// Why no schema takes `key` ("no plugin declares operations/foo").
std::string undeclared_message(const SchemaCatalog& catalog, std::string_view key);

/// Why `instance` cannot name a factory instance, or std::nullopt.
std::optional<std::string> check_instance_name(std::string_view instance);

/// Parses and validates one file's bytes for `match`. On success
/// `result.values` is the configuration to deliver.
ValidationResult check_config_bytes(std::string_view bytes, const std::string& display_name,
                                    const CatalogMatch& match, const YamlLimits& limits);

/// Every configuration file below `dir`, relative, sorted.
std::vector<std::filesystem::path> list_config_files(const std::filesystem::path& dir);

struct TreeReport {
    std::size_t files = 0;
    std::vector<ConfigError> errors;
    /// Files no schema in the catalog declares ("no plugin declares
    /// operations/x"). A running host keeps such a file pending until a plugin
    /// declaring it is installed, so whether this is a problem depends on
    /// whether the catalog holds the plugins that will run: the caller decides.
    std::vector<ConfigError> undeclared;
};

/// Checks a whole tree offline: every file parsed and validated, undeclared
/// files and collisions reported. Errors name files as `display_dir/relative`.
TreeReport validate_tree(const std::filesystem::path& dir, const std::string& display_dir,
                         const SchemaCatalog& catalog, const YamlLimits& limits = {});

}  // namespace wharf::host
