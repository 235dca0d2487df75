// hello_operation: a minimal Wharf operation plugin, the starting point for your own.
//
// It runs jobs on the topic `example/hello`. For every name in the job's payload
// (`names`: a list, or `name`: one string) it writes "<greeting>, <name>!" as a
// row of the job's report, with progress, and ends with a summary message. The
// greeting comes from the plugin's own configuration file,
// `configs/operations/hello.yaml`, whose schema the manifest declares: the host
// validates every edit of that file against it and delivers accepted values
// while the plugin runs.
//
// The parts, in the order the host uses them:
//   manifest()      data the host reads (in a probe process first) before it runs
//                   anything else: id, version, services, configuration schema;
//   HelloActivator  start() registers the job consumer service, stop() undoes it;
//   HelloConsumer   the service: process() runs one job, on a host worker thread.
//
// Only SDK headers (<wharf/...>) are included: a plugin never sees host code.
// To start your own plugin, copy this folder and replace "hello" throughout.

#include <wharf/jobs.hpp>
#include <wharf/plugin.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace {

// Names other people depend on: admins route the topic to a queue in
// configs/queues/*.yaml, and the configuration name is a file name. Treat them
// as part of your plugin's public interface.
constexpr const char* kPluginId = "example.hello";
constexpr const char* kTopic = "example/hello";
constexpr const char* kConfigName = "operations/hello";

// The manifest must be cheap and free of side effects: the host may call it in a
// short-lived probe process and again in the host before anything else.
wharf::Manifest manifest() {
    wharf::Manifest m;
    m.id = kPluginId;      // unique per host; a second file with this id is refused
    m.version = "1.0.0";   // semver, shown by the API and in the log
    m.description = "greets every name in a job's payload (plugin template)";
    m.provides = {wharf::JobConsumer::kInterfaceName};
    // A service this plugin cannot run without would be listed here; the host
    // then starts the plugin only while that service is registered, e.g.
    //   m.requires_services = {{wharf::interfaces::kRepository}};
    // With `optional = true` the plugin starts anyway and should track it.

    // configs/operations/hello.yaml. The host fills in defaults, checks types and
    // ranges, and refuses a bad edit with file, line and reason (the plugin keeps
    // the previous values). `wharf config validate` reads this schema offline.
    wharf::ConfigSchema schema;
    schema.name = kConfigName;
    schema.description = "the hello operation";
    auto greeting = wharf::make_field("greeting", wharf::ConfigType::string,
                                      "the word put before every name", "Hello");
    auto max_names = wharf::make_field("max_names", wharf::ConfigType::integer,
                                       "a job with more names than this ends in error", "1000");
    max_names.minimum = 1;
    max_names.maximum = 100000;
    schema.fields = {greeting, max_names};
    m.configs = {schema};
    return m;
}

// The service. The registry hands it to the job engine as a shared_ptr, which
// keeps this library loaded; a job already running when the plugin is upgraded
// or stopped finishes on this object. It therefore must not keep references to
// the PluginContext or its logger (valid only until stop() returns): per-job
// messages go to the job's own log instead.
class HelloConsumer final : public wharf::JobConsumer {
public:
    // Called from start() and from the configuration thread, while jobs run:
    // hence the mutex.
    void configure(const boost::property_tree::ptree& values) {
        std::lock_guard lock(mutex_);
        greeting_ = values.get<std::string>("greeting");
        max_names_ = values.get<std::int64_t>("max_names");
    }

    wharf::JobResult process(wharf::JobContext& job) override {
        std::string greeting;
        std::int64_t max_names = 0;
        {
            std::lock_guard lock(mutex_);
            greeting = greeting_;
            max_names = max_names_;
        }
        std::vector<std::string> names;
        if (auto list = job.payload().get_child_optional("names")) {
            for (const auto& [key, item] : *list) names.push_back(item.data());
        }
        if (auto name = job.payload().get_optional<std::string>("name")) names.push_back(*name);

        // Bad input can never succeed: `error` ends the job without retries.
        // (`failed` would retry later: use it for what may heal, like a timeout.)
        if (names.empty()) return wharf::JobResult::error("payload has no 'name' or 'names'");
        if (static_cast<std::int64_t>(names.size()) > max_names) {
            return wharf::JobResult::error(std::to_string(names.size()) +
                                           " names, more than max_names=" +
                                           std::to_string(max_names));
        }

        // Jobs may run again after a crash or an upgrade: the checkpoint lets a
        // rerun skip the names it already greeted instead of reporting them twice.
        std::size_t done = std::stoul(job.checkpoint("done").value_or("0"));
        job.init_progress(static_cast<std::int64_t>(names.size()));
        job.increment_progress(static_cast<std::int64_t>(done));
        if (done == 0) job.report_row({"name", "greeting"});
        for (; done < names.size(); ++done) {
            // A user pressed stop: return soon, whatever the result says.
            if (job.is_stopped()) return wharf::JobResult::succeeded("stopped");
            job.report_row({names[done], greeting + ", " + names[done] + "!"});
            job.checkpoint("done", std::to_string(done + 1));
            job.increment_progress();
        }
        job.log("greeted " + std::to_string(names.size()) + " names");
        return wharf::JobResult::succeeded(greeting + ", " + names.front() + "!" +
                                           (names.size() > 1 ? " (and others)" : ""));
    }

private:
    std::mutex mutex_;
    std::string greeting_;
    std::int64_t max_names_ = 0;
};

// One instance per activation: created before start(), destroyed after stop().
// Anything thrown from start() or stop() fails the plugin with the message (the
// host goes on); start() must return within the host's start timeout (10 s).
class HelloActivator final : public wharf::Activator {
public:
    void start(wharf::PluginContext& ctx) override {
        auto consumer = std::make_shared<HelloConsumer>();
        // The configuration in force now: the file's values, or the schema's
        // defaults while there is no file.
        consumer->configure(ctx.config().current(kConfigName));
        // Later edits arrive here, already validated against the schema. The
        // callback may still refuse one with a reason; the old values then stay.
        config_ = ctx.config().subscribe(
            kConfigName,
            [consumer, &log = ctx.logger()](
                const std::string&,
                const std::optional<boost::property_tree::ptree>& values) -> wharf::ConfigVerdict {
                if (!values) return std::nullopt;
                if (values->get<std::string>("greeting").empty()) return "greeting is empty";
                consumer->configure(*values);
                log.info("hello configuration applied greeting=",
                         values->get<std::string>("greeting"));
                return std::nullopt;
            });

        // The job engine finds consumers by interface name and the `job.topics`
        // property (a list; `example/*` or `example/**` patterns also work).
        wharf::Properties topics;
        topics.push_back({"", wharf::Properties(kTopic)});
        wharf::Properties properties;
        properties.add_child(wharf::JobConsumer::kTopicsProperty, topics);
        ctx.services().register_service<wharf::JobConsumer>(consumer, properties);

        // Lines carry `plugin=example.hello`; follow the `event key=value` style.
        ctx.logger().info("hello operation started version=", ctx.version(), " topic=", kTopic);
    }

    void stop(wharf::PluginContext& ctx) override {
        // The host unregisters our services and closes our subscriptions after
        // stop() anyway; undo what start() did explicitly all the same, and stop
        // any thread you started here: none may outlive stop().
        config_.reset();
        ctx.logger().info("hello operation stopped");
    }

private:
    std::unique_ptr<wharf::ConfigSubscription> config_;
};

}  // namespace

// The plugin's one exported symbol: the manifest function and the activator class.
WHARF_PLUGIN(manifest, HelloActivator);
