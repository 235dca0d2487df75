#include "delete_operation.hpp"

#include <algorithm>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "wharf/paths.hpp"
#include "wharf/wording.hpp"

namespace wharf_delete {
namespace {

using boost::property_tree::ptree;
using wharf::OperationRefused;

constexpr std::size_t kListedReferrers = 100;

// Whether `path` is one of `roots` or below one: its ancestors are looked up,
// so the cost is the path's depth, not the number of roots.
bool in_set(const std::set<std::string, std::less<>>& roots, std::string_view path) {
    auto listed = [&roots](std::string_view p) { return roots.count(p) > 0; };
    return listed(path) || !wharf::listed_ancestor(path, listed).empty();
}

// The repository's own rules (wharf/paths.hpp), checked before anything happens.
void check_path_shape(const std::string& path) {
    if (path == "/") throw OperationRefused("paths", path, "the root '/' cannot be deleted");
    if (auto problem = wharf::path_problem(path); !problem.empty())
        throw OperationRefused("paths", path, "'" + path + "' is not a valid path: " + problem);
}

bool parse_bool(const ptree& request, const char* name) {
    auto value = request.get_optional<std::string>(name);
    if (!value || value->empty() || *value == "false" || *value == "0") return false;
    if (*value == "true" || *value == "1") return true;
    throw OperationRefused(
        name, *value, std::string("'") + name + "' must be true or false, not '" + *value + "'");
}

// The request's shape: known fields, a list of distinct, non-overlapping,
// well-formed paths. Existence and references are checked by validate().
DeleteRequest parse(const ptree& request) {
    for (const auto& [key, value] : request) {
        if (key != "paths" && key != "force")
            throw OperationRefused(key, value.data(),
                                   "unknown field '" + key + "' (known: paths, force)");
    }
    DeleteRequest out;
    auto paths = request.get_child_optional("paths");
    if (!paths || (paths->empty() && paths->data().empty()))
        throw OperationRefused("paths", "",
                               "'paths' is required: a list of asset and folder paths");
    if (paths->empty()) {
        out.paths.push_back(paths->data());  // one path given as a plain string
    } else {
        for (const auto& [key, value] : *paths) {
            if (!value.empty())
                throw OperationRefused("paths", "", "'paths' must be a list of strings");
            out.paths.push_back(value.data());
        }
    }
    out.force = parse_bool(request, "force");
    std::set<std::string, std::less<>> seen;
    for (const auto& p : out.paths) {
        check_path_shape(p);
        if (!seen.insert(p).second)
            throw OperationRefused("paths", p, "'" + p + "' is listed twice");
    }
    for (const auto& p : out.paths) {
        std::string ancestor(wharf::listed_ancestor(
            p, [&seen](std::string_view a) { return seen.count(a) > 0; }));
        if (!ancestor.empty())
            throw OperationRefused("paths", p,
                                   "'" + p + "' is inside '" + ancestor +
                                       "', which is deleted too: list only '" + ancestor + "'");
    }
    return out;
}

std::string describe_reference(const wharf::Reference& r) {
    return r.from_path + " (" + (r.property == ":text" ? "link in text" : r.property) + ") -> " +
           r.to_path;
}

// The job checkpoint: nodes deleted so far and whether the dangling
// references were listed. "deleted=<n>;listed=<0|1>".
struct Progress {
    std::uint64_t deleted = 0;
    bool listed = false;

    std::string encode() const {
        return "deleted=" + std::to_string(deleted) + ";listed=" + (listed ? "1" : "0");
    }
    static std::optional<Progress> decode(const std::optional<std::string>& text) {
        if (!text) return std::nullopt;
        Progress p;
        auto semicolon = text->find(';');
        if (text->rfind("deleted=", 0) != 0 || semicolon == std::string::npos) return p;
        try {
            p.deleted = std::stoull(text->substr(8, semicolon - 8));
        } catch (const std::exception&) {
            p.deleted = 0;
        }
        p.listed = text->substr(semicolon + 1) == "listed=1";
        return p;
    }
};

const char* kind_name(wharf::NodeKind kind) {
    switch (kind) {
        case wharf::NodeKind::folder:
            return "folder";
        case wharf::NodeKind::asset:
            return "asset";
        case wharf::NodeKind::page:
            return "page";
    }
    return "node";
}

}  // namespace

wharf::ConfigSchema config_schema() {
    wharf::ConfigSchema s;
    s.name = kConfigName;
    s.description = "Asynchronous delete operation (AEM: Async Delete Operation Job Config)";
    auto threshold = wharf::make_field(
        "threshold", wharf::ConfigType::integer,
        "Threshold number of assets: requests deleting more assets and folders than this "
        "become a job; at or below it they run at once",
        "100");
    threshold.minimum = 0;
    auto email = wharf::make_field("email_enabled", wharf::ConfigType::boolean,
                                   "Send an e-mail when a delete job ends", "false");
    auto batch = wharf::make_field("batch_size", wharf::ConfigType::integer,
                                   "Nodes deleted per transaction (and per checkpoint)", "500");
    batch.minimum = 1;
    batch.maximum = 100000;
    s.fields = {threshold, email, batch};
    return s;
}

DeleteOperation::DeleteOperation(std::shared_ptr<wharf::Repository> repository)
    : repository_(std::move(repository)) {}

wharf::OperationDescriptor DeleteOperation::descriptor() const {
    wharf::OperationDescriptor d;
    d.name = "asset-delete";
    d.title = "Delete assets";
    d.topic = kTopic;
    d.config = kConfigName;
    d.unit = "assets and folders";
    auto paths = wharf::make_field("paths", wharf::ConfigType::list,
                                   "Assets and folders to delete, with everything under them");
    paths.required = true;
    auto item = wharf::make_field("", wharf::ConfigType::string, "");
    item.format = "path";
    paths.item.push_back(item);
    paths.minimum = 1;
    auto force = wharf::make_field(
        "force", wharf::ConfigType::boolean,
        "Delete even when nodes outside the deleted set refer to them (the references are left "
        "dangling and listed in the report)",
        "false");
    d.request_schema = {paths, force};
    return d;
}

std::uint64_t DeleteOperation::external_references(const DeleteRequest& request, std::size_t keep,
                                                   std::vector<wharf::Reference>* first) const {
    std::set<std::string, std::less<>> roots(request.paths.begin(), request.paths.end());
    std::uint64_t total = 0;
    // Rows come in to_path order: one existence check per distinct target.
    std::string last_target;
    bool last_exists = false;
    for (const auto& root : request.paths) {
        repository_->referrers_under(root, true, [&](const wharf::Reference& r) {
            if (in_set(roots, r.from_path)) return true;  // deleted with the rest
            if (r.to_path != last_target) {
                last_target = r.to_path;
                last_exists = repository_->get(r.to_path).has_value();
            }
            if (!last_exists) return true;  // dangling already: deleting changes nothing
            ++total;
            if (first && first->size() < keep) first->push_back(r);
            return true;
        });
    }
    return total;
}

void DeleteOperation::validate(const ptree& request) const {
    auto parsed = parse(request);
    for (const auto& p : parsed.paths) {
        std::optional<wharf::Node> node;
        try {
            node = repository_->get(p);
        } catch (const wharf::RepositoryError& e) {
            throw OperationRefused("paths", p, "'" + p + "' is not a valid path: " + e.what());
        }
        if (!node) throw OperationRefused("paths", p, "no asset or folder at '" + p + "'");
        if (node->kind == wharf::NodeKind::page)
            throw OperationRefused(
                "paths", p, "'" + p + "' is a page: asset-delete deletes assets and folders");
    }
    if (parsed.force) return;
    std::vector<wharf::Reference> first;
    auto total = external_references(parsed, kListedReferrers, &first);
    if (total == 0) return;
    std::string message = wharf::grouped(total) + (total == 1 ? " reference" : " references") +
                          " from outside the deleted set point at nodes to be deleted; remove "
                          "them or set force to leave them dangling. Referrers";
    message += total > first.size()
                   ? " (first " + std::to_string(first.size()) + " of " + wharf::grouped(total) + "): "
                   : ": ";
    for (std::size_t i = 0; i < first.size(); ++i) {
        if (i > 0) message += "; ";
        message += describe_reference(first[i]);
    }
    // The value names the first requested path that is referenced.
    std::string value = parsed.paths.front();
    for (const auto& p : parsed.paths)
        if (wharf::is_same_or_under(first.front().to_path, p)) value = p;
    throw OperationRefused("paths", value, message);
}

std::uint64_t DeleteOperation::count(const ptree& request) const {
    auto parsed = parse(request);
    std::uint64_t total = 0;
    for (const auto& p : parsed.paths) total += repository_->count(p, wharf::WalkOptions{});
    return total;
}

std::string DeleteOperation::describe(const ptree& request, std::uint64_t count) const {
    auto parsed = parse(request);
    std::string text = "Delete " + wharf::grouped(count) + " assets and folders under ";
    for (std::size_t i = 0; i < parsed.paths.size() && i < 3; ++i)
        text += (i > 0 ? ", " : "") + parsed.paths[i];
    if (parsed.paths.size() > 3)
        text += " and " + std::to_string(parsed.paths.size() - 3) + " more";
    if (parsed.force) text += " (force)";
    return text;
}

wharf::JobResult DeleteOperation::run(wharf::JobContext& context) {
    DeleteRequest request;
    try {
        request = parse(context.payload());
    } catch (const OperationRefused& e) {
        return wharf::JobResult::error(std::string("refused: ") + e.what());
    }
    // Inline runs (no stored job, id 0) have nothing to resume.
    const auto id = context.job().id;
    const std::string checkpoint_name =
        id > 0 ? "wharf.delete/job/" + std::to_string(id) : std::string();
    auto resumed = checkpoint_name.empty()
                       ? std::nullopt
                       : Progress::decode(repository_->checkpoint(checkpoint_name));
    Progress progress = resumed.value_or(Progress{});
    const std::size_t batch = batch_size_.load();

    try {
        if (!request.force) {
            // References may have appeared since the request was accepted.
            std::vector<wharf::Reference> first;
            auto total = external_references(request, 10, &first);
            if (total > 0) {
                std::string message = "refused: " + wharf::grouped(total) +
                                      " references from outside the deleted set appeared since "
                                      "the request was accepted (first: " +
                                      describe_reference(first.front()) + "); nothing deleted";
                return wharf::JobResult::error(message);
            }
        }
        std::uint64_t remaining = 0;
        for (const auto& p : request.paths)
            remaining += repository_->count(p, wharf::WalkOptions{});
        context.init_progress(static_cast<std::int64_t>(progress.deleted + remaining));
        if (progress.deleted > 0) {
            context.increment_progress(static_cast<std::int64_t>(progress.deleted));
            context.log("resuming after " + wharf::grouped(progress.deleted) + " deleted nodes");
        }
        if (!resumed) context.report_row({"path", "outcome", "message"});

        wharf::SessionOptions options;
        options.batch_size = batch + 2;  // this code commits; the session never has to
        auto session = repository_->open_session(options);

        std::uint64_t dangling = 0;
        if (request.force && !progress.listed) {
            std::set<std::string, std::less<>> roots(request.paths.begin(), request.paths.end());
            for (const auto& root : request.paths) {
                repository_->referrers_under(root, true, [&](const wharf::Reference& r) {
                    if (in_set(roots, r.from_path)) return true;
                    ++dangling;
                    context.report_row({r.from_path, "reference left dangling",
                                        (r.property == ":text" ? "link in text" : r.property) +
                                            " points at " + r.to_path});
                    return true;
                });
            }
            progress.listed = true;
            if (!checkpoint_name.empty())
                session->set_checkpoint(checkpoint_name, progress.encode());
            session->commit();
        }

        std::vector<std::pair<std::string, std::string>> rows;  // of the open batch
        std::uint64_t batch_nodes = 0;
        std::size_t changes = 0;
        bool stopped = false;
        // Commits the open batch with its checkpoint, then reports it: rows
        // and progress only for what is durably gone. True when asked to stop.
        auto flush = [&] {
            if (changes > 0) {
                Progress next = progress;
                next.deleted += batch_nodes;
                if (!checkpoint_name.empty())
                    session->set_checkpoint(checkpoint_name, next.encode());
                session->commit();
                progress = next;
                context.increment_progress(static_cast<std::int64_t>(batch_nodes));
                for (auto& [path, message] : rows) context.report_row({path, "deleted", message});
                rows.clear();
                batch_nodes = 0;
                changes = 0;
            }
            return context.is_stopped();
        };
        auto remove = [&](const std::string& path, const std::string& what) {
            auto n = session->remove(path);
            ++changes;
            if (n > 0) {
                batch_nodes += n;
                rows.emplace_back(
                    path, n > 1 ? what + " with " + wharf::grouped(n - 1) + " nodes below" : what);
            }
            if (changes >= batch && flush()) stopped = true;
        };

        for (const auto& root : request.paths) {
            if (stopped) break;
            if (!repository_->get(root)) {
                if (!resumed) context.report_row({root, "skipped", "not found (already deleted)"});
                continue;
            }
            // Assets first, a batch at a time; then the folders that held
            // them, deepest first, so each batch is about batch_size nodes.
            std::vector<std::pair<std::string, wharf::NodeKind>> containers;
            wharf::WalkOptions walk;
            walk.with_properties = false;
            repository_->walk(root, walk, [&](const wharf::Node& node) {
                if (node.kind == wharf::NodeKind::asset) {
                    remove(node.path, "asset");
                } else {
                    containers.emplace_back(node.path, node.kind);
                }
                return !stopped;
            });
            std::stable_sort(containers.begin(), containers.end(),
                             [](const auto& a, const auto& b) {
                                 return std::count(a.first.begin(), a.first.end(), '/') >
                                        std::count(b.first.begin(), b.first.end(), '/');
                             });
            for (const auto& [path, kind] : containers) {
                if (stopped) break;
                remove(path, kind_name(kind));
            }
        }
        if (!stopped && flush()) stopped = true;
        if (stopped) {
            auto message = "stopped after deleting " + wharf::grouped(progress.deleted) +
                           " nodes; submit the same request again to delete the rest";
            context.log(message);
            return wharf::JobResult::failed(message);
        }
        if (!checkpoint_name.empty()) {
            session->set_checkpoint(checkpoint_name, std::nullopt);
            session->commit();
        }
        std::string message = "deleted " + wharf::grouped(progress.deleted) + " nodes";
        if (dangling > 0)
            message += "; " + wharf::grouped(dangling) + " references left dangling (see the report)";
        context.log(message);
        return wharf::JobResult::succeeded(message);
    } catch (const wharf::RepositoryError& e) {
        // The open batch rolled back; a retry resumes after the last commit.
        if (e.code() == wharf::RepositoryError::Code::conflict ||
            e.code() == wharf::RepositoryError::Code::io)
            return wharf::JobResult::failed(std::string("repository: ") + e.what());
        return wharf::JobResult::error(std::string("repository: ") + e.what());
    }
}

}  // namespace wharf_delete
