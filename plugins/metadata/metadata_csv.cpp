#include "metadata_csv.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstring>

namespace wharf_metadata {
namespace {

using namespace std::chrono;

constexpr std::array<unsigned char, 3> kBom = {0xEF, 0xBB, 0xBF};

// libcsv trims spaces and tabs around unquoted fields by default; metadata
// values keep them.
int no_space(unsigned char) { return 0; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

bool is_formula_start(char c) {
    return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r';
}

std::string format_double(double v) {
    char buffer[64];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
    return ec == std::errc() ? std::string(buffer, end) : std::string("0");
}

// Splits a multi-value cell on unescaped delimiters; `\<delimiter>` and `\\`
// stand for the character, any other backslash is kept as it is.
std::vector<std::string> split_values(std::string_view cell, char delimiter) {
    std::vector<std::string> out(1);
    for (std::size_t i = 0; i < cell.size(); ++i) {
        char c = cell[i];
        if (c == '\\' && i + 1 < cell.size() && (cell[i + 1] == delimiter || cell[i + 1] == '\\')) {
            out.back().push_back(cell[++i]);
        } else if (c == delimiter) {
            out.emplace_back();
        } else {
            out.back().push_back(c);
        }
    }
    return out;
}

std::optional<std::int64_t> parse_long(std::string_view text) {
    text = trim(text);
    if (!text.empty() && text.front() == '+') text.remove_prefix(1);
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return v;
}

std::optional<double> parse_double(std::string_view text) {
    text = trim(text);
    if (!text.empty() && text.front() == '+') text.remove_prefix(1);
    double v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return v;
}

std::optional<bool> parse_boolean(std::string_view text) {
    text = trim(text);
    if (iequals(text, "true")) return true;
    if (iequals(text, "false")) return false;
    return std::nullopt;
}

// Reads up to `max` (at least `min`) digits at `pos`.
std::optional<int> read_digits(std::string_view text, std::size_t& pos, int min, int max) {
    int value = 0, n = 0;
    while (n < max && pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
        value = value * 10 + (text[pos] - '0');
        ++pos;
        ++n;
    }
    if (n < min) return std::nullopt;
    return value;
}

// A zone at `pos`: Z, +HH, +HHMM or +HH:MM; minutes east of UTC.
std::optional<int> read_zone(std::string_view text, std::size_t& pos) {
    if (pos >= text.size()) return std::nullopt;
    if (text[pos] == 'Z' || text[pos] == 'z') {
        ++pos;
        return 0;
    }
    if (text[pos] != '+' && text[pos] != '-') return std::nullopt;
    int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    auto hours = read_digits(text, pos, 2, 2);
    if (!hours || *hours > 23) return std::nullopt;
    int minutes = 0;
    if (pos < text.size() && text[pos] == ':') ++pos;
    if (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
        auto m = read_digits(text, pos, 2, 2);
        if (!m || *m > 59) return std::nullopt;
        minutes = *m;
    }
    return sign * (*hours * 60 + minutes);
}

struct DateParts {
    int year = 1970, month = 1, day = 1, hour = 0, minute = 0, second = 0, millis = 0, zone = 0;
};

std::optional<wharf::Date> to_date(const DateParts& p) {
    year_month_day ymd{year{p.year}, month{static_cast<unsigned>(p.month)},
                       day{static_cast<unsigned>(p.day)}};
    if (!ymd.ok() || p.hour > 23 || p.minute > 59 || p.second > 60 || p.millis > 999)
        return std::nullopt;
    auto t = sys_days(ymd) + hours(p.hour) + minutes(p.minute) + seconds(p.second) +
             milliseconds(p.millis) - minutes(p.zone);
    return wharf::Date(duration_cast<milliseconds>(t.time_since_epoch()));
}

// Fraction digits as milliseconds ("5" = 500, "123456" = 123).
int fraction_millis(std::string_view text, std::size_t& pos, int max_digits) {
    int value = 0, n = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos])) &&
           n < max_digits) {
        if (n < 3) value = value * 10 + (text[pos] - '0');
        ++pos;
        ++n;
    }
    for (int i = n; i < 3; ++i) value *= 10;
    return value;
}

std::optional<wharf::Date> parse_iso(std::string_view text) {
    DateParts p;
    std::size_t pos = 0;
    auto y = read_digits(text, pos, 4, 4);
    if (!y || pos >= text.size() || text[pos++] != '-') return std::nullopt;
    auto mo = read_digits(text, pos, 2, 2);
    if (!mo || pos >= text.size() || text[pos++] != '-') return std::nullopt;
    auto d = read_digits(text, pos, 2, 2);
    if (!d) return std::nullopt;
    p.year = *y;
    p.month = *mo;
    p.day = *d;
    if (pos < text.size() && (text[pos] == 'T' || text[pos] == ' ')) {
        ++pos;
        auto h = read_digits(text, pos, 2, 2);
        if (!h || pos >= text.size() || text[pos++] != ':') return std::nullopt;
        auto mi = read_digits(text, pos, 2, 2);
        if (!mi) return std::nullopt;
        p.hour = *h;
        p.minute = *mi;
        if (pos < text.size() && text[pos] == ':') {
            ++pos;
            auto s = read_digits(text, pos, 2, 2);
            if (!s) return std::nullopt;
            p.second = *s;
            if (pos < text.size() && text[pos] == '.') {
                ++pos;
                std::size_t before = pos;
                p.millis = fraction_millis(text, pos, 9);
                if (pos == before) return std::nullopt;
            }
        }
        if (pos < text.size()) {
            auto zone = read_zone(text, pos);
            if (!zone) return std::nullopt;
            p.zone = *zone;
        }
    }
    if (pos != text.size()) return std::nullopt;
    return to_date(p);
}

const std::array<const char*, 12> kMonths = {"jan", "feb", "mar", "apr", "may", "jun",
                                             "jul", "aug", "sep", "oct", "nov", "dec"};

}  // namespace

// --- reading ----------------------------------------------------------------------------

CsvReader::CsvReader(char separator) {
    if (csv_init(&parser_, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
        throw std::runtime_error("cannot initialise the CSV parser");
    csv_set_delim(&parser_, static_cast<unsigned char>(separator));
    csv_set_space_func(&parser_, no_space);
}

CsvReader::~CsvReader() { csv_free(&parser_); }

void CsvReader::on_field(void* data, std::size_t size, void* self) {
    auto& r = *static_cast<CsvReader*>(self);
    r.current_.cells.emplace_back(data ? static_cast<const char*>(data) : "", data ? size : 0);
}

void CsvReader::on_record(int, void* self) {
    auto& r = *static_cast<CsvReader*>(self);
    r.current_.row = ++r.rows_;
    r.out_->push_back(std::move(r.current_));
    r.current_ = CsvRecord{};
}

void CsvReader::fail(const char* reason) const {
    throw CsvError(rows_ + 1, current_.cells.size() + 1, reason);
}

void CsvReader::feed(const char* data, std::size_t size, std::vector<CsvRecord>& out) {
    out_ = &out;
    while (!started_ && size > 0) {
        if (static_cast<unsigned char>(*data) == kBom[bom_seen_]) {
            ++data;
            --size;
            if (++bom_seen_ == kBom.size()) started_ = true;
        } else {
            started_ = true;
            // Bytes that looked like the start of a BOM were data after all.
            if (bom_seen_ > 0 &&
                csv_parse(&parser_, kBom.data(), bom_seen_, on_field, on_record, this) != bom_seen_)
                fail("malformed quoting (a quote inside an unquoted field, or text after a "
                     "closing quote)");
        }
    }
    if (size == 0) return;
    if (csv_parse(&parser_, data, size, on_field, on_record, this) != size) {
        if (csv_error(&parser_) == CSV_ENOMEM) fail("a field is too large");
        fail("malformed quoting (a quote inside an unquoted field, or text after a closing "
             "quote)");
    }
}

void CsvReader::finish(std::vector<CsvRecord>& out) {
    out_ = &out;
    if (!started_ && bom_seen_ > 0) {
        started_ = true;
        csv_parse(&parser_, kBom.data(), bom_seen_, on_field, on_record, this);
    }
    if (csv_fini(&parser_, on_field, on_record, this) != 0)
        fail("a quoted field is not closed before the end of the file");
}

void read_csv(wharf::BinaryReader& input, char separator,
              const std::function<bool(CsvRecord&)>& visit) {
    CsvReader reader(separator);
    std::vector<char> buffer(64 * 1024);
    std::vector<CsvRecord> records;
    auto deliver = [&] {
        for (auto& r : records)
            if (!visit(r)) return false;
        records.clear();
        return true;
    };
    for (;;) {
        auto n = input.read(buffer.data(), buffer.size());
        if (n == 0) break;
        reader.feed(buffer.data(), n, records);
        if (!deliver()) return;
    }
    reader.finish(records);
    deliver();
}

void append_field(std::string& line, std::string_view value, char separator, bool first) {
    if (!first) line.push_back(separator);
    bool quote = !value.empty() && (value.front() == ' ' || value.back() == ' ');
    for (char c : value) {
        if (c == separator || c == '"' || c == '\r' || c == '\n') {
            quote = true;
            break;
        }
    }
    if (!quote) {
        line.append(value);
        return;
    }
    auto needed = csv_write2(nullptr, 0, value.data(), value.size(), CSV_QUOTE);
    auto at = line.size();
    line.resize(at + needed);
    csv_write2(line.data() + at, needed, value.data(), value.size(), CSV_QUOTE);
}

// --- columns ----------------------------------------------------------------------------

std::optional<std::string> parse_column(std::string_view header, Column& out) {
    out = Column{};
    header = trim(header);
    auto open = header.find("{{");
    std::string_view name = header;
    if (open == std::string_view::npos) {
        if (header.find("}}") != std::string_view::npos)
            return std::string("'}}' without '{{'");
    } else {
        if (header.size() < open + 4 || header.substr(header.size() - 2) != "}}")
            return std::string("the type must end with '}}', as in name{{String}}");
        auto inner = trim(header.substr(open + 2, header.size() - open - 4));
        if (inner.find("{{") != std::string_view::npos || inner.find("}}") != std::string_view::npos)
            return std::string("more than one '{{ }}'");
        name = trim(header.substr(0, open));
        auto colon = inner.find(':');
        auto type = trim(inner.substr(0, colon));
        auto rest = colon == std::string_view::npos ? std::string_view{} : trim(inner.substr(colon + 1));
        if (iequals(type, "String")) {
            out.type = wharf::PropertyType::string;
        } else if (iequals(type, "Long") || iequals(type, "Integer") || iequals(type, "Int")) {
            out.type = wharf::PropertyType::long_;
        } else if (iequals(type, "Number")) {
            out.type = wharf::PropertyType::long_;
            out.number = true;
        } else if (iequals(type, "Double") || iequals(type, "Decimal")) {
            out.type = wharf::PropertyType::double_;
        } else if (iequals(type, "Boolean")) {
            out.type = wharf::PropertyType::boolean;
        } else if (iequals(type, "Date")) {
            out.type = wharf::PropertyType::date;
        } else if (iequals(type, "Path")) {
            out.type = wharf::PropertyType::path;
        } else {
            return "unknown type '" + std::string(type) +
                   "' (known: String, Long, Number, Double, Boolean, Date, Path)";
        }
        if (iequals(rest, "multi")) {
            out.multiple = true;
        } else if (istarts_with(rest, "DateFormat")) {
            if (out.type != wharf::PropertyType::date)
                return std::string("DateFormat is only for Date columns");
            auto pattern = trim(rest.substr(10));
            if (pattern.empty() || pattern.front() != ':')
                return std::string("write the date pattern as {{Date: DateFormat: yyyy-MM-dd}}");
            pattern = trim(pattern.substr(1));
            if (pattern.empty()) return std::string("the DateFormat pattern is empty");
            out.date_format = std::string(pattern);
            bool quoted = false;
            for (char c : pattern) {
                if (c == '\'') quoted = !quoted;
                if (!quoted && std::isalpha(static_cast<unsigned char>(c)) &&
                    std::string_view("yMdHmsSXZx").find(c) == std::string_view::npos)
                    return "the DateFormat pattern letter '" + std::string(1, c) +
                           "' is not supported (supported: y M d H m s S X Z)";
            }
        } else if (!rest.empty()) {
            return "unknown option '" + std::string(rest) + "' (known: multi, DateFormat: <pattern>)";
        }
    }
    if (name.empty()) return std::string("the property name is empty");
    if (name.size() > 255) return std::string("the property name is longer than 255 bytes");
    if (!valid_utf8(name)) return std::string("the property name is not valid UTF-8");
    if (name.front() == ':') return std::string("property names cannot start with ':'");
    for (unsigned char c : name) {
        if (c == '/') return std::string("property names cannot contain '/'");
        if (c < 0x20 || c == 0x7f) return std::string("the property name has a control character");
    }
    out.name = std::string(name);
    return std::nullopt;
}

std::string column_header(const Column& column) {
    return column.name + "{{" + wharf::to_string(column.type) + (column.multiple ? ": multi" : "") + "}}";
}

// --- values -----------------------------------------------------------------------------

std::string format_date(wharf::Date date) {
    auto day_point = floor<days>(date);
    year_month_day ymd{day_point};
    hh_mm_ss<milliseconds> time{date - day_point};
    char buffer[40];
    std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                  static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                  static_cast<unsigned>(ymd.day()), static_cast<int>(time.hours().count()),
                  static_cast<int>(time.minutes().count()),
                  static_cast<int>(time.seconds().count()),
                  static_cast<int>(time.subseconds().count()));
    return buffer;
}

std::optional<wharf::Date> parse_date(std::string_view text, std::string_view pattern) {
    text = trim(text);
    if (pattern.empty()) return parse_iso(text);
    DateParts p;
    std::size_t pos = 0;
    for (std::size_t i = 0; i < pattern.size();) {
        char c = pattern[i];
        if (c == '\'') {
            // Quoted literal; '' is a quote.
            auto end = pattern.find('\'', i + 1);
            if (end == i + 1) {
                if (pos >= text.size() || text[pos] != '\'') return std::nullopt;
                ++pos;
                i += 2;
                continue;
            }
            if (end == std::string_view::npos) return std::nullopt;
            auto literal = pattern.substr(i + 1, end - i - 1);
            if (text.substr(pos, literal.size()) != literal) return std::nullopt;
            pos += literal.size();
            i = end + 1;
            continue;
        }
        if (!std::isalpha(static_cast<unsigned char>(c))) {
            if (pos >= text.size() || text[pos] != c) return std::nullopt;
            ++pos;
            ++i;
            continue;
        }
        std::size_t n = 1;
        while (i + n < pattern.size() && pattern[i + n] == c) ++n;
        i += n;
        std::optional<int> v;
        switch (c) {
            case 'y':
                v = read_digits(text, pos, n == 2 ? 2 : 1, n == 2 ? 2 : 4);
                if (!v) return std::nullopt;
                p.year = n == 2 ? 2000 + *v : *v;
                break;
            case 'M':
                if (n >= 3) {
                    auto word = text.substr(pos, 3);
                    auto it = std::find_if(kMonths.begin(), kMonths.end(),
                                           [&](const char* m) { return iequals(word, m); });
                    if (it == kMonths.end()) return std::nullopt;
                    p.month = static_cast<int>(it - kMonths.begin()) + 1;
                    pos += 3;
                    while (pos < text.size() && std::isalpha(static_cast<unsigned char>(text[pos])))
                        ++pos;
                    break;
                }
                v = read_digits(text, pos, 1, 2);
                if (!v) return std::nullopt;
                p.month = *v;
                break;
            case 'd':
            case 'H':
            case 'm':
            case 's':
                v = read_digits(text, pos, 1, 2);
                if (!v) return std::nullopt;
                (c == 'd' ? p.day : c == 'H' ? p.hour : c == 'm' ? p.minute : p.second) = *v;
                break;
            case 'S': {
                std::size_t before = pos;
                p.millis = fraction_millis(text, pos, static_cast<int>(n));
                if (pos == before) return std::nullopt;
                break;
            }
            case 'X':
            case 'Z':
            case 'x': {
                auto zone = read_zone(text, pos);
                if (!zone) return std::nullopt;
                p.zone = *zone;
                break;
            }
            default:
                return std::nullopt;  // a pattern letter this reader does not know
        }
    }
    if (pos != text.size()) return std::nullopt;
    return to_date(p);
}

std::string format_value(const wharf::Scalar& value) {
    if (auto s = std::get_if<std::string>(&value)) return *s;
    if (auto l = std::get_if<std::int64_t>(&value)) return std::to_string(*l);
    if (auto d = std::get_if<double>(&value)) return format_double(*d);
    if (auto b = std::get_if<bool>(&value)) return *b ? "true" : "false";
    if (auto date = std::get_if<wharf::Date>(&value)) return format_date(*date);
    if (auto path = std::get_if<wharf::PathRef>(&value)) return path->path;
    return {};
}

void append_escaped(std::string& cell, std::string_view value, char delimiter) {
    for (char c : value) {
        if (c == delimiter || c == '\\') cell.push_back('\\');
        cell.push_back(c);
    }
}

std::string format_property(const wharf::Property& property, char delimiter) {
    std::string out;
    bool first = true;
    for (const auto& value : property.values) {
        if (!first) out.push_back(delimiter);
        first = false;
        if (property.multiple) {
            append_escaped(out, format_value(value), delimiter);
        } else {
            out += format_value(value);
        }
    }
    return out;
}

std::optional<std::string> parse_cell(const Column& column, std::string_view cell, char delimiter,
                                      wharf::Property& out) {
    std::vector<std::string> texts;
    if (column.multiple) {
        texts = split_values(cell, delimiter);
    } else {
        texts.emplace_back(cell);
    }
    out = wharf::Property{};
    out.multiple = column.multiple;
    out.type = column.type;
    if (column.number) {
        // AEM's Number: Long unless a value has a fraction or an exponent.
        bool all_long = std::all_of(texts.begin(), texts.end(),
                                    [](const std::string& t) { return parse_long(t).has_value(); });
        out.type = all_long ? wharf::PropertyType::long_ : wharf::PropertyType::double_;
    }
    for (const auto& text : texts) {
        auto quoted = "'" + text + "'";
        switch (out.type) {
            case wharf::PropertyType::string:
                out.values.emplace_back(text);
                break;
            case wharf::PropertyType::long_: {
                auto v = parse_long(text);
                if (!v) return quoted + " is not a whole number (Long)";
                out.values.emplace_back(*v);
                break;
            }
            case wharf::PropertyType::double_: {
                auto v = parse_double(text);
                if (!v) return quoted + " is not a number (Double)";
                out.values.emplace_back(*v);
                break;
            }
            case wharf::PropertyType::boolean: {
                auto v = parse_boolean(text);
                if (!v) return quoted + " is not true or false (Boolean)";
                out.values.emplace_back(*v);
                break;
            }
            case wharf::PropertyType::date: {
                auto v = parse_date(text, column.date_format);
                if (!v)
                    return quoted + " is not a date in the format " +
                           (column.date_format.empty() ? std::string("yyyy-MM-dd'T'HH:mm:ss.SSSXXX")
                                                       : column.date_format);
                out.values.emplace_back(*v);
                break;
            }
            case wharf::PropertyType::path: {
                auto t = trim(text);
                if (t.empty() || t.front() != '/') return quoted + " is not an absolute path";
                out.values.emplace_back(wharf::PathRef{std::string(t)});
                break;
            }
        }
    }
    return std::nullopt;
}

std::string guard_formula(std::string value) {
    auto first = value.find_first_not_of('\'');
    if (first != std::string::npos && is_formula_start(value[first])) value.insert(0, 1, '\'');
    return value;
}

std::string unguard_formula(std::string value) {
    auto first = value.find_first_not_of('\'');
    if (first != std::string::npos && first > 0 && is_formula_start(value[first])) value.erase(0, 1);
    return value;
}

}  // namespace wharf_metadata
