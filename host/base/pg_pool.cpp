#include "base/pg_pool.hpp"

#include <regex>

namespace wharf::host {
namespace {

// Leases each thread holds, per pool: a thread holding one does not wait for
// another (it would wait on itself).
thread_local std::unordered_map<const PgPool*, int> t_held;

}  // namespace

std::string redacted_pg_url(const std::string& url) {
    static const std::regex uri_password(R"(^([a-z]+://[^:/@]*:)[^@]*@)");
    static const std::regex keyword_password(R"((password\s*=\s*)('[^']*'|\S+))");
    std::string out = std::regex_replace(url, uri_password, "$1***@");
    return std::regex_replace(out, keyword_password, "$1***");
}

std::string pg_error_message(const std::string& what, const std::exception& e) {
    std::string text = e.what();
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return what + ": " + text;
}

const std::string& PgConnection::prepared(const std::string& sql) {
    auto it = names_.find(sql);
    if (it == names_.end()) {
        if (names_.size() >= kMaxPrepared) {
            for (const auto& [text, name] : names_) c_.unprepare(name);
            names_.clear();
        }
        std::string name = "w" + std::to_string(next_++);
        c_.prepare(name, sql);
        it = names_.emplace(sql, std::move(name)).first;
    }
    return it->second;
}

PgPool::PgPool(std::string url, std::size_t size, ConnectFailed connect_failed)
    : url_(std::move(url)), size_(size), connect_failed_(std::move(connect_failed)) {
    idle_.push_back(connect());
    opened_ = 1;
}

std::unique_ptr<PgConnection> PgPool::connect() {
    try {
        return std::make_unique<PgConnection>(url_);
    } catch (const std::exception& e) {
        connect_failed_(e);
        throw;  // connect_failed_ throws; this is for one that does not
    }
}

PgPool::Lease PgPool::lease() {
    std::unique_lock lock(mutex_);
    bool nested = t_held[this] > 0;
    while (!nested && idle_.empty() && opened_ >= size_) released_.wait(lock);
    if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return Lease(*this, std::move(c));
    }
    ++opened_;
    lock.unlock();
    try {
        return Lease(*this, connect());
    } catch (...) {
        lock.lock();
        --opened_;
        released_.notify_one();
        throw;
    }
}

void PgPool::release(std::unique_ptr<PgConnection> c, bool broken) {
    std::lock_guard lock(mutex_);
    if (broken || !c->raw().is_open() || opened_ > size_) {
        --opened_;
    } else {
        idle_.push_back(std::move(c));
    }
    released_.notify_one();
}

PgPool::Lease::Lease(PgPool& pool, std::unique_ptr<PgConnection> c)
    : pool_(&pool), c_(std::move(c)), owner_(std::this_thread::get_id()) {
    ++t_held[pool_];
}

PgPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), c_(std::move(other.c_)), owner_(other.owner_), broken_(other.broken_) {}

PgPool::Lease::~Lease() {
    if (!c_) return;
    // A lease that ends on another thread (a session handed between threads)
    // leaves its thread's count as it is: that thread just never waits.
    if (owner_ == std::this_thread::get_id()) {
        auto it = t_held.find(pool_);
        if (it != t_held.end() && --it->second <= 0) t_held.erase(it);
    }
    pool_->release(std::move(c_), broken_);
}

}  // namespace wharf::host
