#include "repository/blob_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <random>

#include "repository/mime.hpp"
#include "base/sha256.hpp"

namespace fs = std::filesystem;

namespace wharf::host::repo {
namespace {

using Code = RepositoryError::Code;

[[noreturn]] void throw_io(const std::string& what, const fs::path& path, int err) {
    throw RepositoryError(
        Code::io, "binary store: " + what + " " + path.string() + ": " + std::strerror(err));
}

class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() { close(); }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    void close() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    /// Closes and reports a failure (a deferred write error can surface here).
    int close_checked() noexcept {
        int rc = fd_ >= 0 ? ::close(fd_) : 0;
        fd_ = -1;
        return rc;
    }

private:
    int fd_;
};

void fsync_dir(const fs::path& dir) {
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) throw_io("open directory", dir, errno);
    if (::fsync(fd.get()) != 0) throw_io("fsync directory", dir, errno);
}

/// mkdir that fsyncs the parent when it created the directory, so the new
/// entry survives a power loss along with the file renamed into it.
void ensure_dir(const fs::path& dir) {
    if (::mkdir(dir.c_str(), 0755) == 0) {
        fsync_dir(dir.parent_path());
    } else if (errno != EEXIST) {
        throw_io("create directory", dir, errno);
    }
}

std::string random_name() {
    static std::atomic<std::uint64_t> counter{0};
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
           std::to_string(rng()) + ".part";
}

constexpr std::size_t kBufferSize = 64 * 1024;
constexpr std::size_t kSniffBytes = 8 * 1024;

class FileBlobWriter final : public BinaryWriter {
public:
    FileBlobWriter(BlobStore store, const fs::path& tmp_dir)
        : store_(std::move(store)),
          temp_(tmp_dir / random_name()),
          fd_(::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) {
        if (fd_.get() < 0) throw_io("create temporary file", temp_, errno);
        buffer_.reserve(kBufferSize);
    }

    ~FileBlobWriter() override {
        if (!finished_) {
            fd_.close();
            ::unlink(temp_.c_str());
        }
    }

    void write(const char* data, std::size_t size) override {
        require_open();
        std::string_view chunk(data, size);
        digest_.update(chunk);
        if (head_.size() < kSniffBytes) head_.append(chunk.substr(0, kSniffBytes - head_.size()));
        size_ += size;
        if (buffer_.size() + size > kBufferSize) flush();
        if (size >= kBufferSize) {
            write_all(chunk);
        } else {
            buffer_.append(chunk);
        }
    }

    std::uint64_t size() const override { return size_; }

    BinaryInfo finish(std::string mime_type, std::optional<std::string> expected_sha256) override {
        require_open();
        flush();
        finished_ = true;  // from here on the temporary file is ours to remove
        auto sha = digest_.finish_hex();
        auto discard = [&] {
            fd_.close();
            ::unlink(temp_.c_str());
        };
        if (expected_sha256) {
            std::transform(expected_sha256->begin(), expected_sha256->end(),
                           expected_sha256->begin(),
                           [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        }
        if (expected_sha256 && *expected_sha256 != sha) {
            discard();
            throw RepositoryError(Code::io, "binary digest mismatch: expected " + *expected_sha256 +
                                                ", got " + sha + " (" + std::to_string(size_) +
                                                " bytes); nothing stored");
        }
        if (::fsync(fd_.get()) != 0 || fd_.close_checked() != 0) {
            int err = errno;
            discard();
            throw_io("write", temp_, err);
        }
        auto target = store_.path_of(sha);
        try {
            ensure_dir(target.parent_path().parent_path());
            ensure_dir(target.parent_path());
            struct stat st {};
            if (::stat(target.c_str(), &st) == 0) {
                // Already stored: keep the existing file, but make it young so
                // a concurrent gc() leaves it alone until our node is committed.
                ::unlink(temp_.c_str());
                ::utimensat(AT_FDCWD, target.c_str(), nullptr, 0);
            } else {
                if (::rename(temp_.c_str(), target.c_str()) != 0) throw_io("rename", target, errno);
                fsync_dir(target.parent_path());
            }
        } catch (...) {
            ::unlink(temp_.c_str());
            throw;
        }
        if (mime_type.empty()) mime_type = sniff_mime_type(head_);
        return BinaryInfo{sha, size_, std::move(mime_type)};
    }

private:
    void require_open() const {
        if (finished_) throw RepositoryError(Code::io, "binary writer used after finish()");
    }
    void flush() {
        write_all(buffer_);
        buffer_.clear();
    }
    void write_all(std::string_view bytes) {
        while (!bytes.empty()) {
            ssize_t n = ::write(fd_.get(), bytes.data(), bytes.size());
            if (n < 0) {
                if (errno == EINTR) continue;
                throw_io("write", temp_, errno);
            }
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    BlobStore store_;  // a copy (two paths): the writer may outlive the repository
    fs::path temp_;
    Fd fd_;
    Sha256 digest_;
    std::string buffer_;
    std::string head_;
    std::uint64_t size_ = 0;
    bool finished_ = false;
};

class FileBlobReader final : public BinaryReader {
public:
    FileBlobReader(fs::path file, BinaryInfo info)
        : file_(std::move(file)),
          info_(std::move(info)),
          fd_(::open(file_.c_str(), O_RDONLY | O_CLOEXEC)) {
        if (fd_.get() < 0) throw_io("open binary", file_, errno);
    }
    const BinaryInfo& info() const override { return info_; }
    std::size_t read(char* buffer, std::size_t size) override {
        for (;;) {
            ssize_t n = ::read(fd_.get(), buffer, size);
            if (n >= 0) return static_cast<std::size_t>(n);
            if (errno != EINTR) throw_io("read", file_, errno);
        }
    }
    void seek(std::uint64_t offset) override {
        if (offset > info_.size)
            throw RepositoryError(Code::io, "seek to " + std::to_string(offset) + " beyond the " +
                                                std::to_string(info_.size) + " bytes of " +
                                                file_.string());
        if (::lseek(fd_.get(), static_cast<off_t>(offset), SEEK_SET) < 0)
            throw_io("seek", file_, errno);
    }

private:
    fs::path file_;
    BinaryInfo info_;
    Fd fd_;
};

}  // namespace

BlobStore::BlobStore(fs::path root) : root_(std::move(root)), tmp_(root_ / "tmp") {
    std::error_code ec;
    fs::create_directories(tmp_, ec);
    if (ec) throw_io("create directory", tmp_, ec.value());
}

fs::path BlobStore::path_of(std::string_view sha256) const {
    return root_ / sha256.substr(0, 2) / sha256.substr(2, 2) / sha256;
}

std::optional<std::uint64_t> BlobStore::size_of(std::string_view sha256) const {
    struct stat st {};
    if (!is_sha256_hex(sha256) || ::stat(path_of(sha256).c_str(), &st) != 0) return std::nullopt;
    return static_cast<std::uint64_t>(st.st_size);
}

std::unique_ptr<BinaryWriter> BlobStore::begin_write() const {
    return std::make_unique<FileBlobWriter>(*this, tmp_);
}

std::unique_ptr<BinaryReader> BlobStore::open(const BinaryInfo& info) const {
    return std::make_unique<FileBlobReader>(path_of(info.sha256), info);
}

void BlobStore::for_each(
    const std::function<void(const std::string&, std::uint64_t, fs::file_time_type)>& visit) const {
    std::error_code ec;
    for (fs::directory_iterator a(root_, ec), end; !ec && a != end; a.increment(ec)) {
        auto fan1 = a->path().filename().string();
        if (fan1.size() != 2 || !a->is_directory()) continue;
        for (fs::directory_iterator b(a->path(), ec); !ec && b != end; b.increment(ec)) {
            if (!b->is_directory()) continue;
            for (fs::directory_iterator c(b->path(), ec); !ec && c != end; c.increment(ec)) {
                auto name = c->path().filename().string();
                if (!is_sha256_hex(name) || path_of(name) != c->path()) continue;
                std::error_code ec2;
                auto size = c->file_size(ec2);
                auto mtime = c->last_write_time(ec2);
                if (!ec2) visit(name, size, mtime);
            }
        }
    }
    if (ec) throw_io("list", root_, ec.value());
}

bool BlobStore::remove_if_older(std::string_view sha256, fs::file_time_type older_than) const {
    auto file = path_of(sha256);
    std::error_code ec;
    auto mtime = fs::last_write_time(file, ec);
    if (ec || mtime >= older_than) return false;
    return fs::remove(file, ec);
}

std::uint64_t BlobStore::remove_stale_temporaries(fs::file_time_type older_than) const {
    std::uint64_t removed = 0;
    std::error_code ec;
    for (fs::directory_iterator it(tmp_, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code ec2;
        if (it->last_write_time(ec2) < older_than && !ec2 && fs::remove(it->path(), ec2)) ++removed;
    }
    return removed;
}

std::uint64_t BlobStore::count_temporaries(fs::file_time_type older_than) const {
    std::uint64_t n = 0;
    std::error_code ec;
    for (fs::directory_iterator it(tmp_, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code ec2;
        if (it->last_write_time(ec2) < older_than && !ec2) ++n;
    }
    return n;
}

}  // namespace wharf::host::repo
