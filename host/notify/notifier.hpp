#pragma once
// Notifier: what happens when a job ends. Registered as a wharf.JobListener;
// on every final state of a job a user submitted (succeeded, error, stopped,
// given up; not a failed run that will be retried) it writes an inbox entry
// for that user, and, when notifications.yaml enables e-mail and the job's
// operation has `email_enabled: true` in operations/<type>.yaml, an e-mail
// for the user's address (notifications.yaml `users`) and the `recipients`.
//
// The entry and the mail are written to the NotificationStore in one
// transaction on the job engine's event thread (a short SQLite insert); the
// mail is sent later by the notifier's own sender thread, which retries a
// failed send with exponential back-off (retry.initial_delay_ms doubling up
// to retry.max_delay_ms, given up after retry.max_attempts). Nothing here
// changes or delays a job's result: an exception in the listener is logged.
// Mails still pending when the host stops are sent after the next start;
// while e-mail is switched off they wait.
//
// Configuration: apply() takes notifications.yaml's values (with defaults)
// from ConfigAdmin; it refuses values it cannot use (an unreadable
// credentials file) with a reason, and the previous settings stay.
//
// Ownership: owns its store and its sender thread. Threading: every method
// may be called from any thread; start()/stop() from one.

#include <atomic>
#include <boost/property_tree/ptree.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "notify/notification_store.hpp"
#include "notify/smtp_client.hpp"
#include "wharf/config.hpp"
#include "wharf/jobs.hpp"

namespace wharf::host {

/// What the notifier needs to know about the operation behind a job topic.
struct OperationNotice {
    std::string name;   ///< "asset-delete"
    std::string title;  ///< "Delete assets"
    bool email_enabled = false;
};

/// The operation whose topic is `topic`, or std::nullopt (plain jobs).
using OperationLookup = std::function<std::optional<OperationNotice>(const std::string& topic)>;

struct NotificationSettings {
    bool enabled = false;
    SmtpSettings smtp;
    std::string credentials_file;  ///< as configured ("" = no AUTH)
    std::string from = "wharf@localhost";
    std::vector<std::string> recipients;
    std::map<std::string, std::string> user_addresses;  ///< user name -> address
    std::string dashboard_url;  ///< "" = the API's own address
    std::chrono::milliseconds retry_initial{30000};
    std::chrono::milliseconds retry_max{3600000};
    int max_attempts = 50;
    int inbox_keep_days = 30;
    std::size_t inbox_max_per_user = 1000;
};

struct NotifierOptions {
    std::filesystem::path database;    ///< <data_dir>/notifications.db
    std::filesystem::path config_dir;  ///< a relative credentials_file is resolved here
    OperationLookup operations;        ///< may be empty: every job is a plain job
    /// The stored job (JobManager::find), for the counts the event's snapshot
    /// may lack (progress, report rows); may be empty.
    std::function<std::optional<wharf::Job>(wharf::JobId)> find_job;
    /// Used in links when `dashboard_url` is empty ("http://127.0.0.1:8420/").
    std::string default_base_url = "http://127.0.0.1:8420/";
    /// How often the inbox and the outbox are purged (also once at start).
    std::chrono::milliseconds purge_interval{std::chrono::hours(1)};
};

/// What GET /api/notifications/status shows.
struct NotificationStatus {
    bool email_enabled = false;
    std::string smtp_host;
    int smtp_port = 0;
    std::string smtp_tls;
    bool smtp_auth = false;
    std::string from;
    std::string base_url;
    OutboxCounts outbox;
    std::uint64_t sent = 0;             ///< since start
    std::uint64_t failed_attempts = 0;  ///< since start
    std::uint64_t given_up = 0;         ///< since start
    std::uint64_t inbox_entries = 0;    ///< written since start
    std::optional<wharf::JobTime> last_sent;
    std::optional<wharf::JobTime> last_failure;
    std::string last_error;
};

/// Reads notifications.yaml's values (defaults filled in by ConfigAdmin).
/// Throws Error(invalid_argument) naming the key when one cannot be used.
NotificationSettings notification_settings_from(const boost::property_tree::ptree& values,
                                                const std::filesystem::path& config_dir);

/// The AEM label of a final state (Success, Fail, Error, Stopped).
const char* outcome_label(wharf::JobState state) noexcept;

class Notifier final : public wharf::JobListener {
public:
    /// Opens the store. Throws Error(storage).
    explicit Notifier(NotifierOptions options);
    ~Notifier() override;
    Notifier(const Notifier&) = delete;
    Notifier& operator=(const Notifier&) = delete;

    /// Starts the sender thread (pending mails from an earlier run go first).
    void start();
    /// Stops the sender thread; a send in progress is cancelled. Idempotent.
    void stop();

    /// Applies notifications.yaml; a reason when refused (settings unchanged).
    wharf::ConfigVerdict apply(const boost::property_tree::ptree& values);
    /// The base URL of links when `dashboard_url` is empty.
    void set_default_base_url(std::string url);

    void on_job_event(const wharf::JobEvent& event) override;

    NotificationStore& store() { return *store_; }
    NotificationStatus status() const;
    /// Prometheus text for /metrics (counters and the outbox gauge).
    std::string metrics_text() const;

private:
    void run_sender();
    void send_due();
    void purge();
    std::string base_url() const;

    NotifierOptions options_;
    std::unique_ptr<NotificationStore> store_;
    mutable std::mutex mutex_;  ///< settings_, default base URL, status fields
    NotificationSettings settings_;
    std::string last_error_;
    std::optional<wharf::JobTime> last_sent_;
    std::optional<wharf::JobTime> last_failure_;
    std::atomic<std::uint64_t> sent_{0}, failed_{0}, given_up_{0}, entries_{0};

    std::mutex wake_mutex_;
    std::condition_variable wake_;
    bool wake_flag_ = false;
    std::atomic<bool> stopping_{false};
    std::thread sender_;
};

}  // namespace wharf::host
