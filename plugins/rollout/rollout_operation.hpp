#pragma once
// The MSM operations, each a wharf::Operation used inline and as a job on
// topic wharf/msm/rollout:
//   live-copy-create  copies a blueprint page tree to a new live copy root and
//                     records the live relationship (rollout configs, deep or
//                     shallow, excluded blueprint paths);
//   rollout           pushes a blueprint page (and its subpages) to its live
//                     copies, chosen or all, with the actions of each live
//                     copy's rollout configs, honouring cancelled inheritance.
// Creating a live copy is a rollout to that one live copy with contentCopy
// forced on, after the relationship is recorded.
//
// A run is resumable: its position (the last blueprint page rolled out, then
// the last live page checked for deletion) and its counters are a repository
// checkpoint committed in the same transaction as the batch they describe,
// keyed by the request, so a killed job re-run and a resubmitted request
// after a stop both continue exactly after the last committed batch; no page
// is created twice.
//
// Ownership: holds the repository service, the rollout configs in force
// (shared with the plugin's config subscription) and a snapshot of its
// settings. Threading: every method may be called from several threads at
// once; two runs of the same request at once are refused (the second ends as
// error).

#include <wharf/operations.hpp>
#include <wharf/repository.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "rollout_config.hpp"

namespace wharf::rollout {

enum class RolloutKind { create, rollout };

/// operations/rollout.yaml as the operations use it.
struct RolloutSettings {
    std::uint64_t threshold = 100;  ///< pages x live copies run inline at or below it
    std::size_t batch_size = 200;   ///< pages x live copies per transaction and checkpoint
};

class RolloutOperation final : public Operation {
public:
    RolloutOperation(RolloutKind kind, std::shared_ptr<Repository> repository,
                     std::shared_ptr<const RolloutConfigs> configs);

    /// Replaces the settings (called from the config thread).
    void configure(const RolloutSettings& settings);

    OperationDescriptor descriptor() const override;
    void validate(const boost::property_tree::ptree& request) const override;
    std::uint64_t count(const boost::property_tree::ptree& request) const override;
    std::string describe(const boost::property_tree::ptree& request,
                         std::uint64_t count) const override;
    JobResult run(JobContext& context) override;

    /// Whether a job payload is this kind's request (both share one topic: a
    /// live-copy-create request names a `target`, a rollout request does not).
    static RolloutKind kind_of(const boost::property_tree::ptree& payload);

private:
    struct Request;
    struct Plan;
    class Run;
    Request parse(const boost::property_tree::ptree& request) const;
    Plan plan(const Request& request) const;
    std::string checkpoint_name(const Request& request) const;
    RolloutSettings settings() const;

    RolloutKind kind_;
    std::shared_ptr<Repository> repository_;
    std::shared_ptr<const RolloutConfigs> configs_;
    mutable std::mutex mutex_;
    RolloutSettings settings_;
    std::set<std::string> running_;  ///< checkpoint names of runs in progress
};

}  // namespace wharf::rollout
