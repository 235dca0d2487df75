// The metadata plugin: registers the metadata-export and metadata-import
// operations with the job consumers of their topics, declares
// operations/metadata-export.yaml and operations/metadata-import.yaml (the
// host reads threshold and email_enabled itself), and keeps export results in
// <plugin data dir>/results/<job id>/.
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <wharf/jobs.hpp>
#include <wharf/operations.hpp>
#include <wharf/plugin.hpp>
#include <wharf/repository.hpp>

#include "metadata_operations.hpp"

namespace {

wharf::ConfigSchema schema(const char* name, const char* description, const char* unit) {
    wharf::ConfigSchema s;
    s.name = name;
    s.description = description;
    auto threshold = wharf::make_field(
        "threshold", wharf::ConfigType::integer,
        std::string("Threshold number of ") + unit +
            ": requests with more become a job; at or below it they run at once",
        "100");
    threshold.minimum = 0;
    auto email = wharf::make_field("email_enabled", wharf::ConfigType::boolean,
                                   "Send an e-mail when a job of this operation ends", "false");
    s.fields = {threshold, email};
    return s;
}

wharf::Manifest manifest() {
    wharf::Manifest m;
    m.id = "metadata";
    m.version = "1.0.0";
    m.description =
        "Exports asset metadata to CSV and imports it back, in AEM's format (metadata-export, "
        "metadata-import)";
    m.provides = {wharf::interfaces::kOperation, wharf::interfaces::kJobConsumer};
    m.requires_services = {{wharf::interfaces::kRepository, false},
                           {wharf::interfaces::kJobManager, true}};
    m.configs = {schema(wharf_metadata::kExportConfig,
                        "Metadata export to CSV (AEM: Async Metadata Export)", "assets"),
                 schema(wharf_metadata::kImportConfig,
                        "Metadata import from CSV (AEM: Async Metadata Import)", "CSV rows")};
    return m;
}

// Result directories whose job is gone (purged while the plugin was not
// running) and those of inline runs a crash left behind.
void remove_orphans(const std::filesystem::path& results, wharf::JobManager* jobs,
                    wharf::Logger& log) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(results, ec)) {
        auto name = entry.path().filename().string();
        // An inline run of this process is not an orphan: during a hot upgrade
        // the old version may still be writing one. Those a crash left behind
        // carry another process id.
        const std::string ours = "inline-" + std::to_string(::getpid()) + "-";
        bool orphan = name.rfind("inline-", 0) == 0 && name.rfind(ours, 0) != 0;
        if (!orphan && jobs && !name.empty() &&
            name.find_first_not_of("0123456789") == std::string::npos) {
            try {
                orphan = !jobs->find(std::stoll(name));
            } catch (const std::exception&) {
                orphan = false;
            }
        }
        if (orphan) {
            std::error_code rm;
            std::filesystem::remove_all(entry.path(), rm);
            log.info("orphaned result removed dir=", entry.path().string());
        }
    }
}

class MetadataActivator final : public wharf::Activator {
public:
    void start(wharf::PluginContext& context) override {
        auto repository = context.services().get<wharf::Repository>();
        if (!repository) throw std::runtime_error("no wharf.Repository service");
        auto results = context.data_dir() / "results";
        std::filesystem::create_directories(results);
        auto jobs = context.services().get<wharf::JobManager>();
        remove_orphans(results, jobs.get(), context.logger());

        auto export_op = std::make_shared<wharf_metadata::MetadataExport>(repository, results);
        auto import_op = std::make_shared<wharf_metadata::MetadataImport>(repository);
        register_operation(context, export_op, wharf_metadata::kExportTopic);
        register_operation(context, import_op, wharf_metadata::kImportTopic);
        context.logger().info("metadata operations started version=", context.version());
    }

    void stop(wharf::PluginContext&) override {
        for (auto& r : registrations_) r->unregister();
        registrations_.clear();
    }

private:
    void register_operation(wharf::PluginContext& context,
                            const std::shared_ptr<wharf::Operation>& operation, const char* topic) {
        wharf::Properties op_properties;
        op_properties.put("operation.name", operation->descriptor().name);
        registrations_.push_back(
            context.services().register_service<wharf::Operation>(operation, op_properties));
        wharf::Properties consumer_properties;
        boost::property_tree::ptree topics;
        topics.push_back({"", boost::property_tree::ptree(topic)});
        consumer_properties.add_child(wharf::JobConsumer::kTopicsProperty, topics);
        registrations_.push_back(context.services().register_service<wharf::JobConsumer>(
            std::make_shared<wharf::OperationConsumer>(operation), consumer_properties));
    }

    std::vector<std::shared_ptr<wharf::ServiceRegistration>> registrations_;
};

}  // namespace

WHARF_PLUGIN(manifest, MetadataActivator)
