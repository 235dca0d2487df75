#include "notify/notifier.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "base/error.hpp"
#include "base/log.hpp"

namespace wharf::host {
namespace {

using Clock = std::chrono::system_clock;
using wharf::JobState;

std::string rfc3339(wharf::JobTime t) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char out[48];
    std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
    return out;
}

std::string with_thousands(std::int64_t n) {
    auto digits = std::to_string(n < 0 ? -n : n);
    std::string out;
    int count = 0;
    for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
        if (count > 0 && count % 3 == 0) out.insert(out.begin(), ',');
        out.insert(out.begin(), *it);
        ++count;
    }
    return n < 0 ? "-" + out : out;
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.erase(0, 1);
    return s;
}

// A short line for the inbox and the mail: the job's own message, else its counts.
std::string summary_of(const wharf::Job& job) {
    if (!job.result_message.empty()) return job.result_message;
    if (job.progress_total > 0)
        return with_thousands(job.progress_done) + " of " + with_thousands(job.progress_total) +
               " done";
    return std::string("the job ended: ") + outcome_label(job.state);
}

}  // namespace

const char* outcome_label(JobState state) noexcept {
    switch (state) {
        case JobState::succeeded:
            return "Success";
        case JobState::error:
            return "Error";
        case JobState::stopped:
            return "Stopped";
        case JobState::failed:
        case JobState::given_up:
            return "Fail";
        default:
            return "Active";
    }
}

NotificationSettings notification_settings_from(const boost::property_tree::ptree& v,
                                                const std::filesystem::path& config_dir) {
    NotificationSettings s;
    s.enabled = v.get<bool>("enabled", false);
    s.smtp.host = v.get<std::string>("smtp.host", "localhost");
    s.smtp.port = v.get<int>("smtp.port", 25);
    s.smtp.tls = v.get<std::string>("smtp.tls", "none");
    s.smtp.timeout = std::chrono::milliseconds(v.get<std::int64_t>("smtp.timeout_ms", 10000));
    s.credentials_file = v.get<std::string>("smtp.credentials_file", "");
    if (!s.credentials_file.empty()) {
        std::filesystem::path file = s.credentials_file;
        if (file.is_relative()) file = config_dir / file;
        std::ifstream in(file);
        if (!in)
            throw Error(ErrorCode::invalid_argument,
                        "smtp.credentials_file '" + file.string() +
                            "' cannot be read (it should hold one line 'user:password')");
        std::string line;
        std::getline(in, line);
        line = trim(line);
        auto colon = line.find(':');
        if (colon == std::string::npos || colon == 0)
            throw Error(ErrorCode::invalid_argument,
                        "smtp.credentials_file '" + file.string() +
                            "' must hold one line 'user:password'");
        s.smtp.username = line.substr(0, colon);
        s.smtp.password = line.substr(colon + 1);
    }
    s.from = v.get<std::string>("from", s.from);
    if (auto list = v.get_child_optional("recipients"))
        for (const auto& [key, item] : *list)
            if (!item.data().empty()) s.recipients.push_back(item.data());
    if (auto users = v.get_child_optional("users"))
        for (const auto& [key, user] : *users) {
            auto name = user.get<std::string>("name", "");
            auto email = user.get<std::string>("email", "");
            if (!name.empty() && !email.empty()) s.user_addresses[name] = email;
        }
    s.dashboard_url = v.get<std::string>("dashboard_url", "");
    s.retry_initial = std::chrono::milliseconds(v.get<std::int64_t>("retry.initial_delay_ms", 30000));
    s.retry_max = std::chrono::milliseconds(v.get<std::int64_t>("retry.max_delay_ms", 3600000));
    s.max_attempts = v.get<int>("retry.max_attempts", 50);
    if (s.retry_max < s.retry_initial)
        throw Error(ErrorCode::invalid_argument,
                    "retry.max_delay_ms (" + std::to_string(s.retry_max.count()) +
                        ") is below retry.initial_delay_ms (" +
                        std::to_string(s.retry_initial.count()) + ")");
    s.inbox_keep_days = v.get<int>("inbox.keep_days", 30);
    s.inbox_max_per_user = v.get<std::size_t>("inbox.max_per_user", 1000);
    return s;
}

Notifier::Notifier(NotifierOptions options)
    : options_(std::move(options)),
      store_(std::make_unique<NotificationStore>(options_.database)) {}

Notifier::~Notifier() { stop(); }

void Notifier::start() {
    if (sender_.joinable()) return;
    stopping_ = false;
    sender_ = std::thread([this] { run_sender(); });
}

void Notifier::stop() {
    if (!sender_.joinable()) return;
    {
        std::lock_guard lock(wake_mutex_);
        stopping_ = true;
        wake_flag_ = true;
    }
    wake_.notify_all();
    sender_.join();
}

wharf::ConfigVerdict Notifier::apply(const boost::property_tree::ptree& values) {
    NotificationSettings next;
    try {
        next = notification_settings_from(values, options_.config_dir);
    } catch (const std::exception& e) {
        return std::string(e.what());
    }
    {
        std::lock_guard lock(mutex_);
        settings_ = std::move(next);
        logger("notify")->info(
            "notifications configured email={} smtp={}:{} tls={} auth={} users={} recipients={}",
            settings_.enabled, settings_.smtp.host, settings_.smtp.port, settings_.smtp.tls,
            !settings_.smtp.username.empty(), settings_.user_addresses.size(),
            settings_.recipients.size());
    }
    {
        std::lock_guard lock(wake_mutex_);
        wake_flag_ = true;
    }
    wake_.notify_all();
    return std::nullopt;
}

void Notifier::set_default_base_url(std::string url) {
    std::lock_guard lock(mutex_);
    options_.default_base_url = std::move(url);
}

std::string Notifier::base_url() const {
    std::string url = settings_.dashboard_url.empty() ? options_.default_base_url
                                                      : settings_.dashboard_url;
    if (url.empty() || url.back() != '/') url += '/';
    return url;
}

void Notifier::on_job_event(const wharf::JobEvent& event) {
    if (event.type == wharf::JobEventType::removed || !wharf::is_final(event.job.state)) return;
    if (event.job.submitted_by.empty()) return;  // system jobs (purge) notify nobody
    wharf::Job job = event.job;
    try {
        // The event carries the job as its run began; the store has the counts.
        if (options_.find_job) {
            if (auto stored = options_.find_job(job.id)) {
                job.progress_done = std::max(job.progress_done, stored->progress_done);
                job.progress_total = std::max(job.progress_total, stored->progress_total);
                job.report_rows = std::max(job.report_rows, stored->report_rows);
                job.log_lines = std::max(job.log_lines, stored->log_lines);
            }
        }
        std::optional<OperationNotice> op;
        if (options_.operations) op = options_.operations(job.topic);
        std::string title_of_op = op && !op->title.empty() ? op->title : job.topic;
        std::string label = outcome_label(job.state);
        auto now = Clock::now();

        InboxEntry entry;
        entry.job_id = job.id;
        entry.user = job.submitted_by;
        entry.topic = job.topic;
        entry.operation = op ? op->name : job.topic;
        entry.outcome = label;
        entry.title = title_of_op + ": " + label;
        entry.message = summary_of(job);
        entry.created = job.finished.value_or(now);

        std::optional<OutboxMail> mail;
        {
            std::lock_guard lock(mutex_);
            if (settings_.enabled && op && op->email_enabled) {
                std::vector<std::string> to;
                auto own = settings_.user_addresses.find(job.submitted_by);
                if (own != settings_.user_addresses.end()) to.push_back(own->second);
                for (const auto& r : settings_.recipients)
                    if (std::find(to.begin(), to.end(), r) == to.end()) to.push_back(r);
                if (to.empty()) {
                    logger("notify")->info(
                        "notification e-mail skipped job={} user={} reason=\"no address for the "
                        "user in notifications.yaml users, and no recipients\"",
                        job.id, job.submitted_by);
                } else {
                    std::string link = base_url() + "#/jobs/" + wharf::job_id_to_string(job.id);
                    OutboxMail m;
                    m.job_id = job.id;
                    m.from = settings_.from;
                    m.to = std::move(to);
                    m.subject = "[Wharf] " + title_of_op + ": " + label + " (job " +
                                wharf::job_id_to_string(job.id) + ")";
                    std::ostringstream body;
                    body << title_of_op << " (" << entry.operation << ") ended: " << label
                         << ".\n\n";
                    body << "Job:          " << job.id << "\n";
                    body << "Topic:        " << job.topic << "\n";
                    body << "Submitted by: " << job.submitted_by << "\n";
                    body << "Created:      " << rfc3339(job.created) << "\n";
                    if (job.started) body << "Started:      " << rfc3339(*job.started) << "\n";
                    body << "Finished:     " << rfc3339(entry.created) << "\n";
                    if (job.progress_total > 0)
                        body << "Progress:     " << with_thousands(job.progress_done) << " of "
                             << with_thousands(job.progress_total) << "\n";
                    body << "Report rows:  " << with_thousands(job.report_rows) << "\n";
                    if (job.retry_count > 0) body << "Retries:      " << job.retry_count << "\n";
                    if (!job.result_message.empty())
                        body << "Message:      " << job.result_message << "\n";
                    body << "\nDetails: " << link << "\n";
                    m.body = body.str();
                    m.created = now;
                    m.next_attempt = now;
                    mail = std::move(m);
                }
            }
        }
        auto id = store_->record(entry, mail);
        if (id) {
            ++entries_;
            logger("notify")->debug("inbox entry written id={} job={} user={} outcome={} mail={}",
                                    *id, job.id, job.submitted_by, label, mail.has_value());
        }
        if (id && mail) {
            {
                std::lock_guard lock(wake_mutex_);
                wake_flag_ = true;
            }
            wake_.notify_all();
        }
    } catch (const std::exception& e) {
        logger("notify")->error("notification not recorded job={} user={} error=\"{}\"", job.id,
                                job.submitted_by, e.what());
    }
}

void Notifier::run_sender() {
    auto log = logger("notify");
    auto next_purge = std::chrono::steady_clock::now();
    while (!stopping_) {
        if (std::chrono::steady_clock::now() >= next_purge) {
            purge();
            next_purge = std::chrono::steady_clock::now() + options_.purge_interval;
        }
        try {
            send_due();
        } catch (const std::exception& e) {
            log->error("notification sender failed error=\"{}\"", e.what());
        }
        // Sleep until the next due mail, a wake-up, or a purge; at most a second,
        // so a pending mail whose time came is never long overlooked.
        auto wait = std::chrono::milliseconds(1000);
        bool enabled = false;
        {
            std::lock_guard lock(mutex_);
            enabled = settings_.enabled;
        }
        try {
            auto counts = store_->outbox_counts();
            if (enabled && counts.next_attempt) {
                auto until = std::chrono::duration_cast<std::chrono::milliseconds>(
                    *counts.next_attempt - Clock::now());
                wait = std::clamp(until, std::chrono::milliseconds(0), wait);
            }
        } catch (const std::exception&) {
        }
        std::unique_lock lock(wake_mutex_);
        wake_.wait_for(lock, wait, [this] { return wake_flag_ || stopping_.load(); });
        wake_flag_ = false;
    }
}

void Notifier::send_due() {
    auto log = logger("notify");
    {
        // E-mail switched off: pending mails wait until it is switched on again.
        std::lock_guard lock(mutex_);
        if (!settings_.enabled) return;
    }
    for (const auto& mail : store_->due_mail(Clock::now(), 20)) {
        if (stopping_) return;
        NotificationSettings s;
        {
            std::lock_guard lock(mutex_);
            s = settings_;
        }
        MailMessage message{mail.from, mail.to, mail.subject, mail.body,
                            "wharf-job-" + wharf::job_id_to_string(mail.job_id) + "-" +
                                std::to_string(mail.id) + "@" + s.smtp.host};
        int attempts = mail.attempts + 1;
        try {
            send_mail(s.smtp, message, &stopping_);
            store_->mail_sent(mail.id, Clock::now());
            ++sent_;
            {
                std::lock_guard lock(mutex_);
                last_sent_ = Clock::now();
            }
            log->info("notification e-mail sent job={} to={} attempts={}", mail.job_id,
                      mail.to.size(), attempts);
        } catch (const std::exception& e) {
            if (stopping_) return;  // cancelled by stop(): not an attempt
            ++failed_;
            std::optional<wharf::JobTime> next;
            if (attempts < s.max_attempts) {
                auto delay = s.retry_initial;
                for (int i = 1; i < attempts && delay < s.retry_max; ++i) delay *= 2;
                delay = std::min(delay, s.retry_max);
                next = Clock::now() + delay;
            } else {
                ++given_up_;
            }
            store_->mail_failed(mail.id, attempts, next, e.what());
            {
                std::lock_guard lock(mutex_);
                last_error_ = e.what();
                last_failure_ = Clock::now();
            }
            if (next) {
                log->warn("notification e-mail not sent job={} attempt={} retry_at={} error=\"{}\"",
                          mail.job_id, attempts, rfc3339(*next), e.what());
            } else {
                log->error(
                    "notification e-mail given up job={} attempts={} error=\"{}\"; check "
                    "notifications.yaml smtp settings and the SMTP server",
                    mail.job_id, attempts, e.what());
            }
        }
    }
}

void Notifier::purge() {
    NotificationSettings s;
    {
        std::lock_guard lock(mutex_);
        s = settings_;
    }
    try {
        auto cutoff = Clock::now() - std::chrono::hours(24) * s.inbox_keep_days;
        auto entries = store_->purge_inbox(cutoff, s.inbox_max_per_user);
        auto mails = store_->purge_mail(cutoff);
        if (entries + mails > 0)
            logger("notify")->info("notifications purged inbox_entries={} mails={}", entries,
                                   mails);
    } catch (const std::exception& e) {
        logger("notify")->error("notification purge failed error=\"{}\"", e.what());
    }
}

NotificationStatus Notifier::status() const {
    NotificationStatus st;
    {
        std::lock_guard lock(mutex_);
        st.email_enabled = settings_.enabled;
        st.smtp_host = settings_.smtp.host;
        st.smtp_port = settings_.smtp.port;
        st.smtp_tls = settings_.smtp.tls;
        st.smtp_auth = !settings_.smtp.username.empty();
        st.from = settings_.from;
        st.base_url = base_url();
        st.last_sent = last_sent_;
        st.last_failure = last_failure_;
        st.last_error = last_error_;
    }
    st.outbox = store_->outbox_counts();
    st.sent = sent_;
    st.failed_attempts = failed_;
    st.given_up = given_up_;
    st.inbox_entries = entries_;
    return st;
}

std::string Notifier::metrics_text() const {
    std::int64_t pending = 0;
    try {
        pending = store_->outbox_counts().pending;
    } catch (const std::exception&) {
    }
    std::ostringstream out;
    out << "# HELP wharf_notify_inbox_entries_total Inbox entries written for finished jobs.\n"
        << "# TYPE wharf_notify_inbox_entries_total counter\n"
        << "wharf_notify_inbox_entries_total " << entries_.load() << "\n"
        << "# HELP wharf_notify_emails_total Notification e-mail send attempts by outcome.\n"
        << "# TYPE wharf_notify_emails_total counter\n"
        << "wharf_notify_emails_total{outcome=\"sent\"} " << sent_.load() << "\n"
        << "wharf_notify_emails_total{outcome=\"failed\"} " << failed_.load() << "\n"
        << "wharf_notify_emails_total{outcome=\"given_up\"} " << given_up_.load() << "\n"
        << "# HELP wharf_notify_outbox_pending Notification e-mails waiting to be sent.\n"
        << "# TYPE wharf_notify_outbox_pending gauge\n"
        << "wharf_notify_outbox_pending " << pending << "\n";
    return out.str();
}

}  // namespace wharf::host
