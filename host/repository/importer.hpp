#pragma once
// import_directory(): a local directory tree into the repository as folders
// and assets (`wharf repo import DIR PATH`). Files are streamed into the
// binary store in 64 KiB chunks (never whole in memory); the MIME type comes
// from the extension, or libmagic when the extension is unknown. An asset
// that exists already gets the new binary, so an interrupted import can be
// run again. Symbolic links and special files are skipped (counted).
//
// Works on any wharf::Repository (SDK only). Errors: RepositoryError naming
// the file or path (bad names, I/O); batches committed before the error stay.
// Threading: uses one Session on the calling thread.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string_view>

#include "wharf/repository.hpp"

namespace wharf::host {

struct DirectoryImportStats {
    std::uint64_t folders = 0;
    std::uint64_t assets = 0;
    std::uint64_t bytes = 0;
    std::uint64_t skipped = 0;  ///< symbolic links, sockets, devices
};

struct DirectoryImportOptions {
    std::size_t batch_size = 500;
    /// Called once per `batch_size` entries, and at the end, with the totals so far.
    std::function<void(const DirectoryImportStats&)> progress = nullptr;
};

/// Imports the tree under `source` as `target` (created with its missing
/// parents as folders). REQUIRES: `source` is a directory.
DirectoryImportStats import_directory(Repository& repository, const std::filesystem::path& source,
                                      std::string_view target,
                                      const DirectoryImportOptions& options = {});

}  // namespace wharf::host
