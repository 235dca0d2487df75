// Repository read routes of the admin API, for the dashboard's content
// browser and for remote fetch from another wharfd: a node with its typed
// properties and a page of its children (with theirs when asked with
// properties=1), an asset's binary (streamed from the blob store, with Range
// and a sha256 digest), and who references a node.
//
// Paths come from the query string, percent-decoded by httplib, and are
// checked with the repository's own rules before anything is read: a bad one
// is 400 naming `path` and the reason, a missing node 404.
#include <openssl/evp.h>

#include <charconv>
#include <cmath>
#include <limits>

#include "http/api_context.hpp"
#include "http/json_codec.hpp"
#include "repository/path.hpp"
#include "repository/value_codec.hpp"

namespace wharf::host {
namespace {

using Json = nlohmann::json;
using httplib::Request;
using httplib::Response;

constexpr std::int64_t kMaxChildren = 1000;
constexpr std::int64_t kMaxReferences = 1000;
constexpr std::size_t kChunkBytes = 64 * 1024;

const wharf::Repository& repository_of(ApiContext& ctx) {
    if (!ctx.backends.repository)
        throw ApiError{503, "unavailable", "this host has no content repository", ""};
    return *ctx.backends.repository;
}

bool bool_param(const Request& req, const char* name) {
    if (!req.has_param(name)) return false;
    auto v = req.get_param_value(name);
    if (v != "true" && v != "false")
        throw ApiError{400, "invalid_argument",
                       std::string("'") + name + "' must be true or false, not '" + v + "'", name};
    return v == "true";
}

// The `path` parameter, checked as the repository checks paths.
std::string path_param(const Request& req) {
    if (!req.has_param("path"))
        throw ApiError{400, "invalid_argument", "'path' is required (e.g. path=/content/dam)",
                       "path"};
    if (req.get_param_value_count("path") > 1)
        throw ApiError{400, "invalid_argument", "'path' is given more than once", "path"};
    auto path = req.get_param_value("path");
    auto problem = repo::path_problem(path);
    if (!problem.empty())
        throw ApiError{400, "invalid_path",
                       "path " + repo::quote_path(path) + " is not valid: " + problem, "path"};
    return path;
}

std::string time_text(wharf::Date d) { return format_time(wharf::JobTime(d)); }

Json scalar_json(const wharf::Scalar& v) {
    return std::visit(
        [](const auto& x) -> Json {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::string>) {
                return x;
            } else if constexpr (std::is_same_v<T, double>) {
                if (std::isnan(x)) return "NaN";
                if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
                return x;
            } else if constexpr (std::is_same_v<T, wharf::Date>) {
                return time_text(x);
            } else if constexpr (std::is_same_v<T, wharf::PathRef>) {
                return x.path;
            } else {
                return x;  // std::int64_t, bool
            }
        },
        v);
}

Json node_json(const wharf::Node& n, bool with_properties) {
    Json j;
    j["path"] = n.path;
    j["name"] = n.path == "/" ? std::string() : std::string(n.name());
    j["type"] = repo::to_string(n.kind);
    j["size"] = n.binary ? Json(n.binary->size) : Json(nullptr);
    j["mime"] = n.binary ? Json(n.binary->mime_type) : Json(nullptr);
    j["sha256"] = n.binary ? Json(n.binary->sha256) : Json(nullptr);
    j["created"] = time_text(n.created);
    j["modified"] = time_text(n.modified);
    j["order"] = n.order;
    if (with_properties) {
        Json props = Json::object();
        for (const auto& [name, p] : n.properties) {
            Json values = Json::array();
            for (const auto& v : p.values) values.push_back(scalar_json(v));
            props[name] = {
                {"type", repo::to_string(p.type)}, {"multiple", p.multiple}, {"values", values}};
        }
        j["properties"] = std::move(props);
        if (n.kind == wharf::NodeKind::page) j["text"] = n.text;
    }
    return j;
}

Json relationship_json(const wharf::LiveRelationship& r) {
    return {{"blueprint", r.blueprint},
            {"live_copy", r.live_copy},
            {"rollout_configs", r.rollout_configs},
            {"deep", r.deep},
            {"excluded_paths", r.excluded_paths}};
}

void get_node(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    only_params(req, {"path", "limit", "cursor", "properties"});
    const auto& repo = repository_of(ctx);
    auto path = path_param(req);
    auto limit = int_param(req, "limit", 1, kMaxChildren, 100);
    // properties=1: each child with its properties (and a page's text), so a
    // client listing a folder needs no request per child.
    const bool child_properties = int_param(req, "properties", 0, 1, 0) == 1;
    std::optional<std::string> cursor;
    if (req.has_param("cursor")) cursor = req.get_param_value("cursor");
    auto node = repo.get(path);
    if (!node) throw ApiError{404, "not_found", "no node at " + repo::quote_path(path), "path"};
    wharf::ChildPage page;
    if (node->kind != wharf::NodeKind::asset) {
        try {
            page = repo.children(path, cursor, static_cast<std::size_t>(limit));
        } catch (const wharf::RepositoryError& e) {
            if (e.code() != wharf::RepositoryError::Code::invalid_path) throw;
            throw ApiError{400, "invalid_argument",
                           "'cursor' is not a cursor this API gave out: " + std::string(e.what()),
                           "cursor"};
        }
    }
    Json body;
    body["node"] = node_json(*node, true);
    Json live = Json::array();
    for (const auto& r : repo.live_relationships(path))
        if (r.blueprint == path) live.push_back(relationship_json(r));
    body["node"]["live_copies"] = std::move(live);
    auto governing = repo.live_relationship_of(path);
    body["node"]["live_relationship"] = governing ? relationship_json(*governing) : Json(nullptr);
    Json children = Json::array();
    for (const auto& c : page.nodes) children.push_back(node_json(c, child_properties));
    body["children"] = std::move(children);
    body["next_cursor"] = page.next_cursor ? Json(*page.next_cursor) : Json(nullptr);
    send_json(res, 200, body);
}

void get_references(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    only_params(req, {"path", "limit", "cursor", "subtree", "external"});
    const auto& repo = repository_of(ctx);
    auto path = path_param(req);
    auto limit = int_param(req, "limit", 1, kMaxReferences, 100);
    // The cursor counts the references already returned: the index is read in
    // its own order, and a page skips what earlier pages gave.
    auto skip = int_param(req, "cursor", 0, std::numeric_limits<std::int64_t>::max(), 0);
    bool subtree = bool_param(req, "subtree");
    bool external = bool_param(req, "external");
    if (external && !subtree)
        throw ApiError{400, "invalid_argument", "'external' needs subtree=true", "external"};
    Json items = Json::array();
    std::int64_t seen = 0;
    bool more = false;
    auto visit = [&](const wharf::Reference& r) {
        if (seen++ < skip) return true;
        if (static_cast<std::int64_t>(items.size()) == limit) {
            more = true;
            return false;
        }
        items.push_back({{"from", r.from_path}, {"property", r.property}, {"to", r.to_path}});
        return true;
    };
    if (subtree) {
        repo.referrers_under(path, external, visit);
    } else {
        repo.referrers(path, visit);
    }
    Json body;
    body["path"] = path;
    body["exists"] = repo.get(path).has_value();
    body["references"] = std::move(items);
    body["next_cursor"] = more ? Json(std::to_string(skip + limit)) : Json(nullptr);
    send_json(res, 200, body);
}

std::string hex_to_base64(const std::string& hex) {
    std::string raw;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        raw.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
    auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                             reinterpret_cast<const unsigned char*>(raw.data()),
                             static_cast<int>(raw.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

struct ByteRange {
    std::uint64_t first = 0;
    std::uint64_t last = 0;  ///< inclusive
};

bool parse_u64(std::string_view text, std::uint64_t& out) {
    if (text.empty()) return false;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

// One range of `bytes=a-b`, `bytes=a-` or `bytes=-n` against `size`. Another
// unit is ignored (std::nullopt: the whole binary); a range that is malformed,
// lists several ranges or lies beyond the end is ApiError 416.
std::optional<ByteRange> parse_range(const std::string& header, std::uint64_t size) {
    if (header.empty()) return std::nullopt;
    auto refuse = [&](const std::string& why) {
        return ApiError{416, "range_not_satisfiable",
                        "Range '" + header.substr(0, 100) + "' cannot be served: " + why +
                            " (the binary has " + std::to_string(size) + " bytes)",
                        "Range"};
    };
    constexpr std::string_view prefix = "bytes=";
    if (header.compare(0, prefix.size(), prefix) != 0) {
        if (header.find('=') != std::string::npos) return std::nullopt;  // another unit
        throw refuse("expected bytes=FIRST-LAST");
    }
    std::string_view spec = std::string_view(header).substr(prefix.size());
    while (!spec.empty() && spec.front() == ' ') spec.remove_prefix(1);
    while (!spec.empty() && spec.back() == ' ') spec.remove_suffix(1);
    if (spec.find(',') != std::string_view::npos) throw refuse("only one range is served");
    auto dash = spec.find('-');
    if (dash == std::string_view::npos) throw refuse("expected bytes=FIRST-LAST");
    auto a = spec.substr(0, dash);
    auto b = spec.substr(dash + 1);
    std::uint64_t first = 0, last = 0;
    if (a.empty()) {  // suffix: the last n bytes
        std::uint64_t n = 0;
        if (!parse_u64(b, n) || n == 0) throw refuse("a suffix range needs a length above 0");
        if (size == 0) throw refuse("the binary is empty");
        first = n >= size ? 0 : size - n;
        last = size - 1;
    } else {
        if (!parse_u64(a, first)) throw refuse("the first byte is not a number");
        if (b.empty()) {
            last = size == 0 ? 0 : size - 1;
        } else if (!parse_u64(b, last)) {
            throw refuse("the last byte is not a number");
        } else if (last < first) {
            throw refuse("the last byte is before the first");
        }
        if (first >= size) throw refuse("the first byte is beyond the end");
        if (last >= size) last = size - 1;
    }
    return ByteRange{first, last};
}

std::string quoted_name(std::string_view name) {
    std::string out;
    for (char c : name) {
        auto u = static_cast<unsigned char>(c);
        out += (c == '"' || c == '\\' || u < 0x20 || u >= 0x7f) ? '_' : c;
    }
    return out;
}

void get_binary(ApiContext& ctx, const Request& req, Response& res, const ApiUser&) {
    only_params(req, {"path"});
    const auto& repo = repository_of(ctx);
    auto path = path_param(req);
    auto node = repo.get(path);
    if (!node) throw ApiError{404, "not_found", "no node at " + repo::quote_path(path), "path"};
    if (node->kind != wharf::NodeKind::asset)
        throw ApiError{404, "not_found",
                       repo::quote_path(path) + " is a " + repo::to_string(node->kind) +
                           ", not an asset: it has no binary",
                       "path"};
    std::shared_ptr<wharf::BinaryReader> reader = repo.read_binary(path);
    if (!reader) throw ApiError{404, "not_found", "no binary at " + repo::quote_path(path), "path"};
    const auto info = reader->info();
    std::string etag = "\"" + info.sha256 + "\"";
    res.set_header("ETag", etag);
    res.set_header("X-Wharf-Sha256", info.sha256);
    res.set_header("Digest", "sha-256=" + hex_to_base64(info.sha256));
    res.set_header("Accept-Ranges", "bytes");
    res.set_header("Cache-Control", "private, no-cache");
    // Content comes from users: never let a browser run it on the dashboard's origin.
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Content-Security-Policy", "sandbox");
    res.set_header("Content-Disposition",
                   "inline; filename=\"" + quoted_name(node->name()) + "\"");
    std::string type = info.mime_type.empty() ? "application/octet-stream" : info.mime_type;

    // httplib would apply a Range by itself (and answer 206 or 416 its way);
    // this route answers ranges with its own checks, so take them from it.
    const_cast<Request&>(req).ranges.clear();
    auto inm = req.get_header_value("If-None-Match");
    if (!inm.empty() && (inm == etag || inm == "*")) {
        res.status = 304;
        return;
    }
    std::uint64_t first = 0;
    std::uint64_t length = info.size;
    res.status = 200;
    // If-Range with another validator: the client's partial copy is stale, send it all.
    auto if_range = req.get_header_value("If-Range");
    if (if_range.empty() || if_range == etag) {
        if (auto range = parse_range(req.get_header_value("Range"), info.size)) {
            first = range->first;
            length = range->last - range->first + 1;
            res.status = 206;
            res.set_header("Content-Range", "bytes " + std::to_string(range->first) + "-" +
                                                std::to_string(range->last) + "/" +
                                                std::to_string(info.size));
        }
    }
    if (length == 0) {
        res.set_content("", type);
        return;
    }
    auto log = ctx.log;
    res.set_content_provider(
        static_cast<std::size_t>(length), type,
        [reader, first, path, log, position = std::uint64_t(~0ull)](
            std::size_t offset, std::size_t remaining, httplib::DataSink& sink) mutable {
            try {
                auto at = first + offset;
                if (position != at) {
                    reader->seek(at);
                    position = at;
                }
                std::vector<char> buffer(std::min(remaining, kChunkBytes));
                auto n = reader->read(buffer.data(), buffer.size());
                if (n == 0) {
                    log->error("http binary ended early path={} offset={}", path, at);
                    return false;
                }
                position += n;
                return sink.write(buffer.data(), n);
            } catch (const std::exception& e) {
                log->error("http binary read failed path={} error=\"{}\"", path, e.what());
                return false;  // the client sees a truncated transfer
            }
        });
}

}  // namespace

const std::vector<RouteEntry>& repo_routes() {
    static const std::vector<RouteEntry> routes = {
        {"GET", R"(/api/repo/nodes)", "/api/repo/nodes", Role::viewer, get_node},
        {"GET", R"(/api/repo/binary)", "/api/repo/binary", Role::viewer, get_binary},
        {"GET", R"(/api/repo/references)", "/api/repo/references", Role::viewer, get_references},
    };
    return routes;
}

}  // namespace wharf::host
