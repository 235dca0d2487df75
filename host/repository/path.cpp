#include "repository/path.hpp"

#include <cstdio>

#include "wharf/repository.hpp"

namespace wharf::host::repo {
namespace {

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

/// Length of the UTF-8 sequence starting at `s[i]`, or 0 if it is malformed
/// (overlong forms, surrogates and code points above U+10FFFF included).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) return 1;
    std::size_t n;
    std::uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
        n = 2;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3;
        cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (i + n > s.size()) return 0;
    for (std::size_t k = 1; k < n; ++k) {
        auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

/// Why `s` is not clean UTF-8 text without control characters, or empty.
std::string text_problem(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        if (is_control(c)) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "control character 0x%02x at byte %zu", c, i);
            return buf;
        }
        std::size_t n = utf8_sequence(s, i);
        if (n == 0) return "invalid UTF-8 at byte " + std::to_string(i);
        i += n;
    }
    return {};
}

}  // namespace

std::string path_problem(std::string_view path) {
    if (path.empty()) return "empty path";
    if (path.front() != '/') return "not absolute (must start with '/')";
    if (path.size() > kMaxPathBytes)
        return "longer than " + std::to_string(kMaxPathBytes) + " bytes";
    if (path == "/") return {};
    if (path.back() == '/') return "trailing '/'";
    if (auto p = text_problem(path); !p.empty()) return p;
    std::size_t start = 1;
    while (start <= path.size()) {
        std::size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        auto segment = path.substr(start, end - start);
        if (segment.empty()) return "empty segment at byte " + std::to_string(start);
        if (segment == "." || segment == "..")
            return "segment '" + std::string(segment) + "' at byte " + std::to_string(start);
        if (segment.size() > kMaxSegmentBytes)
            return "segment at byte " + std::to_string(start) + " longer than " +
                   std::to_string(kMaxSegmentBytes) + " bytes";
        start = end + 1;
    }
    return {};
}

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

std::string property_name_problem(std::string_view name) {
    if (name.empty()) return "empty name";
    if (name.size() > kMaxPropertyNameBytes)
        return "longer than " + std::to_string(kMaxPropertyNameBytes) + " bytes";
    if (name.front() == ':') return "names starting with ':' are reserved";
    if (name.find('/') != std::string_view::npos) return "contains '/'";
    return text_problem(name);
}

std::string_view parent_path(std::string_view path) {
    auto slash = path.rfind('/');
    return slash == 0 ? std::string_view("/") : path.substr(0, slash);
}

bool is_same_or_under(std::string_view path, std::string_view root) {
    if (root == "/") return !path.empty() && path.front() == '/';
    if (path.size() < root.size() || path.substr(0, root.size()) != root) return false;
    return path.size() == root.size() || path[root.size()] == '/';
}

std::string quote_path(std::string_view path) {
    std::string out = "\"";
    std::size_t limit = std::min<std::size_t>(path.size(), 200);
    for (std::size_t i = 0; i < limit; ++i) {
        auto c = static_cast<unsigned char>(path[i]);
        if (is_control(c) || c == '"' || c == '\\') {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
    if (limit < path.size()) out += "...";
    out.push_back('"');
    return out;
}

SubtreeRange subtree_range(std::string_view root) {
    if (root == "/") return {"/", "/", "0"};
    std::string r(root);
    return {r, r + "/", r + "0"};
}

std::string replace_prefix(std::string_view path, std::string_view old_prefix,
                           std::string_view new_prefix) {
    std::string out(new_prefix);
    out.append(path.substr(old_prefix.size()));
    return out;
}

}  // namespace wharf::host::repo
