#pragma once
// Sending one e-mail over SMTP with libcurl: plain, STARTTLS (the connection
// is upgraded before anything is sent, or the send fails) or implicit TLS
// (smtps://), with SMTP AUTH when credentials are given. The message is
// rendered here as RFC 5322 plain text in UTF-8 (RFC 2047 encoded subject
// when it is not ASCII).
//
// Threading: send_mail may be called from any thread; each call has its own
// curl handle. It blocks for at most the timeout, or until `cancel` turns true.

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

namespace wharf::host {

struct SmtpSettings {
    std::string host = "localhost";
    int port = 25;
    std::string tls = "none";  ///< none, starttls or tls
    std::string username;      ///< empty: no AUTH
    std::string password;
    std::chrono::milliseconds timeout{10000};
};

struct MailMessage {
    std::string from;
    std::vector<std::string> to;
    std::string subject;
    std::string body;        ///< plain text; '\n' line ends
    std::string message_id;  ///< without the angle brackets
};

/// The message as sent: headers, a blank line, the body, CRLF line ends.
std::string render_mail(const MailMessage& message);

/// Sends `message`. Throws Error(io) with the server's or libcurl's reason
/// (e.g. "smtp://127.0.0.1:2525: Couldn't connect to server").
void send_mail(const SmtpSettings& smtp, const MailMessage& message,
               const std::atomic<bool>* cancel = nullptr);

}  // namespace wharf::host
