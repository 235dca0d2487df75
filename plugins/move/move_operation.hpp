#pragma once
// MoveOperation: moves assets and folders ("asset-move") or pages ("page-move")
// to a new parent and rewrites every reference to anything moved, as one
// wharf::Operation used both inline and as a job.
//
// A run is resumable: its plan (source -> target pairs, with conflict renames
// already resolved) and its position are a repository checkpoint committed in
// the same transaction as the change it describes, so a killed or stopped run
// continues exactly after its last committed batch. The checkpoint is keyed by
// the request, not by the job: a crash re-run of the job and a resubmission of
// the same request (after a stop) both resume it.
//
// Ownership: holds the repository service and a snapshot of its configuration
// (replaced by MoveOperation::configure on every config update).
// Threading: every method may be called from several threads at once; two
// runs of the same request at once are refused (the second ends as error).

#include <wharf/operations.hpp>
#include <wharf/repository.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace wharf::move {

enum class MoveKind { asset, page };

/// Thresholds as configured; see the README (move requests).
struct MoveSettings {
    /// Assets and folders (asset move) or references (page move).
    std::uint64_t threshold = 100;
    /// References into the moved subtrees (asset move only).
    std::uint64_t threshold_references = 100;
    /// Referrers rewritten per transaction (and per checkpoint).
    std::size_t batch_size = 250;
};

/// A validated request: the sources with the paths they will get.
struct MoveStep {
    std::string from;
    std::string to;
};

class MoveOperation final : public Operation {
public:
    MoveOperation(MoveKind kind, std::shared_ptr<Repository> repository);

    /// Replaces the thresholds (called from the config thread).
    void configure(const MoveSettings& settings);

    OperationDescriptor descriptor() const override;
    void validate(const boost::property_tree::ptree& request) const override;
    std::uint64_t count(const boost::property_tree::ptree& request) const override;
    std::string describe(const boost::property_tree::ptree& request,
                         std::uint64_t count) const override;
    JobResult run(JobContext& context) override;

private:
    struct Request;
    Request parse(const boost::property_tree::ptree& request) const;
    std::vector<MoveStep> plan(const Request& request) const;
    std::string checkpoint_name(const Request& request) const;
    MoveSettings settings() const;

    MoveKind kind_;
    std::shared_ptr<Repository> repository_;
    mutable std::mutex mutex_;
    MoveSettings settings_;
    std::set<std::string> running_;  ///< checkpoint names of runs in progress
};

}  // namespace wharf::move
