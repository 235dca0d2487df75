#pragma once
// MIME types: sniffed from content with libmagic, or looked up by file
// extension (the importer's first choice, and the fallback when libmagic has
// no answer).
//
// Threading: all functions may be called from any thread (libmagic's handle
// is guarded by a mutex; it is loaded on first use).

#include <string>
#include <string_view>

namespace wharf::host::repo {

/// The MIME type for a file name's extension (case-insensitive), or empty
/// when the extension is unknown.
std::string mime_type_for_name(std::string_view file_name);

/// libmagic's MIME type for the first bytes of a binary;
/// "application/octet-stream" when it cannot tell.
std::string sniff_mime_type(std::string_view head);

}  // namespace wharf::host::repo
