// The move plugin's manifest and activator: two operations (asset-move,
// page-move), each registered as a wharf.Operation and, for its topic, as a
// wharf.JobConsumer, with its configuration followed live.
#include <wharf/config.hpp>
#include <wharf/jobs.hpp>
#include <wharf/operations.hpp>
#include <wharf/plugin.hpp>
#include <wharf/repository.hpp>

#include <memory>
#include <stdexcept>
#include <vector>

#include "move_operation.hpp"

namespace {

using wharf::ConfigField;
using wharf::ConfigSchema;
using wharf::ConfigType;
using wharf::move::MoveKind;
using wharf::move::MoveOperation;
using wharf::move::MoveSettings;

constexpr const char* kAssetConfig = "operations/move";
constexpr const char* kPageConfig = "operations/page-move";

ConfigField integer(std::string name, std::string description) {
    auto f = wharf::make_field(std::move(name), ConfigType::integer, std::move(description), "100");
    f.minimum = 0;
    f.maximum = 1e9;  // keeps threshold * references inside 64 bits in count()
    return f;
}

ConfigField batch_size() {
    auto f = wharf::make_field("batch_size", ConfigType::integer,
                               "referrers rewritten per transaction (and per checkpoint)", "250");
    f.minimum = 1;
    f.maximum = 10000;
    return f;
}

ConfigField email() {
    return wharf::make_field("email_enabled", ConfigType::boolean,
                             "e-mail the submitter when a move job finishes (notifications.yaml)",
                             "false");
}

wharf::Manifest manifest() {
    wharf::Manifest m;
    m.id = "move";
    m.version = "1.0.0";
    m.description = "moves assets, folders and pages and rewrites every reference to them";
    m.provides = {wharf::interfaces::kOperation, wharf::interfaces::kJobConsumer};
    m.requires_services = {{wharf::interfaces::kRepository, false}};
    auto references = integer("threshold_references",
                              "run as a job when more references than this point into the moved "
                              "subtrees");
    references.minimum = 1;
    m.configs.push_back(ConfigSchema{
        kAssetConfig,
        "Async Move Operation Job Processing Configuration (asset move)",
        false,
        {integer("threshold", "run as a job when more assets and folders than this are moved"),
         references, email(), batch_size()}});
    m.configs.push_back(ConfigSchema{
        kPageConfig,
        "Async Page Move Operation Job Processing Configuration",
        false,
        {integer("threshold", "run as a job when more references than this point into the moved "
                              "pages"),
         email(), batch_size()}});
    return m;
}

MoveSettings settings_from(const boost::property_tree::ptree& values) {
    MoveSettings s;
    s.threshold = values.get<std::uint64_t>("threshold", 100);
    s.threshold_references = values.get<std::uint64_t>("threshold_references", 100);
    s.batch_size = values.get<std::size_t>("batch_size", 250);
    return s;
}

class Activator final : public wharf::Activator {
public:
    void start(wharf::PluginContext& context) override {
        auto repository = context.services().get<wharf::Repository>();
        if (!repository) throw std::runtime_error("no wharf.Repository service");
        add(context, MoveKind::asset, repository, kAssetConfig);
        add(context, MoveKind::page, repository, kPageConfig);
    }

    void stop(wharf::PluginContext&) override { subscriptions_.clear(); }

private:
    void add(wharf::PluginContext& context, MoveKind kind,
             std::shared_ptr<wharf::Repository> repository, const char* config) {
        auto operation = std::make_shared<MoveOperation>(kind, std::move(repository));
        operation->configure(settings_from(context.config().current(config)));
        // The subscription holds a weak pointer: the operation may outlive the
        // plugin's stop in a caller's hands, but must not be kept by the config.
        std::weak_ptr<MoveOperation> weak = operation;
        subscriptions_.push_back(context.config().subscribe(
            config, [weak](const std::string&, const std::optional<boost::property_tree::ptree>&
                                                       values) -> wharf::ConfigVerdict {
                if (auto op = weak.lock(); op && values) op->configure(settings_from(*values));
                return std::nullopt;
            }));
        auto d = operation->descriptor();
        wharf::Properties props;
        props.put("operation.name", d.name);
        props.put("operation.topic", d.topic);
        context.services().register_service<wharf::Operation>(operation, props);
        wharf::Properties consumer_props;
        boost::property_tree::ptree topics;
        topics.push_back({"", boost::property_tree::ptree(d.topic)});
        consumer_props.add_child(wharf::JobConsumer::kTopicsProperty, topics);
        consumer_props.put("operation.name", d.name);
        context.services().register_service<wharf::JobConsumer>(
            std::make_shared<wharf::OperationConsumer>(operation), consumer_props);
    }

    std::vector<std::unique_ptr<wharf::ConfigSubscription>> subscriptions_;
};

}  // namespace

WHARF_PLUGIN(manifest, Activator);
