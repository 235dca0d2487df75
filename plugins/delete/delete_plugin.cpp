// The delete plugin: registers the asset-delete operation and the job
// consumer of its topic, and follows operations/delete.yaml (batch_size; the
// host reads threshold and email_enabled itself).
#include <memory>
#include <stdexcept>
#include <wharf/operations.hpp>
#include <wharf/plugin.hpp>
#include <wharf/repository.hpp>

#include "delete_operation.hpp"

namespace {

wharf::Manifest manifest() {
    wharf::Manifest m;
    m.id = "delete";
    m.version = "1.0.0";
    m.description = "Deletes assets and folders (asset-delete, wharf/asset/delete)";
    m.provides = {wharf::interfaces::kOperation, wharf::interfaces::kJobConsumer};
    m.requires_services = {{wharf::interfaces::kRepository, false}};
    m.configs = {wharf_delete::config_schema()};
    return m;
}

class DeleteActivator final : public wharf::Activator {
public:
    void start(wharf::PluginContext& context) override {
        auto repository = context.services().get<wharf::Repository>();
        if (!repository) throw std::runtime_error("no wharf.Repository service");
        auto operation = std::make_shared<wharf_delete::DeleteOperation>(repository);
        auto& config = context.config();
        operation->set_batch_size(
            config.current(wharf_delete::kConfigName).get<std::size_t>("batch_size", 500));
        std::weak_ptr<wharf_delete::DeleteOperation> weak = operation;
        subscription_ = config.subscribe(
            wharf_delete::kConfigName,
            [weak](const std::string&, const std::optional<boost::property_tree::ptree>& values)
                -> wharf::ConfigVerdict {
                if (auto op = weak.lock(); op && values)
                    op->set_batch_size(values->get<std::size_t>("batch_size", 500));
                return std::nullopt;
            });
        wharf::Properties op_properties;
        op_properties.put("operation.name", operation->descriptor().name);
        registrations_.push_back(
            context.services().register_service<wharf::Operation>(operation, op_properties));
        wharf::Properties consumer_properties;
        boost::property_tree::ptree topics;
        topics.push_back({"", boost::property_tree::ptree(wharf_delete::kTopic)});
        consumer_properties.add_child(wharf::JobConsumer::kTopicsProperty, topics);
        registrations_.push_back(context.services().register_service<wharf::JobConsumer>(
            std::make_shared<wharf::OperationConsumer>(operation), consumer_properties));
    }

    void stop(wharf::PluginContext&) override {
        subscription_.reset();
        for (auto& r : registrations_) r->unregister();
        registrations_.clear();
    }

private:
    std::unique_ptr<wharf::ConfigSubscription> subscription_;
    std::vector<std::shared_ptr<wharf::ServiceRegistration>> registrations_;
};

}  // namespace

WHARF_PLUGIN(manifest, DeleteActivator)
