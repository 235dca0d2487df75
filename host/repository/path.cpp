#include "repository/path.hpp"

#include "wharf/repository.hpp"

namespace wharf::host::repo {

void require_valid_path(std::string_view path, std::string_view what) {
    if (auto problem = path_problem(path); !problem.empty())
        throw RepositoryError(
            RepositoryError::Code::invalid_path,
            "invalid " + std::string(what) + " " + quote_path(path) + ": " + problem);
}

void require_non_root_path(std::string_view path, std::string_view what) {
    require_valid_path(path, what);
    if (path == "/")
        throw RepositoryError(RepositoryError::Code::invalid_path,
                              "invalid " + std::string(what) + " \"/\": the root cannot be " +
                                  "created, removed, moved or used here");
}

SubtreeRange subtree_range(std::string_view root) {
    if (root == "/") return {"/", "/", "0"};
    std::string r(root);
    return {r, r + "/", r + "0"};
}

}  // namespace wharf::host::repo
