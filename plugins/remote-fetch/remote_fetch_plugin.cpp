// The remote fetch plugin's manifest and activator: the remote-fetch
// operation, registered as a wharf.Operation and as the wharf.JobConsumer of
// wharf/remote/fetch, with operations/remote-fetch.yaml followed live (an
// edit naming an unreadable token file or a bad remote name is refused and
// the settings in force stay).
#include <curl/curl.h>

#include <memory>
#include <stdexcept>
#include <vector>
#include <wharf/config.hpp>
#include <wharf/jobs.hpp>
#include <wharf/operations.hpp>
#include <wharf/plugin.hpp>
#include <wharf/repository.hpp>

#include "remote_fetch_operation.hpp"
#include "remote_fetch_settings.hpp"

namespace {

using namespace wharf_remote_fetch;

wharf::Manifest manifest() {
    wharf::Manifest m;
    m.id = "remote-fetch";
    m.version = "1.0.0";
    m.description =
        "fetches assets and folders from a remote Wharf over HTTP, resumable and verified by "
        "sha256";
    m.provides = {wharf::interfaces::kOperation, wharf::interfaces::kJobConsumer};
    m.requires_services = {{wharf::interfaces::kRepository, false}};
    m.configs = {config_schema()};
    return m;
}

class Activator final : public wharf::Activator {
public:
    void start(wharf::PluginContext& context) override {
        auto repository = context.services().get<wharf::Repository>();
        if (!repository) throw std::runtime_error("no wharf.Repository service");
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            throw std::runtime_error("libcurl could not be initialised");
        curl_ready_ = true;
        const auto config_dir = context.config().directory();
        auto operation = std::make_shared<RemoteFetchOperation>(repository);
        auto initial = settings_from(context.config().current(kConfigName), config_dir);
        if (auto problem = check(initial)) {
            // Keep running without remotes: every request names the problem.
            context.logger().error(
                "remote fetch settings not usable, no remotes in force reason=\"", *problem, "\"");
            initial.remotes.clear();
        }
        operation->configure(std::move(initial));
        std::weak_ptr<RemoteFetchOperation> weak = operation;
        subscription_ = context.config().subscribe(
            kConfigName,
            [weak, config_dir](
                const std::string&,
                const std::optional<boost::property_tree::ptree>& values) -> wharf::ConfigVerdict {
                auto op = weak.lock();
                if (!op || !values) return std::nullopt;
                auto next = settings_from(*values, config_dir);
                if (auto problem = check(next)) return problem;
                op->configure(std::move(next));
                return std::nullopt;
            });
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
        context.logger().info("remote fetch operation started version=", context.version(),
                              " topic=", d.topic, " config_dir=", config_dir.string());
    }

    void stop(wharf::PluginContext&) override {
        subscription_.reset();
        if (curl_ready_) curl_global_cleanup();
        curl_ready_ = false;
    }

private:
    std::unique_ptr<wharf::ConfigSubscription> subscription_;
    bool curl_ready_ = false;
};

}  // namespace

WHARF_PLUGIN(manifest, Activator);
