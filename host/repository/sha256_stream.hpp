#pragma once
// Incremental SHA-256 (OpenSSL EVP) for data that arrives in chunks, so a
// binary's digest is computed while it is written and never needs a second
// pass. Complements host/base/sha256.hpp (whole files and byte ranges).
//
// Ownership: owns its EVP context. Not thread-safe.

#include <memory>
#include <string>
#include <string_view>

namespace wharf::host::repo {

class Sha256Stream {
public:
    Sha256Stream();
    ~Sha256Stream();
    Sha256Stream(const Sha256Stream&) = delete;
    Sha256Stream& operator=(const Sha256Stream&) = delete;

    void update(std::string_view bytes);
    /// Lower-case hex digest. Call once.
    std::string finish_hex();

private:
    struct Context;
    std::unique_ptr<Context> context_;
};

/// True for 64 lower-case hex digits.
bool is_sha256_hex(std::string_view s);

}  // namespace wharf::host::repo
