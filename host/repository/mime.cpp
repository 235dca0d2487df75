#include "repository/mime.hpp"

#include <magic.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <unordered_map>

namespace wharf::host::repo {
namespace {

constexpr const char* kOctetStream = "application/octet-stream";

const std::unordered_map<std::string, std::string>& extension_map() {
    static const std::unordered_map<std::string, std::string> map = {
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"png", "image/png"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"avif", "image/avif"},
        {"heic", "image/heic"},
        {"svg", "image/svg+xml"},
        {"tif", "image/tiff"},
        {"tiff", "image/tiff"},
        {"bmp", "image/bmp"},
        {"ico", "image/vnd.microsoft.icon"},
        {"psd", "image/vnd.adobe.photoshop"},
        {"pdf", "application/pdf"},
        {"ai", "application/postscript"},
        {"eps", "application/postscript"},
        {"txt", "text/plain"},
        {"md", "text/markdown"},
        {"csv", "text/csv"},
        {"html", "text/html"},
        {"htm", "text/html"},
        {"css", "text/css"},
        {"js", "text/javascript"},
        {"json", "application/json"},
        {"xml", "application/xml"},
        {"yaml", "application/yaml"},
        {"yml", "application/yaml"},
        {"mp4", "video/mp4"},
        {"m4v", "video/mp4"},
        {"mov", "video/quicktime"},
        {"webm", "video/webm"},
        {"avi", "video/x-msvideo"},
        {"mp3", "audio/mpeg"},
        {"wav", "audio/wav"},
        {"ogg", "audio/ogg"},
        {"m4a", "audio/mp4"},
        {"flac", "audio/flac"},
        {"zip", "application/zip"},
        {"gz", "application/gzip"},
        {"tar", "application/x-tar"},
        {"bin", kOctetStream},
        {"doc", "application/msword"},
        {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
        {"xls", "application/vnd.ms-excel"},
        {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
        {"ppt", "application/vnd.ms-powerpoint"},
        {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
        {"woff", "font/woff"},
        {"woff2", "font/woff2"},
        {"ttf", "font/ttf"},
        {"otf", "font/otf"},
    };
    return map;
}

// libmagic handles are not thread-safe and loading the database costs a few
// milliseconds, so one handle is shared behind a mutex.
class Magic {
public:
    Magic() : cookie_(magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR)) {
        if (cookie_ && magic_load(cookie_, nullptr) != 0) {
            magic_close(cookie_);
            cookie_ = nullptr;
        }
    }
    ~Magic() {
        if (cookie_) magic_close(cookie_);
    }
    Magic(const Magic&) = delete;
    Magic& operator=(const Magic&) = delete;

    std::string sniff(std::string_view head) {
        std::lock_guard lock(mutex_);
        if (!cookie_) return {};
        const char* type = magic_buffer(cookie_, head.data(), head.size());
        return type ? type : "";
    }

private:
    std::mutex mutex_;
    magic_t cookie_;
};

}  // namespace

std::string mime_type_for_name(std::string_view file_name) {
    auto dot = file_name.rfind('.');
    if (dot == std::string_view::npos || dot + 1 == file_name.size()) return {};
    std::string ext(file_name.substr(dot + 1));
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    auto it = extension_map().find(ext);
    return it == extension_map().end() ? std::string() : it->second;
}

std::string sniff_mime_type(std::string_view head) {
    static Magic magic;
    auto type = magic.sniff(head);
    // libmagic says "application/x-empty" for nothing and may fail outright;
    // neither is a useful type for a client.
    if (type.empty() || type == "application/x-empty") return kOctetStream;
    return type;
}

}  // namespace wharf::host::repo
