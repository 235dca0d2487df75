#pragma once
// SHA-256 over files and byte ranges (OpenSSL EVP), hex-encoded lower case.
// Files are read in fixed-size chunks: memory does not grow with file size.

#include <filesystem>
#include <string>
#include <string_view>

namespace wharf::host {

/// Hex SHA-256 of the file's content. Throws Error(io) when it cannot be read.
std::string sha256_file(const std::filesystem::path& file);

/// Hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);

}  // namespace wharf::host
