#include "repository/sha256_stream.hpp"

#include <openssl/evp.h>

#include <array>

#include "wharf/repository.hpp"

namespace wharf::host::repo {

struct Sha256Stream::Context {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Context() { EVP_MD_CTX_free(ctx); }
};

Sha256Stream::Sha256Stream() : context_(std::make_unique<Context>()) {
    if (!context_->ctx || EVP_DigestInit_ex(context_->ctx, EVP_sha256(), nullptr) != 1)
        throw RepositoryError(RepositoryError::Code::io, "sha256: cannot initialise digest");
}

Sha256Stream::~Sha256Stream() = default;

void Sha256Stream::update(std::string_view bytes) {
    if (EVP_DigestUpdate(context_->ctx, bytes.data(), bytes.size()) != 1)
        throw RepositoryError(RepositoryError::Code::io, "sha256: digest update failed");
}

std::string Sha256Stream::finish_hex() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(context_->ctx, digest.data(), &len) != 1)
        throw RepositoryError(RepositoryError::Code::io, "sha256: digest failed");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i) {
        out.push_back(kHex[digest[i] >> 4]);
        out.push_back(kHex[digest[i] & 0xf]);
    }
    return out;
}

bool is_sha256_hex(std::string_view s) {
    if (s.size() != 64) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

}  // namespace wharf::host::repo
