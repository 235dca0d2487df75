#pragma once
// Operations: the content operations people start (delete, move, metadata
// export/import, remote fetch, rollout), each owned by a plugin.
//
// An operation plugin registers a wharf::Operation service. The host's
// submission service (used by the HTTP API, the CLI and the dashboard) takes a
// request for it and:
//   1. validates it (`validate`): a bad request is refused before anything
//      happens, with the field and value named (OperationRefused);
//   2. counts the work (`count`) and compares it with the operation's
//      threshold in `operations/<name>.yaml` (key `threshold`);
//   3. at or below the threshold runs it at once in the caller (`run` with a
//      host-made in-memory JobContext) and returns the result, report rows
//      included; above it, enqueues a job on the operation's topic and returns
//      the job id. The job's consumer is the same `run`.
// So an operation is written once and behaves the same inline and as a job.
// Register the Operation and a JobConsumer for its topic; OperationConsumer
// below adapts one to the other.
//
// Requests are property trees (the JSON body of `POST /api/operations/{name}`
// converted by the host), described by `request_schema` with the same field
// types as configuration schemas so that the API, the CLI and the dashboard
// forms can validate and render them.
//
// Threading: validate, count, describe and run may be called from several
// threads at once.

#include <boost/property_tree/ptree.hpp>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "wharf/config.hpp"
#include "wharf/jobs.hpp"
#include "wharf/services.hpp"

namespace wharf {

/// What an operation is, for people and for the submission service.
struct OperationDescriptor {
    std::string name;    ///< URL and CLI name: "asset-delete", "asset-move", "page-move", ...
    std::string title;   ///< for people: "Delete assets"
    std::string topic;   ///< job topic: "wharf/asset/delete"
    std::string config;  ///< its configuration: "operations/delete" (keys `threshold`, `email_enabled`)
    std::string unit;    ///< what count() counts: "assets and folders", "references", "bytes", ...
    std::vector<ConfigField> request_schema;  ///< the request's fields
};

/// A request refused before anything happened: which field, which value, why.
class OperationRefused : public std::invalid_argument {
public:
    OperationRefused(std::string field, std::string value, const std::string& reason)
        : std::invalid_argument(reason), field_(std::move(field)), value_(std::move(value)) {}
    const std::string& field() const noexcept { return field_; }
    const std::string& value() const noexcept { return value_; }

private:
    std::string field_;
    std::string value_;
};

class Operation {
public:
    static constexpr const char* kInterfaceName = interfaces::kOperation;
    virtual ~Operation() = default;

    virtual OperationDescriptor descriptor() const = 0;

    /// Checks the request (and what it names in the repository). Throws
    /// OperationRefused; must change nothing.
    virtual void validate(const boost::property_tree::ptree& request) const = 0;

    /// The amount of work, in descriptor().unit, compared with the threshold.
    /// REQUIRES: validate(request) passed.
    virtual std::uint64_t count(const boost::property_tree::ptree& request) const = 0;

    /// One line for people, e.g. "Move 12,408 assets from /content/dam/a to
    /// /content/dam/b" (the dashboard's description column).
    virtual std::string describe(const boost::property_tree::ptree& request,
                                 std::uint64_t count) const = 0;

    /// Does the work; the request is context.payload(). Used inline and as the
    /// job's consumer, so it reports progress, report rows and checkpoints the
    /// same way in both cases and resumes from its checkpoints. Inline, the
    /// context's job().id is 0: there is no job to resume, so do not key
    /// checkpoints on it.
    virtual JobResult run(JobContext& context) = 0;
};

/// A JobConsumer that runs an Operation: register it for the operation's topic.
class OperationConsumer final : public JobConsumer {
public:
    explicit OperationConsumer(std::shared_ptr<Operation> operation)
        : operation_(std::move(operation)) {}
    JobResult process(JobContext& context) override { return operation_->run(context); }

private:
    std::shared_ptr<Operation> operation_;
};

}  // namespace wharf
