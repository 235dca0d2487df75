#include "repository/generator.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "repository/path.hpp"

namespace wharf::host {
namespace {

/// splitmix64: tiny, fast, and the same sequence everywhere.
class Rng {
public:
    explicit Rng(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
    double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

private:
    std::uint64_t state_;
};

constexpr const char* kWords[] = {"harbour", "crane",   "anchor", "tide",   "cargo",
                                  "quay",    "vessel",  "pier",   "beacon", "sail",
                                  "ropes",   "ballast", "hull",   "mast",   "keel"};

std::string words(Rng& rng, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) {
        if (i) out += ' ';
        out += kWords[rng.below(std::size(kWords))];
    }
    return out;
}

std::string padded(std::uint64_t n, int width) {
    auto s = std::to_string(n);
    return s.size() >= static_cast<std::size_t>(width) ? s : std::string(width - s.size(), '0') + s;
}

std::string folder_of(const ContentGeneratorOptions& o, std::uint64_t n) {
    auto folder = n / std::max<std::uint64_t>(o.assets_per_folder, 1);
    auto group = folder / std::max<std::uint64_t>(o.folders_per_group, 1);
    return o.assets_root + "/d" + padded(group, 3) + "/f" + padded(folder, 4);
}

std::string section_of(const ContentGeneratorOptions& o, std::uint64_t n) {
    return o.pages_root + "/s" + padded(n / std::max<std::uint64_t>(o.pages_per_section, 1), 3);
}

Property title(std::string s) { return Property::string(std::move(s)); }

}  // namespace

std::string generated_asset_path(const ContentGeneratorOptions& o, std::uint64_t n) {
    return folder_of(o, n) + "/asset-" + padded(n, 6) + ".bin";
}

std::string generated_page_path(const ContentGeneratorOptions& o, std::uint64_t n) {
    return section_of(o, n) + "/page-" + padded(n, 6);
}

ContentGeneratorStats generate_content(Repository& repository, const ContentGeneratorOptions& o) {
    repo::require_non_root_path(o.assets_root, "assets root");
    repo::require_non_root_path(o.pages_root, "pages root");
    ContentGeneratorStats stats;
    Rng rng(o.seed);
    auto session = repository.open_session({o.batch_size});

    // Assets, folder by folder (parents before children, so the session's
    // parent cache hits), a chunk at a time: the properties come from `rng` in
    // asset order (same seed, same repository), then the chunk's binaries are
    // written by a few threads at once, because each finish() waits for its
    // own fsync and the file system overlaps concurrent ones; then the nodes.
    constexpr std::uint64_t kChunk = 64;
    const unsigned writers = std::clamp(std::thread::hardware_concurrency() * 4, 4u, 16u);
    std::string current_folder;
    std::vector<Node> chunk;
    std::vector<std::uint64_t> sizes;
    for (std::uint64_t first = 0; first < o.assets; first += kChunk) {
        auto last = std::min(o.assets, first + kChunk);
        chunk.clear();
        sizes.clear();
        for (auto n = first; n < last; ++n) {
            auto span = o.max_binary_bytes > o.min_binary_bytes
                            ? o.max_binary_bytes - o.min_binary_bytes + 1
                            : 1;
            sizes.push_back(o.min_binary_bytes + rng.below(span));
            Node& asset = chunk.emplace_back();
            asset.path = generated_asset_path(o, n);
            asset.kind = NodeKind::asset;
            auto& p = asset.properties;
            p["dc:title"] = title("Asset " + std::to_string(n));
            p["dc:description"] = title(words(rng, 6));
            p["gen:index"] = Property::long_(static_cast<std::int64_t>(n));
            p["gen:ratio"] = Property::double_(rng.unit());
            p["gen:approved"] = Property::boolean(rng.below(2) == 1);
            p["gen:date"] = Property::date(Date(std::chrono::milliseconds(
                1'600'000'000'000LL + static_cast<std::int64_t>(rng.below(100'000'000'000ULL)))));
            p["gen:tags"] = Property::multi(PropertyType::string,
                                            {Scalar(words(rng, 1)), Scalar(words(rng, 1))});
        }

        std::atomic<std::size_t> next{0};
        std::exception_ptr failure;
        std::mutex failure_mutex;
        auto write_binaries = [&] {
            std::string bytes;
            for (auto i = next++; i < chunk.size(); i = next++) {
                try {
                    auto n = first + i;
                    bytes.clear();
                    // The asset number first, so every binary is distinct.
                    bytes += "wharf-gen " + std::to_string(o.seed) + " " + std::to_string(n) + "\n";
                    Rng content(o.seed * 1'000'003 + n);
                    while (bytes.size() < sizes[i])
                        bytes.push_back(static_cast<char>(content.next() & 0xff));
                    auto writer = repository.write_binary();
                    writer->write(bytes.data(), bytes.size());
                    chunk[i].binary = writer->finish("application/octet-stream");
                } catch (...) {
                    std::lock_guard lock(failure_mutex);
                    if (!failure) failure = std::current_exception();
                    next = chunk.size();
                }
            }
        };
        {
            std::vector<std::jthread> threads;
            for (unsigned t = 1; t < std::min<std::size_t>(writers, chunk.size()); ++t)
                threads.emplace_back(write_binaries);
            write_binaries();
        }
        if (failure) std::rethrow_exception(failure);

        for (auto& asset : chunk) {
            auto folder = std::string(repo::parent_path(asset.path));
            if (folder != current_folder) {
                session->create_folders(folder);
                current_folder = folder;
                ++stats.folders;
            }
            stats.bytes += asset.binary->size;
            session->create(asset);
            ++stats.assets;
        }
    }

    // Pages: the root and section pages, then leaves with references.
    if (o.pages > 0) {
        session->create_folders(std::string(repo::parent_path(o.pages_root)));
        Node root;
        root.path = o.pages_root;
        root.kind = NodeKind::page;
        root.properties["jcr:title"] = title("Generated site");
        session->create(root);
        ++stats.pages;
    }
    std::string current_section;
    for (std::uint64_t n = 0; n < o.pages; ++n) {
        auto section = section_of(o, n);
        if (section != current_section) {
            Node s;
            s.path = section;
            s.kind = NodeKind::page;
            s.properties["jcr:title"] = title("Section " + section.substr(section.rfind('/') + 1));
            session->create(s);
            current_section = section;
            ++stats.pages;
        }
        Node page;
        page.path = generated_page_path(o, n);
        page.kind = NodeKind::page;
        page.properties["jcr:title"] = title("Page " + std::to_string(n) + " " + words(rng, 2));
        std::vector<Scalar> refs;
        std::string text = "<h1>Page " + std::to_string(n) + "</h1>\n";
        for (std::uint64_t k = 0; k < o.references_per_page; ++k) {
            bool to_asset = o.pages == 0 || (o.assets > 0 && rng.below(10) < 8);
            std::string target = to_asset ? generated_asset_path(o, rng.below(o.assets))
                                          : generated_page_path(o, rng.below(o.pages));
            if (k % 2 == 0) {
                refs.emplace_back(PathRef{std::move(target)});
            } else if (to_asset) {
                text += "<p><img src=\"" + target + "\" alt=\"" + words(rng, 2) + "\"></p>\n";
            } else {
                text += "<p><a href='" + target + ".html'>" + words(rng, 3) + "</a></p>\n";
            }
            ++stats.references;
        }
        if (!refs.empty()) page.properties["gen:refs"] = Property::multi(PropertyType::path, refs);
        page.text = std::move(text);
        session->create(page);
        ++stats.pages;
    }
    session->commit();

    // Live copies: copy the blueprint tree, then record the relationship.
    for (std::uint64_t c = 1; c <= o.live_copies && o.pages > 0; ++c) {
        std::string live = o.live_root + "/lc" + std::to_string(c);
        session->create_folders(std::string(repo::parent_path(live)));
        repository.walk(o.pages_root, {}, [&](const Node& node) {
            Node copy = node;
            copy.path = repo::replace_prefix(node.path, o.pages_root, live);
            copy.created = {};
            copy.modified = {};
            session->create(copy);
            return true;
        });
        session->set_live_relationship({o.pages_root, live, {"standard"}, true, {}});
        session->commit();
        ++stats.live_copies;
    }
    return stats;
}

}  // namespace wharf::host
