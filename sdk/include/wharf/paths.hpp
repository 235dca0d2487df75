#pragma once
// Repository paths and names, as the repository checks them (repository.hpp,
// "Paths"), for plugins that must refuse a bad request before they change
// anything. Header-only: the host uses the same functions, so a plugin and
// the repository never disagree about what a valid path is.
//
// Pure functions; thread-safe.

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace wharf {

inline constexpr std::size_t kMaxPathBytes = 1024;
inline constexpr std::size_t kMaxSegmentBytes = 150;
inline constexpr std::size_t kMaxPropertyNameBytes = 255;

namespace detail {

inline bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

/// Length of the UTF-8 sequence starting at `s[i]`, or 0 if it is malformed
/// (overlong forms, surrogates and code points above U+10FFFF included).
inline std::size_t utf8_sequence(std::string_view s, std::size_t i) {
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

}  // namespace detail

/// Whether `s` is well-formed UTF-8 (control characters allowed).
inline bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        std::size_t n = detail::utf8_sequence(s, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

/// Why `s` is not clean UTF-8 text without control characters, or empty.
inline std::string text_problem(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        if (detail::is_control(c)) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "control character 0x%02x at byte %zu", c, i);
            return buf;
        }
        std::size_t n = detail::utf8_sequence(s, i);
        if (n == 0) return "invalid UTF-8 at byte " + std::to_string(i);
        i += n;
    }
    return {};
}

/// Why `path` is not a valid repository path, or empty if it is. The root "/"
/// is valid.
inline std::string path_problem(std::string_view path) {
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

/// Why `name` should not name a NEW node, or empty: path_problem's rules for
/// one segment, plus the characters that break URLs, CSV reports and shells
/// (/ \ : * ? " < > | [ ]), which existing nodes may carry but new ones do not.
inline std::string name_problem(std::string_view name) {
    if (name.empty()) return "empty name";
    if (name == "." || name == "..") return "'" + std::string(name) + "' is not a name";
    if (name.size() > kMaxSegmentBytes)
        return "longer than " + std::to_string(kMaxSegmentBytes) + " bytes";
    if (auto p = text_problem(name); !p.empty()) return p;
    for (char ch : name)
        if (std::string_view("/\\:*?\"<>|[]").find(ch) != std::string_view::npos)
            return std::string("contains the character '") + ch + "'";
    return {};
}

/// Why `name` is not a valid property name, or empty. Names starting with ':'
/// are reserved for the repository (":text" marks text links in the index).
inline std::string property_name_problem(std::string_view name) {
    if (name.empty()) return "empty name";
    if (name.size() > kMaxPropertyNameBytes)
        return "longer than " + std::to_string(kMaxPropertyNameBytes) + " bytes";
    if (name.front() == ':') return "names starting with ':' are reserved";
    if (name.find('/') != std::string_view::npos) return "contains '/'";
    return text_problem(name);
}

/// "/a/b" -> "/a"; "/a" -> "/". REQUIRES: a valid, non-root path.
inline std::string_view parent_path(std::string_view path) {
    auto slash = path.rfind('/');
    return slash == 0 ? std::string_view("/") : path.substr(0, slash);
}

/// "/a/b" -> "b". REQUIRES: a valid, non-root path.
inline std::string_view name_of(std::string_view path) { return path.substr(path.rfind('/') + 1); }

/// `name` below `parent` ("/" + "a" -> "/a").
inline std::string child_path(std::string_view parent, std::string_view name) {
    std::string out(parent == "/" ? std::string_view() : parent);
    out += '/';
    out += name;
    return out;
}

/// True when `path` is `root` or lies below it (every absolute path lies below "/").
inline bool is_same_or_under(std::string_view path, std::string_view root) {
    if (root == "/") return !path.empty() && path.front() == '/';
    if (path.size() < root.size() || path.substr(0, root.size()) != root) return false;
    return path.size() == root.size() || path[root.size()] == '/';
}

/// The nearest proper ancestor of `path` for which `listed(ancestor)` is true,
/// or empty: for refusing a list of paths where one lies inside another, at
/// the cost of the path's depth in lookups, not the list's length.
/// `listed`: callable with a std::string_view, returning bool.
template <class Listed>
std::string_view listed_ancestor(std::string_view path, Listed listed) {
    for (auto slash = path.rfind('/'); slash != std::string_view::npos && slash > 0;
         slash = path.rfind('/', slash - 1)) {
        auto ancestor = path.substr(0, slash);
        if (listed(ancestor)) return ancestor;
    }
    return {};
}

/// Replaces the prefix `old_prefix` of `path` (REQUIRES: is_same_or_under) by `new_prefix`.
inline std::string replace_prefix(std::string_view path, std::string_view old_prefix,
                                  std::string_view new_prefix) {
    std::string out(new_prefix);
    out.append(path.substr(old_prefix.size()));
    return out;
}

/// `path` printed for an error message: quoted, control bytes, '"' and '\'
/// escaped, cut at 200 bytes.
inline std::string quote_path(std::string_view path) {
    std::string out = "\"";
    std::size_t limit = path.size() < 200 ? path.size() : 200;
    for (std::size_t i = 0; i < limit; ++i) {
        auto c = static_cast<unsigned char>(path[i]);
        if (detail::is_control(c) || c == '"' || c == '\\') {
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

}  // namespace wharf
