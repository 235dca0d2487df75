// E-mail notifications against a real SMTP server (python3-aiosmtpd on
// 127.0.0.1): the message, its recipients and link; a server that is down
// delays the mail, never the job; bad settings are refused and change nothing.
#include <catch2/catch.hpp>

#include "integration/notify_test_support.hpp"

using namespace std::chrono_literals;
using Json = nlohmann::json;
using wharf::JobState;
using wharf::test::eventually;
using wharf::test::kViewerToken;
using wharf::test::mail_header;
using wharf::test::NotifyHost;
using wharf::test::SmtpServer;

namespace {

std::string notifications_yaml(std::uint16_t port, const std::string& extra = {},
                               const std::string& smtp_extra = {}) {
    return "enabled: true\n"
           "smtp:\n  host: 127.0.0.1\n  port: " +
           std::to_string(port) + "\n  tls: none\n  timeout_ms: 2000\n" + smtp_extra +
           "from: wharf@example.org\n"
           "recipients: [ops@example.org]\n"
           "users:\n  - name: vera\n    email: vera@example.org\n"
           "retry:\n  initial_delay_ms: 100\n  max_delay_ms: 400\n  max_attempts: 1000\n" +
           extra;
}

const std::map<std::string, wharf::host::OperationNotice> kOperations = {
    {"test/noretry/mail", {"asset-delete", "Delete assets", true}},
    {"test/noretry/quiet", {"asset-move", "Move assets", false}},
};

std::string metrics(NotifyHost& host) {
    auto c = host.client(kViewerToken);
    return c.get("/metrics").body;
}

}  // namespace

TEST_CASE("a job of an operation with email_enabled mails its submitter and the recipients",
          "[notify]") {
    auto port = wharf::test::free_port();
    NotifyHost host(notifications_yaml(port), kOperations);
    SmtpServer smtp(port, host.dir / "mail");

    auto id = host.submit("test/noretry/mail", R"({"outcome":"succeeded","rows":3})", "vera");
    REQUIRE(host.reaches(id, JobState::succeeded));
    REQUIRE(eventually([&] { return smtp.messages().size() == 1; }, 15s));
    auto [envelope, raw] = smtp.messages()[0];
    INFO(raw);
    CHECK(envelope["mail_from"] == "wharf@example.org");
    CHECK(envelope["rcpt_tos"] == Json::array({"vera@example.org", "ops@example.org"}));
    auto sid = std::to_string(id);
    CHECK(mail_header(raw, "Subject") == "[Wharf] Delete assets: Success (job " + sid + ")");
    CHECK(mail_header(raw, "To") == "vera@example.org, ops@example.org");
    CHECK(mail_header(raw, "From") == "wharf@example.org");
    CHECK(raw.find("Delete assets (asset-delete) ended: Success.") != std::string::npos);
    CHECK(raw.find("Progress:     3 of 10") != std::string::npos);
    CHECK(raw.find("Report rows:  4") != std::string::npos);
    CHECK(raw.find("Details: " + host.url() + "/#/jobs/" + sid) != std::string::npos);

    // The inbox has the entry too; the status and /metrics count the mail.
    CHECK(host.inbox(kViewerToken)["items"].size() == 1);
    REQUIRE(eventually([&] {
        return metrics(host).find("wharf_notify_emails_total{outcome=\"sent\"} 1") !=
               std::string::npos;
    }));
    auto c = host.client(kViewerToken);
    auto status = wharf::test::parse_json(c.get("/api/notifications/status").body);
    CHECK(status["email"]["enabled"] == true);
    CHECK(status["outbox"]["pending"] == 0);
    CHECK(status["outbox"]["sent"] == 1);
    CHECK(status["since_start"]["sent"] == 1);
    CHECK(status["last_error"].is_null());
}

TEST_CASE("with the SMTP server down the job succeeds at once and the mail arrives once it starts",
          "[notify]") {
    auto port = wharf::test::free_port();
    NotifyHost host(notifications_yaml(port), kOperations);
    auto id = host.submit("test/noretry/mail", R"({"outcome":"error"})", "vera");
    REQUIRE(host.reaches(id, JobState::error, 5s));
    CHECK(host.engine->find(id)->job.result_message == "permanent");

    auto c = host.client(kViewerToken);
    Json status;
    REQUIRE(eventually(
        [&] {
            status = wharf::test::parse_json(c.get("/api/notifications/status").body);
            return status["since_start"]["failed_attempts"].get<int>() >= 2;
        },
        15s));
    CHECK(status["outbox"]["pending"] == 1);
    CHECK(status["last_error"].get<std::string>().find("127.0.0.1:" + std::to_string(port)) !=
          std::string::npos);
    CHECK_FALSE(status["outbox"]["next_attempt"].is_null());
    auto text = metrics(host);
    CHECK(text.find("wharf_notify_outbox_pending 1") != std::string::npos);
    CHECK(text.find("wharf_notify_emails_total{outcome=\"sent\"} 0") != std::string::npos);
    if (std::system("command -v promtool >/dev/null 2>&1") == 0) {
        wharf::test::write_text(host.dir / "metrics.txt", text);
        auto command = "promtool check metrics < " + (host.dir / "metrics.txt").string() +
                       " >/dev/null 2>&1";
        CHECK(std::system(command.c_str()) == 0);
    }
    // The inbox entry did not wait for the mail.
    CHECK(host.inbox(kViewerToken)["items"][0]["outcome"] == "Error");

    SmtpServer smtp(port, host.dir / "mail");
    REQUIRE(eventually([&] { return smtp.messages().size() == 1; }, 15s));
    CHECK(mail_header(smtp.messages()[0].second, "Subject") ==
          "[Wharf] Delete assets: Error (job " + std::to_string(id) + ")");
    REQUIRE(eventually([&] {
        return wharf::test::parse_json(c.get("/api/notifications/status").body)["outbox"]["pending"] ==
               0;
    }));
    CHECK(host.engine->find(id)->job.state == JobState::error);
}

TEST_CASE("a mail still pending when the host stops is sent after the next start", "[notify]") {
    auto port = wharf::test::free_port();
    wharf::test::TempDir mail_dir("wharf-mail");
    std::filesystem::path db;
    {
        NotifyHost host(notifications_yaml(port), kOperations);
        db = host.dir / "data/notifications.db";
        auto id = host.submit("test/noretry/mail", "{}", "vera");
        REQUIRE(host.reaches(id, JobState::succeeded));
        REQUIRE(eventually([&] { return host.notifier->status().failed_attempts >= 1; }, 15s));
        host.notifier->stop();
        std::filesystem::copy_file(db, mail_dir / "notifications.db");
        for (auto suffix : {"-wal", "-shm"})
            if (std::filesystem::exists(db.string() + suffix))
                std::filesystem::copy_file(db.string() + suffix,
                                           (mail_dir / "notifications.db").string() + suffix);
    }
    SmtpServer smtp(port, mail_dir / "mail");
    wharf::host::NotifierOptions options;
    options.database = mail_dir / "notifications.db";
    wharf::host::Notifier restarted(options);
    boost::property_tree::ptree values;
    values.put("enabled", true);
    values.put("smtp.host", "127.0.0.1");
    values.put("smtp.port", port);
    values.put("retry.initial_delay_ms", 100);
    values.put("retry.max_delay_ms", 400);
    REQUIRE_FALSE(restarted.apply(values));
    CHECK(restarted.status().outbox.pending == 1);
    restarted.start();
    REQUIRE(eventually([&] { return smtp.messages().size() == 1; }, 15s));
    REQUIRE(eventually([&] { return restarted.status().outbox.pending == 0; }));
    restarted.stop();
}

TEST_CASE("no mail without email_enabled on the operation or in notifications.yaml", "[notify]") {
    auto port = wharf::test::free_port();
    SECTION("the operation does not enable it") {
        NotifyHost host(notifications_yaml(port), kOperations);
        SmtpServer smtp(port, host.dir / "mail");
        auto quiet = host.submit("test/noretry/quiet", "{}", "vera");
        auto plain = host.submit("test/noretry/plain", "{}", "vera");
        auto loud = host.submit("test/noretry/mail", "{}", "vera");
        REQUIRE(host.reaches(quiet, JobState::succeeded));
        REQUIRE(host.reaches(plain, JobState::succeeded));
        REQUIRE(host.reaches(loud, JobState::succeeded));
        // The one mail that is due arrives; the others were never queued.
        REQUIRE(eventually([&] { return smtp.messages().size() == 1; }, 15s));
        CHECK(mail_header(smtp.messages()[0].second, "Subject").find("job " + std::to_string(loud)) !=
              std::string::npos);
        REQUIRE(eventually([&] { return host.notifier->status().outbox.sent == 1; }));
        CHECK(host.inbox(kViewerToken)["items"].size() == 3);
    }
    SECTION("notifications.yaml does not enable it") {
        NotifyHost host(notifications_yaml(port) + "\n", kOperations);
        wharf::test::write_text(host.dir / "configs/notifications.yaml",
                                "enabled: false\nsmtp:\n  port: " + std::to_string(port) + "\n");
        host.config->rescan();
        REQUIRE_FALSE(host.notifier->status().email_enabled);
        auto id = host.submit("test/noretry/mail", "{}", "vera");
        REQUIRE(host.reaches(id, JobState::succeeded));
        REQUIRE(eventually([&] { return host.inbox(kViewerToken)["items"].size() == 1; }));
        auto counts = host.notifier->store().outbox_counts();
        CHECK(counts.pending + counts.sent + counts.given_up == 0);
    }
}

TEST_CASE("SMTP AUTH uses the credentials file; an unreadable one is refused and nothing changes",
          "[notify]") {
    auto port = wharf::test::free_port();
    NotifyHost host(notifications_yaml(port), kOperations);
    SmtpServer smtp(port, host.dir / "mail", "wharf:s3cret");
    wharf::test::write_text(host.dir / "configs/smtp-credentials", "wharf:s3cret\n");

    SECTION("a missing credentials file") {
        wharf::test::write_text(
            host.dir / "configs/notifications.yaml",
            "enabled: true\nsmtp:\n  host: 127.0.0.1\n  port: " + std::to_string(port + 1) +
                "\n  credentials_file: no-such-file\n");
        host.config->rescan();
        bool refused = false;
        for (const auto& f : host.config->status())
            if (f.file == "notifications.yaml" && !f.errors.empty()) {
                refused = f.errors[0].to_string().find("no-such-file") != std::string::npos;
                INFO(f.errors[0].to_string());
            }
        CHECK(refused);
        // The settings in force stay: the old port, no AUTH.
        auto status = host.notifier->status();
        CHECK(status.smtp_port == port);
        CHECK_FALSE(status.smtp_auth);
    }
    SECTION("a readable one") {
        wharf::test::write_text(
            host.dir / "configs/notifications.yaml",
            notifications_yaml(port, {}, "  credentials_file: smtp-credentials\n"));
        host.config->rescan();
        REQUIRE(host.notifier->status().smtp_auth);
        auto id = host.submit("test/noretry/mail", "{}", "vera");
        REQUIRE(host.reaches(id, JobState::succeeded));
        REQUIRE(eventually([&] { return smtp.messages().size() == 1; }, 15s));
        CHECK(smtp.messages()[0].first["authenticated"] == true);
    }
}

TEST_CASE("a notifications.yaml with retry delays out of order is refused with file and line",
          "[notify]") {
    auto port = wharf::test::free_port();
    NotifyHost host(notifications_yaml(port), kOperations);
    wharf::test::write_text(host.dir / "configs/notifications.yaml",
                            "enabled: true\nsmtp:\n  port: 2999\nretry:\n  initial_delay_ms: 5000\n"
                            "  max_delay_ms: 100\n");
    host.config->rescan();
    std::string error;
    for (const auto& f : host.config->status())
        if (f.file == "notifications.yaml" && !f.errors.empty()) error = f.errors[0].to_string();
    INFO(error);
    CHECK(error.find("notifications.yaml:") != std::string::npos);
    CHECK(error.find("max_delay_ms") != std::string::npos);
    CHECK(host.notifier->status().smtp_port == port);
}
