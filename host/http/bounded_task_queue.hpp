#pragma once
// BoundedTaskQueue: the HTTP server's worker pool. cpp-httplib hands every
// accepted connection to a TaskQueue; its own ThreadPool queues them without
// limit. This one runs `threads` workers and holds at most `max_pending`
// connections waiting for one; when that is full, enqueue() blocks the accept
// thread until a worker frees up, so the kernel's listen backlog absorbs the
// rest instead of memory.
//
// Thread-safety: enqueue from the accept thread, shutdown from the thread
// that stops the server.

#include <httplib.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace wharf::host {

class BoundedTaskQueue final : public httplib::TaskQueue {
public:
    BoundedTaskQueue(std::size_t threads, std::size_t max_pending) : max_pending_(max_pending) {
        if (threads == 0) threads = 1;
        for (std::size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { run(); });
    }
    ~BoundedTaskQueue() override { shutdown(); }

    void enqueue(std::function<void()> fn) override {
        std::unique_lock lock(mutex_);
        room_.wait(lock, [&] { return tasks_.size() < max_pending_ || shutdown_; });
        if (shutdown_) {
            // The task owns the accepted socket: run it so that it is closed.
            lock.unlock();
            fn();
            return;
        }
        tasks_.push_back(std::move(fn));
        work_.notify_one();
    }

    void shutdown() override {
        {
            std::lock_guard lock(mutex_);
            if (shutdown_) return;
            shutdown_ = true;
        }
        work_.notify_all();
        room_.notify_all();
        for (auto& t : workers_) t.join();
    }

private:
    void run() {
        for (;;) {
            std::function<void()> fn;
            {
                std::unique_lock lock(mutex_);
                work_.wait(lock, [&] { return !tasks_.empty() || shutdown_; });
                if (tasks_.empty()) return;  // shut down and drained
                fn = std::move(tasks_.front());
                tasks_.pop_front();
            }
            room_.notify_one();
            fn();
        }
    }

    std::size_t max_pending_;
    std::mutex mutex_;
    std::condition_variable work_;
    std::condition_variable room_;
    std::deque<std::function<void()>> tasks_;
    std::vector<std::thread> workers_;
    bool shutdown_ = false;
};

}  // namespace wharf::host
