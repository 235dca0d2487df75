#include "config/schema_validator.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <regex>
#include <set>

#include "base/cron.hpp"

namespace pt = boost::property_tree;

namespace wharf::host {
namespace {

using wharf::ConfigField;
using wharf::ConfigType;

struct Context {
    const std::string& file;
    ValidationResult& result;
};

void error(Context& ctx, SourceMark mark, std::string message) {
    ctx.result.errors.push_back({ctx.file, mark, std::move(message)});
}

// Numbers in messages: integers without a decimal point.
std::string format_number(double v) {
    if (std::floor(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
    return out;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
    auto best = closest_match(word, candidates);
    return best ? " (did you mean '" + *best + "'?)" : "";
}

std::optional<std::int64_t> parse_integer(std::string_view text, bool& overflow) {
    overflow = false;
    if (!text.empty() && text.front() == '+') text.remove_prefix(1);
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec == std::errc::result_out_of_range) {
        overflow = true;
        return std::nullopt;
    }
    if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
    return v;
}

std::optional<double> parse_number(std::string_view text) {
    if (!text.empty() && text.front() == '+') text.remove_prefix(1);
    double v = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || ptr != text.data() + text.size() || text.empty() || !std::isfinite(v))
        return std::nullopt;
    return v;
}

std::optional<bool> parse_boolean(std::string_view text) {
    auto t = lower(text);
    if (t == "true" || t == "yes" || t == "on") return true;
    if (t == "false" || t == "no" || t == "off") return false;
    return std::nullopt;
}

std::string range_text(const ConfigField& f) {
    if (f.minimum && f.maximum)
        return format_number(*f.minimum) + " to " + format_number(*f.maximum);
    if (f.minimum) return "minimum " + format_number(*f.minimum);
    return "maximum " + format_number(*f.maximum);
}

bool in_range(const ConfigField& f, double v) {
    return (!f.minimum || v >= *f.minimum) && (!f.maximum || v <= *f.maximum);
}

// The default of a field as a YAML value: scalar types take the text as it
// is (so "*" or "0 0 1 * * ?" need no quoting); lists, maps and objects parse
// it as YAML ("[]", "{a: 1}").
std::optional<YamlValue> default_node(const ConfigField& f) {
    if (!f.default_value) return std::nullopt;
    if (f.type == ConfigType::list || f.type == ConfigType::map || f.type == ConfigType::object) {
        auto parsed = parse_yaml(*f.default_value, "(default)");
        if (!parsed.ok()) return std::nullopt;
        return parsed.document.value_or(YamlValue{});
    }
    YamlValue v;
    v.kind = YamlValue::Kind::scalar;
    v.text = *f.default_value;
    return v;
}

std::optional<pt::ptree> validate_value(const YamlValue& v, const ConfigField& f,
                                        const std::string& path, Context& ctx);

std::optional<pt::ptree> validate_mapping(const YamlValue& v,
                                          const std::vector<ConfigField>& fields,
                                          const std::string& prefix, Context& ctx);

std::optional<pt::ptree> default_for(const ConfigField& f, const std::string& path, Context& ctx) {
    if (f.default_value) {
        auto node = default_node(f);
        if (!node) {
            error(ctx, {}, "the schema's default for '" + path + "' is not valid YAML");
            return std::nullopt;
        }
        ValidationResult scratch;
        Context inner{ctx.file, scratch};
        auto value = validate_value(*node, f, path, inner);
        for (auto& e : scratch.errors) {
            e.message = "the schema's default for '" + path + "' is invalid: " + e.message;
            ctx.result.errors.push_back(std::move(e));
        }
        return value;
    }
    if (f.type == ConfigType::object) {
        // An absent object without a default still gets its members' defaults,
        // unless it has required members (then it stays absent).
        ValidationResult scratch;
        Context inner{ctx.file, scratch};
        YamlValue empty;
        empty.kind = YamlValue::Kind::mapping;
        auto value = validate_mapping(empty, f.fields, path, inner);
        if (scratch.ok()) return value;
    }
    return std::nullopt;
}

std::optional<pt::ptree> validate_mapping(const YamlValue& v,
                                          const std::vector<ConfigField>& fields,
                                          const std::string& prefix, Context& ctx) {
    bool ok = true;
    std::map<std::string, const YamlEntry*> given;
    std::vector<std::string> names;
    for (const auto& f : fields) names.push_back(f.name);
    for (const auto& entry : v.entries) {
        auto known = std::find(names.begin(), names.end(), entry.key) != names.end();
        if (!known) {
            std::string where = prefix.empty() ? "" : " in '" + prefix + "'";
            auto hint = did_you_mean(entry.key, names);
            if (hint.empty() && !names.empty()) hint = " (known keys: " + join(names) + ")";
            error(ctx, entry.key_mark, "unknown key '" + entry.key + "'" + where + hint);
            ok = false;
            continue;
        }
        given.emplace(entry.key, &entry);
    }
    pt::ptree out;
    for (const auto& f : fields) {
        std::string path = prefix.empty() ? f.name : prefix + "." + f.name;
        if (auto it = given.find(f.name); it != given.end()) {
            auto value = validate_value(it->second->value, f, path, ctx);
            if (value)
                out.push_back({f.name, std::move(*value)});
            else
                ok = false;
        } else if (f.required) {
            error(ctx, v.mark, "missing required key '" + path + "'");
            ok = false;
        } else if (auto d = default_for(f, path, ctx)) {
            out.push_back({f.name, std::move(*d)});
        }
    }
    if (!ok) return std::nullopt;
    return out;
}

std::optional<pt::ptree> validate_value(const YamlValue& v, const ConfigField& f,
                                        const std::string& path, Context& ctx) {
    ctx.result.marks[path] = v.mark;
    auto wrong = [&](const std::string& expected) -> std::optional<pt::ptree> {
        std::string message;
        if (v.kind == YamlValue::Kind::null) {
            message = "'" + path + "' has no value; expected " + expected;
            if (f.default_value) message += " (remove the key to use the default)";
        } else {
            message =
                "wrong type for '" + path + "': expected " + expected + ", got " + describe(v);
        }
        error(ctx, v.mark, message);
        return std::nullopt;
    };
    const bool scalar = v.kind == YamlValue::Kind::scalar;
    switch (f.type) {
        case ConfigType::string: {
            if (!scalar) return wrong("a string");
            if (!f.one_of.empty() &&
                std::find(f.one_of.begin(), f.one_of.end(), v.text) == f.one_of.end()) {
                error(ctx, v.mark,
                      "'" + path + "' must be one of " + join(f.one_of) + "; got '" + v.text + "'" +
                          did_you_mean(v.text, f.one_of));
                return std::nullopt;
            }
            if (!f.format.empty()) {
                if (auto problem = check_format(f.format, v.text)) {
                    SourceMark mark = v.mark;
                    // Point at the offending character when the value sits on
                    // one line as written.
                    if (v.text.find('\n') == std::string::npos)
                        mark.column += static_cast<int>(problem->offset) + (v.quoted ? 1 : 0);
                    error(ctx, mark,
                          "invalid " + f.format + " for '" + path + "': " + problem->message);
                    return std::nullopt;
                }
            }
            return pt::ptree(v.text);
        }
        case ConfigType::integer: {
            if (!scalar || v.quoted) return wrong("an integer");
            bool overflow = false;
            auto n = parse_integer(v.text, overflow);
            if (!n) {
                if (overflow) {
                    error(ctx, v.mark, "value " + v.text + " for '" + path + "' is out of range");
                    return std::nullopt;
                }
                return wrong("an integer");
            }
            if (!in_range(f, static_cast<double>(*n))) {
                error(ctx, v.mark,
                      "value " + std::to_string(*n) + " for '" + path + "' is out of range (" +
                          range_text(f) + ")");
                return std::nullopt;
            }
            return pt::ptree(std::to_string(*n));
        }
        case ConfigType::number: {
            if (!scalar || v.quoted) return wrong("a number");
            auto n = parse_number(v.text);
            if (!n) return wrong("a number");
            if (!in_range(f, *n)) {
                error(ctx, v.mark,
                      "value " + v.text + " for '" + path + "' is out of range (" + range_text(f) +
                          ")");
                return std::nullopt;
            }
            std::string text = v.text.front() == '+' ? v.text.substr(1) : v.text;
            return pt::ptree(text);
        }
        case ConfigType::boolean: {
            if (!scalar || v.quoted) return wrong("true or false");
            auto b = parse_boolean(v.text);
            if (!b) return wrong("true or false");
            return pt::ptree(*b ? "true" : "false");
        }
        case ConfigType::list: {
            if (v.kind != YamlValue::Kind::sequence && v.kind != YamlValue::Kind::null) {
                auto r = wrong("a list");
                if (scalar) ctx.result.errors.back().message += " (write [" + v.text + "])";
                return r;
            }
            auto count = static_cast<double>(v.items.size());
            if (!in_range(f, count)) {
                error(ctx, v.mark,
                      "'" + path + "' has " + std::to_string(v.items.size()) + " items; " +
                          (f.minimum && count < *f.minimum
                               ? "it needs at least " + format_number(*f.minimum)
                               : "it may have at most " + format_number(*f.maximum)));
                return std::nullopt;
            }
            pt::ptree out;
            bool ok = true;
            for (std::size_t i = 0; i < v.items.size(); ++i) {
                if (f.item.empty()) break;
                auto item =
                    validate_value(v.items[i], f.item.front(), path + "." + std::to_string(i), ctx);
                if (item)
                    out.push_back({"", std::move(*item)});
                else
                    ok = false;
            }
            if (!ok) return std::nullopt;
            return out;
        }
        case ConfigType::map: {
            if (v.kind != YamlValue::Kind::mapping && v.kind != YamlValue::Kind::null)
                return wrong("a mapping");
            auto count = static_cast<double>(v.entries.size());
            if (!in_range(f, count)) {
                error(ctx, v.mark,
                      "'" + path + "' has " + std::to_string(v.entries.size()) + " entries (" +
                          range_text(f) + ")");
                return std::nullopt;
            }
            pt::ptree out;
            bool ok = true;
            for (const auto& entry : v.entries) {
                if (f.item.empty()) break;
                auto item =
                    validate_value(entry.value, f.item.front(), path + "." + entry.key, ctx);
                // push_back, not put: free keys may contain dots.
                if (item)
                    out.push_back({entry.key, std::move(*item)});
                else
                    ok = false;
            }
            if (!ok) return std::nullopt;
            return out;
        }
        case ConfigType::object: {
            if (v.kind != YamlValue::Kind::mapping) return wrong("a mapping");
            return validate_mapping(v, f.fields, path, ctx);
        }
    }
    return std::nullopt;
}

bool valid_field_name(const std::string& name) {
    static const std::regex re("[A-Za-z0-9_][A-Za-z0-9_-]*");
    return std::regex_match(name, re);
}

void check_fields(const std::vector<ConfigField>& fields, const std::string& prefix,
                  std::vector<std::string>& problems);

void check_field(const ConfigField& f, const std::string& path, bool named,
                 std::vector<std::string>& problems) {
    auto problem = [&](const std::string& what) { problems.push_back("'" + path + "': " + what); };
    if (named && !valid_field_name(f.name))
        problem("invalid key name (letters, digits, '_' and '-')");
    if (!f.one_of.empty() && f.type != ConfigType::string) problem("one_of needs type string");
    if (!f.format.empty()) {
        if (!is_known_format(f.format))
            problem("unknown format '" + f.format + "'");
        else if (f.type != ConfigType::string)
            problem("format needs type string");
    }
    if (f.minimum && f.maximum && *f.minimum > *f.maximum) problem("minimum exceeds maximum");
    if ((f.minimum || f.maximum) && (f.type == ConfigType::string ||
                                     f.type == ConfigType::boolean || f.type == ConfigType::object))
        problem("minimum/maximum apply to integer, number, list and map only");
    if (f.required && f.default_value) problem("a required key cannot have a default");
    if (f.type == ConfigType::list || f.type == ConfigType::map) {
        if (f.item.size() != 1)
            problem("list and map need exactly one item description");
        else
            check_field(f.item.front(), path + ".*", false, problems);
    }
    if (f.type == ConfigType::object) {
        if (f.fields.empty()) problem("an object needs fields");
        check_fields(f.fields, path, problems);
    }
    if (f.default_value) {
        auto node = default_node(f);
        if (!node) {
            problem("default is not valid YAML");
        } else {
            ValidationResult scratch;
            std::string file = "(default)";
            Context ctx{file, scratch};
            validate_value(*node, f, path, ctx);
            for (const auto& e : scratch.errors) problem("invalid default: " + e.message);
        }
    }
}

void check_fields(const std::vector<ConfigField>& fields, const std::string& prefix,
                  std::vector<std::string>& problems) {
    std::set<std::string> seen;
    for (const auto& f : fields) {
        std::string path = prefix.empty() ? f.name : prefix + "." + f.name;
        if (!seen.insert(f.name).second) problems.push_back("'" + path + "': declared twice");
        check_field(f, path, true, problems);
    }
}

bool valid_host(std::string_view host) {
    if (host.empty()) return false;
    if (host.front() == '[') {
        if (host.back() != ']' || host.size() < 3) return false;
        for (char c : host.substr(1, host.size() - 2))
            if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
        return true;
    }
    if (host == "*") return true;
    for (char c : host)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') return false;
    return true;
}

}  // namespace

bool is_known_format(std::string_view format) {
    static const std::set<std::string, std::less<>> kFormats{
        "cron", "topic-pattern", "topic", "listen-address", "path", "email", "url"};
    return kFormats.count(format) > 0;
}

std::optional<FormatProblem> check_format(std::string_view format, std::string_view value) {
    if (format == "cron") {
        try {
            auto schedule = CronSchedule::parse(value);
            if (!schedule.next_after(std::chrono::system_clock::now()))
                return FormatProblem{"the cron expression never fires", 0};
        } catch (const CronSyntaxError& e) {
            return FormatProblem{e.reason(), e.column()};
        }
        return std::nullopt;
    }
    if (format == "topic-pattern") return check_queue_topic_pattern(value);
    if (format == "topic") return check_topic(value);
    if (format == "listen-address") {
        auto colon = value.rfind(':');
        if (colon == std::string_view::npos)
            return FormatProblem{"expected host:port (e.g. 127.0.0.1:8420)", 0};
        auto host = value.substr(0, colon);
        auto port = value.substr(colon + 1);
        if (!valid_host(host)) return FormatProblem{"invalid host '" + std::string(host) + "'", 0};
        bool overflow = false;
        auto n = parse_integer(port, overflow);
        if (!n || *n < 0 || *n > 65535 || port.front() == '+' || port.front() == '-')
            return FormatProblem{"port must be a number from 0 to 65535", colon + 1};
        return std::nullopt;
    }
    if (format == "path") {
        if (value.empty()) return FormatProblem{"the path is empty", 0};
        if (auto nl = value.find('\n'); nl != std::string_view::npos)
            return FormatProblem{"a path cannot contain a line break", nl};
        return std::nullopt;
    }
    if (format == "email") {
        auto at = value.find('@');
        if (at == std::string_view::npos || at == 0 || at + 1 == value.size() ||
            value.find('@', at + 1) != std::string_view::npos)
            return FormatProblem{"expected an address like name@example.org", 0};
        for (std::size_t i = 0; i < value.size(); ++i) {
            auto c = static_cast<unsigned char>(value[i]);
            if (std::isspace(c) || c == '<' || c == '>' || c == ',' || c == ';')
                return FormatProblem{
                    "an e-mail address cannot contain '" + std::string(1, value[i]) + "'", i};
        }
        return std::nullopt;
    }
    if (format == "url") {
        static const std::regex re("[A-Za-z][A-Za-z0-9+.-]*://[^\\s]+");
        if (!std::regex_match(value.begin(), value.end(), re))
            return FormatProblem{"expected a URL like https://host/path", 0};
        return std::nullopt;
    }
    return FormatProblem{"unknown format '" + std::string(format) + "'", 0};
}

std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates) {
    auto a = lower(word);
    std::optional<std::string> best;
    std::size_t best_distance = 0;
    for (const auto& candidate : candidates) {
        auto b = lower(candidate);
        // Optimal string alignment distance: typos, missing letters, swaps.
        std::vector<std::vector<std::size_t>> d(a.size() + 1,
                                                std::vector<std::size_t>(b.size() + 1));
        for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
        for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
        for (std::size_t i = 1; i <= a.size(); ++i) {
            for (std::size_t j = 1; j <= b.size(); ++j) {
                std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
        std::size_t distance = d[a.size()][b.size()];
        std::size_t limit = std::max<std::size_t>(1, std::min<std::size_t>(3, a.size() / 3));
        bool prefix = a.size() >= 4 && (b.rfind(a, 0) == 0 || a.rfind(b, 0) == 0);
        if ((distance <= limit || prefix) && (!best || distance < best_distance)) {
            best = candidate;
            best_distance = distance;
        }
    }
    return best;
}

ValidationResult validate_document(const YamlValue* document, const wharf::ConfigSchema& schema,
                                   const std::string& file, const ConfigCheck& check) {
    ValidationResult result;
    Context ctx{file, result};
    YamlValue empty;
    empty.kind = YamlValue::Kind::mapping;
    const YamlValue& root = document ? *document : empty;
    if (root.kind != YamlValue::Kind::mapping) {
        error(ctx, root.mark,
              "the file must be a mapping of keys to values, got " + describe(root));
        return result;
    }
    auto values = validate_mapping(root, schema.fields, "", ctx);
    if (!values || !result.ok()) return result;
    result.values = std::move(*values);
    if (check) {
        for (auto& problem : check(result.values)) {
            auto mark = result.marks.find(problem.key);
            // A defaulted key has no place in the file: point at its start.
            error(ctx, mark != result.marks.end() && document ? mark->second : root.mark,
                  std::move(problem.message));
        }
        if (!result.ok()) result.values.clear();
    }
    return result;
}

std::vector<std::string> check_schema(const wharf::ConfigSchema& schema) {
    std::vector<std::string> problems;
    static const std::regex name_re("[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*");
    if (!std::regex_match(schema.name, name_re))
        problems.push_back("invalid schema name '" + schema.name +
                           "' (lower-case path such as operations/delete)");
    check_fields(schema.fields, "", problems);
    for (auto& p : problems) p = schema.name + ": " + p;
    return problems;
}

}  // namespace wharf::host
