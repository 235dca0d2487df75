// GET /api/jobs/{id}/log?follow=1 (a job's log as Server-Sent Events) against
// the in-process host of http_test_support.hpp, read over a raw socket so the
// tests see what goes over the wire: every line once and in order while the
// job runs, resuming from a cursor, the `end` event, refusals, the cap on open
// streams, the maximum duration, server stop; and `wharf jobs log --follow`.
#include <poll.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <thread>

#include "integration/http_test_support.hpp"
#include "support/child_process.hpp"

using namespace std::chrono_literals;
using wharf::JobState;
using wharf::test::ApiHost;
using wharf::test::eventually;
using wharf::test::kViewerToken;
using wharf::test::parse_json;
using Json = nlohmann::json;

namespace {

/// Runs jobs of topic test/lines: logs "line 1" .. "line N" (payload `lines`),
/// pausing `pause_ms` between lines; after line `hold_after` it waits until
/// released (its lines up to then stored). Ends as `outcome` says
/// (succeeded or error).
class LineConsumer final : public wharf::JobConsumer {
public:
    wharf::JobResult process(wharf::JobContext& context) override {
        const auto& p = context.payload();
        const int lines = p.get<int>("lines", 0);
        const int hold_after = p.get<int>("hold_after", 0);
        const auto pause = std::chrono::milliseconds(p.get<int>("pause_ms", 0));
        for (int i = 1; i <= lines; ++i) {
            context.log("line " + std::to_string(i));
            if (i == hold_after) {
                // The engine buffers log lines until the consumer's next call
                // after its flush interval; a checkpoint writes them now.
                context.checkpoint("held_after", std::to_string(i));
                std::unique_lock lock(mutex_);
                held_ = true;
                cv_.wait_for(lock, 30s, [&] { return released_; });
                held_ = false;
            } else if (pause.count() > 0) {
                std::this_thread::sleep_for(pause);
            }
        }
        if (p.get<std::string>("outcome", "succeeded") == "error")
            return wharf::JobResult::error("the lines ran out");
        return wharf::JobResult::succeeded("all lines logged");
    }
    void release() {
        std::lock_guard lock(mutex_);
        released_ = true;
        cv_.notify_all();
    }
    bool held() {
        std::lock_guard lock(mutex_);
        return held_;
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool held_ = false;
    bool released_ = false;
};

/// The host of http_test_support.hpp plus the LineConsumer on test/lines.
struct LogHost : ApiHost {
    std::shared_ptr<LineConsumer> lines = std::make_shared<LineConsumer>();
    std::shared_ptr<wharf::ServiceRegistration> lines_registration;

    LogHost() {
        wharf::Properties props;
        boost::property_tree::ptree topics;
        topics.push_back({"", boost::property_tree::ptree("test/lines")});
        props.add_child(wharf::JobConsumer::kTopicsProperty, topics);
        lines_registration =
            registry.register_service(wharf::host::Owner{"host", 0}, nullptr,
                                      wharf::JobConsumer::kInterfaceName, lines, props, 0);
    }
    ~LogHost() { lines->release(); }

    wharf::Job enqueue_lines(const std::string& payload_json) {
        wharf::EnqueueOptions eo;
        eo.user = "seed";
        return engine->enqueue("test/lines",
                               wharf::host::json_to_ptree(nlohmann::json::parse(payload_json)), eo);
    }
    JobState state_of(wharf::JobId id) { return store->find(id)->state; }
};

struct Event {
    std::string event;  // "" for a log line
    std::string id;
    std::string data;
};

/// A GET over a raw socket whose chunked body is read as an event stream.
class StreamClient {
public:
    StreamClient(std::uint16_t port, const std::string& path, const std::string& token,
                 const std::string& extra_headers = "") {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
        std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
        if (!token.empty()) request += "Authorization: Bearer " + token + "\r\n";
        request += extra_headers + "\r\n";
        ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL);
        // The status line and headers.
        auto deadline = std::chrono::steady_clock::now() + 10s;
        while (raw_.find("\r\n\r\n") == std::string::npos && read_some(deadline)) {
        }
        auto end = raw_.find("\r\n\r\n");
        if (end == std::string::npos) throw std::runtime_error("no response head: " + raw_);
        head_ = raw_.substr(0, end);
        raw_.erase(0, end + 4);
        status_ = std::stoi(head_.substr(9, 3));
        chunked_ = header("Transfer-Encoding") == "chunked";
        if (!chunked_) {
            // A refusal: a JSON body of Content-Length bytes.
            auto length = std::stoul(header("Content-Length"));
            while (raw_.size() < length && read_some(deadline)) {
            }
            body_ = raw_;
        }
    }
    ~StreamClient() { close(); }
    StreamClient(const StreamClient&) = delete;
    StreamClient& operator=(const StreamClient&) = delete;

    int status() const { return status_; }
    const std::string& body() const { return body_; }

    /// The value of a response header (case-insensitive name), or "".
    std::string header(const std::string& name) const {
        std::string lower_head = lower(head_);
        auto at = lower_head.find("\r\n" + lower(name) + ":");
        if (at == std::string::npos) return {};
        auto start = head_.find_first_not_of(' ', at + name.size() + 3);
        return head_.substr(start, head_.find("\r\n", start) - start);
    }

    /// The next event, or nullopt when the stream ended (or `timeout` passed;
    /// finished() tells which).
    std::optional<Event> next(std::chrono::milliseconds timeout = 10s) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            dechunk();
            auto end = body_.find("\n\n");
            if (end != std::string::npos) {
                std::string block = body_.substr(0, end + 1);
                body_.erase(0, end + 2);
                if (block.front() == ':') {
                    ++comments_;
                    continue;
                }
                return parse(block);
            }
            if (finished_ || !read_some(deadline)) return std::nullopt;
        }
    }

    /// Whether the stream ends with its last (empty) chunk (waiting for it
    /// up to `timeout`).
    bool finished(std::chrono::milliseconds timeout = 10s) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        dechunk();
        while (!finished_ && read_some(deadline)) dechunk();
        return finished_;
    }
    int comments() const { return comments_; }

    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    static std::string lower(std::string s) {
        for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
    }

    bool read_some(std::chrono::steady_clock::time_point deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0 || fd_ < 0) return false;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
        char buf[4096];
        auto n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) {
            eof_ = true;
            return false;
        }
        raw_.append(buf, static_cast<std::size_t>(n));
        return true;
    }

    void dechunk() {
        while (chunked_ && !finished_) {
            auto line_end = raw_.find("\r\n");
            if (line_end == std::string::npos) return;
            auto size = std::stoul(raw_.substr(0, line_end), nullptr, 16);
            if (raw_.size() < line_end + 2 + size + 2) return;
            if (size == 0) {
                finished_ = true;
                return;
            }
            body_ += raw_.substr(line_end + 2, size);
            raw_.erase(0, line_end + 2 + size + 2);
        }
    }

    static Event parse(const std::string& block) {
        Event e;
        std::size_t start = 0;
        bool has_data = false;
        while (start < block.size()) {
            auto end = block.find('\n', start);
            auto line = block.substr(start, end - start);
            start = end + 1;
            auto colon = line.find(": ");
            auto field = line.substr(0, colon);
            auto value = line.substr(colon + 2);
            if (field == "event") e.event = value;
            if (field == "id") e.id = value;
            if (field == "data") {
                if (has_data) e.data += "\n";
                e.data += value;
                has_data = true;
            }
        }
        return e;
    }

    int fd_ = -1;
    std::string raw_;
    std::string head_;
    std::string body_;
    int status_ = 0;
    bool chunked_ = false;
    bool finished_ = false;
    bool eof_ = false;
    int comments_ = 0;
};

/// The text of a line event (after the time), e.g. "line 3".
std::string text_of(const Event& e) {
    auto space = e.data.find(' ');
    return space == std::string::npos ? "" : e.data.substr(space + 1);
}

/// Reads events until the end event (or the deadline); the line events in
/// `lines`, the end's data returned (null when there was none).
Json read_to_end(StreamClient& stream, std::vector<Event>& lines,
                 std::chrono::milliseconds timeout = 20s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        auto e = stream.next(std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now()));
        if (!e) break;
        if (e->event == "end") return parse_json(e->data);
        lines.push_back(*e);
    }
    return nullptr;
}

std::string log_path(wharf::JobId id, const std::string& query = "follow=1") {
    return "/api/jobs/" + std::to_string(id) + "/log?" + query;
}

}  // namespace

TEST_CASE(
    "a followed job log sends each line once and in order as it is logged, then ends "
    "with the final state",
    "[http][log]") {
    LogHost host;
    auto job = host.enqueue_lines(R"({"lines":"40","hold_after":"20","pause_ms":"5"})");
    REQUIRE(eventually([&] { return host.state_of(job.id) == JobState::active; }));

    StreamClient stream(host.server->port(), log_path(job.id), kViewerToken);
    REQUIRE(stream.status() == 200);
    CHECK(stream.header("Content-Type") == "text/event-stream");
    CHECK(stream.header("Cache-Control") == "no-cache");
    CHECK(stream.header("Connection") == "close");
    CHECK(stream.header("Content-Encoding").empty());

    // The first 20 lines arrive while the job is held after line 20: they
    // were streamed, not sent at the end.
    std::vector<Event> lines;
    while (lines.size() < 20) {
        auto e = stream.next();
        REQUIRE(e);
        REQUIRE(e->event.empty());
        lines.push_back(*e);
    }
    CHECK(host.state_of(job.id) == JobState::active);
    CHECK(eventually([&] { return host.lines->held(); }));
    host.lines->release();

    auto end = read_to_end(stream, lines);
    REQUIRE(end.is_object());
    CHECK(stream.finished());
    CHECK(end["reason"] == "final");
    CHECK(end["state"] == "succeeded");
    CHECK(end["status"] == "Success");
    CHECK(end["result_message"] == "all lines logged");
    CHECK(end["job_id"] == job.id);
    REQUIRE(lines.size() == 40);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        INFO("event " << i << ": " << lines[i].data);
        CHECK(text_of(lines[i]) == "line " + std::to_string(i + 1));
        CHECK(lines[i].id == std::to_string(i + 1));  // the seq: the cursor
        CHECK(lines[i].data.rfind("20", 0) == 0);     // an RFC 3339 time first
    }
    CHECK(end["next_after"] == 40);
}

TEST_CASE("a followed log resumed from a cursor sends only the lines after it", "[http][log]") {
    LogHost host;
    auto job = host.enqueue_lines(R"({"lines":"12","hold_after":"6"})");
    REQUIRE(eventually([&] { return host.lines->held(); }));

    // Reconnecting mid-way with the last id seen, as a query or as an
    // EventSource's Last-Event-ID (which wins over the query).
    StreamClient by_query(host.server->port(), log_path(job.id, "follow=1&after=4"), kViewerToken);
    StreamClient by_header(host.server->port(), log_path(job.id, "follow=1&after=1"), kViewerToken,
                           "Last-Event-ID: 5\r\n");
    REQUIRE(by_query.status() == 200);
    REQUIRE(by_header.status() == 200);
    auto first = by_query.next();
    REQUIRE(first);
    CHECK(first->id == "5");
    CHECK(text_of(*first) == "line 5");
    host.lines->release();

    std::vector<Event> rest{*first};
    auto end = read_to_end(by_query, rest);
    CHECK(end["reason"] == "final");
    std::vector<std::string> ids;
    for (const auto& e : rest) ids.push_back(e.id);
    CHECK(ids == std::vector<std::string>{"5", "6", "7", "8", "9", "10", "11", "12"});

    std::vector<Event> after_header;
    CHECK(read_to_end(by_header, after_header)["reason"] == "final");
    REQUIRE(after_header.size() == 7);
    CHECK(after_header.front().id == "6");
    CHECK(after_header.back().id == "12");

    // A cursor at the end of a finished log: only the end event.
    StreamClient at_end(host.server->port(), log_path(job.id, "follow=1&after=12"), kViewerToken);
    std::vector<Event> none;
    auto only_end = read_to_end(at_end, none);
    CHECK(none.empty());
    CHECK(only_end["reason"] == "final");
    CHECK(only_end["next_after"] == 12);
}

TEST_CASE("following a finished job sends its lines and ends with its final state", "[http][log]") {
    LogHost host;
    auto ok = host.enqueue_lines(R"({"lines":"3"})");
    auto bad = host.enqueue_lines(R"({"lines":"2","outcome":"error"})");
    REQUIRE(eventually([&] {
        return host.state_of(ok.id) == JobState::succeeded &&
               host.state_of(bad.id) == JobState::error;
    }));

    StreamClient done(host.server->port(), log_path(ok.id, "follow=true"), kViewerToken);
    std::vector<Event> lines;
    auto end = read_to_end(done, lines);
    CHECK(done.finished());
    REQUIRE(lines.size() == 3);
    CHECK(text_of(lines[2]) == "line 3");
    CHECK(end["reason"] == "final");
    CHECK(end["state"] == "succeeded");

    StreamClient failed(host.server->port(), log_path(bad.id), kViewerToken);
    lines.clear();
    end = read_to_end(failed, lines);
    CHECK(lines.size() == 2);
    CHECK(end["reason"] == "final");
    CHECK(end["state"] == "error");
    CHECK(end["status"] == "Error");
    CHECK(end["result_message"] == "the lines ran out");

    // follow=0 is the paged form.
    auto paged = host.client(kViewerToken).get(log_path(ok.id, "follow=0"));
    CHECK(paged.status == 200);
    CHECK(parse_json(paged.body)["lines"].size() == 3);
}

TEST_CASE("a followed log is refused like the paged one: unknown job, no token, bad parameters",
          "[http][log]") {
    LogHost host;
    auto job = host.job_in_state("test/log", "{}", JobState::succeeded);
    const auto port = host.server->port();

    StreamClient unknown(port, log_path(987654), kViewerToken);
    CHECK(unknown.status() == 404);
    CHECK(unknown.header("Content-Type") == "application/json");
    CHECK(parse_json(unknown.body())["error"]["code"] == "not_found");
    unknown.close();  // idle connections would hold the server's stop for a keep-alive

    StreamClient anonymous(port, log_path(job.id), "");
    CHECK(anonymous.status() == 401);
    CHECK(parse_json(anonymous.body())["error"]["code"] == "unauthorized");
    anonymous.close();
    StreamClient bad_token(port, log_path(job.id), "not-a-token");
    CHECK(bad_token.status() == 401);
    bad_token.close();

    for (const auto& [query, field] :
         std::vector<std::pair<std::string, std::string>>{{"follow=yes", "follow"},
                                                          {"follow=1&limit=5", "limit"},
                                                          {"follow=1&format=text", "format"},
                                                          {"follow=1&after=-1", "after"},
                                                          {"follow=1&cursor=3", "cursor"}}) {
        INFO(query);
        StreamClient bad(port, log_path(job.id, query), kViewerToken);
        CHECK(bad.status() == 400);
        CHECK(parse_json(bad.body())["error"]["field"] == field);
    }
    StreamClient bad_header(port, log_path(job.id), kViewerToken, "Last-Event-ID: x\r\n");
    CHECK(bad_header.status() == 400);
    CHECK(parse_json(bad_header.body())["error"]["field"] == "Last-Event-ID");
    bad_header.close();

    // The viewer role is enough.
    StreamClient viewer(port, log_path(job.id), kViewerToken);
    CHECK(viewer.status() == 200);
    std::vector<Event> lines;
    CHECK(read_to_end(viewer, lines)["reason"] == "final");
}

TEST_CASE(
    "beyond the cap on open streams a follow gets 503 with Retry-After, and a client "
    "that leaves frees its place",
    "[http][log]") {
    LogHost host;  // 4 worker threads: at most 2 streams
    auto job = host.job_in_state("test/log", R"({"block":"true"})", JobState::active);
    const auto port = host.server->port();

    auto first = std::make_unique<StreamClient>(port, log_path(job.id), kViewerToken);
    StreamClient second(port, log_path(job.id), kViewerToken);
    REQUIRE(first->status() == 200);
    REQUIRE(second.status() == 200);
    StreamClient third(port, log_path(job.id), kViewerToken);
    CHECK(third.status() == 503);
    CHECK(third.header("Retry-After") == "5");
    auto error = parse_json(third.body())["error"];
    CHECK(error["code"] == "too_many_streams");
    CHECK_THAT(error["message"].get<std::string>(), Catch::Contains("2 job logs are followed"));
    // The paged log and other routes still answer: the rest of the workers are free.
    CHECK(host.client(kViewerToken).get(log_path(job.id, "after=0")).status == 200);

    // The first client goes away: the server notices and frees its place.
    first->close();
    std::unique_ptr<StreamClient> again;
    CHECK(eventually(
        [&] {
            again = std::make_unique<StreamClient>(port, log_path(job.id), kViewerToken);
            return again->status() == 200;
        },
        10s));

    // Both still get the job's end.
    host.consumer->release();
    std::vector<Event> lines;
    CHECK(read_to_end(second, lines)["state"] == "succeeded");
    CHECK(read_to_end(*again, lines)["state"] == "succeeded");
}

TEST_CASE("a stream ends after its maximum duration with the cursor to resume from",
          "[http][log]") {
    LogHost host;
    auto job = host.enqueue_lines(R"({"lines":"3","hold_after":"3"})");
    REQUIRE(eventually([&] { return host.lines->held(); }));

    // A second server over the same host, with short streams and one place.
    wharf::host::HttpServerOptions options;
    options.listen = "127.0.0.1:0";
    options.users_file = host.dir / "configs/users.yaml";
    options.worker_threads = 4;
    options.max_log_streams = 1;
    options.log_stream_max_duration = 300ms;
    options.keep_alive_timeout = 1s;
    wharf::host::HttpBackends backends;
    backends.jobs = host.engine->manager().get();
    backends.store = host.store.get();
    wharf::host::HttpServer server(options, backends);
    server.start();

    StreamClient stream(server.port(), log_path(job.id), kViewerToken);
    REQUIRE(stream.status() == 200);
    std::vector<Event> lines;
    auto end = read_to_end(stream, lines);
    CHECK(stream.finished());
    CHECK(lines.size() == 3);
    CHECK(end["reason"] == "timeout");
    CHECK(end["state"] == "active");
    CHECK(end["next_after"] == 3);

    // max_log_streams = 1: one at a time, and the next may come once it ended.
    StreamClient resumed(server.port(), log_path(job.id, "follow=1&after=3"), kViewerToken);
    REQUIRE(resumed.status() == 200);
    StreamClient one_more(server.port(), log_path(job.id), kViewerToken);
    CHECK(one_more.status() == 503);
    host.lines->release();
    lines.clear();
    end = read_to_end(resumed, lines);
    CHECK(lines.empty());
    CHECK(end["reason"] == "final");
    server.stop();
}

TEST_CASE("stopping the server ends open streams with a shutdown event", "[http][log]") {
    LogHost host;
    auto job = host.enqueue_lines(R"({"lines":"3","hold_after":"3"})");
    REQUIRE(eventually([&] { return host.lines->held(); }));
    StreamClient stream(host.server->port(), log_path(job.id), kViewerToken);
    REQUIRE(stream.status() == 200);
    std::vector<Event> lines;
    while (lines.size() < 3) {
        auto e = stream.next();
        REQUIRE(e);
        lines.push_back(*e);
    }

    std::thread stopper([&] { host.server->stop(); });
    auto end = read_to_end(stream, lines);
    stopper.join();
    CHECK(end["reason"] == "shutdown");
    CHECK(end["state"] == "active");
    CHECK(end["next_after"] == 3);
    CHECK(stream.finished());
    CHECK(lines.size() == 3);
    // The job itself goes on.
    CHECK(host.state_of(job.id) == JobState::active);
}

namespace {

// `wharf ARGS` run to its end; stdout and stderr together.
struct CliRun {
    int code = -1;
    std::string output;
};

CliRun run_cli(const LogHost& host, const std::string& args) {
    std::vector<std::string> argv = {WHARF_CLI_EXECUTABLE, "--server", host.url(), "--token",
                                     kViewerToken};
    std::istringstream words(args);
    for (std::string w; words >> w;) argv.push_back(w);
    static int n = 0;
    auto log = host.dir / ("cli-" + std::to_string(++n) + ".log");
    wharf::test::ChildProcess cli(argv, log);
    auto status = cli.wait(30s);
    CliRun r;
    r.output = cli.output();
    if (status && WIFEXITED(*status)) r.code = WEXITSTATUS(*status);
    return r;
}

}  // namespace

TEST_CASE("wharf jobs log --follow prints lines as they come and exits with the job's outcome",
          "[cli][http][log]") {
    LogHost host;
    auto job = host.enqueue_lines(R"({"lines":"8","hold_after":"4"})");
    REQUIRE(eventually([&] { return host.lines->held(); }));

    // Line 4 is printed while the job is held after it: the CLI streams.
    auto log = host.dir / "cli-follow.log";
    wharf::test::ChildProcess cli({WHARF_CLI_EXECUTABLE, "--server", host.url(), "--token",
                                   kViewerToken, "jobs", "log", std::to_string(job.id), "--follow"},
                                  log);
    REQUIRE(eventually([&] { return cli.output().find("line 4\n") != std::string::npos; }));
    CHECK_FALSE(cli.wait(0ms));
    host.lines->release();
    auto status = cli.wait(30s);
    REQUIRE(status);
    REQUIRE(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
    auto out = cli.output();
    INFO(out);
    std::size_t at = 0;
    for (int i = 1; i <= 8; ++i) {
        auto text = "  line " + std::to_string(i) + "\n";
        auto found = out.find(text, at);
        REQUIRE(found != std::string::npos);
        CHECK(out.find(text, found + 1) == std::string::npos);  // once
        at = found;
    }

    // A job that ends in error: exit 1, the state named.
    auto bad = host.enqueue_lines(R"({"lines":"2","outcome":"error"})");
    auto failed = run_cli(host, "jobs log " + std::to_string(bad.id) + " --follow");
    INFO(failed.output);
    CHECK(failed.code == 1);
    CHECK_THAT(failed.output, Catch::Contains("line 2"));
    CHECK_THAT(failed.output, Catch::Contains("job " + std::to_string(bad.id) +
                                              " ended Error (error): the lines ran out"));

    // --json: one object per line, then the end.
    auto json = run_cli(host, "jobs log " + std::to_string(job.id) + " --follow --json");
    CHECK(json.code == 0);
    std::vector<Json> objects;
    std::istringstream in(json.output);
    for (std::string line; std::getline(in, line);) objects.push_back(parse_json(line));
    REQUIRE(objects.size() == 9);
    CHECK(objects[0]["seq"] == 1);
    CHECK(objects[0]["line"] == "line 1");
    CHECK(objects[8]["reason"] == "final");

    // An unknown job: 5, as for the other job commands.
    auto unknown = run_cli(host, "jobs log 987654 --follow");
    CHECK(unknown.code == 5);
    CHECK_THAT(unknown.output, Catch::Contains("no job with id 987654"));
}
