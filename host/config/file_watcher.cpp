#include "config/file_watcher.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "base/error.hpp"

namespace fs = std::filesystem;

namespace wharf::host {
namespace {

constexpr std::uint32_t kFileMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                    IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB;

class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const noexcept { return fd_; }

private:
    int fd_;
};

}  // namespace

struct FileWatcher::Impl {
    fs::path root;
    bool recursive;
    std::chrono::milliseconds settle;
    Callback callback;
    Fd inotify{::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)};
    Fd wake{::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
    std::unordered_map<int, fs::path> dirs;  // watch descriptor -> directory
    std::thread thread;

    void add_watch(const fs::path& dir) {
        int wd = ::inotify_add_watch(inotify.get(), dir.c_str(), kFileMask | IN_ONLYDIR);
        if (wd < 0) return;  // vanished meanwhile, or not a directory
        dirs[wd] = dir;
        if (!recursive) return;
        std::error_code ec;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
            if (it->is_directory(ec) && !it->is_symlink(ec)) add_watch(it->path());
        }
    }

    // Records one inotify event; starts a batch's clock when it is the first.
    void handle(const inotify_event& ev, std::map<fs::path, bool>& pending, bool& rescan,
                std::chrono::steady_clock::time_point& first,
                std::chrono::steady_clock::time_point& last) {
        const bool idle = pending.empty() && !rescan;
        if (ev.mask & IN_Q_OVERFLOW) {
            rescan = true;
        } else if (ev.mask & IN_IGNORED) {
            dirs.erase(ev.wd);
            return;
        } else {
            auto dir = dirs.find(ev.wd);
            if (dir == dirs.end() || ev.len == 0) return;
            fs::path path = dir->second / ev.name;
            std::error_code ec;
            if (ev.mask & IN_ISDIR) {
                if (recursive && (ev.mask & (IN_CREATE | IN_MOVED_TO))) {
                    add_watch(path);
                    // Files may have landed before the watch existed.
                    rescan = true;
                } else if (ev.mask & (IN_DELETE | IN_MOVED_FROM)) {
                    rescan = true;
                } else {
                    return;
                }
            } else {
                // A plain create is followed by IN_CLOSE_WRITE when the writer
                // is done; only symlinks are complete at creation. Attribute
                // changes matter only for symlinks being swapped (k8s-style
                // ..data links).
                if ((ev.mask & (IN_CREATE | IN_ATTRIB)) && !(ev.mask & IN_CLOSE_WRITE) &&
                    !fs::is_symlink(fs::symlink_status(path, ec)))
                    return;
                pending.emplace(path, true);
            }
        }
        auto now = std::chrono::steady_clock::now();
        if (idle) first = now;
        last = now;
    }

    void run() {
        using clock = std::chrono::steady_clock;
        std::map<fs::path, bool> pending;  // path -> seen
        bool rescan = false;
        clock::time_point first{}, last{};
        std::array<char, 64 * 1024> buffer{};
        for (;;) {
            int timeout_ms = -1;
            if (!pending.empty() || rescan) {
                auto now = clock::now();
                auto quiet_at = last + settle;
                auto forced_at = first + settle * 10;
                auto due = std::min(quiet_at, forced_at);
                auto wait = std::chrono::ceil<std::chrono::milliseconds>(due - now);
                timeout_ms = due <= now ? 0 : static_cast<int>(wait.count());
            }
            std::array<pollfd, 2> fds{pollfd{inotify.get(), POLLIN, 0},
                                      pollfd{wake.get(), POLLIN, 0}};
            int n = ::poll(fds.data(), fds.size(), timeout_ms);
            if (n < 0 && errno != EINTR) return;
            if (fds[1].revents & POLLIN) return;
            if (n > 0 && (fds[0].revents & POLLIN)) {
                // Bounded, so that a writer faster than us cannot starve delivery.
                for (int reads = 0; reads < 64; ++reads) {
                    ssize_t len = ::read(inotify.get(), buffer.data(), buffer.size());
                    if (len <= 0) break;
                    for (char* p = buffer.data(); p < buffer.data() + len;) {
                        auto* ev = reinterpret_cast<inotify_event*>(p);
                        p += sizeof(inotify_event) + ev->len;
                        handle(*ev, pending, rescan, first, last);
                    }
                }
                // No `continue` here: under a steady stream of events the
                // forced deadline below must still be reached.
            }
            if (pending.empty() && !rescan) continue;
            auto now = clock::now();
            if (now < last + settle && now < first + settle * 10) continue;
            std::vector<FileEvent> batch;
            if (rescan) batch.push_back({FileEvent::Kind::rescan, root});
            for (const auto& [path, seen] : pending) {
                std::error_code ec;
                bool exists = fs::exists(fs::symlink_status(path, ec)) && !ec;
                batch.push_back(
                    {exists ? FileEvent::Kind::changed : FileEvent::Kind::removed, path});
            }
            pending.clear();
            rescan = false;
            try {
                callback(batch);
            } catch (...) {
            }
        }
    }
};

FileWatcher::FileWatcher(fs::path root, bool recursive, std::chrono::milliseconds settle,
                         Callback callback)
    : impl_(std::make_unique<Impl>()) {
    impl_->root = fs::absolute(root).lexically_normal();
    impl_->recursive = recursive;
    impl_->settle = settle;
    impl_->callback = std::move(callback);
    if (impl_->inotify.get() < 0 || impl_->wake.get() < 0)
        throw Error(ErrorCode::io, std::string("inotify setup failed: ") + std::strerror(errno));
    std::error_code ec;
    if (!fs::is_directory(impl_->root, ec))
        throw Error(ErrorCode::io, "cannot watch " + impl_->root.string() + ": not a directory");
    impl_->add_watch(impl_->root);
    if (impl_->dirs.empty())
        throw Error(ErrorCode::io,
                    "cannot watch " + impl_->root.string() + ": " + std::strerror(errno));
    impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

FileWatcher::~FileWatcher() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto w = ::write(impl_->wake.get(), &one, sizeof one);
    if (impl_->thread.joinable()) impl_->thread.join();
}

const fs::path& FileWatcher::root() const noexcept { return impl_->root; }

}  // namespace wharf::host
