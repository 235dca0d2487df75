#include "notify/notification_store.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <mutex>

#include "base/error.hpp"
#include "base/log.hpp"
#include "base/sqlite_library.hpp"

namespace wharf::host {
namespace {

using Clock = std::chrono::system_clock;

std::int64_t to_ms(wharf::JobTime t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

wharf::JobTime from_ms(std::int64_t ms) {
    return wharf::JobTime(std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(ms)));
}

// Never edit a released migration: add one.
const std::vector<std::string> kMigrations = {
    // 1: inbox and outbox.
    R"sql(
CREATE TABLE inbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id     INTEGER NOT NULL UNIQUE,
    user_name  TEXT    NOT NULL,
    topic      TEXT    NOT NULL,
    operation  TEXT    NOT NULL,
    outcome    TEXT    NOT NULL,
    title      TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    read       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX inbox_by_user ON inbox(user_name, id);
CREATE INDEX inbox_unread ON inbox(user_name, read, id);
CREATE INDEX inbox_by_time ON inbox(created_at);
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id          INTEGER NOT NULL,
    sender          TEXT    NOT NULL,
    recipients      TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    finished_at     INTEGER,
    last_error      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
)sql",
};

std::string join_lines(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) {
        if (!out.empty()) out += '\n';
        out += i;
    }
    return out;
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < text.size()) {
        auto nl = text.find('\n', start);
        if (nl == std::string::npos) nl = text.size();
        if (nl > start) out.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    return out;
}

InboxEntry entry_from(SQLite::Statement& s) {
    InboxEntry e;
    e.id = s.getColumn(0).getInt64();
    e.job_id = s.getColumn(1).getInt64();
    e.user = s.getColumn(2).getString();
    e.topic = s.getColumn(3).getString();
    e.operation = s.getColumn(4).getString();
    e.outcome = s.getColumn(5).getString();
    e.title = s.getColumn(6).getString();
    e.message = s.getColumn(7).getString();
    e.created = from_ms(s.getColumn(8).getInt64());
    e.read = s.getColumn(9).getInt() != 0;
    return e;
}

}  // namespace

struct NotificationStore::Impl {
    std::filesystem::path file;
    mutable std::mutex mutex;
    SQLite::Database db;

    explicit Impl(const std::filesystem::path& f)
        : file(f), db(f.string(), sqlite_open_flags(), 5000) {
        db.exec("PRAGMA journal_mode=WAL");
        db.exec("PRAGMA synchronous=NORMAL");
    }

    template <typename F>
    auto guarded(const char* what, F&& f) const {
        std::lock_guard lock(mutex);
        try {
            return f();
        } catch (const SQLite::Exception& e) {
            throw Error(ErrorCode::storage, std::string("notification store: ") + what +
                                                " failed (" + file.string() + "): " + e.what());
        }
    }

    std::int64_t insert_mail(const OutboxMail& mail) {
        SQLite::Statement s(db,
                            "INSERT INTO outbox(job_id, sender, recipients, subject, body, "
                            "created_at, next_attempt_at) VALUES (?,?,?,?,?,?,?)");
        s.bind(1, static_cast<std::int64_t>(mail.job_id));
        s.bind(2, mail.from);
        s.bind(3, join_lines(mail.to));
        s.bind(4, mail.subject);
        s.bind(5, mail.body);
        s.bind(6, to_ms(mail.created));
        s.bind(7, to_ms(mail.next_attempt));
        s.exec();
        return db.getLastInsertRowid();
    }
};

NotificationStore::NotificationStore(const std::filesystem::path& file) {
    try {
        if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
        impl_ = std::make_unique<Impl>(file);
    } catch (const std::exception& e) {
        throw Error(ErrorCode::storage,
                    "cannot open the notification store " + file.string() + ": " + e.what());
    }
    int applied = impl_->guarded("migration", [&] {
        SQLite::Transaction tx(impl_->db);
        impl_->db.exec(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
        int current =
            impl_->db.execAndGet("SELECT COALESCE(MAX(version), 0) FROM schema_version").getInt();
        int known = static_cast<int>(kMigrations.size());
        if (current > known)
            throw Error(ErrorCode::storage,
                        "notification store schema version " + std::to_string(current) +
                            " is newer than this wharfd supports (" + std::to_string(known) +
                            "); upgrade wharfd or use another data directory");
        int count = 0;
        for (int v = current + 1; v <= known; ++v) {
            impl_->db.exec(kMigrations[static_cast<std::size_t>(v - 1)]);
            SQLite::Statement s(impl_->db,
                                "INSERT INTO schema_version(version, applied_at) VALUES (?,?)");
            s.bind(1, v);
            s.bind(2, to_ms(Clock::now()));
            s.exec();
            ++count;
        }
        tx.commit();
        return count;
    });
    if (applied > 0)
        logger("notify")->info("notification store migrated path={} applied={} version={}",
                               file.string(), applied, kMigrations.size());
}

NotificationStore::~NotificationStore() = default;

std::optional<std::int64_t> NotificationStore::record(const InboxEntry& entry,
                                                       const std::optional<OutboxMail>& mail) {
    return impl_->guarded("record", [&]() -> std::optional<std::int64_t> {
        SQLite::Transaction tx(impl_->db);
        SQLite::Statement s(impl_->db,
                            "INSERT OR IGNORE INTO inbox(job_id, user_name, topic, operation, "
                            "outcome, title, message, created_at) VALUES (?,?,?,?,?,?,?,?)");
        s.bind(1, static_cast<std::int64_t>(entry.job_id));
        s.bind(2, entry.user);
        s.bind(3, entry.topic);
        s.bind(4, entry.operation);
        s.bind(5, entry.outcome);
        s.bind(6, entry.title);
        s.bind(7, entry.message);
        s.bind(8, to_ms(entry.created));
        if (s.exec() == 0) return std::nullopt;
        auto id = impl_->db.getLastInsertRowid();
        if (mail) impl_->insert_mail(*mail);
        tx.commit();
        return id;
    });
}

std::int64_t NotificationStore::add_mail(const OutboxMail& mail) {
    return impl_->guarded("add mail", [&] { return impl_->insert_mail(mail); });
}

InboxPage NotificationStore::inbox(const InboxQuery& query) const {
    auto limit = std::clamp<std::size_t>(query.limit, 1, 1000);
    return impl_->guarded("inbox list", [&] {
        std::string sql =
            "SELECT id, job_id, user_name, topic, operation, outcome, title, message, "
            "created_at, read FROM inbox WHERE user_name = ? AND id < ?";
        if (query.unread_only) sql += " AND read = 0";
        sql += " ORDER BY id DESC LIMIT ?";
        SQLite::Statement s(impl_->db, sql);
        s.bind(1, query.user);
        s.bind(2, query.cursor.value_or(std::numeric_limits<std::int64_t>::max()));
        s.bind(3, static_cast<std::int64_t>(limit + 1));
        InboxPage page;
        while (s.executeStep()) page.items.push_back(entry_from(s));
        if (page.items.size() > limit) {
            page.items.pop_back();
            page.next_cursor = page.items.back().id;
        }
        return page;
    });
}

std::int64_t NotificationStore::unread(const std::string& user) const {
    return impl_->guarded("unread count", [&] {
        SQLite::Statement s(impl_->db, "SELECT COUNT(*) FROM inbox WHERE user_name = ? AND read = 0");
        s.bind(1, user);
        s.executeStep();
        return s.getColumn(0).getInt64();
    });
}

bool NotificationStore::mark_read(const std::string& user, std::int64_t id) {
    return impl_->guarded("mark read", [&] {
        SQLite::Statement s(impl_->db, "UPDATE inbox SET read = 1 WHERE id = ? AND user_name = ?");
        s.bind(1, id);
        s.bind(2, user);
        if (s.exec() > 0) return true;
        SQLite::Statement e(impl_->db, "SELECT 1 FROM inbox WHERE id = ? AND user_name = ?");
        e.bind(1, id);
        e.bind(2, user);
        return e.executeStep();
    });
}

std::int64_t NotificationStore::mark_all_read(const std::string& user) {
    return impl_->guarded("mark all read", [&] {
        SQLite::Statement s(impl_->db,
                            "UPDATE inbox SET read = 1 WHERE user_name = ? AND read = 0");
        s.bind(1, user);
        return static_cast<std::int64_t>(s.exec());
    });
}

std::int64_t NotificationStore::purge_inbox(wharf::JobTime older_than, std::size_t max_per_user) {
    return impl_->guarded("inbox purge", [&] {
        SQLite::Transaction tx(impl_->db);
        SQLite::Statement old(impl_->db, "DELETE FROM inbox WHERE created_at < ?");
        old.bind(1, to_ms(older_than));
        std::int64_t removed = old.exec();
        // Per user, everything older than the max_per_user-th newest entry.
        SQLite::Statement over(impl_->db,
                               "DELETE FROM inbox WHERE id IN (SELECT id FROM (SELECT id, "
                               "ROW_NUMBER() OVER (PARTITION BY user_name ORDER BY id DESC) AS n "
                               "FROM inbox) WHERE n > ?)");
        over.bind(1, static_cast<std::int64_t>(max_per_user));
        removed += over.exec();
        tx.commit();
        return removed;
    });
}

std::vector<OutboxMail> NotificationStore::due_mail(wharf::JobTime now, std::size_t limit) const {
    return impl_->guarded("due mail", [&] {
        SQLite::Statement s(impl_->db,
                            "SELECT id, job_id, sender, recipients, subject, body, attempts, "
                            "created_at, next_attempt_at, last_error FROM outbox "
                            "WHERE state = 'pending' AND next_attempt_at <= ? "
                            "ORDER BY next_attempt_at, id LIMIT ?");
        s.bind(1, to_ms(now));
        s.bind(2, static_cast<std::int64_t>(limit));
        std::vector<OutboxMail> out;
        while (s.executeStep()) {
            OutboxMail m;
            m.id = s.getColumn(0).getInt64();
            m.job_id = s.getColumn(1).getInt64();
            m.from = s.getColumn(2).getString();
            m.to = split_lines(s.getColumn(3).getString());
            m.subject = s.getColumn(4).getString();
            m.body = s.getColumn(5).getString();
            m.attempts = s.getColumn(6).getInt();
            m.created = from_ms(s.getColumn(7).getInt64());
            m.next_attempt = from_ms(s.getColumn(8).getInt64());
            m.last_error = s.getColumn(9).getString();
            out.push_back(std::move(m));
        }
        return out;
    });
}

void NotificationStore::mail_sent(std::int64_t id, wharf::JobTime at) {
    impl_->guarded("mail sent", [&] {
        SQLite::Statement s(impl_->db,
                            "UPDATE outbox SET state = 'sent', attempts = attempts + 1, "
                            "finished_at = ? WHERE id = ?");
        s.bind(1, to_ms(at));
        s.bind(2, id);
        s.exec();
    });
}

void NotificationStore::mail_failed(std::int64_t id, int attempts,
                                    std::optional<wharf::JobTime> next_attempt,
                                    const std::string& error) {
    impl_->guarded("mail failed", [&] {
        SQLite::Statement s(impl_->db,
                            "UPDATE outbox SET attempts = ?, last_error = ?, state = ?, "
                            "next_attempt_at = COALESCE(?, next_attempt_at), finished_at = ? "
                            "WHERE id = ?");
        s.bind(1, attempts);
        s.bind(2, error);
        s.bind(3, next_attempt ? "pending" : "given_up");
        if (next_attempt) {
            s.bind(4, to_ms(*next_attempt));
            s.bind(5);
        } else {
            s.bind(4);
            s.bind(5, to_ms(Clock::now()));
        }
        s.bind(6, id);
        s.exec();
    });
}

OutboxCounts NotificationStore::outbox_counts() const {
    return impl_->guarded("outbox counts", [&] {
        OutboxCounts c;
        SQLite::Statement s(impl_->db, "SELECT state, COUNT(*) FROM outbox GROUP BY state");
        while (s.executeStep()) {
            auto state = s.getColumn(0).getString();
            auto n = s.getColumn(1).getInt64();
            if (state == "pending") c.pending = n;
            if (state == "sent") c.sent = n;
            if (state == "given_up") c.given_up = n;
        }
        SQLite::Statement next(impl_->db,
                               "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'");
        if (next.executeStep() && !next.getColumn(0).isNull())
            c.next_attempt = from_ms(next.getColumn(0).getInt64());
        return c;
    });
}

std::int64_t NotificationStore::purge_mail(wharf::JobTime older_than) {
    return impl_->guarded("outbox purge", [&] {
        SQLite::Statement s(impl_->db,
                            "DELETE FROM outbox WHERE state != 'pending' AND finished_at < ?");
        s.bind(1, to_ms(older_than));
        return static_cast<std::int64_t>(s.exec());
    });
}

int NotificationStore::schema_version() const {
    return impl_->guarded("schema version", [&] {
        return impl_->db.execAndGet("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            .getInt();
    });
}

}  // namespace wharf::host
