#pragma once
// NotificationStore: the durable side of notifications, one SQLite database
// (WAL) in the data directory, `<data_dir>/notifications.db`:
//   inbox    one entry per finished job for the user who submitted it, read
//            or unread, listed newest first with keyset paging;
//   outbox   e-mails waiting to be sent (pending), sent, or given up after
//            the configured number of attempts, with the next attempt time
//            and the last error.
// The schema is versioned (schema_version table, migrations applied in order
// at open); a database from a newer wharfd is refused.
//
// An inbox entry and its e-mail are written in one transaction, so a mail is
// never queued for an entry that does not exist. Each job has at most one
// inbox entry (a repeated event is ignored).
//
// Ownership: owns its connection. Threading: every method may be called from
// any thread (one connection, one mutex; every call is short). Throws
// Error(storage) when the database fails.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "wharf/jobs.hpp"

namespace wharf::host {

struct InboxEntry {
    std::int64_t id = 0;
    wharf::JobId job_id = 0;
    std::string user;       ///< who it belongs to (the job's submitter)
    std::string topic;      ///< the job's topic
    std::string operation;  ///< the operation's name ("asset-delete"), or the topic
    std::string outcome;    ///< AEM label: Success, Fail, Error, Stopped
    std::string title;      ///< one line for people: "Delete assets: Success"
    std::string message;    ///< the job's result message, or a summary
    wharf::JobTime created{};
    bool read = false;
};

struct InboxQuery {
    std::string user;
    bool unread_only = false;
    std::optional<std::int64_t> cursor;  ///< entries with an id below this
    std::size_t limit = 50;              ///< clamped to 1..1000
};

struct InboxPage {
    std::vector<InboxEntry> items;
    std::optional<std::int64_t> next_cursor;  ///< std::nullopt on the last page
};

/// One e-mail, rendered when the job ended.
struct OutboxMail {
    std::int64_t id = 0;
    wharf::JobId job_id = 0;
    std::string from;
    std::vector<std::string> to;
    std::string subject;
    std::string body;  ///< plain text, '\n' line ends
    int attempts = 0;
    wharf::JobTime created{};
    wharf::JobTime next_attempt{};
    std::string last_error;
};

struct OutboxCounts {
    std::int64_t pending = 0;
    std::int64_t sent = 0;
    std::int64_t given_up = 0;
    std::optional<wharf::JobTime> next_attempt;  ///< earliest pending attempt
};

class NotificationStore {
public:
    /// Opens (creating and migrating) the database at `file`. Throws Error(storage).
    explicit NotificationStore(const std::filesystem::path& file);
    ~NotificationStore();
    NotificationStore(const NotificationStore&) = delete;
    NotificationStore& operator=(const NotificationStore&) = delete;

    /// Stores `entry` (and `mail`, if any, in the same transaction). Returns the
    /// entry's id, or std::nullopt when the job already has an entry (nothing
    /// is written then).
    std::optional<std::int64_t> record(const InboxEntry& entry, const std::optional<OutboxMail>& mail);

    /// A mail without an inbox entry (for a job nobody submitted).
    std::int64_t add_mail(const OutboxMail& mail);

    InboxPage inbox(const InboxQuery& query) const;
    std::int64_t unread(const std::string& user) const;
    /// Marks the user's entry read; false if no entry with that id is theirs.
    bool mark_read(const std::string& user, std::int64_t id);
    /// Marks all of the user's entries read; returns how many changed.
    std::int64_t mark_all_read(const std::string& user);
    /// Deletes entries created before `older_than`, then each user's oldest
    /// beyond `max_per_user`. Returns how many went.
    std::int64_t purge_inbox(wharf::JobTime older_than, std::size_t max_per_user);

    /// Pending mails whose next attempt is due at `now`, oldest first.
    std::vector<OutboxMail> due_mail(wharf::JobTime now, std::size_t limit) const;
    void mail_sent(std::int64_t id, wharf::JobTime at);
    /// Records a failed attempt: tried again at `next_attempt`, or given up
    /// when it is std::nullopt.
    void mail_failed(std::int64_t id, int attempts, std::optional<wharf::JobTime> next_attempt,
                     const std::string& error);
    OutboxCounts outbox_counts() const;
    /// Deletes sent and given-up mails finished before `older_than`.
    std::int64_t purge_mail(wharf::JobTime older_than);

    /// The applied schema version.
    int schema_version() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace wharf::host
