#pragma once
// The metadata operations:
//   - MetadataExport ("metadata-export", topic wharf/metadata/export): writes
//     the metadata of the assets in a folder to a CSV file in AEM's format
//     (one walk over the subtree learns the columns and their types while the
//     rows go to a spool file; the CSV is then written from the spool, one row
//     per asset), streamed to the plugin's data directory and attached to the
//     job as its downloadable result (JobContext::attach_result);
//   - MetadataImport ("metadata-import", topic wharf/metadata/import): reads
//     such a CSV from a repository binary and sets the typed properties of the
//     assets it names, `batch_size` rows per transaction with the next row
//     committed in the same transaction (Session::set_checkpoint), so that a
//     stopped or killed import resumes without applying a batch twice. A bad
//     row becomes a row of the job's report and the others go on; a malformed
//     header or a CSV that cannot be parsed refuses the request before any
//     change, naming the row and column.
//
// Ownership: each holds the repository service for its lifetime.
// Threading: validate, count, describe and run may be called from several
// threads at once (settings are atomics; everything else is per call).

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <wharf/operations.hpp>
#include <wharf/repository.hpp>

namespace wharf_metadata {

inline constexpr const char* kExportConfig = "operations/metadata-export";
inline constexpr const char* kImportConfig = "operations/metadata-import";
inline constexpr const char* kExportTopic = "wharf/metadata/export";
inline constexpr const char* kImportTopic = "wharf/metadata/import";
/// A cell with this text (spaces around it ignored) removes the property.
inline constexpr const char* kClearCell = "{{clear}}";

wharf::ConfigSchema export_schema();
wharf::ConfigSchema import_schema();

class MetadataExport final : public wharf::Operation {
public:
    /// Result files go to `results_dir/<job id>/` (`inline-<n>/` for inline runs).
    MetadataExport(std::shared_ptr<wharf::Repository> repository, std::filesystem::path results_dir);

    wharf::OperationDescriptor descriptor() const override;
    void validate(const boost::property_tree::ptree& request) const override;
    std::uint64_t count(const boost::property_tree::ptree& request) const override;
    std::string describe(const boost::property_tree::ptree& request,
                         std::uint64_t count) const override;
    wharf::JobResult run(wharf::JobContext& context) override;

private:
    std::shared_ptr<wharf::Repository> repository_;
    std::filesystem::path results_dir_;
    std::atomic<std::uint64_t> inline_runs_{0};
};

class MetadataImport final : public wharf::Operation {
public:
    explicit MetadataImport(std::shared_ptr<wharf::Repository> repository);

    wharf::OperationDescriptor descriptor() const override;
    void validate(const boost::property_tree::ptree& request) const override;
    std::uint64_t count(const boost::property_tree::ptree& request) const override;
    std::string describe(const boost::property_tree::ptree& request,
                         std::uint64_t count) const override;
    wharf::JobResult run(wharf::JobContext& context) override;

private:
    std::shared_ptr<wharf::Repository> repository_;
};

}  // namespace wharf_metadata
