#pragma once
// Links in page text: `href="/content/..."` and `src="/content/..."`, with
// single or double quotes, attribute names in any case, optional spaces
// around '='. The link's target is the value up to the first '?' or '#'
// (query and fragment are not part of a node path), without a trailing
// ".html" outside /content/dam (pages are linked as `<page>.html`; rewriting
// keeps the suffix). Values that are not valid repository paths are not
// links. HTML entities are not decoded.
//
// Pure functions; thread-safe.

#include <string>
#include <string_view>
#include <vector>

namespace wharf::host::repo {

/// Where a link's target path sits in the text.
struct LinkSpan {
    std::size_t begin = 0;
    std::size_t end = 0;  ///< one past the last byte of the path
};

/// Every link in `text`, in order.
std::vector<LinkSpan> find_links(std::string_view text);

/// Rewrites every link to `old_prefix` or below it to the same path under
/// `new_prefix`; returns how many links changed (0 leaves `text` untouched).
std::size_t rewrite_links(std::string& text, std::string_view old_prefix,
                          std::string_view new_prefix);

}  // namespace wharf::host::repo
