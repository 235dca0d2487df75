#pragma once
// FileWatcher: inotify(7) on a directory tree, delivering settled batches of
// changed paths on its own thread.
//
// What counts as a change: a file closed after writing (IN_CLOSE_WRITE), a
// file renamed or moved into the tree (editors' write-to-temp-then-rename
// saves, `mv` into place), a symlink created, a file deleted or moved out.
// Opening and partial writes are not reported: a half-written file is never
// delivered as "changed" while its writer still has it open for writing.
//
// Batching: events are collected until the tree has been quiet for `settle`
// (or events have kept coming for 10 x settle), then delivered at once with
// each path once; whether it was changed or removed is decided at delivery by
// looking at the file, so a burst of writes settles on the last content.
// Subdirectories created later are watched too when `recursive`. If the kernel
// queue overflows, one `rescan` event for the root is delivered.
//
// Ownership and threading: the watcher owns its inotify descriptor and thread;
// the destructor stops the thread and waits for it (do not destroy the watcher
// from inside the callback). The callback runs on the watcher's thread and
// must not throw (exceptions are caught and dropped).

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

namespace wharf::host {

struct FileEvent {
    enum class Kind { changed, removed, rescan };
    Kind kind;
    std::filesystem::path path;  ///< absolute; the root for `rescan`
};

class FileWatcher {
public:
    using Callback = std::function<void(const std::vector<FileEvent>&)>;

    /// Starts watching `root` (which must be an existing directory; throws
    /// Error(io) otherwise or when inotify cannot be set up).
    FileWatcher(std::filesystem::path root, bool recursive, std::chrono::milliseconds settle,
                Callback callback);
    ~FileWatcher();
    FileWatcher(const FileWatcher&) = delete;
    FileWatcher& operator=(const FileWatcher&) = delete;

    const std::filesystem::path& root() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace wharf::host
