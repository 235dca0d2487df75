#include "remote_fetch_operation.hpp"

#include <algorithm>
#include <atomic>
#include <boost/property_tree/json_parser.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "remote_client.hpp"
#include "wharf/paths.hpp"
#include "wharf/wording.hpp"

namespace wharf_remote_fetch {
namespace {

using boost::property_tree::ptree;
using wharf::OperationRefused;

constexpr std::size_t kMaxSummaries = 64;
constexpr std::size_t kRenameAttempts = 1000;

std::string parent_of(const std::string& path) { return std::string(wharf::parent_path(path)); }

std::string name_of(const std::string& path) { return std::string(wharf::name_of(path)); }

// The repository's own path rules (wharf/paths.hpp), checked before anything happens.
void check_path_shape(const char* field, const std::string& path, bool root_allowed) {
    if (path == "/" && !root_allowed)
        throw OperationRefused(field, path,
                               "the root '/' cannot be fetched: name a folder or an asset");
    if (auto problem = wharf::path_problem(path); !problem.empty())
        throw OperationRefused(field, path, "'" + path + "' is not a valid path: " + problem);
}

std::string request_key(const ptree& request) {
    std::ostringstream out;
    boost::property_tree::write_json(out, request, false);
    return out.str();
}

// --- typed values from the remote's JSON -----------------------------------------------

std::optional<wharf::Date> parse_date(const std::string& text) {
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, consumed = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s,
                    &consumed) != 6)
        return std::nullopt;
    std::size_t i = static_cast<std::size_t>(consumed);
    int ms = 0;
    if (i < text.size() && text[i] == '.') {
        int digits = 0;
        for (++i; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i)
            if (digits++ < 3) ms = ms * 10 + (text[i] - '0');
        while (digits++ < 3) ms *= 10;
    }
    int offset_minutes = 0;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
        int oh = 0, om = 0;
        if (std::sscanf(text.c_str() + i + 1, "%2d:%2d", &oh, &om) != 2) return std::nullopt;
        offset_minutes = (text[i] == '-' ? -1 : 1) * (oh * 60 + om);
    } else if (i >= text.size() || (text[i] != 'Z' && text[i] != 'z')) {
        return std::nullopt;
    }
    using namespace std::chrono;
    year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
    if (!ymd.ok()) return std::nullopt;
    auto t = sys_days(ymd) + hours(h) + minutes(mi) + seconds(s) + milliseconds(ms) -
             minutes(offset_minutes);
    return time_point_cast<milliseconds>(t);
}

wharf::Scalar scalar_of(wharf::PropertyType type, const std::string& text,
                        const std::string& name) {
    auto bad = [&](const char* what) -> std::runtime_error {
        return std::runtime_error("property '" + name + "': '" + text + "' is not " + what);
    };
    switch (type) {
        case wharf::PropertyType::string:
            return text;
        case wharf::PropertyType::path:
            return wharf::PathRef{text};
        case wharf::PropertyType::long_: {
            std::size_t used = 0;
            long long v = 0;
            try {
                v = std::stoll(text, &used);
            } catch (const std::exception&) {
                throw bad("a whole number");
            }
            if (used != text.size()) throw bad("a whole number");
            return static_cast<std::int64_t>(v);
        }
        case wharf::PropertyType::double_: {
            if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
            if (text == "Infinity") return std::numeric_limits<double>::infinity();
            if (text == "-Infinity") return -std::numeric_limits<double>::infinity();
            char* end = nullptr;
            double v = std::strtod(text.c_str(), &end);
            if (text.empty() || end != text.c_str() + text.size()) throw bad("a number");
            return v;
        }
        case wharf::PropertyType::boolean:
            if (text == "true") return true;
            if (text == "false") return false;
            throw bad("true or false");
        case wharf::PropertyType::date:
            if (auto d = parse_date(text)) return *d;
            throw bad("an RFC 3339 date");
    }
    return text;
}

std::optional<wharf::PropertyType> type_of(const std::string& name) {
    if (name == "String") return wharf::PropertyType::string;
    if (name == "Long") return wharf::PropertyType::long_;
    if (name == "Double") return wharf::PropertyType::double_;
    if (name == "Boolean") return wharf::PropertyType::boolean;
    if (name == "Date") return wharf::PropertyType::date;
    if (name == "Path") return wharf::PropertyType::path;
    return std::nullopt;
}

wharf::PropertyMap properties_of(const ptree& node) {
    wharf::PropertyMap out;
    auto props = node.get_child_optional("properties");
    if (!props) return out;
    for (const auto& [name, p] : *props) {
        if (name == kSourceProperty) continue;
        auto type_name = p.get<std::string>("type", "String");
        auto type = type_of(type_name);
        if (!type)
            throw std::runtime_error("property '" + name + "' has an unknown type '" + type_name +
                                     "'");
        wharf::Property property;
        property.type = *type;
        property.multiple = p.get<bool>("multiple", false);
        if (auto values = p.get_child_optional("values"))
            for (const auto& [k, v] : *values)
                property.values.push_back(scalar_of(*type, v.data(), name));
        if (!property.multiple && property.values.size() != 1)
            throw std::runtime_error("property '" + name + "' is single-valued but has " +
                                     std::to_string(property.values.size()) + " values");
        out[name] = std::move(property);
    }
    return out;
}

// --- the remote tree -------------------------------------------------------------------

struct Item {
    std::string remote_path;
    std::string local_path;
    std::uint64_t size = 0;
    std::string sha256;
    /// The node as the listing showed it, with its properties, when the remote
    /// listed them (saves a request per asset); otherwise read before transfer.
    std::optional<ptree> listed;
};

struct Listing {
    std::vector<Item> assets;
    std::vector<std::string> folders;                          // local, parents first
    std::vector<std::pair<std::string, std::string>> refused;  // remote path, why
    std::vector<std::string> pages;                            // remote pages skipped
    std::uint64_t bytes = 0;
};

bool is_null(const ptree& p) { return p.empty() && (p.data().empty() || p.data() == "null"); }

// Lists every requested path recursively, page by page. A path the remote
// does not have (or refuses) is recorded, not thrown: that row fails alone.
Listing list_remote(RemoteClient& client, const FetchRequest& request,
                    const std::function<bool()>& stop_requested) {
    Listing out;
    auto add_asset = [&](const ptree& node, const std::string& local) {
        Item item;
        item.remote_path = node.get<std::string>("path");
        item.local_path = local;
        item.size = node.get<std::uint64_t>("size", 0);
        item.sha256 = node.get<std::string>("sha256", "");
        if (node.get_child_optional("properties")) item.listed = node;
        out.bytes += item.size;
        out.assets.push_back(std::move(item));
    };
    for (const auto& path : request.paths) {
        ptree root;
        try {
            root = client.listing(path, {}, 1000);
        } catch (const FetchError& e) {
            if (e.kind() != FetchError::Kind::asset) throw;
            out.refused.emplace_back(path, e.what());
            continue;
        }
        const auto& node = root.get_child("node");
        auto type = node.get<std::string>("type", "");
        auto local_root = wharf::child_path(request.destination, wharf::name_of(path));
        if (type == "asset") {
            add_asset(node, local_root);
            continue;
        }
        if (type != "folder") {
            out.refused.emplace_back(
                path, "'" + path + "' is a " + type + ": remote fetch fetches assets and folders");
            continue;
        }
        // Depth first, with the first page of the root already at hand.
        std::deque<std::pair<std::string, std::string>> folders{{path, local_root}};
        std::optional<ptree> first = std::move(root);
        while (!folders.empty()) {
            auto [remote_folder, local_folder] = folders.front();
            folders.pop_front();
            out.folders.push_back(local_folder);
            std::string cursor;
            for (;;) {
                if (stop_requested()) throw FetchError(FetchError::Kind::stopped, "stopped");
                ptree page =
                    first ? std::move(*first) : client.listing(remote_folder, cursor, 1000);
                first.reset();
                if (auto children = page.get_child_optional("children")) {
                    for (const auto& [k, child] : *children) {
                        auto child_path = child.get<std::string>("path");
                        auto child_local = wharf::child_path(local_folder, wharf::name_of(child_path));
                        auto child_type = child.get<std::string>("type", "");
                        if (child_type == "asset")
                            add_asset(child, child_local);
                        else if (child_type == "folder")
                            folders.emplace_back(child_path, child_local);
                        else
                            out.pages.push_back(child_path);
                    }
                }
                auto next = page.get_child_optional("next_cursor");
                if (!next || is_null(*next)) break;
                cursor = next->data();
            }
        }
    }
    return out;
}

// --- local conflicts -------------------------------------------------------------------

std::string source_of(const std::string& remote, const std::string& remote_path) {
    return remote + ":" + remote_path;
}

bool fetched_before(const wharf::Node& node, const std::string& source, const std::string& sha) {
    if (node.kind != wharf::NodeKind::asset || !node.binary) return false;
    auto p = node.properties.find(kSourceProperty);
    if (p == node.properties.end() || p->second.values.size() != 1) return false;
    const auto* value = std::get_if<std::string>(&p->second.values.front());
    return value && *value == source && node.binary->sha256 == sha;
}

// "photo.jpg" -> "photo-2.jpg", "folder" -> "folder-2".
std::string numbered(const std::string& path, std::size_t n) {
    auto parent = parent_of(path);
    auto name = name_of(path);
    auto dot = name.rfind('.');
    if (dot == std::string::npos || dot == 0) return wharf::child_path(parent, name + "-" + std::to_string(n));
    return wharf::child_path(parent, name.substr(0, dot) + "-" + std::to_string(n) + name.substr(dot));
}

struct Placement {
    enum class Kind { place, present, conflict } kind = Kind::place;
    std::string path;      // where the asset goes (or is)
    bool replace = false;  // overwrite: remove the asset there first
    std::string message;
};

// Where the asset fetched from `source` with digest `sha` goes, as the
// repository is now.
Placement place(const wharf::Repository& repo, const std::string& path, Conflict conflict,
                const std::string& source, const std::string& sha) {
    Placement out;
    out.path = path;
    auto existing = repo.get(path);
    if (!existing) return out;
    if (fetched_before(*existing, source, sha)) {
        out.kind = Placement::Kind::present;
        return out;
    }
    switch (conflict) {
        case Conflict::fail:
            out.kind = Placement::Kind::conflict;
            out.message = "'" + path + "' exists (conflict: fail; use rename or overwrite)";
            return out;
        case Conflict::overwrite:
            if (existing->kind != wharf::NodeKind::asset) {
                out.kind = Placement::Kind::conflict;
                out.message = "'" + path + "' is a " +
                              (existing->kind == wharf::NodeKind::folder ? "folder" : "page") +
                              ": overwrite replaces assets only";
                return out;
            }
            out.replace = true;
            return out;
        case Conflict::rename:
            for (std::size_t n = 1; n <= kRenameAttempts; ++n) {
                auto candidate = numbered(path, n);
                auto taken = repo.get(candidate);
                if (!taken) {
                    out.path = candidate;
                    return out;
                }
                if (fetched_before(*taken, source, sha)) {
                    out.kind = Placement::Kind::present;
                    out.path = candidate;
                    return out;
                }
            }
            out.kind = Placement::Kind::conflict;
            out.message = "'" + path + "' and " + std::to_string(kRenameAttempts) +
                          " numbered names after it are taken";
            return out;
    }
    return out;
}

// --- one run ---------------------------------------------------------------------------

// What a transfer thread hands the run's thread.
struct Transfer {
    std::size_t index = 0;
    enum class Kind { fetched, present, failed } kind = Kind::failed;
    std::string message;
    std::string path;  // local path (present)
    wharf::BinaryInfo binary;
    wharf::PropertyMap properties;
    wharf::Date created{};
};

class Run {
public:
    Run(wharf::Repository& repo, const FetchRequest& request, const FetchSettings& settings,
        const RemoteSettings& remote, std::string token, wharf::JobContext& context)
        : repo_(repo),
          request_(request),
          settings_(settings),
          remote_(remote),
          token_(std::move(token)),
          context_(context) {}

    wharf::JobResult execute();

private:
    // The listing's client: it runs on the run's thread, so it logs directly.
    RemoteClient lister() {
        return RemoteClient(remote_, settings_, token_, &cancel_,
                            [this](const std::string& line) { context_.log(line); });
    }
    void post_log(const std::string& line) {
        std::lock_guard lock(mutex_);
        logs_.push_back(line);
        cv_.notify_all();
    }
    void post(Transfer t) {
        std::lock_guard lock(mutex_);
        results_.push_back(std::move(t));
        cv_.notify_all();
    }
    void fatal(const FetchError& e) {
        std::lock_guard lock(mutex_);
        if (!fatal_) fatal_.emplace(e.kind(), e.what());
        cancel_ = true;
        cv_.notify_all();
    }
    void worker(std::size_t slot);
    Transfer transfer(RemoteClient& client, std::size_t index, std::atomic<std::int64_t>& moving);
    // Reads the metadata (unless `listed`), streams and verifies the binary.
    Transfer fetch(RemoteClient& client, const Item& item, const std::string& source,
                   const std::optional<ptree>& listed, std::atomic<std::int64_t>& moving);
    void settle(Transfer& t);
    void drain(bool wait);
    void report(const Item& item, const std::string& local, std::uint64_t bytes,
                const char* outcome, const std::string& message);

    wharf::Repository& repo_;
    const FetchRequest& request_;
    const FetchSettings& settings_;
    const RemoteSettings& remote_;
    std::string token_;
    wharf::JobContext& context_;

    Listing listing_;
    std::atomic<bool> cancel_{false};
    std::atomic<std::size_t> next_{0};
    // Progress in bytes: sizes of settled assets plus what each transfer
    // thread has received of the asset in its hands.
    std::unique_ptr<std::atomic<std::int64_t>[]> moving_;
    std::int64_t settled_bytes_ = 0;
    std::int64_t reported_ = 0;

    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<Transfer> results_;
    std::vector<std::string> logs_;
    std::optional<FetchError> fatal_;
    std::size_t running_ = 0;
    std::size_t workers_ = 0;

    std::uint64_t fetched_ = 0, fetched_bytes_ = 0, present_ = 0, failed_ = 0;
    bool resumed_ = false;
};

void Run::report(const Item& item, const std::string& local, std::uint64_t bytes,
                 const char* outcome, const std::string& message) {
    context_.report_row({item.remote_path, local, std::to_string(bytes), outcome, message});
}

Transfer Run::transfer(RemoteClient& client, std::size_t index, std::atomic<std::int64_t>& moving) {
    const auto& item = listing_.assets[index];
    const auto source = source_of(request_.remote, item.remote_path);
    Transfer t;
    t.index = index;
    auto before = place(repo_, item.local_path, request_.conflict, source, item.sha256);
    if (before.kind == Placement::Kind::present) {
        t.kind = Transfer::Kind::present;
        t.path = before.path;
        return t;
    }
    if (before.kind == Placement::Kind::conflict) {
        t.message = before.message;
        return t;
    }
    try {
        t = fetch(client, item, source, item.listed, moving);
    } catch (const FetchError& e) {
        // Changed on the remote since it was listed: once more, as it is now.
        if (!item.listed || !e.changed()) throw;
        t = fetch(client, item, source, std::nullopt, moving);
    }
    t.index = index;
    return t;
}

Transfer Run::fetch(RemoteClient& client, const Item& item, const std::string& source,
                    const std::optional<ptree>& listed, std::atomic<std::int64_t>& moving) {
    Transfer t;
    // Metadata as the listing showed it, or as it is now.
    ptree answer;
    if (!listed) answer = client.node(item.remote_path, {}, 1);
    const auto& node = listed ? *listed : answer.get_child("node");
    if (node.get<std::string>("type", "") != "asset") {
        t.message = "'" + item.remote_path + "' is no longer an asset on the remote";
        return t;
    }
    auto sha = node.get<std::string>("sha256", "");
    auto mime = node.get<std::string>("mime", "");
    if (sha != item.sha256) {
        // Changed since the listing: maybe to what we already have.
        auto again = place(repo_, item.local_path, request_.conflict, source, sha);
        if (again.kind == Placement::Kind::present) {
            t.kind = Transfer::Kind::present;
            t.path = again.path;
            return t;
        }
    }
    try {
        t.properties = properties_of(node);
    } catch (const std::exception& e) {
        t.message = std::string("metadata not usable: ") + e.what();
        return t;
    }
    if (auto created = parse_date(node.get<std::string>("created", ""))) t.created = *created;
    auto writer = client.download(
        item.remote_path, sha, [this] { return repo_.write_binary(); }, moving);
    try {
        t.binary = writer->finish(mime, sha);
    } catch (const wharf::RepositoryError& e) {
        t.message = std::string("not stored: ") + e.what();
        return t;
    }
    t.kind = Transfer::Kind::fetched;
    return t;
}

void Run::worker(std::size_t slot) {
    std::optional<RemoteClient> client;
    try {
        client.emplace(remote_, settings_, token_, &cancel_,
                       [this](const std::string& line) { post_log(line); });
    } catch (const std::exception& e) {
        fatal(FetchError(FetchError::Kind::protocol, e.what()));
    }
    auto& moving = moving_[slot];
    while (client && !cancel_.load()) {
        auto index = next_.fetch_add(1);
        if (index >= listing_.assets.size()) break;
        Transfer t;
        t.index = index;
        bool stop = false;
        try {
            t = transfer(*client, index, moving);
        } catch (const FetchError& e) {
            if (e.kind() == FetchError::Kind::asset) {
                t.kind = Transfer::Kind::failed;
                t.message = e.what();
            } else {
                if (e.kind() != FetchError::Kind::stopped) fatal(e);
                stop = true;
            }
        } catch (const std::exception& e) {
            t.kind = Transfer::Kind::failed;
            t.message = e.what();
        }
        // The asset's bytes now count through its size once it is settled.
        moving = 0;
        if (stop) break;
        post(std::move(t));
    }
    std::lock_guard lock(mutex_);
    --running_;
    cv_.notify_all();
}

// On the run's thread: the asset goes into the repository in one transaction
// (folders, node, metadata), or its row fails.
void Run::settle(Transfer& t) {
    const auto& item = listing_.assets[t.index];
    if (t.kind == Transfer::Kind::present) {
        ++present_;
        if (!resumed_) report(item, t.path, item.size, "skipped", "already fetched (same sha256)");
        return;
    }
    if (t.kind == Transfer::Kind::failed) {
        ++failed_;
        report(item, item.local_path, 0, "failed", t.message);
        context_.log("fetch failed remote_path=" + item.remote_path + " reason=" + t.message);
        return;
    }
    const auto source = source_of(request_.remote, item.remote_path);
    auto where = place(repo_, item.local_path, request_.conflict, source, t.binary.sha256);
    if (where.kind == Placement::Kind::present) {
        ++present_;
        if (!resumed_)
            report(item, where.path, item.size, "skipped", "already fetched (same sha256)");
        return;
    }
    if (where.kind == Placement::Kind::conflict) {
        ++failed_;
        report(item, item.local_path, 0, "failed", where.message);
        return;
    }
    try {
        wharf::SessionOptions options;
        options.batch_size = 16;
        auto session = repo_.open_session(options);
        session->create_folders(parent_of(where.path));
        if (where.replace) session->remove(where.path);
        wharf::Node node;
        node.path = where.path;
        node.kind = wharf::NodeKind::asset;
        node.properties = std::move(t.properties);
        node.properties[kSourceProperty] = wharf::Property::string(source);
        node.binary = t.binary;
        node.created = t.created;
        session->create(node);
        session->commit();
    } catch (const wharf::RepositoryError& e) {
        ++failed_;
        report(item, where.path, 0, "failed", std::string("not created: ") + e.what());
        return;
    }
    ++fetched_;
    fetched_bytes_ += t.binary.size;
    std::string message = where.replace ? "overwritten" : "";
    if (where.path != item.local_path) message = "renamed (name taken)";
    report(item, where.path, t.binary.size, "fetched", message);
    if (fetched_ % 100 == 0)
        context_.log("fetched " + wharf::grouped(fetched_) + " of " +
                     wharf::grouped(listing_.assets.size()) + " assets (" +
                     human_bytes(fetched_bytes_) + ")");
}

// Settles what the transfer threads handed over, passes on their log lines
// and the bytes moved, and notices a stop. With `wait`, blocks briefly for
// news first.
void Run::drain(bool wait) {
    std::deque<Transfer> results;
    std::vector<std::string> logs;
    {
        std::unique_lock lock(mutex_);
        if (wait && results_.empty() && logs_.empty() && running_ > 0)
            cv_.wait_for(lock, std::chrono::milliseconds(100));
        results.swap(results_);
        logs.swap(logs_);
    }
    for (const auto& line : logs) context_.log(line);
    for (auto& t : results) {
        // An asset that ended another way (failed, skipped) counts as done
        // for the progress bar too.
        settle(t);
        settled_bytes_ += static_cast<std::int64_t>(listing_.assets[t.index].size);
    }
    auto done = settled_bytes_;
    for (std::size_t i = 0; i < workers_; ++i) done += moving_[i].load();
    if (done > reported_) {
        context_.increment_progress(done - reported_);
        reported_ = done;
    }
    if (context_.is_stopped()) cancel_ = true;
}

wharf::JobResult Run::execute() {
    const auto id = context_.job().id;
    resumed_ = id > 0 && context_.checkpoint("started").has_value();
    if (id > 0 && !resumed_) context_.checkpoint("started", "1");
    const std::string label = "remote '" + remote_.name + "' (" + remote_.url + ")";
    try {
        auto client = lister();
        listing_ = list_remote(client, request_, [this] { return context_.is_stopped(); });
    } catch (const FetchError& e) {
        switch (e.kind()) {
            case FetchError::Kind::unreachable:
                return wharf::JobResult::failed(e.what());
            case FetchError::Kind::stopped:
                return wharf::JobResult::failed("stopped while listing the remote");
            default:
                return wharf::JobResult::error(e.what());
        }
    }
    context_.log("listed " + wharf::grouped(listing_.assets.size()) + " assets (" +
                 human_bytes(listing_.bytes) + ") in " + wharf::grouped(listing_.folders.size()) +
                 " folders from " + label + (resumed_ ? "; resuming" : ""));
    context_.init_progress(static_cast<std::int64_t>(listing_.bytes));
    if (!resumed_)
        context_.report_row({"remote path", "local path", "bytes", "outcome", "message"});
    for (const auto& [path, why] : listing_.refused) {
        ++failed_;
        if (!resumed_) context_.report_row({path, "", "0", "failed", why});
        context_.log("fetch failed remote_path=" + path + " reason=" + why);
    }
    for (const auto& page : listing_.pages)
        if (!resumed_) context_.report_row({page, "", "0", "skipped", "a page: not fetched"});
    // A re-run after a crash does not report these again: they must be stored
    // (a job checkpoint stores what was reported before it), not buffered.
    if (id > 0 && !resumed_) context_.checkpoint("listed", "1");

    // Transfers: each thread takes the next asset; the progress counts bytes
    // as they arrive, and an asset that ends another way counts its size.
    std::vector<std::thread> threads;
    workers_ = std::min<std::size_t>(settings_.parallel_transfers, listing_.assets.size());
    moving_ = std::make_unique<std::atomic<std::int64_t>[]>(workers_);
    for (std::size_t i = 0; i < workers_; ++i) moving_[i] = 0;
    running_ = workers_;
    for (std::size_t i = 0; i < workers_; ++i) threads.emplace_back([this, i] { worker(i); });
    for (;;) {
        drain(true);
        std::lock_guard lock(mutex_);
        if (running_ == 0) break;
    }
    for (auto& t : threads) t.join();
    drain(false);

    const bool stopped = context_.is_stopped();
    if (!fatal_ && !stopped) {
        // Empty folders too, so the local tree has the remote's shape.
        try {
            auto session = repo_.open_session();
            for (const auto& folder : listing_.folders) {
                auto existing = repo_.get(folder);
                if (!existing) session->create_folders(folder);
            }
            session->commit();
        } catch (const wharf::RepositoryError& e) {
            context_.log(std::string("some empty folders were not created: ") + e.what());
        }
    }
    auto total = listing_.assets.size();
    auto summary = "fetched " + wharf::grouped(fetched_) + " of " + wharf::grouped(total) + " assets (" +
                   human_bytes(fetched_bytes_) + ") from " + label;
    if (present_ > 0) summary += "; " + wharf::grouped(present_) + " already fetched";
    if (failed_ > 0) summary += "; " + wharf::grouped(failed_) + " failed (see the report)";
    if (fatal_) {
        auto message = std::string(fatal_->what()) + "; " + summary;
        context_.log(message);
        if (fatal_->kind() == FetchError::Kind::unreachable)
            return wharf::JobResult::failed(message);
        return wharf::JobResult::error(message);
    }
    if (stopped) {
        auto message = "stopped: " + summary + "; submit the same request again to fetch the rest";
        context_.log(message);
        return wharf::JobResult::failed(message);
    }
    context_.log(summary);
    if (failed_ > 0) return wharf::JobResult::error(summary);
    return wharf::JobResult::succeeded(summary);
}

}  // namespace

std::string human_bytes(std::uint64_t bytes) {
    if (bytes < 1024) return wharf::grouped(bytes) + (bytes == 1 ? " byte" : " bytes");
    const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    double value = static_cast<double>(bytes) / 1024;
    std::size_t unit = 0;
    while (value >= 1024 && unit + 1 < std::size(units)) {
        value /= 1024;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
    return text;
}

RemoteFetchOperation::RemoteFetchOperation(std::shared_ptr<wharf::Repository> repository)
    : repository_(std::move(repository)), settings_(std::make_shared<FetchSettings>()) {}

void RemoteFetchOperation::configure(FetchSettings settings) {
    auto next = std::make_shared<const FetchSettings>(std::move(settings));
    std::lock_guard lock(mutex_);
    settings_ = std::move(next);
}

std::shared_ptr<const FetchSettings> RemoteFetchOperation::settings() const {
    std::lock_guard lock(mutex_);
    return settings_;
}

wharf::OperationDescriptor RemoteFetchOperation::descriptor() const {
    wharf::OperationDescriptor d;
    d.name = "remote-fetch";
    d.title = "Fetch remote assets";
    d.topic = kTopic;
    d.config = kConfigName;
    d.unit = "bytes";
    auto remote = wharf::make_field(
        "remote", wharf::ConfigType::string,
        "Name of a remote in operations/remote-fetch.yaml (remotes:), e.g. dam-eu");
    remote.required = true;
    auto paths = wharf::make_field("paths", wharf::ConfigType::list,
                                   "Remote assets and folders (folders with everything under "
                                   "them), one per line");
    paths.required = true;
    paths.minimum = 1;
    auto item = wharf::make_field("", wharf::ConfigType::string, "");
    item.format = "path";
    paths.item.push_back(item);
    auto destination = wharf::make_field(
        "destination", wharf::ConfigType::string,
        "Local folder the fetched assets and folders go into (created if missing)");
    destination.required = true;
    destination.format = "path";
    auto conflict = wharf::make_field(
        "conflict", wharf::ConfigType::string,
        "When a local node has the name: fail the asset, rename it (name-1.jpg) or overwrite "
        "the local asset",
        "fail");
    conflict.one_of = {"fail", "rename", "overwrite"};
    d.request_schema = {remote, paths, destination, conflict};
    return d;
}

FetchRequest RemoteFetchOperation::parse(const ptree& request) const {
    for (const auto& [key, value] : request) {
        if (key != "remote" && key != "paths" && key != "destination" && key != "conflict" &&
            key != wharf::kJobDescriptionKey)
            throw OperationRefused(
                key, value.data(),
                "unknown field '" + key + "' (known: remote, paths, destination, conflict)");
    }
    FetchRequest out;
    out.remote = request.get<std::string>("remote", "");
    auto current = settings();
    if (out.remote.empty())
        throw OperationRefused("remote", "",
                               "'remote' is required: the name of a remote in "
                               "operations/remote-fetch.yaml");
    if (!current->remotes.count(out.remote)) {
        std::string known;
        for (const auto& [name, r] : current->remotes) known += (known.empty() ? "" : ", ") + name;
        throw OperationRefused("remote", out.remote,
                               "unknown remote '" + out.remote + "' (" +
                                   (known.empty() ? std::string("no remotes are configured in "
                                                                "operations/remote-fetch.yaml")
                                                  : "known: " + known) +
                                   ")");
    }
    auto paths = request.get_child_optional("paths");
    if (!paths || (paths->empty() && paths->data().empty()))
        throw OperationRefused("paths", "",
                               "'paths' is required: a list of remote asset and folder paths");
    if (paths->empty()) {
        out.paths.push_back(paths->data());
    } else {
        for (const auto& [key, value] : *paths) {
            if (!value.empty())
                throw OperationRefused("paths", "", "'paths' must be a list of strings");
            out.paths.push_back(value.data());
        }
    }
    std::set<std::string> seen, names;
    for (const auto& p : out.paths) {
        check_path_shape("paths", p, false);
        if (!seen.insert(p).second)
            throw OperationRefused("paths", p, "'" + p + "' is listed twice");
    }
    for (const auto& p : out.paths) {
        std::string ancestor(wharf::listed_ancestor(
            p, [&seen](std::string_view a) { return seen.count(std::string(a)) > 0; }));
        if (!ancestor.empty())
            throw OperationRefused("paths", p,
                                   "'" + p + "' is inside '" + ancestor +
                                       "', which is fetched too: list only '" + ancestor + "'");
        if (!names.insert(name_of(p)).second)
            throw OperationRefused(
                "paths", p,
                "two paths end in '" + name_of(p) + "': they would land on the same local name");
    }
    out.destination = request.get<std::string>("destination", "");
    if (out.destination.empty())
        throw OperationRefused("destination", "",
                               "'destination' is required: the local folder to fetch into");
    check_path_shape("destination", out.destination, true);
    auto conflict = request.get<std::string>("conflict", "fail");
    if (conflict == "fail" || conflict.empty())
        out.conflict = Conflict::fail;
    else if (conflict == "rename")
        out.conflict = Conflict::rename;
    else if (conflict == "overwrite")
        out.conflict = Conflict::overwrite;
    else
        throw OperationRefused(
            "conflict", conflict,
            "'conflict' must be fail, rename or overwrite, not '" + conflict + "'");
    return out;
}

void RemoteFetchOperation::validate(const ptree& request) const {
    auto parsed = parse(request);
    // The destination (or what of it exists) must be folders all the way.
    for (std::string at = parsed.destination;; at = parent_of(at)) {
        std::optional<wharf::Node> node;
        try {
            node = repository_->get(at);
        } catch (const wharf::RepositoryError& e) {
            throw OperationRefused("destination", parsed.destination,
                                   "'" + parsed.destination + "' is not a valid path: " + e.what());
        }
        if (node && node->kind != wharf::NodeKind::folder) {
            auto kind = node->kind == wharf::NodeKind::asset ? "an asset" : "a page";
            throw OperationRefused(
                "destination", parsed.destination,
                at == parsed.destination
                    ? "'" + at + "' is " + kind + ": the destination must be a folder"
                    : "'" + parsed.destination + "' is under '" + at + "', which is " + kind +
                          ": the destination must be a folder");
        }
        if (node || at == "/") break;
    }
    auto current = settings();
    const auto& remote = current->remotes.at(parsed.remote);
    try {
        (void)read_token(remote.token_file);
    } catch (const std::exception& e) {
        throw OperationRefused("remote", parsed.remote,
                               "remote '" + parsed.remote + "': " + e.what());
    }
}

std::uint64_t RemoteFetchOperation::count(const ptree& request) const {
    auto parsed = parse(request);
    auto current = settings();
    const auto& remote = current->remotes.at(parsed.remote);
    std::atomic<bool> never{false};
    Listing listing;
    try {
        RemoteClient client(remote, *current, read_token(remote.token_file), &never, {});
        listing = list_remote(client, parsed, [] { return false; });
    } catch (const FetchError& e) {
        // Nothing can be fetched from a remote that is down or refuses us:
        // say so now rather than queue a job that fails.
        throw OperationRefused("remote", parsed.remote, e.what());
    } catch (const std::runtime_error& e) {
        throw OperationRefused("remote", parsed.remote,
                               "remote '" + parsed.remote + "': " + e.what());
    }
    std::lock_guard lock(mutex_);
    if (summaries_.size() >= kMaxSummaries) summaries_.clear();
    summaries_[request_key(request)] = Summary{listing.assets.size(), listing.bytes};
    return listing.bytes;
}

std::string RemoteFetchOperation::describe(const ptree& request, std::uint64_t count) const {
    auto parsed = parse(request);
    std::optional<Summary> summary;
    {
        std::lock_guard lock(mutex_);
        auto found = summaries_.find(request_key(request));
        if (found != summaries_.end()) summary = found->second;
    }
    std::string text = "Fetch ";
    if (summary)
        text += wharf::grouped(summary->assets) + (summary->assets == 1 ? " asset (" : " assets (") +
                human_bytes(count) + ")";
    else
        text += human_bytes(count);
    text += " from " + parsed.remote + ":";
    for (std::size_t i = 0; i < parsed.paths.size() && i < 3; ++i)
        text += (i > 0 ? ", " : "") + parsed.paths[i];
    if (parsed.paths.size() > 3)
        text += " and " + std::to_string(parsed.paths.size() - 3) + " more";
    text += " to " + parsed.destination;
    return text;
}

wharf::JobResult RemoteFetchOperation::run(wharf::JobContext& context) {
    FetchRequest request;
    try {
        request = parse(context.payload());
    } catch (const OperationRefused& e) {
        return wharf::JobResult::error(std::string("refused: ") + e.what());
    }
    auto current = settings();
    const auto& remote = current->remotes.at(request.remote);
    std::string token;
    try {
        token = read_token(remote.token_file);
    } catch (const std::exception& e) {
        return wharf::JobResult::error("remote '" + remote.name + "': " + e.what());
    }
    Run run(*repository_, request, *current, remote, std::move(token), context);
    return run.execute();
}

}  // namespace wharf_remote_fetch
