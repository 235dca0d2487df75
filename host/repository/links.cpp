#include "repository/links.hpp"

#include <cctype>
#include <cstring>

#include "repository/path.hpp"

namespace wharf::host::repo {
namespace {

bool is_attribute_char(char c) {
    auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) || c == '-' || c == '_' || c == ':' || c == '.';
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
    return true;
}

constexpr std::string_view kContentRoot = "/content";
constexpr std::string_view kDamRoot = "/content/dam";
constexpr std::string_view kHtml = ".html";

}  // namespace

std::vector<LinkSpan> find_links(std::string_view text) {
    std::vector<LinkSpan> links;
    // Anchor on '=' (rarer than letters) and look back for the attribute name.
    for (std::size_t eq = text.find('='); eq != std::string_view::npos;
         eq = text.find('=', eq + 1)) {
        std::size_t name_end = eq;
        while (name_end > 0 && is_space(text[name_end - 1])) --name_end;
        std::size_t name_begin = name_end;
        while (name_begin > 0 && is_attribute_char(text[name_begin - 1])) --name_begin;
        auto name = text.substr(name_begin, name_end - name_begin);
        if (!iequals(name, "href") && !iequals(name, "src")) continue;
        std::size_t q = eq + 1;
        while (q < text.size() && is_space(text[q])) ++q;
        if (q >= text.size() || (text[q] != '"' && text[q] != '\'')) continue;
        char quote = text[q];
        std::size_t value_begin = q + 1;
        std::size_t value_end = text.find(quote, value_begin);
        if (value_end == std::string_view::npos) break;
        auto value = text.substr(value_begin, value_end - value_begin);
        auto cut = value.find_first_of("?#");
        auto path = value.substr(0, cut);
        // Pages are linked as "<page>.html" (as AEM renders them); the link
        // points at the page. Assets keep their file names.
        if (path.size() > kHtml.size() && path.ends_with(kHtml) &&
            !is_same_or_under(path, kDamRoot))
            path.remove_suffix(kHtml.size());
        if (is_same_or_under(path, kContentRoot) && path_problem(path).empty())
            links.push_back({value_begin, value_begin + path.size()});
        eq = value_end;
    }
    return links;
}

std::size_t rewrite_links(std::string& text, std::string_view old_prefix,
                          std::string_view new_prefix) {
    auto links = find_links(text);
    std::string out;
    std::size_t copied = 0;
    std::size_t changed = 0;
    for (const auto& link : links) {
        auto path = std::string_view(text).substr(link.begin, link.end - link.begin);
        if (!is_same_or_under(path, old_prefix)) continue;
        if (changed == 0) out.reserve(text.size() + 64);
        out.append(text, copied, link.begin - copied);
        out.append(replace_prefix(path, old_prefix, new_prefix));
        copied = link.end;
        ++changed;
    }
    if (changed == 0) return 0;
    out.append(text, copied, std::string::npos);
    text = std::move(out);
    return changed;
}

}  // namespace wharf::host::repo
