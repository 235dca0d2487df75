#pragma once
// Test support: seeding a repository node by node, each change in a commit
// of its own.
#include <string>
#include <utility>

#include "wharf/repository.hpp"

namespace wharf::test {

/// Creates the folder `path` and any missing parents.
inline void create_folder(Repository& repo, const std::string& path) {
    auto s = repo.open_session();
    s->create_folders(path);
    s->commit();
}

/// Creates the page `path` with `text` and `properties`.
inline void create_page(Repository& repo, const std::string& path, std::string text = {},
                        PropertyMap properties = {}) {
    auto s = repo.open_session();
    Node n;
    n.path = path;
    n.kind = NodeKind::page;
    n.text = std::move(text);
    n.properties = std::move(properties);
    s->create(n);
    s->commit();
}

}  // namespace wharf::test
