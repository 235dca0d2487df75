#pragma once
// What the move tests and the move crash helper share: an in-memory
// JobContext (the shape the submission service runs operations inline with)
// and a host that loads the real move plugin through the PluginManager with a
// SqliteRepository registered as wharf.Repository.
//
// Threading: a MemoryContext belongs to the thread that runs the operation;
// request_stop() may be called from any thread.

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "modules/plugin_manager.hpp"
#include "modules/service_registry.hpp"
#include "repository/sqlite_repository.hpp"
#include "support/recording_context.hpp"
#include "wharf/jobs.hpp"
#include "wharf/operations.hpp"

namespace wharf::test {

class MemoryContext final : public RecordingContext {
public:
    explicit MemoryContext(boost::property_tree::ptree payload) : payload_(std::move(payload)) {}

    const Job& job() const override { return job_; }
    const boost::property_tree::ptree& payload() const override { return payload_; }
    void init_progress(std::int64_t total) override {
        total_ = total;
        done_ = 0;
    }
    void increment_progress(std::int64_t steps) override {
        done_ = std::min(done_ + steps, total_ > 0 ? total_ : done_ + steps);
        ++increments_;
        if (stop_after_increments_ > 0 && increments_ >= stop_after_increments_) request_stop();
        if (on_progress) on_progress();
    }

    /// Raises the stop flag once progress was reported this many times.
    void stop_after_increments(int n) { stop_after_increments_ = n; }

    std::int64_t total() const { return total_; }
    std::int64_t done() const { return done_; }

    /// Called after every progress step (the crash helper slows down here).
    std::function<void()> on_progress;

private:
    Job job_;
    boost::property_tree::ptree payload_;
    std::int64_t total_ = 0;
    std::int64_t done_ = 0;
    int increments_ = 0;
    int stop_after_increments_ = 0;
};

/// The move plugin loaded through a real PluginManager, with `repository`
/// registered as the wharf.Repository service it requires.
class MovePluginHost {
public:
    MovePluginHost(std::shared_ptr<host::SqliteRepository> repository,
                   const std::filesystem::path& work_dir, const std::filesystem::path& plugin,
                   const std::filesystem::path& probe)
        : repository_(std::move(repository)) {
        namespace fs = std::filesystem;
        repository_registration_ = registry_.register_service(
            host::Owner{"test", 0}, nullptr, interfaces::kRepository,
            std::static_pointer_cast<void>(
                std::static_pointer_cast<Repository>(repository_)),
            {}, 0);
        fs::create_directories(work_dir / "plugins");
        host::PluginManagerOptions po;
        po.plugins_dir = work_dir / "plugins";
        po.cache_dir = work_dir / "plugin-cache";
        po.plugin_data_dir = work_dir / "plugin-data";
        po.probe_executable = probe;
        po.watch = false;
        plugins_ = std::make_unique<host::PluginManager>(registry_, po);
        plugins_->start();
        auto target = work_dir / "plugins" / "move.so";
        fs::copy_file(plugin, target, fs::copy_options::overwrite_existing);
        plugins_->deploy(target);
    }

    ~MovePluginHost() {
        plugins_->stop_all();
        repository_registration_->unregister();
    }

    /// The operation registered as `name` ("asset-move", "page-move"), or null.
    std::shared_ptr<Operation> operation(const std::string& name) const {
        auto found = registry_.find(interfaces::kOperation, {{"operation.name", name}});
        if (!found) return nullptr;
        return std::static_pointer_cast<Operation>(found->service);
    }

    host::ServiceRegistryImpl& registry() { return registry_; }
    host::PluginManager& plugins() { return *plugins_; }

private:
    std::shared_ptr<host::SqliteRepository> repository_;
    host::ServiceRegistryImpl registry_;
    std::shared_ptr<ServiceRegistration> repository_registration_;
    std::unique_ptr<host::PluginManager> plugins_;
};

/// A move request as the API would hand it over (lists as empty-key children).
inline boost::property_tree::ptree move_request(const std::vector<std::string>& sources,
                                               const std::string& destination,
                                               const std::vector<std::string>& names = {},
                                               const std::string& conflict = "") {
    boost::property_tree::ptree request, list;
    for (const auto& s : sources) list.push_back({"", boost::property_tree::ptree(s)});
    request.add_child("sources", list);
    request.put("destination", destination);
    if (!names.empty()) {
        boost::property_tree::ptree n;
        for (const auto& s : names) n.push_back({"", boost::property_tree::ptree(s)});
        request.add_child("names", n);
    }
    if (!conflict.empty()) request.put("conflict", conflict);
    return request;
}

}  // namespace wharf::test
