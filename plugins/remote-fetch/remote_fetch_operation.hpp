#pragma once
// RemoteFetchOperation: the wharf.Operation "remote-fetch" (topic
// wharf/remote/fetch). Fetches assets and folders (recursively) from a named
// remote wharfd into a local destination folder: count() lists the remote
// and sums the binaries' sizes (the threshold is in bytes; the listing brings
// each asset's metadata when the remote offers properties=1, else it is read
// with one request per asset before its transfer); run() transfers up
// to `parallel_transfers` binaries at once, each on its own thread and
// connection, streamed into a BinaryWriter and verified by sha256 before the
// asset exists; then, on the run's own thread, one repository transaction per
// asset creates the missing folders and the asset with the remote's typed
// metadata plus wharf:remoteSource = "<remote>:<remote path>". That property
// and the digest are how a re-run (after a crash, a stop or a failure)
// recognises what it already fetched: it never fetches a finished asset
// again and never leaves half an asset.
//
// Ownership: holds the repository service and the settings in force (swapped
// whole by configure()). Threading: validate, count, describe and run may be
// called from several threads at once; a run's JobContext is used by the
// run's thread only.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>
#include <wharf/logger.hpp>
#include <wharf/operations.hpp>
#include <wharf/repository.hpp>

#include "remote_fetch_settings.hpp"

namespace wharf_remote_fetch {

enum class Conflict { fail, rename, overwrite };

struct FetchRequest {
    std::string remote;
    std::vector<std::string> paths;  ///< remote assets or folders
    std::string destination;         ///< local folder
    Conflict conflict = Conflict::fail;
};

class RemoteFetchOperation final : public wharf::Operation {
public:
    explicit RemoteFetchOperation(std::shared_ptr<wharf::Repository> repository);

    void configure(FetchSettings settings);

    wharf::OperationDescriptor descriptor() const override;
    void validate(const boost::property_tree::ptree& request) const override;
    std::uint64_t count(const boost::property_tree::ptree& request) const override;
    std::string describe(const boost::property_tree::ptree& request,
                         std::uint64_t count) const override;
    wharf::JobResult run(wharf::JobContext& context) override;

private:
    FetchRequest parse(const boost::property_tree::ptree& request) const;
    std::shared_ptr<const FetchSettings> settings() const;

    struct Summary {
        std::uint64_t assets = 0;
        std::uint64_t bytes = 0;
    };

    std::shared_ptr<wharf::Repository> repository_;
    mutable std::mutex mutex_;
    std::shared_ptr<const FetchSettings> settings_;
    mutable std::map<std::string, Summary> summaries_;  // by request, for describe()
};

/// "1.0 GiB", "512 bytes".
std::string human_bytes(std::uint64_t bytes);

}  // namespace wharf_remote_fetch
