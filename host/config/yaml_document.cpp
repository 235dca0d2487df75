#include "config/yaml_document.hpp"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <fstream>
#include <sstream>
#include <system_error>
#include <unordered_map>

namespace fs = std::filesystem;

namespace wharf::host {
namespace {

// Thrown by the builder to stop yaml-cpp once a limit is hit; the error is
// already recorded.
struct StopParsing {};

SourceMark to_mark(const YAML::Mark& m) {
    if (m.is_null()) return {};
    return {m.line + 1, m.column + 1};
}

std::string hex_byte(unsigned char c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned>(c));
    return buf;
}

// Length of the UTF-8 sequence starting at s[i], or 0 when it is not valid
// (overlong forms, surrogates and code points above U+10FFFF included).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = byte(i);
    if (c < 0x80) return 1;
    std::size_t n = 0;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c == 0xE0)
        n = 3, lo = 0xA0;
    else if (c == 0xED)
        n = 3, hi = 0x9F;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
        n = 3;
    else if (c == 0xF0)
        n = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
        n = 4;
    else if (c == 0xF4)
        n = 4, hi = 0x8F;
    else
        return 0;
    if (i + n > s.size()) return 0;
    if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < n; ++k)
        if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
    return n;
}

// The checks YAML parsers do badly: binary bytes, broken UTF-8, tabs used for
// indentation. Columns count characters, as an editor shows them.
std::optional<ConfigError> precheck(std::string_view bytes, const std::string& file) {
    std::size_t i = 0;
    if (bytes.substr(0, 3) == "\xEF\xBB\xBF") i = 3;  // a UTF-8 byte order mark is fine
    // A NUL anywhere means binary, whatever else is wrong before it.
    const bool binary = bytes.find('\0') != std::string_view::npos;
    int line = 1, column = 1;
    bool in_indent = true;
    while (i < bytes.size()) {
        auto c = static_cast<unsigned char>(bytes[i]);
        if (c == '\n') {
            ++line;
            column = 1;
            in_indent = true;
            ++i;
            continue;
        }
        if (binary && c != 0) {
            i += std::max<std::size_t>(1, utf8_sequence_length(bytes, i));
            ++column;
            continue;
        }
        if (c == 0 || (c < 0x20 && c != '\t' && c != '\r') || c == 0x7F) {
            return ConfigError{file,
                               {line, column},
                               "binary content (control byte " + hex_byte(c) +
                                   "); a config file must be UTF-8 text"};
        }
        std::size_t n = utf8_sequence_length(bytes, i);
        if (n == 0) {
            return ConfigError{file,
                               {line, column},
                               "invalid UTF-8 (byte " + hex_byte(c) + "); save the file as UTF-8"};
        }
        if (c == '\t' && in_indent) {
            return ConfigError{file,
                               {line, column},
                               "tab character in indentation; YAML indents with spaces only"};
        }
        if (c != ' ' && c != '\t') in_indent = false;
        i += n;
        ++column;
    }
    return std::nullopt;
}

class TreeBuilder final : public YAML::EventHandler {
public:
    TreeBuilder(const std::string& file, const YamlLimits& limits, std::vector<ConfigError>& errors)
        : file_(file), limits_(limits), errors_(errors) {}

    std::optional<YamlValue> root;

    void OnDocumentStart(const YAML::Mark&) override {}
    void OnDocumentEnd() override {}

    void OnNull(const YAML::Mark& mark, YAML::anchor_t) override {
        YamlValue v;
        v.mark = to_mark(mark);
        place_leaf(std::move(v));
    }

    void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
        // Refusing aliases outright is what makes alias bombs harmless: nothing
        // is ever expanded. Config files gain little from them. One report is
        // enough: a bomb has thousands.
        if (!alias_reported_)
            error(to_mark(mark),
                  "YAML aliases (*name) are not allowed in config files; write the value out, "
                  "or quote a value that starts with '*' (\"*\")");
        alias_reported_ = true;
        YamlValue v;
        v.mark = to_mark(mark);
        place_leaf(std::move(v));
    }

    void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t,
                  const std::string& value) override {
        YamlValue v;
        v.kind = YamlValue::Kind::scalar;
        v.mark = to_mark(mark);
        v.text = value;
        v.quoted = tag == "!" || tag == "tag:yaml.org,2002:str";
        check_tag(v.mark, tag);
        place_leaf(std::move(v));
    }

    void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {
        check_tag(to_mark(mark), tag);
        open(YamlValue::Kind::sequence, to_mark(mark));
    }
    void OnSequenceEnd() override { close(); }

    void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {
        check_tag(to_mark(mark), tag);
        open(YamlValue::Kind::mapping, to_mark(mark));
    }
    void OnMapEnd() override { close(); }

private:
    struct Frame {
        YamlValue* node = nullptr;
        bool expecting_value = false;
        std::unordered_map<std::string, SourceMark> keys;  // mappings: duplicate detection
    };

    void error(SourceMark mark, std::string message) {
        errors_.push_back({file_, mark, std::move(message)});
    }

    void check_tag(SourceMark mark, const std::string& tag) {
        if (tag.empty() || tag == "?" || tag == "!" || tag.rfind("tag:yaml.org,2002:", 0) == 0)
            return;
        error(mark, "YAML tag '" + tag + "' is not supported in config files");
    }

    void count_node(SourceMark mark) {
        if (++nodes_ > limits_.max_nodes) {
            error(mark, "too many values (more than " + std::to_string(limits_.max_nodes) + ")");
            throw StopParsing{};
        }
    }

    // Where the next value goes; for a mapping in key position, records the key.
    // Returns nullptr when the value was consumed as a key.
    YamlValue* slot_for(YamlValue&& v, bool container) {
        if (stack_.empty()) {
            root = std::move(v);
            return &*root;
        }
        Frame& top = stack_.back();
        YamlValue& parent = *top.node;
        if (parent.kind == YamlValue::Kind::sequence) {
            parent.items.push_back(std::move(v));
            return &parent.items.back();
        }
        if (!top.expecting_value) {
            top.expecting_value = true;
            YamlEntry entry;
            entry.key_mark = v.mark;
            if (container) {
                error(v.mark, "complex mapping keys are not supported; keys must be plain text");
                entry.key = "(complex key)";
                parent.entries.push_back(std::move(entry));
                scratch_.push_back(std::move(v));
                return &scratch_.back();
            }
            if (v.kind == YamlValue::Kind::null || v.text.empty()) {
                error(v.mark, "empty key");
            } else {
                auto [it, inserted] = top.keys.emplace(v.text, v.mark);
                if (!inserted) {
                    error(v.mark, "duplicate key '" + v.text + "' (first defined at line " +
                                      std::to_string(it->second.line) + ")");
                }
            }
            entry.key = std::move(v.text);
            parent.entries.push_back(std::move(entry));
            return nullptr;
        }
        top.expecting_value = false;
        parent.entries.back().value = std::move(v);
        return &parent.entries.back().value;
    }

    void place_leaf(YamlValue&& v) {
        count_node(v.mark);
        slot_for(std::move(v), false);
    }

    void open(YamlValue::Kind kind, SourceMark mark) {
        count_node(mark);
        if (static_cast<int>(stack_.size()) >= limits_.max_depth) {
            error(mark,
                  "nested too deeply (more than " + std::to_string(limits_.max_depth) + " levels)");
            throw StopParsing{};
        }
        YamlValue v;
        v.kind = kind;
        v.mark = mark;
        // Pointers into the parent stay valid: only the innermost open
        // container ever grows.
        Frame frame;
        frame.node = slot_for(std::move(v), true);
        stack_.push_back(std::move(frame));
    }

    void close() {
        if (!stack_.empty()) stack_.pop_back();
    }

    const std::string& file_;
    const YamlLimits& limits_;
    std::vector<ConfigError>& errors_;
    std::vector<Frame> stack_;
    std::deque<YamlValue> scratch_;  // complex keys, kept only to keep parsing
    std::size_t nodes_ = 0;
    bool alias_reported_ = false;
};

// Sees whether a second document follows, without building it.
class DocumentProbe final : public YAML::EventHandler {
public:
    std::optional<SourceMark> start;
    void OnDocumentStart(const YAML::Mark& mark) override {
        if (!start) start = to_mark(mark);
    }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
};

std::string syntax_message(const std::string& msg) {
    std::string out = "YAML syntax error: " + msg;
    if (msg.find("alias") != std::string::npos || msg.find("anchor") != std::string::npos)
        out += " (quote values that start with '*' or '&')";
    return out;
}

}  // namespace

std::variant<std::string, ConfigError> read_config_bytes(const fs::path& file,
                                                         const std::string& display_name,
                                                         std::size_t max_bytes) {
    std::error_code ec;
    auto size = fs::file_size(file, ec);
    if (ec) return ConfigError{display_name, {}, "cannot read the file: " + ec.message()};
    if (size > max_bytes) {
        return ConfigError{display_name,
                           {},
                           "file too large (" + std::to_string(size) + " bytes; the limit is " +
                               std::to_string(max_bytes) + ")"};
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) return ConfigError{display_name, {}, "cannot open the file"};
    // Read one byte past the limit: the file may have grown since the stat.
    std::string bytes(max_bytes + 1, '\0');
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    bytes.resize(static_cast<std::size_t>(in.gcount()));
    if (in.bad()) return ConfigError{display_name, {}, "cannot read the file"};
    if (bytes.size() > max_bytes) {
        return ConfigError{display_name,
                           {},
                           "file too large (more than " + std::to_string(max_bytes) +
                               " bytes; the limit is " + std::to_string(max_bytes) + ")"};
    }
    return bytes;
}

YamlLoadResult parse_yaml(std::string_view bytes, const std::string& display_name,
                          const YamlLimits& limits) {
    YamlLoadResult result;
    if (bytes.size() > limits.max_bytes) {
        result.errors.push_back({display_name,
                                 {},
                                 "file too large (" + std::to_string(bytes.size()) +
                                     " bytes; the limit is " + std::to_string(limits.max_bytes) +
                                     ")"});
        return result;
    }
    if (auto problem = precheck(bytes, display_name)) {
        result.errors.push_back(std::move(*problem));
        return result;
    }
    std::istringstream in{std::string(bytes)};
    TreeBuilder builder(display_name, limits, result.errors);
    try {
        YAML::Parser parser(in);
        if (parser.HandleNextDocument(builder)) {
            DocumentProbe probe;
            if (parser.HandleNextDocument(probe) && result.errors.empty()) {
                result.errors.push_back(
                    {display_name, probe.start.value_or(SourceMark{}),
                     "a second YAML document ('---'); a config file holds exactly one"});
            }
        }
    } catch (const StopParsing&) {
    } catch (const YAML::Exception& e) {
        result.errors.push_back({display_name, to_mark(e.mark), syntax_message(e.msg)});
    }
    if (result.errors.empty()) result.document = std::move(builder.root);
    return result;
}

std::string describe(const YamlValue& value) {
    switch (value.kind) {
        case YamlValue::Kind::null:
            return "nothing (null)";
        case YamlValue::Kind::sequence:
            return "a list";
        case YamlValue::Kind::mapping:
            return "a mapping";
        case YamlValue::Kind::scalar:
            break;
    }
    std::string text = value.text.size() > 40 ? value.text.substr(0, 40) + "..." : value.text;
    return value.quoted ? "the string \"" + text + "\"" : "'" + text + "'";
}

}  // namespace wharf::host
