#pragma once
// What a plugin is: a manifest (data), an activator (start/stop), and one
// exported entry point that hands both to the host.
//
// A plugin is one shared object built with wharf_add_plugin() (CMake). It
// contains exactly one use of WHARF_PLUGIN(manifest_function, ActivatorClass),
// which emits the only exported symbol, `wharf_plugin_entry` (a Boost.DLL
// alias). The host reads the ABI numbers in that entry before it calls anything
// else, then reads the manifest, then, once every required service is
// registered, creates the activator and calls start().
//
// Lifecycle (as in OSGi): installed -> resolved -> starting -> active ->
// stopping -> stopped -> uninstalled, or failed with a reason. A plugin whose
// required service goes away is stopped; when it comes back the plugin is
// started again. Everything the plugin registered is unregistered when it
// stops, whether or not stop() did it.
//
// Errors: start() and stop() may throw; the host catches, logs once with the
// plugin id and marks the plugin failed. start() must return within the host's
// start timeout (default 10 s) or the plugin fails with "start timed out". stop()
// must leave no thread of the plugin running.
//
// Ownership: the activator is created and destroyed inside the plugin's
// library. The PluginContext is owned by the host and valid from start() until
// stop() returns.

#include <boost/dll/alias.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "wharf/config.hpp"
#include "wharf/logger.hpp"
#include "wharf/services.hpp"
#include "wharf/version.hpp"

namespace wharf {

/// A service interface the plugin needs.
struct ServiceDependency {
    std::string interface;
    /// Optional services are tracked, not waited for: the plugin starts without
    /// them and is not stopped when they go away.
    bool optional = false;
};

/// The manifest: data the host reads and checks before running any plugin code.
struct Manifest {
    std::string id;           ///< unique plugin id: [a-z0-9][a-z0-9._-]*, at most 64 chars
    std::string version;      ///< semver, e.g. "1.2.0"
    std::string description;  ///< one line for people
    std::vector<std::string> provides;         ///< interface names it registers
    std::vector<ServiceDependency> requires_services;  ///< what it needs to start
    std::vector<ConfigSchema> configs;         ///< configuration files it owns

    /// The manifest as a property tree (the form that crosses the boundary, so
    /// that keys can be added without breaking older hosts or plugins).
    boost::property_tree::ptree to_ptree() const {
        boost::property_tree::ptree p;
        p.put("id", id);
        p.put("version", version);
        p.put("description", description);
        boost::property_tree::ptree prov;
        for (const auto& s : provides) prov.push_back({"", boost::property_tree::ptree(s)});
        p.add_child("provides", prov);
        boost::property_tree::ptree req;
        for (const auto& d : requires_services) {
            boost::property_tree::ptree r;
            r.put("interface", d.interface);
            r.put("optional", d.optional ? "true" : "false");
            req.push_back({"", r});
        }
        p.add_child("requires", req);
        boost::property_tree::ptree cfg;
        for (const auto& c : configs) cfg.push_back({"", detail::to_ptree(c)});
        p.add_child("configs", cfg);
        return p;
    }

    static Manifest from_ptree(const boost::property_tree::ptree& p) {
        Manifest m;
        m.id = p.get<std::string>("id", "");
        m.version = p.get<std::string>("version", "");
        m.description = p.get<std::string>("description", "");
        if (auto l = p.get_child_optional("provides"))
            for (const auto& [k, v] : *l) m.provides.push_back(v.data());
        if (auto l = p.get_child_optional("requires"))
            for (const auto& [k, v] : *l)
                m.requires_services.push_back(
                    {v.get<std::string>("interface", ""), v.get<bool>("optional", false)});
        if (auto l = p.get_child_optional("configs"))
            for (const auto& [k, v] : *l) m.configs.push_back(detail::config_schema_from_ptree(v));
        return m;
    }
};

/// What the host gives a running plugin.
class PluginContext {
public:
    virtual ~PluginContext() = default;

    /// The plugin's id and version, as in its manifest.
    virtual const std::string& id() const = 0;
    virtual const std::string& version() const = 0;

    /// The host's service registry. Registrations made through it are owned by
    /// this plugin and removed when it stops.
    virtual ServiceRegistry& services() = 0;

    /// This plugin's logger (lines carry `plugin=<id>`).
    virtual Logger& logger() = 0;

    /// The configuration the plugin declared in its manifest.
    virtual Config& config() = 0;

    /// A directory private to this plugin id, kept across restarts and
    /// upgrades; created on first use.
    virtual std::filesystem::path data_dir() const = 0;

    /// Wraps an object created by the plugin so that it keeps the plugin's
    /// library loaded for as long as the returned pointer (or a copy) lives.
    /// Services registered through services() are wrapped already; use this
    /// for other objects that outlive the call that made them.
    virtual std::shared_ptr<void> keep_loaded(std::shared_ptr<void> object) = 0;

    template <class T>
    std::shared_ptr<T> keep_loaded(std::shared_ptr<T> object) {
        return std::static_pointer_cast<T>(keep_loaded(std::static_pointer_cast<void>(object)));
    }
};

/// The plugin's code entry: start and stop. One instance per activation.
class Activator {
public:
    virtual ~Activator() = default;
    /// Registers services, opens trackers, starts threads. May throw.
    virtual void start(PluginContext& context) = 0;
    /// Undoes start: stops threads and lets go of services. May throw.
    virtual void stop(PluginContext& context) = 0;
};

/// The exported entry point. Its layout is fixed for ABI major 1: the magic
/// and ABI numbers come first so that the host can refuse a plugin before it
/// calls any of its functions.
struct PluginEntry {
    static constexpr std::uint32_t kMagic = 0x46524857;  // "WHRF"
    std::uint32_t magic;
    std::uint32_t abi_major;
    std::uint32_t abi_minor;
    const char* sdk_version;
    boost::property_tree::ptree (*manifest)();
    Activator* (*create_activator)();
    void (*destroy_activator)(Activator*);
};

/// The name the entry point is exported under.
inline constexpr const char* kPluginEntrySymbol = "wharf_plugin_entry";

}  // namespace wharf

/// Declares the plugin. Use once, at namespace scope, in one source file.
///   ManifestFunction: a function `wharf::Manifest f()` (no arguments).
///   ActivatorClass: a default-constructible subclass of wharf::Activator.
#define WHARF_PLUGIN(ManifestFunction, ActivatorClass)                                    \
    namespace {                                                                           \
    ::boost::property_tree::ptree wharf_plugin_manifest_() {                              \
        return ManifestFunction().to_ptree();                                             \
    }                                                                                     \
    ::wharf::Activator* wharf_plugin_create_() { return new ActivatorClass(); }          \
    void wharf_plugin_destroy_(::wharf::Activator* a) { delete a; }                       \
    const ::wharf::PluginEntry wharf_plugin_entry_impl_{                                  \
        ::wharf::PluginEntry::kMagic, ::wharf::kSdkAbiMajor, ::wharf::kSdkAbiMinor,       \
        ::wharf::kSdkVersion, &wharf_plugin_manifest_, &wharf_plugin_create_,             \
        &wharf_plugin_destroy_};                                                          \
    }                                                                                     \
    BOOST_DLL_ALIAS(wharf_plugin_entry_impl_, wharf_plugin_entry)
