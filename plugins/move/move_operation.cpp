#include "move_operation.hpp"

#include <boost/property_tree/json_parser.hpp>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "wharf/paths.hpp"
#include "wharf/wording.hpp"

namespace wharf::move {

namespace {

using boost::property_tree::ptree;

// Consecutive write conflicts tolerated on one batch before the run gives up.
constexpr int kMaxConflictRetries = 5;

enum class Conflict { fail, rename };

[[noreturn]] void refuse(std::string field, std::string value, const std::string& reason) {
    throw OperationRefused(std::move(field), std::move(value), reason);
}

// "photo.jpg" -> "photo-2.jpg" for assets (keeps the extension that MIME
// detection and downloads rely on); "folder" -> "folder-2" otherwise.
std::string numbered_name(const std::string& name, NodeKind kind, unsigned n) {
    auto dot = name.rfind('.');
    if (kind == NodeKind::asset && dot != std::string::npos && dot > 0)
        return name.substr(0, dot) + "-" + std::to_string(n) + name.substr(dot);
    return name + "-" + std::to_string(n);
}

std::string to_json(const ptree& tree) {
    std::ostringstream out;
    boost::property_tree::write_json(out, tree, false);
    return out.str();
}

ptree from_json(const std::string& text) {
    std::istringstream in(text);
    ptree tree;
    boost::property_tree::read_json(in, tree);
    return tree;
}

// The resumable state of one run, stored as the repository checkpoint.
struct StepResult {
    std::uint64_t moved = 0;
    std::uint64_t references = 0;
    std::string outcome;  ///< "" while pending, then "moved" or "failed"
    std::string message;
};

struct RunState {
    std::string request;  ///< canonical request, guards against a hash collision
    std::vector<MoveStep> steps;
    std::vector<StepResult> results;
    std::vector<std::string> notes;  ///< per step, from planning (renames)
    std::size_t index = 0;           ///< the step in progress
    bool moved = false;              ///< steps[index] moved, its references being rewritten
    std::int64_t total = 0;
    std::int64_t done = 0;

    std::string encode() const {
        ptree root;
        root.put("request", request);
        root.put("index", index);
        root.put("moved", moved);
        root.put("total", total);
        root.put("done", done);
        ptree steps_tree;
        for (std::size_t i = 0; i < steps.size(); ++i) {
            ptree s;
            s.put("from", steps[i].from);
            s.put("to", steps[i].to);
            s.put("note", notes[i]);
            s.put("moved", results[i].moved);
            s.put("references", results[i].references);
            s.put("outcome", results[i].outcome);
            s.put("message", results[i].message);
            steps_tree.push_back({"", s});
        }
        root.add_child("steps", steps_tree);
        return to_json(root);
    }

    static RunState decode(const std::string& text) {
        auto root = from_json(text);
        RunState state;
        state.request = root.get<std::string>("request");
        state.index = root.get<std::size_t>("index");
        state.moved = root.get<bool>("moved");
        state.total = root.get<std::int64_t>("total");
        state.done = root.get<std::int64_t>("done");
        for (const auto& [key, s] : root.get_child("steps")) {
            state.steps.push_back({s.get<std::string>("from"), s.get<std::string>("to")});
            state.notes.push_back(s.get<std::string>("note", ""));
            state.results.push_back({s.get<std::uint64_t>("moved"),
                                     s.get<std::uint64_t>("references"),
                                     s.get<std::string>("outcome", ""),
                                     s.get<std::string>("message", "")});
        }
        return state;
    }

    std::vector<std::vector<std::string>> report() const {
        std::vector<std::vector<std::string>> rows;
        rows.push_back({"source", "destination", "moved nodes", "references rewritten",
                        "outcome", "message"});
        for (std::size_t i = 0; i < steps.size(); ++i) {
            std::string message = notes[i];
            if (!results[i].message.empty())
                message += (message.empty() ? "" : "; ") + results[i].message;
            rows.push_back({steps[i].from, steps[i].to, std::to_string(results[i].moved),
                            std::to_string(results[i].references), results[i].outcome,
                            message});
        }
        return rows;
    }

    std::size_t failures() const {
        return static_cast<std::size_t>(std::count_if(
            results.begin(), results.end(), [](const auto& r) { return r.outcome == "failed"; }));
    }
};

// Emits the report rows this job has not stored yet: a re-run after a crash
// between two rows must neither lose nor repeat one.
void emit_report(JobContext& context, const RunState& state) {
    auto rows = state.report();
    auto stored = static_cast<std::size_t>(std::max<std::int64_t>(context.job().report_rows, 0));
    for (std::size_t i = stored; i < rows.size(); ++i) context.report_row(rows[i]);
}

JobResult final_result(const RunState& state, std::string_view what) {
    std::uint64_t nodes = 0, references = 0;
    for (const auto& r : state.results) {
        nodes += r.moved;
        references += r.references;
    }
    auto moved = state.steps.size() - state.failures();
    std::string message = "moved " + std::to_string(moved) + " of " +
                          std::to_string(state.steps.size()) + " " + std::string(what) + " (" +
                          std::to_string(nodes) + " nodes), rewrote " +
                          std::to_string(references) + " references";
    if (state.failures() > 0) return JobResult::error(message + "; see the report for failures");
    return JobResult::succeeded(message);
}

// Marks a checkpoint name as in use by this process for the guard's lifetime.
class RunGuard {
public:
    RunGuard(std::mutex& mutex, std::set<std::string>& running, std::string name)
        : mutex_(mutex), running_(running), name_(std::move(name)) {
        std::lock_guard lock(mutex_);
        owned_ = running_.insert(name_).second;
    }
    ~RunGuard() {
        if (!owned_) return;
        std::lock_guard lock(mutex_);
        running_.erase(name_);
    }
    RunGuard(const RunGuard&) = delete;
    RunGuard& operator=(const RunGuard&) = delete;
    bool owned() const { return owned_; }

private:
    std::mutex& mutex_;
    std::set<std::string>& running_;
    std::string name_;
    bool owned_ = false;
};

}  // namespace

struct MoveOperation::Request {
    std::vector<std::string> sources;
    std::string destination;
    std::vector<std::string> names;  ///< empty, or one per source
    Conflict conflict = Conflict::fail;

    std::string canonical() const {
        std::string out;
        for (const auto& s : sources) out += "s:" + s + '\n';
        out += "d:" + destination + '\n';
        for (const auto& n : names) out += "n:" + n + '\n';
        out += conflict == Conflict::fail ? "c:fail" : "c:rename";
        return out;
    }
};

MoveOperation::MoveOperation(MoveKind kind, std::shared_ptr<Repository> repository)
    : kind_(kind), repository_(std::move(repository)) {}

void MoveOperation::configure(const MoveSettings& settings) {
    std::lock_guard lock(mutex_);
    settings_ = settings;
}

MoveSettings MoveOperation::settings() const {
    std::lock_guard lock(mutex_);
    return settings_;
}

OperationDescriptor MoveOperation::descriptor() const {
    OperationDescriptor d;
    const bool asset = kind_ == MoveKind::asset;
    d.name = asset ? "asset-move" : "page-move";
    d.title = asset ? "Move assets" : "Move pages";
    d.topic = asset ? "wharf/asset/move" : "wharf/page/move";
    d.config = asset ? "operations/move" : "operations/page-move";
    d.unit = asset ? "assets and folders (references scaled: threshold / threshold_references)"
                   : "references";
    auto sources =
        make_field("sources", ConfigType::list,
                   asset ? "assets and folders to move" : "pages to move (with subpages)");
    sources.required = true;
    sources.minimum = 1;
    auto item = make_field("", ConfigType::string, "absolute path");
    item.format = "path";
    sources.item.push_back(item);
    auto destination = make_field("destination", ConfigType::string,
                                  asset ? "the folder to move them into" : "the new parent page");
    destination.required = true;
    destination.format = "path";
    auto names = make_field("names", ConfigType::list, "new names, one per source (optional)");
    names.item.push_back(make_field("", ConfigType::string, "node name"));
    auto conflict = make_field("conflict", ConfigType::string,
                               "a name taken under the destination: fail the request, or rename "
                               "(name-1, name-2, ...)",
                               "fail");
    conflict.one_of = {"fail", "rename"};
    d.request_schema = {sources, destination, names, conflict};
    return d;
}

MoveOperation::Request MoveOperation::parse(const ptree& request) const {
    Request r;
    auto list = [&](const char* key) {
        std::vector<std::string> out;
        auto child = request.get_child_optional(key);
        if (!child) return out;
        // A single string is taken as a one-element list (forms, the CLI).
        if (child->empty()) {
            if (!child->data().empty()) out.push_back(child->data());
            return out;
        }
        for (const auto& [k, v] : *child) out.push_back(v.data());
        return out;
    };
    r.sources = list("sources");
    if (r.sources.empty()) refuse("sources", "", "sources: give at least one path to move");
    for (std::size_t i = 0; i < r.sources.size(); ++i) {
        auto field = "sources[" + std::to_string(i) + "]";
        if (auto p = path_problem(r.sources[i]); !p.empty())
            refuse(field, r.sources[i],
                   field + ": invalid path " + in_quotes(r.sources[i]) + ": " + p);
        if (r.sources[i] == "/") refuse(field, "/", field + ": the root cannot be moved");
    }
    r.destination = request.get<std::string>("destination", "");
    if (r.destination.empty())
        refuse("destination", "", "destination: give the parent path to move into");
    if (auto p = path_problem(r.destination); !p.empty())
        refuse("destination", r.destination,
               "destination: invalid path " + in_quotes(r.destination) + ": " + p);
    r.names = list("names");
    if (!r.names.empty() && r.names.size() != r.sources.size())
        refuse("names", std::to_string(r.names.size()) + " names",
               "names: give one name per source (" + std::to_string(r.sources.size()) +
                   " sources, " + std::to_string(r.names.size()) + " names)");
    for (std::size_t i = 0; i < r.names.size(); ++i) {
        auto field = "names[" + std::to_string(i) + "]";
        if (auto p = name_problem(r.names[i]); !p.empty())
            refuse(field, r.names[i], field + ": invalid name " + in_quotes(r.names[i]) + ": " + p);
    }
    auto conflict = request.get<std::string>("conflict", "fail");
    if (conflict == "fail")
        r.conflict = Conflict::fail;
    else if (conflict == "rename")
        r.conflict = Conflict::rename;
    else
        refuse("conflict", conflict,
               "conflict: " + in_quotes(conflict) + " is not one of 'fail', 'rename'");
    return r;
}

std::vector<MoveStep> MoveOperation::plan(const Request& r) const {
    const bool asset = kind_ == MoveKind::asset;
    auto node = [&](const std::string& field, const std::string& path) {
        try {
            return repository_->get(path);
        } catch (const RepositoryError& e) {
            refuse(field, path, field + ": " + e.what());
        }
    };
    auto dest = node("destination", r.destination);
    if (!dest)
        refuse("destination", r.destination,
               "destination: " + in_quotes(r.destination) + " does not exist");
    const NodeKind wanted_parent = asset ? NodeKind::folder : NodeKind::page;
    if (dest->kind != wanted_parent)
        refuse("destination", r.destination,
               "destination: " + in_quotes(r.destination) + " is " + kind_with_article(dest->kind) +
                   ", not " + kind_with_article(wanted_parent));

    std::vector<MoveStep> steps;
    std::set<std::string> planned;  // targets taken by earlier sources of this request
    for (std::size_t i = 0; i < r.sources.size(); ++i) {
        const auto& from = r.sources[i];
        auto field = "sources[" + std::to_string(i) + "]";
        auto source = node(field, from);
        if (!source) refuse(field, from, field + ": " + in_quotes(from) + " does not exist");
        if (asset ? source->kind == NodeKind::page : source->kind != NodeKind::page)
            refuse(field, from,
                   field + ": " + in_quotes(from) + " is " + kind_with_article(source->kind) +
                       (asset ? "; asset move takes assets and folders (use page-move)"
                              : "; page move takes pages (use asset-move)"));
        for (std::size_t j = 0; j < i; ++j)
            if (is_same_or_under(from, r.sources[j]) || is_same_or_under(r.sources[j], from))
                refuse(field, from,
                       field + ": " + in_quotes(from) + " overlaps " + in_quotes(r.sources[j]) +
                           " (sources[" + std::to_string(j) + "]); give each subtree once");
        if (is_same_or_under(r.destination, from))
            refuse(field, from,
                   field + ": cannot move " + in_quotes(from) + " into its own subtree " +
                       in_quotes(r.destination));
        auto name = r.names.empty() ? std::string(name_of(from)) : r.names[i];
        auto to = child_path(r.destination, name);
        if (to == from)
            refuse(field, from, field + ": cannot move " + in_quotes(from) + " onto itself");
        if (to.size() > kMaxPathBytes)
            refuse(field, from, field + ": the new path would be longer than 1024 bytes");
        auto taken = [&](const std::string& path) {
            return planned.count(path) > 0 || node(field, path).has_value();
        };
        if (taken(to)) {
            if (r.conflict == Conflict::fail) {
                auto name_field = r.names.empty() ? field : "names[" + std::to_string(i) + "]";
                refuse(name_field, name,
                       name_field + ": " + in_quotes(to) +
                           " exists (conflict: fail; use conflict: rename or another name)");
            }
            for (unsigned n = 1;; ++n) {
                auto candidate = child_path(r.destination, numbered_name(name, source->kind, n));
                if (!taken(candidate)) {
                    to = candidate;
                    break;
                }
            }
        }
        planned.insert(to);
        steps.push_back({from, to});
    }
    return steps;
}

std::string MoveOperation::checkpoint_name(const Request& request) const {
    return wharf::request_checkpoint_name(std::string("wharf.move/") + descriptor().name + "/",
                                          request.canonical());
}

void MoveOperation::validate(const ptree& request) const {
    auto r = parse(request);
    // A request with a checkpoint is a resumption (after a stop): its sources
    // are already gone, so the plan stored with it is what counts.
    if (repository_->checkpoint(checkpoint_name(r))) return;
    plan(r);
}

std::uint64_t MoveOperation::count(const ptree& request) const {
    auto r = parse(request);
    auto s = settings();
    // Counting stops just past the limit: above it is all the decision needs,
    // and a folder may have a million referrers.
    const std::uint64_t ref_limit =
        kind_ == MoveKind::asset ? s.threshold_references + 1 : s.threshold + 1;
    std::uint64_t references = 0;
    std::uint64_t nodes = 0;
    for (const auto& source : r.sources) {
        if (kind_ == MoveKind::asset) nodes += repository_->count(source, WalkOptions{});
        if (references < ref_limit)
            repository_->referrers_under(source, false, [&](const Reference&) {
                return ++references < ref_limit;
            });
    }
    if (kind_ == MoveKind::page) return references;
    // One number for the submission service's single `threshold`: above it
    // exactly when nodes > threshold or references > threshold_references.
    const std::uint64_t tr = std::max<std::uint64_t>(s.threshold_references, 1);
    const std::uint64_t scaled = (references * s.threshold + tr - 1) / tr;
    return std::max(nodes, scaled);
}

std::string MoveOperation::describe(const ptree& request, std::uint64_t count) const {
    auto r = parse(request);
    std::string what = r.sources.size() == 1
                           ? in_quotes(r.sources.front())
                           : in_quotes(r.sources.front()) + " and " +
                                 std::to_string(r.sources.size() - 1) + " more";
    return std::string(kind_ == MoveKind::asset ? "Move " : "Move page ") + what + " to " +
           in_quotes(r.destination) + " (" + grouped(count) + " " +
           (kind_ == MoveKind::asset ? "assets and folders" : "references") + ")";
}

JobResult MoveOperation::run(JobContext& context) {
    const char* what = kind_ == MoveKind::asset ? "sources" : "pages";
    Request request;
    try {
        request = parse(context.payload());
    } catch (const OperationRefused& e) {
        return JobResult::error(std::string("request refused: ") + e.what());
    }
    const auto name = checkpoint_name(request);
    RunGuard guard(mutex_, running_, name);
    if (!guard.owned())
        return JobResult::error("the same move is running already; it was not started twice");

    // Finished in an earlier run of this job (crash after the last commit):
    // only the report and the cleanup may be missing.
    if (auto finished = context.checkpoint("move.result")) {
        auto state = RunState::decode(*finished);
        emit_report(context, state);
        auto session = repository_->open_session();
        session->set_checkpoint(name, std::nullopt);
        session->commit();
        return final_result(state, what);
    }

    // Referrers per transaction: bounds the memory and the work a batch holds.
    const std::size_t batch = std::max<std::size_t>(settings().batch_size, 1);
    auto session = repository_->open_session({batch + 4});
    RunState state;
    if (auto stored = repository_->checkpoint(name)) {
        state = RunState::decode(*stored);
        if (state.request != request.canonical())
            return JobResult::error("checkpoint " + name + " belongs to another request");
        context.log("resuming at " + std::to_string(state.index) + " of " +
                    std::to_string(state.steps.size()) + " " + what);
    } else {
        try {
            state.steps = plan(request);
        } catch (const OperationRefused& e) {
            return JobResult::error(std::string("request refused: ") + e.what());
        }
        state.request = request.canonical();
        state.results.resize(state.steps.size());
        for (std::size_t i = 0; i < state.steps.size(); ++i) {
            const auto& step = state.steps[i];
            auto own = child_path(request.destination, request.names.empty()
                                                           ? name_of(step.from)
                                                           : request.names[i]);
            state.notes.push_back(own == step.to ? std::string()
                                                 : "renamed to " + in_quotes(name_of(step.to)) +
                                                       " (name taken)");
            state.total += static_cast<std::int64_t>(repository_->count(step.from, WalkOptions{}));
            repository_->referrers_under(step.from, false, [&](const Reference&) {
                ++state.total;
                return true;
            });
        }
        session->set_checkpoint(name, state.encode());
        session->commit();
        context.log("planned " + std::to_string(state.steps.size()) + " " + what + ", " +
                    std::to_string(state.total) + " nodes and references");
    }
    context.init_progress(state.total);
    if (state.done > 0) context.increment_progress(state.done);

    // Commits `next` with the batch's changes and only then adopts it, so a
    // batch that rolls back (a write conflict, an I/O error) leaves the state
    // in memory describing the repository as it is.
    auto commit = [&](RunState next) {
        session->set_checkpoint(name, next.encode());
        session->commit();
        state = std::move(next);
    };
    int conflicts = 0;
    while (state.index < state.steps.size()) {
        if (context.is_stopped()) {
            context.log("stopped at " + std::to_string(state.index) + " of " +
                        std::to_string(state.steps.size()) + " " + what +
                        "; submit the same request again to resume");
            return JobResult::failed("stopped; the same request resumes from the checkpoint");
        }
        const auto step = state.steps[state.index];
        RunState next = state;
        auto& result = next.results[next.index];
        if (!state.moved) {
            try {
                result.moved = session->move(step.from, step.to);
                next.moved = true;
                next.done += static_cast<std::int64_t>(result.moved);
                commit(std::move(next));
                conflicts = 0;
                context.increment_progress(
                    static_cast<std::int64_t>(state.results[state.index].moved));
                context.log("moved " + step.from + " to " + step.to + " (" +
                            std::to_string(state.results[state.index].moved) + " nodes)");
            } catch (const RepositoryError& e) {
                if (e.code() == RepositoryError::Code::conflict &&
                    ++conflicts <= kMaxConflictRetries)
                    continue;
                // The repository changed since the plan (a node appeared or
                // went): this source is skipped, the others go on.
                RunState failed = state;
                failed.results[failed.index].outcome = "failed";
                failed.results[failed.index].message = e.what();
                ++failed.index;
                commit(std::move(failed));
                context.log("not moved " + step.from + ": " + e.what());
            }
            continue;
        }
        // The referrers still pointing at the old paths: each batch rewrites
        // some, and rewritten ones leave the index range, so the next scan
        // starts with the rest; no cursor is needed and a resumed run repeats
        // nothing.
        std::set<std::string> referrers;
        std::int64_t rows = 0;
        repository_->referrers_under(step.from, false, [&](const Reference& ref) {
            if (referrers.count(ref.from_path) == 0) {
                if (referrers.size() >= batch) return false;
                referrers.insert(ref.from_path);
            }
            ++rows;
            return true;
        });
        if (referrers.empty()) {
            result.outcome = "moved";
            if (kind_ == MoveKind::page) {
                std::size_t live = 0;
                for (const auto& rel : repository_->live_relationships(""))
                    if (is_same_or_under(rel.blueprint, step.to) ||
                        is_same_or_under(rel.live_copy, step.to))
                        ++live;
                if (live > 0)
                    result.message = std::to_string(live) + " live relationship" +
                                     (live == 1 ? "" : "s") + " moved with it";
            }
            next.moved = false;
            ++next.index;
            commit(std::move(next));
            continue;
        }
        try {
            std::uint64_t changed = 0;
            for (const auto& referrer : referrers)
                changed += session->rewrite_references(referrer, step.from, step.to);
            if (changed == 0) {
                session->rollback();
                return JobResult::error("the reference index lists referrers of " + step.from +
                                        " that hold no such reference; run `wharf repo check`");
            }
            result.references += changed;
            next.done += rows;
            commit(std::move(next));
            conflicts = 0;
        } catch (const RepositoryError& e) {
            // A conflict, or a referrer another session deleted between the
            // scan and this batch (its index rows went with it): the batch
            // rolled back, and the next scan lists only referrers that exist.
            if ((e.code() == RepositoryError::Code::conflict ||
                 e.code() == RepositoryError::Code::not_found) &&
                ++conflicts <= kMaxConflictRetries)
                continue;
            throw;
        }
        context.increment_progress(rows);
    }

    // The ordering makes every crash point safe: the job's own checkpoint
    // holds the result before the repository checkpoint goes, and report
    // rows already stored are not repeated.
    if (state.done < state.total) context.increment_progress(state.total - state.done);
    context.checkpoint("move.result", state.encode());
    emit_report(context, state);
    session->set_checkpoint(name, std::nullopt);
    session->commit();
    return final_result(state, what);
}

}  // namespace wharf::move
