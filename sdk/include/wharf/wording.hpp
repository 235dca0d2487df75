#pragma once
// Words for people: the pieces that operation descriptions ("Move 12,408
// assets from '/content/dam/a' to '/content/dam/b'") and refusals ("'x' is an
// asset, not a folder") are made of, so every operation says them the same way.
// Header-only.

#include <cstdint>
#include <string>
#include <string_view>

#include "wharf/repository.hpp"

namespace wharf {

/// 12408 -> "12,408".
inline std::string grouped(std::uint64_t n) {
    auto digits = std::to_string(n);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

/// "12,408 assets", "1 asset".
inline std::string counted(std::uint64_t n, std::string_view one, std::string_view many) {
    return grouped(n) + " " + std::string(n == 1 ? one : many);
}

/// "'/content/dam/a'": a value quoted as refusals show it.
inline std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

/// "a folder", "an asset", "a page".
inline const char* kind_with_article(NodeKind kind) {
    switch (kind) {
        case NodeKind::folder:
            return "a folder";
        case NodeKind::asset:
            return "an asset";
        case NodeKind::page:
            return "a page";
    }
    return "a node";
}

}  // namespace wharf
