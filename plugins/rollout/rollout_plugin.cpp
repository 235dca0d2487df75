// The rollout plugin's manifest and activator: two operations
// (live-copy-create, rollout) registered as wharf.Operation services, one
// wharf.JobConsumer for their shared topic wharf/msm/rollout (a payload with
// a `target` is a live-copy creation), the operations/rollout configuration
// and the rollout configs (factory "rollout": configs/rollout/<name>.yaml),
// all followed live.
#include <wharf/config.hpp>
#include <wharf/jobs.hpp>
#include <wharf/operations.hpp>
#include <wharf/plugin.hpp>
#include <wharf/repository.hpp>

#include <memory>
#include <stdexcept>
#include <vector>

#include "rollout_config.hpp"
#include "rollout_operation.hpp"

namespace {

using wharf::ConfigSchema;
using wharf::ConfigType;
using wharf::rollout::RolloutConfigs;
using wharf::rollout::RolloutKind;
using wharf::rollout::RolloutOperation;
using wharf::rollout::RolloutSettings;

constexpr const char* kOperationConfig = "operations/rollout";
constexpr const char* kTopic = "wharf/msm/rollout";

ConfigSchema operation_schema() {
    auto threshold = wharf::make_field(
        "threshold", ConfigType::integer,
        "run as a job when pages x live copies exceed this; at or below it, at once", "100");
    threshold.minimum = 0;
    threshold.maximum = 1e12;
    auto email = wharf::make_field("email_enabled", ConfigType::boolean,
                                   "e-mail the submitter when a rollout or live copy job ends "
                                   "(notifications.yaml)",
                                   "false");
    auto batch = wharf::make_field("batch_size", ConfigType::integer,
                                   "pages x live copies per transaction (and per checkpoint)",
                                   "200");
    batch.minimum = 1;
    batch.maximum = 10000;
    return ConfigSchema{kOperationConfig, "Async Rollout Operation Job Processing Configuration",
                        false, {threshold, email, batch}};
}

wharf::Manifest manifest() {
    wharf::Manifest m;
    m.id = "rollout";
    m.version = "1.0.0";
    m.description = "creates MSM live copies and rolls blueprints out to them";
    m.provides = {wharf::interfaces::kOperation, wharf::interfaces::kJobConsumer};
    m.requires_services = {{wharf::interfaces::kRepository, false}};
    m.configs = {operation_schema(), wharf::rollout::rollout_config_schema()};
    return m;
}

RolloutSettings settings_from(const boost::property_tree::ptree& values) {
    RolloutSettings s;
    s.threshold = values.get<std::uint64_t>("threshold", 100);
    s.batch_size = values.get<std::size_t>("batch_size", 200);
    return s;
}

// Both operations share the topic; the payload says which one a job runs.
class RolloutConsumer final : public wharf::JobConsumer {
public:
    RolloutConsumer(std::shared_ptr<RolloutOperation> create,
                    std::shared_ptr<RolloutOperation> rollout)
        : create_(std::move(create)), rollout_(std::move(rollout)) {}
    wharf::JobResult process(wharf::JobContext& context) override {
        return RolloutOperation::kind_of(context.payload()) == RolloutKind::create
                   ? create_->run(context)
                   : rollout_->run(context);
    }

private:
    std::shared_ptr<RolloutOperation> create_;
    std::shared_ptr<RolloutOperation> rollout_;
};

class Activator final : public wharf::Activator {
public:
    void start(wharf::PluginContext& context) override {
        auto repository = context.services().get<wharf::Repository>();
        if (!repository) throw std::runtime_error("no wharf.Repository service");
        auto configs = std::make_shared<RolloutConfigs>();
        for (const auto& [name, values] : context.config().instances("rollout")) {
            try {
                configs->put(wharf::rollout::parse_rollout_config(name, values));
            } catch (const std::invalid_argument& e) {
                context.logger().error("rollout config refused name=", name, " error=\"",
                                       e.what(), "\"");
            }
        }
        std::weak_ptr<RolloutConfigs> weak_configs = configs;
        subscriptions_.push_back(context.config().subscribe(
            "rollout",
            [weak_configs](const std::string& instance,
                           const std::optional<boost::property_tree::ptree>& values)
                -> wharf::ConfigVerdict {
                auto set = weak_configs.lock();
                if (!set) return std::nullopt;
                if (!values) {
                    set->remove(instance);
                    return std::nullopt;
                }
                try {
                    set->put(wharf::rollout::parse_rollout_config(instance, *values));
                } catch (const std::invalid_argument& e) {
                    return std::string(e.what());
                }
                return std::nullopt;
            }));

        auto create = std::make_shared<RolloutOperation>(RolloutKind::create, repository, configs);
        auto rollout = std::make_shared<RolloutOperation>(RolloutKind::rollout, repository, configs);
        const auto settings = settings_from(context.config().current(kOperationConfig));
        create->configure(settings);
        rollout->configure(settings);
        std::weak_ptr<RolloutOperation> weak_create = create, weak_rollout = rollout;
        subscriptions_.push_back(context.config().subscribe(
            kOperationConfig,
            [weak_create, weak_rollout](const std::string&,
                                        const std::optional<boost::property_tree::ptree>& values)
                -> wharf::ConfigVerdict {
                if (!values) return std::nullopt;
                auto s = settings_from(*values);
                if (auto op = weak_create.lock()) op->configure(s);
                if (auto op = weak_rollout.lock()) op->configure(s);
                return std::nullopt;
            }));

        for (const auto& op : {create, rollout}) {
            auto d = op->descriptor();
            wharf::Properties props;
            props.put("operation.name", d.name);
            props.put("operation.topic", d.topic);
            context.services().register_service<wharf::Operation>(op, props);
        }
        wharf::Properties consumer_props;
        boost::property_tree::ptree topics;
        topics.push_back({"", boost::property_tree::ptree(kTopic)});
        consumer_props.add_child(wharf::JobConsumer::kTopicsProperty, topics);
        consumer_props.put("operation.name", "rollout");
        context.services().register_service<wharf::JobConsumer>(
            std::make_shared<RolloutConsumer>(create, rollout), consumer_props);
        context.logger().info("rollout operations started version=1.0.0 topic=", kTopic,
                              " rollout_configs=", configs->names().size());
    }

    void stop(wharf::PluginContext&) override { subscriptions_.clear(); }

private:
    std::vector<std::unique_ptr<wharf::ConfigSubscription>> subscriptions_;
};

}  // namespace

WHARF_PLUGIN(manifest, Activator);
