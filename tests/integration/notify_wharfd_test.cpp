// Notifications in a real wharfd child process: a delete above its threshold
// becomes a job; when it ends the submitter finds it in GET /api/inbox, the
// mail arrives at a real SMTP server (operations/delete.yaml email_enabled),
// the repository read API serves the content, and the inbox survives a
// restart of the host.
#include <catch2/catch.hpp>

#include "integration/notify_test_support.hpp"
#include "repository/generator.hpp"
#include "repository/sqlite_repository.hpp"
#include "support/wharfd_child.hpp"

using namespace std::chrono_literals;
using Json = nlohmann::json;
using wharf::test::ChildProcess;
using wharf::test::eventually;
using wharf::test::mail_header;
using wharf::test::SmtpServer;
using wharf::test::TempDir;

namespace {

const std::string kToken = "operator-token-0123456789";

std::string address_of(const ChildProcess& host) {
    return wharf::test::listening_address(host.output());
}

std::unique_ptr<ChildProcess> start_wharfd(const TempDir& dir, const std::string& log) {
    auto host = std::make_unique<ChildProcess>(
        std::vector<std::string>{WHARF_WHARFD_EXECUTABLE, "--config", (dir / "configs").string()},
        dir / log);
    if (!eventually([&] { return wharf::test::wharfd_ready(host->output(), "delete"); }, 30s))
        throw std::runtime_error("wharfd did not start: " + host->output());
    return host;
}

}  // namespace

TEST_CASE("wharfd writes the inbox entry and mails the submitter when a delete job ends",
          "[notify][wharfd]") {
    TempDir dir("wharfd-notify");
    auto smtp_port = wharf::test::free_port();
    wharf::test::write_text(
        dir / "configs/wharf.yaml",
        "data_dir: ../var\nplugins_dir: ../plugins\nlisten: 127.0.0.1:0\nlog_level: info\n");
    wharf::test::write_text(dir / "configs/users.yaml",
                            "users:\n  - name: otto\n    role: operator\n    token_sha256: " +
                                wharf::host::token_sha256(kToken) + "\n");
    wharf::test::write_text(dir / "configs/operations/delete.yaml",
                            "threshold: 2\nemail_enabled: true\n");
    wharf::test::write_text(dir / "configs/notifications.yaml",
                            "enabled: true\nsmtp:\n  host: 127.0.0.1\n  port: " +
                                std::to_string(smtp_port) +
                                "\nfrom: wharf@example.org\nusers:\n  - name: otto\n"
                                "    email: otto@example.org\nretry:\n  initial_delay_ms: 100\n"
                                "  max_delay_ms: 500\n");
    wharf::host::ContentGeneratorOptions gen;
    gen.assets_root = "/content/dam/n";
    gen.assets = 12;
    gen.assets_per_folder = 6;
    gen.folders_per_group = 2;
    gen.pages = 0;
    {
        auto repository = wharf::host::SqliteRepository::open(dir / "var/repository");
        wharf::host::generate_content(*repository, gen);
    }
    std::filesystem::create_directories(dir / "plugins");
    std::filesystem::copy_file(std::filesystem::path(WHARF_PLUGIN_DIR) / "delete.so",
                               dir / "plugins/delete.so");
    SmtpServer smtp(smtp_port, dir / "mail");

    auto host = start_wharfd(dir, "wharfd.log");
    wharf::host::HttpClientOptions o;
    o.bearer_token = kToken;
    wharf::host::HttpClient client("http://" + address_of(*host), o);

    auto first = wharf::host::generated_asset_path(gen, 0);
    auto folder = first.substr(0, first.rfind('/'));
    // The repository read API serves the folder the delete is about to remove.
    auto before = client.get("/api/repo/nodes?path=" + wharf::host::url_encode(folder));
    REQUIRE(before.status == 200);
    CHECK(wharf::test::parse_json(before.body)["children"].size() == 6);

    auto r = client.post_json("/api/operations/asset-delete",
                              Json{{"paths", Json::array({folder})}}.dump());
    INFO(r.body);
    REQUIRE(r.status == 202);
    auto id = wharf::test::parse_json(r.body)["id"].get<wharf::JobId>();

    Json inbox;
    REQUIRE(eventually(
        [&] {
            inbox = wharf::test::parse_json(client.get("/api/inbox").body);
            return inbox.is_object() && inbox["items"].size() == 1;
        },
        20s));
    CHECK(inbox["items"][0]["job_id"] == id);
    CHECK(inbox["items"][0]["operation"] == "asset-delete");
    CHECK(inbox["items"][0]["outcome"] == "Success");
    CHECK(inbox["items"][0]["title"] == "Delete assets: Success");
    CHECK(inbox["unread"] == 1);

    REQUIRE(eventually([&] { return smtp.messages().size() == 1; }, 20s));
    auto [envelope, raw] = smtp.messages()[0];
    INFO(raw);
    CHECK(envelope["rcpt_tos"] == Json::array({"otto@example.org"}));
    CHECK(mail_header(raw, "Subject") ==
          "[Wharf] Delete assets: Success (job " + std::to_string(id) + ")");
    CHECK(raw.find("http://" + address_of(*host) + "/#/jobs/" + std::to_string(id)) !=
          std::string::npos);
    CHECK(client.get("/api/repo/nodes?path=" + wharf::host::url_encode(folder)).status == 404);
    // The server has the message before the host has its answer and counts it.
    std::string metrics;
    CHECK(eventually(
        [&] {
            metrics = client.get("/metrics").body;
            return metrics.find("wharf_notify_emails_total{outcome=\"sent\"} 1") !=
                   std::string::npos;
        },
        20s));

    // Mark it read, restart the host: the entry and its read flag are still there.
    REQUIRE(client.post_json("/api/inbox/read-all", "{}").status == 200);
    host->signal(SIGTERM);
    REQUIRE(host->wait(20s));
    host = start_wharfd(dir, "wharfd-2.log");
    wharf::host::HttpClient again("http://" + address_of(*host), o);
    auto after = wharf::test::parse_json(again.get("/api/inbox").body);
    REQUIRE(after["items"].size() == 1);
    CHECK(after["items"][0]["read"] == true);
    CHECK(after["unread"] == 0);
    CHECK(smtp.messages().size() == 1);  // sent once, not again after the restart
}
