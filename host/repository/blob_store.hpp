#pragma once
// The content-addressed binary store: <root>/ab/cd/<sha256>, where ab and cd
// are the digest's first two byte pairs (fan-out keeps directories small).
//
// A writer streams into <root>/tmp/<random>.part while computing the digest,
// then finish() fsyncs the file, renames it to its address and fsyncs the
// directory, so a binary is either whole at its address or absent. A binary
// already present is not written twice (its mtime is refreshed instead, which
// keeps it out of the garbage collector's grace window).
//
// Reference counting is the repository's business (nodes rows carry the
// digest); the store only answers "what is here, and how old" and removes
// what it is told to, plus stale temporary files.
//
// Ownership: the store owns nothing but its root path. Writers and readers own
// their file descriptors. Threading: any number of writers and readers may
// run at once from any threads; each object is used by one thread at a time.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "wharf/repository.hpp"

namespace wharf::host::repo {

class BlobStore {
public:
    /// Uses (and creates) `root`.
    explicit BlobStore(std::filesystem::path root);

    const std::filesystem::path& root() const { return root_; }

    /// The address of `sha256` (REQUIRES: is_sha256_hex).
    std::filesystem::path path_of(std::string_view sha256) const;

    /// The stored size of `sha256`, or nullopt when it is not in the store.
    std::optional<std::uint64_t> size_of(std::string_view sha256) const;

    /// A new writer (a temporary file in <root>/tmp).
    std::unique_ptr<BinaryWriter> begin_write() const;

    /// Opens a stored binary; throws RepositoryError{io} if it is missing.
    std::unique_ptr<BinaryReader> open(const BinaryInfo& info) const;

    /// Calls `visit(sha256, size, mtime)` for every stored binary (streamed
    /// directory iteration; files that are not addresses are skipped).
    void for_each(const std::function<void(const std::string&, std::uint64_t,
                                           std::filesystem::file_time_type)>& visit) const;

    /// Removes `sha256` if its mtime is before `older_than`; true if removed.
    bool remove_if_older(std::string_view sha256, std::filesystem::file_time_type older_than) const;

    /// Removes temporary files older than `older_than` (left by killed
    /// writers); returns how many.
    std::uint64_t remove_stale_temporaries(std::filesystem::file_time_type older_than) const;

    /// Temporary files present (for check()).
    std::uint64_t count_temporaries(std::filesystem::file_time_type older_than) const;

private:
    std::filesystem::path root_;
    std::filesystem::path tmp_;
};

}  // namespace wharf::host::repo
