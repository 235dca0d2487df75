#pragma once
// DeleteOperation: the wharf.Operation "asset-delete" (topic
// wharf/asset/delete). Deletes assets and folders, with everything under
// them, in batches: one repository transaction per batch, which also records
// the job's checkpoint (Session::set_checkpoint), so that a stopped or killed
// job resumes after the last committed batch and a re-run of the same request
// deletes what is left. Nodes referenced from outside the deleted set refuse
// the request unless `force` is set; forced, those references are left
// dangling and listed in the report.
//
// Ownership: holds the repository service for its lifetime. Threading:
// validate, count, describe and run may be called from several threads at
// once (the batch size is an atomic; everything else is per call).

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include <wharf/operations.hpp>
#include <wharf/repository.hpp>

namespace wharf_delete {

/// The configuration this plugin owns (operations/delete.yaml).
inline constexpr const char* kConfigName = "operations/delete";
inline constexpr const char* kTopic = "wharf/asset/delete";

/// A request as the operation reads it.
struct DeleteRequest {
    std::vector<std::string> paths;
    bool force = false;
};

class DeleteOperation final : public wharf::Operation {
public:
    explicit DeleteOperation(std::shared_ptr<wharf::Repository> repository);

    /// Changes per transaction (operations/delete.yaml: batch_size).
    void set_batch_size(std::size_t size) { batch_size_ = size == 0 ? 1 : size; }

    wharf::OperationDescriptor descriptor() const override;
    void validate(const boost::property_tree::ptree& request) const override;
    std::uint64_t count(const boost::property_tree::ptree& request) const override;
    std::string describe(const boost::property_tree::ptree& request,
                         std::uint64_t count) const override;
    wharf::JobResult run(wharf::JobContext& context) override;

private:
    /// External references to existing nodes of the deleted set: the first
    /// `keep` (empty with keep 0) and the total.
    std::uint64_t external_references(const DeleteRequest& request, std::size_t keep,
                                      std::vector<wharf::Reference>* first) const;

    std::shared_ptr<wharf::Repository> repository_;
    std::atomic<std::size_t> batch_size_{500};
};

/// The configuration schema (also the manifest's).
wharf::ConfigSchema config_schema();

}  // namespace wharf_delete
