#pragma once
// generate_content(): a deterministic test repository. The same options (seed
// included) give the same paths, properties, texts and binaries on every
// machine: the generator uses its own splitmix64, not <random>'s
// implementation-defined distributions.
//
//   <assets_root>/d<i>/f<j>/asset-<n>.bin    N assets, assets_per_folder per
//                                            folder, folders_per_group folders
//                                            per d<i>; small distinct binaries
//                                            and typed metadata
//   <pages_root>/s<i>/page-<n>                M pages (sections are pages too),
//                                            each with K references: about half
//                                            Path properties (gen:refs, multi),
//                                            half links in text; 80% to assets
//   <live_root>/lc<c>                         optional live copies of pages_root
//                                            with their relationship recorded
//
// Works on any wharf::Repository (SDK only); uses one Session. Threading: the
// calling thread.

#include <cstdint>
#include <string>

#include "wharf/repository.hpp"

namespace wharf::host {

struct ContentGeneratorOptions {
    std::uint64_t seed = 1;
    std::string assets_root = "/content/dam/gen";
    std::uint64_t assets = 1000;
    std::uint64_t assets_per_folder = 100;
    std::uint64_t folders_per_group = 10;
    std::string pages_root = "/content/gen/en";
    std::uint64_t pages = 100;
    std::uint64_t pages_per_section = 50;
    std::uint64_t references_per_page = 10;
    std::string live_root = "/content/gen";  ///< live copies become <live_root>/lc<c>
    std::uint64_t live_copies = 0;
    std::size_t min_binary_bytes = 64;
    std::size_t max_binary_bytes = 512;
    std::size_t batch_size = 1000;
};

struct ContentGeneratorStats {
    std::uint64_t folders = 0;
    std::uint64_t assets = 0;
    std::uint64_t pages = 0;
    std::uint64_t references = 0;  ///< Path values plus text links written
    std::uint64_t live_copies = 0;
    std::uint64_t bytes = 0;
};

/// The path of asset `n` (0-based) under `options`.
std::string generated_asset_path(const ContentGeneratorOptions& options, std::uint64_t n);
/// The path of page `n` (0-based) under `options`.
std::string generated_page_path(const ContentGeneratorOptions& options, std::uint64_t n);

/// Generates the content into `repository` (which should not hold it yet).
ContentGeneratorStats generate_content(Repository& repository,
                                       const ContentGeneratorOptions& options);

}  // namespace wharf::host
