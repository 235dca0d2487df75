#pragma once
// Test support for the bulk move tests run in wharfd: the generated content
// they move (a folder of assets with many pages referring to it) and seeding
// a repository with it before the host starts.
#include <cstdint>
#include <string>

#include "repository/generator.hpp"
#include "wharf/repository.hpp"

namespace wharf::test {

/// 400 assets under `source` (100 a folder) that 2,000 pages refer to 10 times each; tiny binaries.
inline host::ContentGeneratorOptions referenced_assets(const std::string& source) {
    host::ContentGeneratorOptions gen;
    gen.assets_root = source;
    gen.assets = 400;
    gen.assets_per_folder = 100;
    gen.folders_per_group = 2;
    gen.pages_root = "/content/site/en";
    gen.pages = 2000;
    gen.references_per_page = 10;
    gen.min_binary_bytes = 16;
    gen.max_binary_bytes = 32;
    return gen;
}

/// What seed_move_source() counted under the source it generated.
struct SeededSource {
    std::uint64_t nodes = 0;       ///< nodes under gen.assets_root, the root included
    std::uint64_t references = 0;  ///< references into gen.assets_root
};

/// Generates `gen` into `repo` and creates the folder `destination`.
inline SeededSource seed_move_source(Repository& repo, const host::ContentGeneratorOptions& gen,
                                     const std::string& destination) {
    host::generate_content(repo, gen);
    auto s = repo.open_session();
    s->create_folders(destination);
    s->commit();
    SeededSource out;
    out.nodes = repo.count(gen.assets_root, WalkOptions{});
    out.references =
        repo.referrers_under(gen.assets_root, false, [](const Reference&) { return true; });
    return out;
}

}  // namespace wharf::test
