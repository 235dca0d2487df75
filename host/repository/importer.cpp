#include "repository/importer.hpp"

#include <algorithm>
#include <fstream>
#include <vector>

#include "repository/mime.hpp"
#include "repository/path.hpp"

namespace fs = std::filesystem;

namespace wharf::host {
namespace {

using Code = RepositoryError::Code;

BinaryInfo store_file(Repository& repository, const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw RepositoryError(Code::io, "import: cannot read " + file.string());
    auto writer = repository.write_binary();
    std::vector<char> buffer(64 * 1024);
    while (in) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        if (in.gcount() > 0) writer->write(buffer.data(), static_cast<std::size_t>(in.gcount()));
    }
    if (in.bad()) throw RepositoryError(Code::io, "import: read error in " + file.string());
    return writer->finish(repo::mime_type_for_name(file.filename().string()));
}

}  // namespace

DirectoryImportStats import_directory(Repository& repository, const fs::path& source,
                                      std::string_view target,
                                      const DirectoryImportOptions& options) {
    repo::require_non_root_path(target, "import target");
    std::error_code ec;
    if (!fs::is_directory(source, ec))
        throw RepositoryError(Code::not_found,
                              "import: " + source.string() + " is not a directory");
    DirectoryImportStats stats;
    auto session = repository.open_session({options.batch_size});
    std::uint64_t entries = 0;
    auto report_progress = [&] {
        if (options.progress && ++entries % std::max<std::size_t>(options.batch_size, 1) == 0)
            options.progress(stats);
    };
    session->create_folders(target);
    WalkOptions exact{.include_root = true, .max_depth = 0};
    for (fs::recursive_directory_iterator it(source, fs::directory_options::none, ec), end;
         it != end; it.increment(ec)) {
        if (ec) throw RepositoryError(Code::io, "import: " + source.string() + ": " + ec.message());
        const auto& entry = *it;
        auto relative = entry.path().lexically_relative(source).generic_string();
        std::string path = std::string(target) + "/" + relative;
        if (auto problem = repo::path_problem(path); !problem.empty())
            throw RepositoryError(Code::invalid_path, "import: " + entry.path().string() +
                                                          " cannot be " + repo::quote_path(path) +
                                                          ": " + problem);
        auto status = entry.symlink_status();
        if (fs::is_directory(status)) {
            session->create_folders(path);
            ++stats.folders;
        } else if (fs::is_regular_file(status)) {
            auto binary = store_file(repository, entry.path());
            stats.bytes += binary.size;
            // Committed state is enough: one import never creates a path twice.
            if (repository.count(path, exact) > 0) {
                session->set_binary(path, binary);
            } else {
                Node asset;
                asset.path = std::move(path);
                asset.kind = NodeKind::asset;
                asset.binary = std::move(binary);
                session->create(asset);
            }
            ++stats.assets;
        } else {
            ++stats.skipped;
            continue;
        }
        report_progress();
    }
    session->commit();
    if (options.progress) options.progress(stats);
    return stats;
}

}  // namespace wharf::host
