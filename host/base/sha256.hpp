#pragma once
// SHA-256 (OpenSSL EVP), hex-encoded lower case: streaming, over files and
// over byte ranges. Files are read in fixed-size chunks: memory does not grow
// with file size.
//
// Thread-safety: a Sha256 object belongs to one thread; the functions are
// reentrant.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace wharf::host {

/// An incremental digest: update() any number of times, then finish_hex() once.
class Sha256 {
public:
    Sha256();  ///< throws Error(internal) if OpenSSL cannot set up the digest
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    void update(std::string_view bytes);
    /// The lower-case hex digest. Call once.
    std::string finish_hex();

private:
    struct Context;
    std::unique_ptr<Context> context_;
};

/// Hex SHA-256 of the file's content. Throws Error(io) when it cannot be read.
std::string sha256_file(const std::filesystem::path& file);

/// Hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);

/// Whether `text` is a SHA-256 as these functions write it: 64 lower-case hex digits.
bool is_sha256_hex(std::string_view text) noexcept;

}  // namespace wharf::host
