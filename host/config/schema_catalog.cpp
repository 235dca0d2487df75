#include "config/schema_catalog.hpp"

#include <algorithm>
#include <cctype>
#include <regex>
#include <system_error>

namespace fs = std::filesystem;

namespace wharf::host {
namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string parent_of(std::string_view key) {
    auto slash = key.rfind('/');
    return slash == std::string_view::npos ? std::string() : std::string(key.substr(0, slash));
}

}  // namespace

std::optional<std::string> SchemaCatalog::declare(const std::string& owner,
                                                  const std::vector<wharf::ConfigSchema>& schemas,
                                                  const std::vector<ConfigCheck>& checks) {
    std::map<std::string, const wharf::ConfigSchema*> incoming;
    for (const auto& schema : schemas) {
        auto problems = check_schema(schema);
        if (!problems.empty()) return "invalid schema " + problems.front();
        if (!incoming.emplace(schema.name, &schema).second)
            return "schema '" + schema.name + "' declared twice";
    }
    auto taken_by_other = [&](const std::string& name) -> std::optional<std::string> {
        if (auto it = by_name_.find(name); it != by_name_.end() && it->second->owner != owner)
            return it->second->owner;
        return std::nullopt;
    };
    for (const auto& [name, schema] : incoming) {
        if (auto other = taken_by_other(name))
            return "configuration '" + name + "' is already declared by " + *other;
        // A factory `a` owns every `a/x`: a single schema `a/x` of someone
        // else (or a factory `a` against a single `a/x`) would be ambiguous.
        std::string parent = parent_of(name);
        if (!schema->factory && !parent.empty()) {
            auto it = by_name_.find(parent);
            bool factory_parent = (it != by_name_.end() && it->second->schema.factory &&
                                   it->second->owner != owner) ||
                                  (incoming.count(parent) && incoming.at(parent)->factory);
            if (factory_parent)
                return "configuration '" + name + "' lies inside factory '" + parent + "'";
        }
        if (schema->factory) {
            for (const auto& [other_name, entry] : by_name_) {
                if (entry->owner != owner && parent_of(other_name) == name &&
                    !entry->schema.factory)
                    return "factory '" + name + "' would contain '" + other_name +
                           "' declared by " + entry->owner;
            }
        }
    }
    retract(owner);
    std::size_t i = 0;
    for (const auto& schema : schemas) {
        auto entry = std::make_shared<CatalogEntry>();
        entry->schema = schema;
        entry->owner = owner;
        if (i < checks.size()) entry->check = checks[i];
        by_name_[schema.name] = std::move(entry);
        ++i;
    }
    return std::nullopt;
}

std::vector<std::string> SchemaCatalog::retract(const std::string& owner) {
    std::vector<std::string> names;
    for (auto it = by_name_.begin(); it != by_name_.end();) {
        if (it->second->owner == owner) {
            names.push_back(it->first);
            it = by_name_.erase(it);
        } else {
            ++it;
        }
    }
    return names;
}

std::shared_ptr<const CatalogEntry> SchemaCatalog::find(std::string_view name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
}

std::optional<CatalogMatch> SchemaCatalog::match(std::string_view key) const {
    if (auto it = by_name_.find(key); it != by_name_.end() && !it->second->schema.factory)
        return CatalogMatch{it->second, ""};
    auto slash = key.rfind('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto it = by_name_.find(key.substr(0, slash));
    if (it == by_name_.end() || !it->second->schema.factory) return std::nullopt;
    return CatalogMatch{it->second, std::string(key.substr(slash + 1))};
}

std::vector<std::shared_ptr<const CatalogEntry>> SchemaCatalog::entries() const {
    std::vector<std::shared_ptr<const CatalogEntry>> out;
    for (const auto& [name, entry] : by_name_) out.push_back(entry);
    return out;
}

std::optional<std::string> config_key(const fs::path& relative) {
    std::string key;
    for (const auto& part : relative) {
        auto s = part.string();
        if (s.empty() || s == "." || s == "..") return std::nullopt;
        if (s.front() == '.') return std::nullopt;  // hidden, swap files, .#locks
        if (!key.empty()) key += '/';
        key += s;
    }
    if (ends_with(key, ".yaml"))
        key.resize(key.size() - 5);
    else if (ends_with(key, ".yml"))
        key.resize(key.size() - 4);
    else
        return std::nullopt;  // backups (~), 4913, .swp, .tmp, .dpkg-new ...
    if (key.empty() || key.back() == '/') return std::nullopt;
    return key;
}

std::string collision_key(std::string_view key) {
    std::string out(key);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string collision_message(const CatalogMatch& match, std::string_view key,
                              const std::string& other_file) {
    if (!match.instance.empty()) {
        std::string what = match.entry->schema.name == "queues" ? "queue name" : "instance name";
        return what + " '" + match.instance + "' collides with " + other_file +
               " (names differ only in case or extension)";
    }
    return "configuration '" + std::string(key) + "' is already defined by " + other_file;
}

std::string undeclared_message(const SchemaCatalog& catalog, std::string_view key) {
    if (auto entry = catalog.find(key); entry && entry->schema.factory) {
        return "'" + std::string(key) + "' is a folder of instance files (" + std::string(key) +
               "/<name>.yaml), not a file";
    }
    return "no plugin declares " + std::string(key);
}

std::optional<std::string> check_instance_name(std::string_view instance) {
    static const std::regex re("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
    if (std::regex_match(instance.begin(), instance.end(), re)) return std::nullopt;
    return "the name '" + std::string(instance) +
           "' (from the file name) must start with a letter or digit and use only letters, "
           "digits, '.', '_' and '-' (at most 64)";
}

ValidationResult check_config_bytes(std::string_view bytes, const std::string& display_name,
                                    const CatalogMatch& match, const YamlLimits& limits) {
    ValidationResult result;
    if (!match.instance.empty()) {
        if (auto problem = check_instance_name(match.instance)) {
            result.errors.push_back({display_name, {}, *problem});
            return result;
        }
    }
    auto parsed = parse_yaml(bytes, display_name, limits);
    if (!parsed.ok()) {
        result.errors = std::move(parsed.errors);
        return result;
    }
    if (!parsed.document || parsed.document->kind == YamlValue::Kind::null) {
        // An empty file is more often a botched save than a wish for every
        // default; `{}` says the latter explicitly.
        result.errors.push_back({display_name,
                                 parsed.document ? parsed.document->mark : SourceMark{},
                                 "the file is empty; write {} to use every default"});
        return result;
    }
    return validate_document(&*parsed.document, match.entry->schema, display_name,
                             match.entry->check);
}

std::vector<fs::path> list_config_files(const fs::path& dir) {
    std::vector<fs::path> out;
    std::error_code ec;
    fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
    for (fs::recursive_directory_iterator end; !ec && it != end; it.increment(ec)) {
        auto name = it->path().filename().string();
        if (it->is_directory(ec)) {
            if (!name.empty() && name.front() == '.') it.disable_recursion_pending();
            continue;
        }
        auto rel = it->path().lexically_relative(dir);
        if (!config_key(rel)) continue;
        if (!it->is_regular_file(ec)) continue;  // follows symlinks
        out.push_back(rel);
    }
    std::sort(out.begin(), out.end());
    return out;
}

TreeReport validate_tree(const fs::path& dir, const std::string& display_dir,
                         const SchemaCatalog& catalog, const YamlLimits& limits) {
    TreeReport report;
    std::map<std::string, std::string> owners;  // collision key -> file that has it
    auto display = [&](const fs::path& rel) {
        return display_dir.empty() ? rel.generic_string()
                                   : (fs::path(display_dir) / rel).generic_string();
    };
    for (const auto& rel : list_config_files(dir)) {
        ++report.files;
        auto key = *config_key(rel);
        auto name = display(rel);
        auto match = catalog.match(key);
        if (!match) {
            auto message = undeclared_message(catalog, key);
            // A factory folder's name used as a file is wrong whoever declares it.
            auto& list = catalog.find(key) ? report.errors : report.undeclared;
            list.push_back({name, {}, std::move(message)});
            continue;
        }
        auto [it, fresh] = owners.emplace(collision_key(key), name);
        if (!fresh) {
            report.errors.push_back({name, {}, collision_message(*match, key, it->second)});
            continue;
        }
        auto bytes = read_config_bytes(dir / rel, name, limits.max_bytes);
        if (auto* err = std::get_if<ConfigError>(&bytes)) {
            report.errors.push_back(std::move(*err));
            continue;
        }
        auto result = check_config_bytes(std::get<std::string>(bytes), name, *match, limits);
        for (auto& e : result.errors) report.errors.push_back(std::move(e));
    }
    return report;
}

}  // namespace wharf::host
