#include "rollout_operation.hpp"

#include <boost/property_tree/json_parser.hpp>

#include <algorithm>
#include <cctype>
#include <functional>
#include <cstdio>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "wharf/paths.hpp"
#include "wharf/wording.hpp"

namespace wharf::rollout {

namespace {

using boost::property_tree::ptree;

// Consecutive write conflicts tolerated on one batch before the run gives up.
constexpr int kMaxConflictRetries = 5;
// Cancelled-inheritance flags of live ancestors kept in memory; cleared when
// full so that memory does not grow with the tree.
constexpr std::size_t kMaxCancelCache = 10000;
// The job checkpoint holding a finished run's state (for a crash after it).
constexpr const char* kResultCheckpoint = "rollout.result";
// The job checkpoint holding the report rows stored before a batch commits.
constexpr const char* kRowsCheckpoint = "rollout.rows";
// A cancelled "property" of this name keeps the live page's text.
constexpr const char* kTextProperty = "wharf:text";

const std::vector<std::string> kReportHeader = {"blueprint page", "live page", "live copy",
                                                "outcome", "message"};

bool overlaps(std::string_view a, std::string_view b) {
    return is_same_or_under(a, b) || is_same_or_under(b, a);
}

std::string parent_of(std::string_view path) { return std::string(parent_path(path)); }

[[noreturn]] void refuse(std::string field, std::string value, const std::string& reason) {
    throw OperationRefused(std::move(field), std::move(value), reason);
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

// --- links, as the repository's reference index reads them ----------------------------

bool is_attribute_char(char c) {
    auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) || c == '-' || c == '_' || c == ':' || c == '.';
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

bool is_link_attribute(std::string_view name) {
    auto lower = [](std::string_view s) {
        std::string out(s);
        for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return out;
    };
    auto n = lower(name);
    return n == "href" || n == "src";
}

// Rewrites `href="..."` / `src='...'` values in `text` that point at
// `old_prefix` or below it to the same path under `new_prefix` (queries,
// fragments and a page's ".html" stay as they are). Returns how many changed.
std::size_t rewrite_links(std::string& text, std::string_view old_prefix,
                          std::string_view new_prefix) {
    std::string out;
    std::size_t copied = 0;
    std::size_t changed = 0;
    for (std::size_t eq = text.find('='); eq != std::string::npos; eq = text.find('=', eq + 1)) {
        std::size_t name_end = eq;
        while (name_end > 0 && is_space(text[name_end - 1])) --name_end;
        std::size_t name_begin = name_end;
        while (name_begin > 0 && is_attribute_char(text[name_begin - 1])) --name_begin;
        if (!is_link_attribute(std::string_view(text).substr(name_begin, name_end - name_begin)))
            continue;
        std::size_t q = eq + 1;
        while (q < text.size() && is_space(text[q])) ++q;
        if (q >= text.size() || (text[q] != '"' && text[q] != '\'')) continue;
        const std::size_t value_begin = q + 1;
        const std::size_t value_end = text.find(text[q], value_begin);
        if (value_end == std::string::npos) break;
        auto value = std::string_view(text).substr(value_begin, value_end - value_begin);
        auto path = value.substr(0, value.find_first_of("?#"));
        // "<page>.html" links the page; the suffix is kept by the prefix swap.
        const bool root_page_link = path.size() == old_prefix.size() + 5 &&
                                    path.substr(0, old_prefix.size()) == old_prefix &&
                                    path.substr(old_prefix.size()) == ".html";
        if (is_same_or_under(path, old_prefix) || root_page_link) {
            out.append(text, copied, value_begin - copied);
            out.append(new_prefix);
            copied = value_begin + old_prefix.size();
            ++changed;
        }
        eq = value_end;
    }
    if (changed == 0) return 0;
    out.append(text, copied, std::string::npos);
    text = std::move(out);
    return changed;
}

// Rewrites Path values under `old_prefix`; returns how many changed.
std::size_t rewrite_paths(Property& property, std::string_view old_prefix,
                          std::string_view new_prefix) {
    if (property.type != PropertyType::path) return 0;
    std::size_t changed = 0;
    for (auto& value : property.values) {
        auto* ref = std::get_if<PathRef>(&value);
        if (ref && is_same_or_under(ref->path, old_prefix)) {
            ref->path = replace_prefix(ref->path, old_prefix, new_prefix);
            ++changed;
        }
    }
    return changed;
}

// --- the resumable state --------------------------------------------------------------

struct Counters {
    std::uint64_t created = 0, updated = 0, unchanged = 0, deleted = 0, skipped = 0, failed = 0;
};

struct RunState {
    std::string request;                   ///< canonical request (guards a hash collision)
    std::int64_t job = 0;                  ///< the job whose report holds `rows` rows
    std::string phase = "sync";            ///< "sync", then "delete"
    std::string last;                      ///< last page done in the phase (path order)
    std::size_t target = 0;                ///< delete phase: the live copy in progress
    std::vector<std::string> live_copies;  ///< the live copy roots, fixed when planned
    std::int64_t done = 0;
    std::int64_t total = 0;
    std::uint64_t pairs = 0;  ///< pages x live copies (count())
    Counters counts;
    std::uint64_t rows = 0;                            ///< report rows of `job` through this batch
    std::vector<std::vector<std::string>> batch_rows;  ///< the last batch's rows

    std::string encode() const {
        ptree root;
        root.put("request", request);
        root.put("job", job);
        root.put("phase", phase);
        root.put("last", last);
        root.put("target", target);
        root.put("done", done);
        root.put("total", total);
        root.put("pairs", pairs);
        root.put("rows", rows);
        ptree c;
        c.put("created", counts.created);
        c.put("updated", counts.updated);
        c.put("unchanged", counts.unchanged);
        c.put("deleted", counts.deleted);
        c.put("skipped", counts.skipped);
        c.put("failed", counts.failed);
        root.add_child("counts", c);
        ptree lcs;
        for (const auto& l : live_copies) lcs.push_back({"", ptree(l)});
        root.add_child("live_copies", lcs);
        ptree rows_tree;
        for (const auto& row : batch_rows) {
            ptree r;
            for (const auto& cell : row) r.push_back({"", ptree(cell)});
            rows_tree.push_back({"", r});
        }
        root.add_child("batch_rows", rows_tree);
        return to_json(root);
    }

    static RunState decode(const std::string& text) {
        auto root = from_json(text);
        RunState s;
        s.request = root.get<std::string>("request");
        s.job = root.get<std::int64_t>("job", 0);
        s.phase = root.get<std::string>("phase");
        s.last = root.get<std::string>("last", "");
        s.target = root.get<std::size_t>("target", 0);
        s.done = root.get<std::int64_t>("done");
        s.total = root.get<std::int64_t>("total");
        s.pairs = root.get<std::uint64_t>("pairs", 0);
        s.rows = root.get<std::uint64_t>("rows", 0);
        const auto& c = root.get_child("counts");
        s.counts = {c.get<std::uint64_t>("created"), c.get<std::uint64_t>("updated"),
                    c.get<std::uint64_t>("unchanged"), c.get<std::uint64_t>("deleted"),
                    c.get<std::uint64_t>("skipped"), c.get<std::uint64_t>("failed")};
        for (const auto& [k, v] : root.get_child("live_copies")) s.live_copies.push_back(v.data());
        for (const auto& [k, r] : root.get_child("batch_rows")) {
            std::vector<std::string> row;
            for (const auto& [kk, cell] : r) row.push_back(cell.data());
            s.batch_rows.push_back(std::move(row));
        }
        return s;
    }
};

// Puts the header and the rows a crash lost between a batch's commit and its
// report rows into this job's report; never repeats a stored row.
void recover_report(JobContext& context, RunState& state) {
    auto stored = static_cast<std::uint64_t>(std::max<std::int64_t>(context.job().report_rows, 0));
    if (stored == 0) {
        context.report_row(kReportHeader);
        stored = 1;
    }
    const auto job = context.job().id;
    if (job != 0 && state.job == job) {
        auto have = stored - 1;
        if (state.rows > have && state.rows - have <= state.batch_rows.size())
            for (auto i = state.batch_rows.size() - (state.rows - have);
                 i < state.batch_rows.size(); ++i)
                context.report_row(state.batch_rows[i]);
    } else {
        // Another job (or an inline run) resumes: its report starts here.
        state.job = job;
        state.rows = 0;
    }
}

JobResult final_result(const RunState& state, RolloutKind kind) {
    const auto& c = state.counts;
    std::string message =
        std::string(kind == RolloutKind::create ? "created live copy: " : "rolled out ") +
        counted(state.pairs, "page x live copy", "pages x live copies") + ": " +
        grouped(c.created) + " created, " + grouped(c.updated) + " updated, " +
        grouped(c.unchanged) + " unchanged, " + grouped(c.deleted) + " deleted, " +
        grouped(c.skipped) + " skipped, " + grouped(c.failed) + " failed";
    if (c.failed > 0) return JobResult::error(message + "; see the report for failures");
    return JobResult::succeeded(message);
}

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

// One live copy a run writes to, with what its rollout configs say.
struct Target {
    LiveRelationship relationship;
    ActionSet actions = 0;
    std::vector<RolloutConfig> configs;

    bool excludes_property(std::string_view name) const {
        return std::any_of(configs.begin(), configs.end(),
                           [&](const RolloutConfig& c) { return c.excludes(name); });
    }
    bool excludes_page(std::string_view blueprint_path) const {
        const auto& ex = relationship.excluded_paths;
        return std::any_of(ex.begin(), ex.end(), [&](const std::string& e) {
            return is_same_or_under(blueprint_path, e);
        });
    }
};

}  // namespace

// --- requests -------------------------------------------------------------------------

struct RolloutOperation::Request {
    std::string blueprint;
    bool deep = true;
    std::string target;                        ///< create
    std::vector<std::string> rollout_configs;  ///< create
    std::vector<std::string> excluded_paths;   ///< create
    std::vector<std::string> live_copies;      ///< rollout; empty = all

    std::string canonical() const {
        std::string out = "b:" + blueprint + '\n' + (deep ? "deep\n" : "shallow\n");
        out += "t:" + target + '\n';
        for (const auto& s : rollout_configs) out += "r:" + s + '\n';
        for (const auto& s : excluded_paths) out += "x:" + s + '\n';
        for (const auto& s : live_copies) out += "l:" + s + '\n';
        return out;
    }
};

struct RolloutOperation::Plan {
    std::string scope;  ///< the blueprint page rolled out (with its subpages when deep)
    bool deep = true;
    std::vector<Target> targets;
    std::uint64_t pages = 0;  ///< pages in the scope
    std::uint64_t pairs = 0;  ///< pages x live copies (a shallow live copy counts its root)
};

RolloutOperation::RolloutOperation(RolloutKind kind, std::shared_ptr<Repository> repository,
                                   std::shared_ptr<const RolloutConfigs> configs)
    : kind_(kind), repository_(std::move(repository)), configs_(std::move(configs)) {}

void RolloutOperation::configure(const RolloutSettings& settings) {
    std::lock_guard lock(mutex_);
    settings_ = settings;
}

RolloutSettings RolloutOperation::settings() const {
    std::lock_guard lock(mutex_);
    return settings_;
}

RolloutKind RolloutOperation::kind_of(const ptree& payload) {
    return payload.get_child_optional("target") ? RolloutKind::create : RolloutKind::rollout;
}

OperationDescriptor RolloutOperation::descriptor() const {
    OperationDescriptor d;
    const bool create = kind_ == RolloutKind::create;
    d.name = create ? "live-copy-create" : "rollout";
    d.title = create ? "Create a live copy" : "Roll out a blueprint";
    d.topic = "wharf/msm/rollout";
    d.config = "operations/rollout";
    d.unit = "pages x live copies";
    auto blueprint = make_field("blueprint", ConfigType::string,
                                create ? "the blueprint page to copy (with its subpages when deep)"
                                       : "the blueprint page to roll out");
    blueprint.required = true;
    blueprint.format = "path";
    auto deep = make_field("deep", ConfigType::boolean,
                           create ? "copy and follow the whole subtree, or the page only"
                                  : "roll out the subpages too, or the page only",
                           "true");
    if (create) {
        auto target = make_field("target", ConfigType::string,
                                 "the new live copy's path (its parent must exist)");
        target.required = true;
        target.format = "path";
        auto configs = make_field("rollout_configs", ConfigType::list,
                                  "rollout configs (configs/rollout/<name>.yaml) the live copy "
                                  "follows; default: standard");
        configs.item.push_back(make_field("", ConfigType::string, "rollout config name"));
        auto excluded = make_field("excluded_paths", ConfigType::list,
                                   "blueprint pages (with their subpages) not copied or rolled "
                                   "out to this live copy");
        auto item = make_field("", ConfigType::string, "absolute path inside the blueprint");
        item.format = "path";
        excluded.item.push_back(item);
        d.request_schema = {blueprint, target, deep, configs, excluded};
    } else {
        auto live = make_field("live_copies", ConfigType::list,
                               "live copy roots to roll out to; default: all of the blueprint's");
        auto item = make_field("", ConfigType::string, "live copy root path");
        item.format = "path";
        live.item.push_back(item);
        d.request_schema = {blueprint, live, deep};
    }
    return d;
}

RolloutOperation::Request RolloutOperation::parse(const ptree& request) const {
    const bool create = kind_ == RolloutKind::create;
    const std::vector<std::string> known =
        create ? std::vector<std::string>{"blueprint", "target", "deep", "rollout_configs",
                                          "excluded_paths"}
               : std::vector<std::string>{"blueprint", "live_copies", "deep"};
    for (const auto& [key, value] : request)
        if (std::find(known.begin(), known.end(), key) == known.end()) {
            std::string list;
            for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
            refuse(key, value.data(), in_quotes(key) + " is not a field of " + descriptor().name +
                                          " (fields: " + list + ")");
        }
    auto list = [&](const char* key) {
        std::vector<std::string> out;
        auto child = request.get_child_optional(key);
        if (!child) return out;
        if (child->empty()) {  // a single string is a one-element list (forms, the CLI)
            if (!child->data().empty()) out.push_back(child->data());
            return out;
        }
        for (const auto& [k, v] : *child) out.push_back(v.data());
        return out;
    };
    auto path = [&](const std::string& field, const std::string& value) {
        if (value.empty()) refuse(field, value, field + ": give an absolute path");
        if (auto p = path_problem(value); !p.empty())
            refuse(field, value, field + ": invalid path " + in_quotes(value) + ": " + p);
        if (value == "/") refuse(field, value, field + ": not the root");
    };
    Request r;
    r.blueprint = request.get<std::string>("blueprint", "");
    path("blueprint", r.blueprint);
    auto deep = request.get<std::string>("deep", "true");
    if (deep == "true" || deep == "1")
        r.deep = true;
    else if (deep == "false" || deep == "0")
        r.deep = false;
    else
        refuse("deep", deep, "deep: " + in_quotes(deep) + " is not true or false");
    auto unique = [&](const std::vector<std::string>& values, const std::string& key) {
        for (std::size_t i = 0; i < values.size(); ++i)
            for (std::size_t j = 0; j < i; ++j)
                if (values[i] == values[j]) {
                    auto field = key + "[" + std::to_string(i) + "]";
                    refuse(field, values[i],
                           field + ": " + in_quotes(values[i]) + " is listed twice");
                }
    };
    if (create) {
        r.target = request.get<std::string>("target", "");
        path("target", r.target);
        r.rollout_configs = list("rollout_configs");
        if (r.rollout_configs.empty()) r.rollout_configs = {"standard"};
        unique(r.rollout_configs, "rollout_configs");
        r.excluded_paths = list("excluded_paths");
        for (std::size_t i = 0; i < r.excluded_paths.size(); ++i)
            path("excluded_paths[" + std::to_string(i) + "]", r.excluded_paths[i]);
        unique(r.excluded_paths, "excluded_paths");
    } else {
        r.live_copies = list("live_copies");
        for (std::size_t i = 0; i < r.live_copies.size(); ++i)
            path("live_copies[" + std::to_string(i) + "]", r.live_copies[i]);
        unique(r.live_copies, "live_copies");
    }
    return r;
}

RolloutOperation::Plan RolloutOperation::plan(const Request& r) const {
    const bool create = kind_ == RolloutKind::create;
    auto node = [&](const std::string& field, const std::string& path) {
        try {
            return repository_->get(path);
        } catch (const RepositoryError& e) {
            refuse(field, path, field + ": " + e.what());
        }
    };
    auto blueprint = node("blueprint", r.blueprint);
    if (!blueprint)
        refuse("blueprint", r.blueprint,
               "blueprint: " + in_quotes(r.blueprint) + " does not exist");
    if (blueprint->kind != NodeKind::page)
        refuse("blueprint", r.blueprint,
               "blueprint: " + in_quotes(r.blueprint) + " is " + kind_with_article(blueprint->kind) +
                   ", not a page");

    const auto relationships = repository_->live_relationships("");
    // Regions whose content flows into `start` through live relationships
    // (its blueprints, their blueprints, ...): a live copy inside one of them
    // would feed itself.
    auto sources_of = [&](const std::string& start) {
        std::vector<std::string> regions = {start};
        for (std::size_t i = 0; i < regions.size() && regions.size() < 10000; ++i)
            for (const auto& rel : relationships)
                if (overlaps(rel.live_copy, regions[i]) &&
                    std::find(regions.begin(), regions.end(), rel.blueprint) == regions.end())
                    regions.push_back(rel.blueprint);
        return regions;
    };
    auto resolve_configs = [&](const std::vector<std::string>& names, Target& t,
                               const std::function<void(std::size_t, const std::string&)>& unknown) {
        for (std::size_t i = 0; i < names.size(); ++i) {
            auto config = configs_->find(names[i]);
            if (!config) {
                unknown(i, names[i]);
                continue;
            }
            t.actions |= config->actions;
            t.configs.push_back(std::move(*config));
        }
    };
    auto known_configs = [&] {
        std::string out;
        for (const auto& n : configs_->names()) out += (out.empty() ? "" : ", ") + n;
        return out.empty() ? std::string("none") : out;
    };

    Plan plan;
    plan.scope = r.blueprint;
    plan.deep = r.deep;
    if (create) {
        const auto& t = r.target;
        if (t == r.blueprint)
            refuse("target", t, "target: a page cannot be a live copy of itself (" +
                                    in_quotes(t) + ")");
        if (is_same_or_under(t, r.blueprint))
            refuse("target", t,
                   "target: " + in_quotes(t) + " lies inside the blueprint " +
                       in_quotes(r.blueprint));
        if (is_same_or_under(r.blueprint, t))
            refuse("target", t,
                   "target: " + in_quotes(t) + " contains the blueprint " + in_quotes(r.blueprint));
        if (node("target", t))
            refuse("target", t,
                   "target: " + in_quotes(t) + " exists; a live copy is created at a new path");
        auto parent_path = parent_of(t);
        auto parent = node("target", parent_path);
        if (!parent)
            refuse("target", t,
                   "target: the parent " + in_quotes(parent_path) + " does not exist");
        if (parent->kind == NodeKind::asset)
            refuse("target", t, "target: the parent " + in_quotes(parent_path) + " is an asset");
        for (const auto& rel : relationships)
            if (is_same_or_under(rel.live_copy, t))
                refuse("target", t,
                       "target: " + in_quotes(rel.live_copy) + " is already a live copy of " +
                           in_quotes(rel.blueprint));
        for (const auto& region : sources_of(r.blueprint))
            if (region != r.blueprint && overlaps(t, region))
                refuse("target", t,
                       "target: a live copy at " + in_quotes(t) + " would make a cycle: " +
                           in_quotes(r.blueprint) + " takes its content from " +
                           in_quotes(region));
        Target target;
        target.relationship = {r.blueprint, t, r.rollout_configs, r.deep, r.excluded_paths};
        resolve_configs(r.rollout_configs, target, [&](std::size_t i, const std::string& name) {
            auto field = "rollout_configs[" + std::to_string(i) + "]";
            refuse(field, name,
                   field + ": " + in_quotes(name) + " is not a rollout config (configs/rollout/" +
                       name + ".yaml is not in force; known: " + known_configs() + ")");
        });
        for (std::size_t i = 0; i < r.excluded_paths.size(); ++i) {
            const auto& x = r.excluded_paths[i];
            auto field = "excluded_paths[" + std::to_string(i) + "]";
            if (x == r.blueprint || !is_same_or_under(x, r.blueprint))
                refuse(field, x,
                       field + ": " + in_quotes(x) + " is not a page below the blueprint " +
                           in_quotes(r.blueprint));
        }
        // A new live copy is a copy: contentCopy always, nothing to delete yet.
        target.actions = (target.actions | kContentCopy) & ~static_cast<ActionSet>(kContentDelete);
        plan.targets.push_back(std::move(target));
    } else {
        std::vector<LiveRelationship> following;
        for (const auto& rel : relationships)
            if (is_same_or_under(r.blueprint, rel.blueprint) &&
                (rel.deep || r.blueprint == rel.blueprint))
                following.push_back(rel);
        if (following.empty())
            refuse("blueprint", r.blueprint,
                   "blueprint: " + in_quotes(r.blueprint) +
                       " has no live copies (no live relationship follows it or a page above it)");
        std::vector<std::pair<std::string, LiveRelationship>> chosen;  // field, relationship
        if (r.live_copies.empty()) {
            for (const auto& rel : following) chosen.push_back({"live_copies", rel});
        } else {
            for (std::size_t i = 0; i < r.live_copies.size(); ++i) {
                const auto& lc = r.live_copies[i];
                auto field = "live_copies[" + std::to_string(i) + "]";
                if (lc == r.blueprint)
                    refuse(field, lc,
                           field + ": cannot roll " + in_quotes(lc) + " out to itself");
                auto it = std::find_if(following.begin(), following.end(),
                                       [&](const LiveRelationship& rel) { return rel.live_copy == lc; });
                if (it == following.end())
                    refuse(field, lc,
                           field + ": " + in_quotes(lc) + " is not a live copy of " +
                               in_quotes(r.blueprint));
                chosen.push_back({field, *it});
            }
        }
        const auto sources = sources_of(r.blueprint);
        for (const auto& [field, rel] : chosen) {
            for (const auto& region : sources)
                if (overlaps(rel.live_copy, region))
                    refuse(field, rel.live_copy,
                           field + ": rolling out to " + in_quotes(rel.live_copy) +
                               " would make a cycle: " + in_quotes(r.blueprint) +
                               " takes its content from " + in_quotes(region));
            Target target;
            target.relationship = rel;
            if (rel.rollout_configs.empty())
                refuse(field, rel.live_copy,
                       field + ": the live copy " + in_quotes(rel.live_copy) +
                           " names no rollout config");
            resolve_configs(rel.rollout_configs, target, [&](std::size_t, const std::string& name) {
                refuse(field, rel.live_copy,
                       field + ": the live copy " + in_quotes(rel.live_copy) +
                           " follows rollout config " + in_quotes(name) +
                           ", which is not in force (configs/rollout/" + name +
                           ".yaml; known: " + known_configs() + ")");
            });
            plan.targets.push_back(std::move(target));
        }
    }
    WalkOptions pages;
    pages.assets = pages.folders = false;
    pages.with_properties = false;
    plan.pages = r.deep ? repository_->count(r.blueprint, pages) : 1;
    for (const auto& t : plan.targets) plan.pairs += t.relationship.deep ? plan.pages : 1;
    return plan;
}

std::string RolloutOperation::checkpoint_name(const Request& request) const {
    return wharf::request_checkpoint_name(std::string("wharf.rollout/") + descriptor().name + "/",
                                          request.canonical());
}

void RolloutOperation::validate(const ptree& request) const {
    auto r = parse(request);
    // A request with a checkpoint is a resumption (after a stop): what it
    // created already exists, so the stored position is what counts.
    if (repository_->checkpoint(checkpoint_name(r))) return;
    plan(r);
}

std::uint64_t RolloutOperation::count(const ptree& request) const {
    auto r = parse(request);
    if (auto stored = repository_->checkpoint(checkpoint_name(r)))
        return RunState::decode(*stored).pairs;
    return plan(r).pairs;
}

std::string RolloutOperation::describe(const ptree& request, std::uint64_t count) const {
    auto r = parse(request);
    if (kind_ == RolloutKind::create)
        return "Create live copy " + in_quotes(r.target) + " of " + in_quotes(r.blueprint) + " (" +
               counted(count, "page", "pages") + ")";
    std::string to = r.live_copies.empty()
                         ? std::string("all its live copies")
                         : r.live_copies.size() == 1
                               ? in_quotes(r.live_copies.front())
                               : counted(r.live_copies.size(), "live copy", "live copies");
    return "Roll out " + in_quotes(r.blueprint) + (r.deep ? "" : " (page only)") + " to " + to +
           " (" + counted(count, "page x live copy", "pages x live copies") + ")";
}

// --- a run ----------------------------------------------------------------------------

class RolloutOperation::Run {
public:
    Run(RolloutOperation& op, JobContext& context, std::string name, RunState state,
        std::vector<Target> targets, std::string scope, bool deep, std::size_t batch)
        : repo_(*op.repository_),
          context_(context),
          name_(std::move(name)),
          state_(std::move(state)),
          targets_(std::move(targets)),
          scope_(std::move(scope)),
          deep_(deep),
          batch_(batch),
          session_(repo_.open_session({(batch + targets_.size()) * 4 + 16})) {}

    RunState& state() { return state_; }
    Session& session() { return *session_; }

    /// Runs both phases from the state's position; false when stopped.
    bool go() {
        if (state_.phase == "sync" && !sync()) return false;
        while (state_.target < targets_.size()) {
            const auto& t = targets_[state_.target];
            if ((t.actions & kContentDelete) && deep_ && t.relationship.deep && !remove_gone(t))
                return false;
            RunState next = state_;
            ++next.target;
            next.last.clear();
            next.batch_rows.clear();
            commit(std::move(next), {});
        }
        return true;
    }

    void finish() {
        if (state_.done < state_.total) context_.increment_progress(state_.total - state_.done);
        // The job's own checkpoint holds the result before the repository's
        // goes, so a crash in between neither loses nor repeats anything.
        context_.checkpoint(kResultCheckpoint, state_.encode());
        session_->set_checkpoint(name_, std::nullopt);
        session_->commit();
    }

private:
    // Phase 1: every blueprint page in the scope, in path order, to every live copy.
    bool sync() {
        WalkOptions options;
        options.assets = options.folders = false;
        if (!deep_) options.max_depth = 0;
        std::vector<Node> buffer;
        bool stopped = false;
        repo_.walk(scope_, options, [&](const Node& node) {
            if (!state_.last.empty() && node.path <= state_.last) return true;
            buffer.push_back(node);
            if (buffer.size() * targets_.size() < batch_) return true;  // pairs, at most
            flush_sync(buffer);
            buffer.clear();
            stopped = context_.is_stopped();
            return !stopped;
        });
        if (stopped) return false;
        if (!buffer.empty()) flush_sync(buffer);
        RunState next = state_;
        next.phase = "delete";
        next.target = 0;
        next.last.clear();
        next.batch_rows.clear();
        commit(std::move(next), {});
        return !context_.is_stopped();
    }

    // Phase 2, per live copy with contentDelete: live pages whose blueprint page is gone.
    bool remove_gone(const Target& t) {
        const auto& rel = t.relationship;
        const auto live_scope = replace_prefix(scope_, rel.blueprint, rel.live_copy);
        WalkOptions options;
        options.assets = options.folders = false;
        options.include_root = false;
        options.with_properties = false;
        std::vector<std::string> buffer;
        bool stopped = false;
        removed_.clear();
        repo_.walk(live_scope, options, [&](const Node& node) {
            if (!state_.last.empty() && node.path <= state_.last) return true;
            buffer.push_back(node.path);
            if (buffer.size() < batch_) return true;
            flush_delete(t, buffer);
            buffer.clear();
            stopped = context_.is_stopped();
            return !stopped;
        });
        if (stopped) return false;
        if (!buffer.empty()) flush_delete(t, buffer);
        return !context_.is_stopped();
    }

    // Commits `next` (with the batch's changes, already in the session) and
    // only then adopts it and reports the batch.
    void commit(RunState next, std::vector<std::vector<std::string>> rows) {
        // The repository checkpoint can give back only the last batch's rows,
        // so the earlier ones must be in the job's report before this batch
        // commits: a job checkpoint stores what was reported before it (the
        // host buffers report rows for up to its flush interval otherwise).
        if (context_.job().id != 0 && state_.rows > 0)
            context_.checkpoint(kRowsCheckpoint, std::to_string(state_.rows));
        next.rows += rows.size();
        next.batch_rows = rows;
        session_->set_checkpoint(name_, next.encode());
        session_->commit();
        const auto steps = next.done - state_.done;
        state_ = std::move(next);
        for (auto& row : rows) context_.report_row(std::move(row));
        if (steps > 0) context_.increment_progress(steps);
    }

    template <typename Body>
    void with_retries(Body body) {
        for (int attempt = 0;; ++attempt) {
            try {
                body();
                return;
            } catch (const RepositoryError& e) {
                session_->rollback();
                const bool transient = e.code() == RepositoryError::Code::conflict ||
                                       e.code() == RepositoryError::Code::already_exists;
                if (!transient || attempt >= kMaxConflictRetries) throw;
                context_.log(std::string("batch retried after a concurrent change: ") + e.what());
            }
        }
    }

    void flush_sync(const std::vector<Node>& buffer) {
        with_retries([&] {
            RunState next = state_;
            std::vector<std::vector<std::string>> rows;
            created_.clear();
            std::int64_t pairs = 0;
            for (const auto& page : buffer)
                for (const auto& t : targets_) {
                    // A shallow live copy follows its root page only.
                    if (!t.relationship.deep && page.path != t.relationship.blueprint) continue;
                    rows.push_back(sync_page(page, t, next.counts));
                    ++pairs;
                }
            next.last = buffer.back().path;
            next.done += pairs;
            commit(std::move(next), std::move(rows));
        });
    }

    void flush_delete(const Target& t, const std::vector<std::string>& buffer) {
        with_retries([&] {
            RunState next = state_;
            std::vector<std::vector<std::string>> rows;
            auto removed = removed_;
            for (const auto& live : buffer) delete_if_gone(live, t, next.counts, rows, removed);
            next.last = buffer.back();
            next.done += static_cast<std::int64_t>(buffer.size());
            commit(std::move(next), std::move(rows));
            removed_ = std::move(removed);
        });
    }

    // The nearest live ancestor of `live` (below the live copy root or the
    // root itself) whose inheritance is cancelled for its children, or "".
    std::string cancelled_ancestor(const std::string& live, const std::string& root) {
        for (auto p = live; p != root && p != "/";) {
            p = parent_of(p);
            if (!is_same_or_under(p, root)) break;
            auto it = cancel_children_.find(p);
            if (it == cancel_children_.end()) {
                if (cancel_children_.size() >= kMaxCancelCache) cancel_children_.clear();
                it = cancel_children_.emplace(p, repo_.inheritance_cancel(p).children).first;
            }
            if (it->second) return p;
        }
        return {};
    }

    bool exists(const std::string& path) {
        WalkOptions only;
        only.max_depth = 0;
        only.with_properties = false;
        return repo_.count(path, only) > 0;
    }

    std::vector<std::string> sync_page(const Node& page, const Target& t, Counters& counts) {
        const auto& rel = t.relationship;
        const auto live_path = replace_prefix(page.path, rel.blueprint, rel.live_copy);
        auto row = [&](const char* outcome, std::string message) {
            return std::vector<std::string>{page.path, live_path, rel.live_copy, outcome,
                                            std::move(message)};
        };
        if (t.excludes_page(page.path)) {
            ++counts.skipped;
            return row("skipped", "excluded by the live relationship");
        }
        if (auto a = cancelled_ancestor(live_path, rel.live_copy); !a.empty()) {
            ++counts.skipped;
            return row("skipped", "inheritance cancelled for the pages under " + in_quotes(a));
        }
        auto live = repo_.get(live_path);
        const bool refs = t.actions & kReferencesUpdate;
        const bool order = (t.actions & kOrderChildren) && page.path != rel.blueprint;
        if (!live) {
            if (!(t.actions & kContentCopy)) {
                ++counts.skipped;
                return row("skipped", "missing in the live copy (contentCopy is not in its "
                                      "rollout configs)");
            }
            auto parent = parent_of(live_path);
            if (!created_.count(parent) && !exists(parent)) {
                ++counts.skipped;
                return row("skipped", "the parent " + in_quotes(parent) +
                                          " is missing in the live copy");
            }
            Node copy;
            copy.path = live_path;
            copy.kind = NodeKind::page;
            copy.text = page.text;
            for (const auto& [name, value] : page.properties)
                if (!t.excludes_property(name)) copy.properties.emplace(name, value);
            std::size_t rewritten = 0;
            if (refs) {
                rewritten += rewrite_links(copy.text, rel.blueprint, rel.live_copy);
                for (auto& [name, value] : copy.properties)
                    rewritten += rewrite_paths(value, rel.blueprint, rel.live_copy);
            }
            session_->create(copy);
            if (order) session_->set_order(live_path, page.order);
            created_.insert(live_path);
            ++counts.created;
            return row("created", rewritten ? counted(rewritten, "reference", "references") +
                                                  " pointed at the live copy"
                                            : std::string());
        }
        if (live->kind != NodeKind::page) {
            ++counts.failed;
            return row("failed", in_quotes(live_path) + " is " + kind_with_article(live->kind) +
                                     ", not a page");
        }
        auto cancel = repo_.inheritance_cancel(live_path);
        cancel_children_[live_path] = cancel.children;
        if (cancel.page || cancel.children) {
            ++counts.skipped;
            return row("skipped", cancel.children ? "inheritance cancelled for the page and "
                                                    "the pages under it"
                                                  : "inheritance cancelled for the page");
        }
        auto cancelled = [&](const std::string& name) {
            return std::find(cancel.properties.begin(), cancel.properties.end(), name) !=
                   cancel.properties.end();
        };
        auto touchable = [&](const std::string& name) {
            return !t.excludes_property(name) && !cancelled(name);
        };
        const bool text_touchable = !cancelled(kTextProperty);
        PropertyMap desired = live->properties;
        std::string text = live->text;
        if (t.actions & kContentUpdate) {
            for (const auto& [name, value] : page.properties)
                if (touchable(name)) desired[name] = value;
            for (const auto& [name, value] : live->properties)
                if (touchable(name) && !page.properties.count(name)) desired.erase(name);
            if (text_touchable) text = page.text;
        }
        if (refs) {
            for (auto& [name, value] : desired)
                if (touchable(name)) rewrite_paths(value, rel.blueprint, rel.live_copy);
            if (text_touchable) rewrite_links(text, rel.blueprint, rel.live_copy);
        }
        PropertyMap set;
        std::vector<std::string> removed;
        for (const auto& [name, value] : desired) {
            auto it = live->properties.find(name);
            if (it == live->properties.end() || !(it->second == value)) set.emplace(name, value);
        }
        for (const auto& [name, value] : live->properties)
            if (!desired.count(name)) removed.push_back(name);
        std::vector<std::string> what;
        if (!set.empty()) {
            session_->set_properties(live_path, set);
            what.push_back(counted(set.size(), "property set", "properties set"));
        }
        if (!removed.empty()) {
            session_->remove_properties(live_path, removed);
            what.push_back(counted(removed.size(), "property removed", "properties removed"));
        }
        if (text != live->text) {
            session_->set_text(live_path, text);
            what.push_back("text updated");
        }
        if (order && live->order != page.order) {
            session_->set_order(live_path, page.order);
            what.push_back("reordered");
        }
        std::vector<std::string> kept;
        for (const auto& name : cancel.properties) kept.push_back(name);
        std::string message;
        for (const auto& w : what) message += (message.empty() ? "" : ", ") + w;
        if (!kept.empty()) {
            std::string names;
            for (const auto& k : kept) names += (names.empty() ? "" : ", ") + k;
            message += (message.empty() ? "" : "; ") + std::string("cancelled, kept: ") + names;
        }
        if (what.empty()) {
            ++counts.unchanged;
            return row("unchanged", message);
        }
        ++counts.updated;
        return row("updated", message);
    }

    void delete_if_gone(const std::string& live_path, const Target& t, Counters& counts,
                        std::vector<std::vector<std::string>>& rows,
                        std::set<std::string>& removed) {
        const auto& rel = t.relationship;
        for (auto p = live_path; p != rel.live_copy && p != "/";) {
            p = parent_of(p);
            if (removed.count(p)) return;  // went with an ancestor
        }
        const auto blueprint_path = replace_prefix(live_path, rel.live_copy, rel.blueprint);
        if (t.excludes_page(blueprint_path) || exists(blueprint_path)) return;
        auto row = [&](const char* outcome, std::string message) {
            rows.push_back({blueprint_path, live_path, rel.live_copy, outcome, std::move(message)});
        };
        if (auto a = cancelled_ancestor(live_path, rel.live_copy); !a.empty()) {
            ++counts.skipped;
            return row("skipped", "blueprint page gone; kept: inheritance cancelled for the "
                                  "pages under " + in_quotes(a));
        }
        auto cancel = repo_.inheritance_cancel(live_path);
        if (cancel.page || cancel.children) {
            ++counts.skipped;
            return row("skipped", "blueprint page gone; kept: inheritance cancelled");
        }
        std::string inside;
        WalkOptions below;
        below.assets = below.folders = false;
        below.include_root = false;
        below.with_properties = false;
        repo_.walk(live_path, below, [&](const Node& n) {
            auto c = repo_.inheritance_cancel(n.path);
            if (c.page || c.children) inside = n.path;
            return inside.empty();
        });
        if (!inside.empty()) {
            ++counts.skipped;
            return row("skipped", "blueprint page gone; kept: " + in_quotes(inside) +
                                      " below it has cancelled inheritance");
        }
        auto nodes = session_->remove(live_path);
        removed.insert(live_path);
        ++counts.deleted;
        row("deleted", "blueprint page gone; " + counted(nodes, "page", "pages") + " removed");
    }

    Repository& repo_;
    JobContext& context_;
    std::string name_;
    RunState state_;
    std::vector<Target> targets_;
    std::string scope_;
    bool deep_;
    std::size_t batch_;
    std::unique_ptr<Session> session_;
    std::set<std::string> created_;                           ///< live pages created in the batch
    std::set<std::string> removed_;                           ///< live pages removed this phase
    std::unordered_map<std::string, bool> cancel_children_;  ///< live path -> cancelled for children
};

JobResult RolloutOperation::run(JobContext& context) {
    Request request;
    try {
        request = parse(context.payload());
    } catch (const OperationRefused& e) {
        return JobResult::error(std::string("request refused: ") + e.what());
    }
    const auto name = checkpoint_name(request);
    RunGuard guard(mutex_, running_, name);
    if (!guard.owned())
        return JobResult::error("the same request is running already; it was not started twice");

    if (auto finished = context.checkpoint(kResultCheckpoint)) {
        auto state = RunState::decode(*finished);
        recover_report(context, state);
        auto session = repository_->open_session();
        session->set_checkpoint(name, std::nullopt);
        session->commit();
        return final_result(state, kind_);
    }

    const std::size_t batch = std::max<std::size_t>(settings().batch_size, 1);
    RunState state;
    std::vector<Target> targets;
    bool fresh = false;
    if (auto stored = repository_->checkpoint(name)) {
        state = RunState::decode(*stored);
        if (state.request != request.canonical())
            return JobResult::error("checkpoint " + name + " belongs to another request");
        // The relationships and configs as they are now (a config edit applies).
        for (const auto& lc : state.live_copies) {
            std::optional<LiveRelationship> rel;
            for (const auto& r : repository_->live_relationships(""))
                if (r.live_copy == lc) rel = r;
            if (!rel)
                return JobResult::error("the live relationship of " + in_quotes(lc) +
                                        " was removed while the rollout was stopped");
            Target t;
            t.relationship = *rel;
            for (const auto& config_name : rel->rollout_configs) {
                auto config = configs_->find(config_name);
                if (!config)
                    return JobResult::error("rollout config " + in_quotes(config_name) + " of " +
                                            in_quotes(lc) + " is no longer in force");
                t.actions |= config->actions;
                t.configs.push_back(std::move(*config));
            }
            if (kind_ == RolloutKind::create)
                t.actions = (t.actions | kContentCopy) & ~static_cast<ActionSet>(kContentDelete);
            targets.push_back(std::move(t));
        }
        context.log("resuming " + descriptor().name + " in phase " + state.phase + " after " +
                    (state.last.empty() ? std::string("the start") : in_quotes(state.last)));
    } else {
        Plan p;
        try {
            p = plan(request);
        } catch (const OperationRefused& e) {
            return JobResult::error(std::string("request refused: ") + e.what());
        }
        state.request = request.canonical();
        state.pairs = p.pairs;
        state.total = static_cast<std::int64_t>(state.pairs);
        for (const auto& t : p.targets) {
            state.live_copies.push_back(t.relationship.live_copy);
            if ((t.actions & kContentDelete) && p.deep && t.relationship.deep)
                state.total += static_cast<std::int64_t>(p.pages);
        }
        targets = std::move(p.targets);
        fresh = true;
    }

    Run run(*this, context, name, std::move(state), std::move(targets), request.blueprint,
            request.deep, batch);
    recover_report(context, run.state());
    if (fresh) {
        // The plan (and, for a new live copy, its relationship) commit together.
        if (kind_ == RolloutKind::create)
            run.session().set_live_relationship({request.blueprint, request.target,
                                                 request.rollout_configs, request.deep,
                                                 request.excluded_paths});
        run.session().set_checkpoint(name, run.state().encode());
        run.session().commit();
        context.log("planned " + descriptor().name + " of " + in_quotes(request.blueprint) + ": " +
                    counted(run.state().pairs, "page x live copy", "pages x live copies"));
    }
    context.init_progress(run.state().total);
    if (run.state().done > 0) context.increment_progress(run.state().done);

    if (!run.go()) {
        context.log("stopped after " + counted(static_cast<std::uint64_t>(run.state().done),
                                              "step", "steps") +
                    "; submit the same request again to resume");
        return JobResult::failed("stopped; the same request resumes from the checkpoint");
    }
    run.finish();
    return final_result(run.state(), kind_);
}

}  // namespace wharf::rollout
