#include "base/cron.hpp"

#include <array>
#include <cctype>
#include <vector>

namespace wharf::host {

namespace {

using namespace std::chrono;

constexpr std::array<std::string_view, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> kDayNames = {"SUN", "MON", "TUE", "WED",
                                                       "THU", "FRI", "SAT"};
constexpr int kFirstYear = 1970;
constexpr int kLastYear = 2099;

enum class Field { seconds, minutes, hours, day_of_month, month, day_of_week, year };

struct FieldSpec {
    const char* name;
    int min;
    int max;
};

FieldSpec spec(Field f) {
    switch (f) {
        case Field::seconds:
            return {"seconds", 0, 59};
        case Field::minutes:
            return {"minutes", 0, 59};
        case Field::hours:
            return {"hours", 0, 23};
        case Field::day_of_month:
            return {"day-of-month", 1, 31};
        case Field::month:
            return {"month", 1, 12};
        case Field::day_of_week:
            return {"day-of-week", 1, 7};
        case Field::year:
            return {"year", kFirstYear, kLastYear};
    }
    return {"", 0, 0};
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    return true;
}

// Quartz numbers days of the week 1 (Sunday) to 7 (Saturday).
int quartz_day_of_week(year_month_day date) {
    return static_cast<int>(weekday(sys_days(date)).c_encoding()) + 1;
}

int last_day_of(year_month_day date) {
    return static_cast<int>(
        unsigned(year_month_day_last(date.year(), month_day_last(date.month())).day()));
}

}  // namespace

CronSyntaxError::CronSyntaxError(std::size_t column, std::string reason)
    : Error(ErrorCode::invalid_argument,
            "cron expression column " + std::to_string(column) + ": " + reason),
      column_(column),
      reason_(std::move(reason)) {}

// Parses one expression into a CronSchedule; every error names the column of
// the token that caused it.
class CronSchedule::Parser {
public:
    explicit Parser(std::string_view text) : text_(text) {}

    CronSchedule parse() {
        CronSchedule e;
        e.text_ = std::string(text_);
        struct Token {
            std::string_view text;
            std::size_t column;
        };
        std::vector<Token> fields;
        std::size_t i = 0;
        while (i < text_.size()) {
            while (i < text_.size() && std::isspace(static_cast<unsigned char>(text_[i]))) ++i;
            if (i >= text_.size()) break;
            std::size_t start = i;
            while (i < text_.size() && !std::isspace(static_cast<unsigned char>(text_[i]))) ++i;
            fields.push_back({text_.substr(start, i - start), start});
        }
        if (fields.size() > 7) {
            fail(fields[7].column,
                 "too many fields: expected 6 or 7 (seconds minutes hours "
                 "day-of-month month day-of-week [year]), found " +
                     std::to_string(fields.size()));
        }
        if (fields.size() < 6) {
            fail(text_.size(),
                 "too few fields: expected 6 or 7 (seconds minutes hours "
                 "day-of-month month day-of-week [year]), found " +
                     std::to_string(fields.size()));
        }
        parse_plain(fields[0].text, fields[0].column, Field::seconds, e.seconds_);
        parse_plain(fields[1].text, fields[1].column, Field::minutes, e.minutes_);
        parse_plain(fields[2].text, fields[2].column, Field::hours, e.hours_);
        parse_day_of_month(fields[3].text, fields[3].column, e);
        parse_plain(fields[4].text, fields[4].column, Field::month, e.months_);
        parse_day_of_week(fields[5].text, fields[5].column, e);
        if (fields.size() == 7) {
            parse_plain(fields[6].text, fields[6].column, Field::year, e.years_);
        } else {
            e.years_.set();
        }
        if (fields[3].text != "?" && fields[5].text != "?") {
            fail(fields[5].column,
                 "one of day-of-month and day-of-week must be '?' (e.g. '0 0 1 * * ?')");
        }
        if (fields[3].text == "?" && fields[5].text == "?") {
            fail(fields[5].column, "day-of-month and day-of-week cannot both be '?'");
        }
        return e;
    }

private:
    [[noreturn]] void fail(std::size_t column, std::string reason) const {
        throw CronSyntaxError(column, std::move(reason));
    }

    // A number or, for month and day-of-week, a three-letter name.
    int parse_value(std::string_view token, std::size_t column, Field field) const {
        FieldSpec s = spec(field);
        if (token.empty()) fail(column, std::string("missing value in ") + s.name);
        int value = 0;
        if (all_digits(token)) {
            if (token.size() > 4) fail(column, std::string("value out of range for ") + s.name);
            value = std::stoi(std::string(token));
        } else {
            std::string name = upper(token);
            bool found = false;
            if (field == Field::month) {
                for (std::size_t k = 0; k < kMonthNames.size(); ++k)
                    if (name == kMonthNames[k]) value = static_cast<int>(k) + 1, found = true;
            } else if (field == Field::day_of_week) {
                for (std::size_t k = 0; k < kDayNames.size(); ++k)
                    if (name == kDayNames[k]) value = static_cast<int>(k) + 1, found = true;
            }
            if (!found) {
                fail(column,
                     "invalid " + std::string(s.name) + " value '" + std::string(token) + "'");
            }
        }
        if (value < s.min || value > s.max) {
            fail(column, std::string(s.name) + " value " + std::to_string(value) +
                             " out of range " + std::to_string(s.min) + "-" +
                             std::to_string(s.max));
        }
        return value;
    }

    // `*`, values, ranges, steps and lists. Bit v of `bits` is value v, offset
    // by the field's minimum for years.
    template <std::size_t N>
    void parse_plain(std::string_view field_text, std::size_t column, Field field,
                     std::bitset<N>& bits) const {
        FieldSpec s = spec(field);
        int offset = field == Field::year ? kFirstYear : 0;
        std::size_t pos = 0;
        while (true) {
            std::size_t comma = field_text.find(',', pos);
            std::string_view item = field_text.substr(
                pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
            std::size_t item_column = column + pos;
            if (item.empty()) fail(item_column, std::string("empty list item in ") + s.name);
            if (item == "?") {
                fail(item_column, std::string("'?' is only allowed in day-of-month and "
                                              "day-of-week, not in ") +
                                      s.name);
            }
            int first = s.min;
            int last = s.max;
            int step = 1;
            std::string_view range = item;
            std::size_t slash = item.find('/');
            if (slash != std::string_view::npos) {
                range = item.substr(0, slash);
                std::string_view step_text = item.substr(slash + 1);
                std::size_t step_column = item_column + slash + 1;
                if (!all_digits(step_text) || step_text.size() > 4) {
                    fail(step_column, std::string("step must be a positive number in ") + s.name);
                }
                step = std::stoi(std::string(step_text));
                if (step == 0 || step > s.max - s.min + 1) {
                    fail(step_column, "step " + std::to_string(step) + " out of range 1-" +
                                          std::to_string(s.max - s.min + 1) + " for " + s.name);
                }
            }
            bool wraps = false;
            if (range == "*") {
                // all values from the minimum
            } else {
                std::size_t dash = range.find('-');
                if (dash == std::string_view::npos) {
                    first = parse_value(range, item_column, field);
                    last = slash != std::string_view::npos ? s.max : first;
                } else {
                    first = parse_value(range.substr(0, dash), item_column, field);
                    last = parse_value(range.substr(dash + 1), item_column + dash + 1, field);
                    wraps = last < first;
                }
            }
            if (field == Field::year && wraps) {
                fail(item_column, "year range must not go backwards");
            }
            // A wrapping range (22-2) runs to the maximum and on from the minimum.
            int span = wraps ? (s.max - first + 1) + (last - s.min + 1) : last - first + 1;
            for (int k = 0; k < span; k += step) {
                int v = first + k;
                if (v > s.max) v = v - s.max + s.min - 1;
                bits.set(static_cast<std::size_t>(v - offset));
            }
            if (comma == std::string_view::npos) break;
            pos = comma + 1;
        }
    }

    void parse_day_of_month(std::string_view f, std::size_t column, CronSchedule& e) const {
        if (f == "?" || f == "*") return;
        e.any_day_of_month_ = false;
        std::string u = upper(f);
        if (u == "L") {
            e.last_day_offset_ = 0;
        } else if (u == "LW") {
            e.last_weekday_ = true;
        } else if (u.rfind("L-", 0) == 0) {
            std::string_view n = f.substr(2);
            if (!all_digits(n) || n.size() > 2 || std::stoi(std::string(n)) > 30) {
                fail(column + 2, "offset after 'L-' must be a number 0-30");
            }
            e.last_day_offset_ = std::stoi(std::string(n));
        } else if (u.size() >= 2 && u.back() == 'W' && u.find(',') == std::string::npos &&
                   u.find('-') == std::string::npos && u.find('/') == std::string::npos) {
            e.nearest_weekday_ =
                parse_value(f.substr(0, f.size() - 1), column, Field::day_of_month);
        } else {
            std::size_t at = u.find_first_of("LW");
            if (at != std::string::npos) {
                fail(column + at, std::string("'") + u[at] +
                                      "' must stand alone in day-of-month (L, L-n, LW or nW)");
            }
            if (u.find('#') != std::string::npos) {
                fail(column + u.find('#'), "'#' is only allowed in day-of-week");
            }
            parse_plain(f, column, Field::day_of_month, e.days_of_month_);
        }
    }

    void parse_day_of_week(std::string_view f, std::size_t column, CronSchedule& e) const {
        if (f == "?" || f == "*") return;
        e.any_day_of_week_ = false;
        std::string u = upper(f);
        std::size_t hash = u.find('#');
        bool plain_chars = u.find_first_of(",-/") == std::string::npos;
        if (u == "L") {
            e.days_of_week_.set(7);  // Quartz: L alone in day-of-week is Saturday
        } else if (hash != std::string::npos && plain_chars) {
            int day = parse_value(f.substr(0, hash), column, Field::day_of_week);
            std::string_view n = f.substr(hash + 1);
            if (!all_digits(n) || n.size() != 1 || n[0] < '1' || n[0] > '5') {
                fail(column + hash + 1, "the number after '#' must be 1-5");
            }
            e.nth_weekday_day_ = day;
            e.nth_weekday_index_ = n[0] - '0';
        } else if (u.size() >= 2 && u.back() == 'L' && plain_chars) {
            e.last_weekday_of_month_ =
                parse_value(f.substr(0, f.size() - 1), column, Field::day_of_week);
        } else {
            if (hash != std::string::npos) {
                fail(column + hash, "'#' cannot be combined with a list or range");
            }
            // Names contain no L, so an L here is a misplaced special.
            for (std::size_t k = 0; k < u.size(); ++k) {
                if (u[k] == 'L' &&
                    (k + 1 == u.size() || !std::isalpha(static_cast<unsigned char>(u[k + 1])))) {
                    if (k == 0 || !std::isalpha(static_cast<unsigned char>(u[k - 1]))) {
                        fail(column + k, "'L' cannot be combined with a list or range");
                    }
                }
            }
            parse_plain(f, column, Field::day_of_week, e.days_of_week_);
        }
    }

    std::string_view text_;
};

CronSchedule CronSchedule::parse(std::string_view text) { return Parser(text).parse(); }

bool CronSchedule::day_matches(year_month_day date) const {
    if (any_day_of_month_ && any_day_of_week_) return true;
    int day = static_cast<int>(unsigned(date.day()));
    int last = last_day_of(date);
    if (!any_day_of_month_) {
        if (last_day_offset_) return day == last - *last_day_offset_;
        if (last_weekday_) {
            int dow = quartz_day_of_week(
                year_month_day(date.year(), date.month(), std::chrono::day(unsigned(last))));
            int target = dow == 7 ? last - 1 : dow == 1 ? last - 2 : last;
            return day == target;
        }
        if (nearest_weekday_) {
            int n = *nearest_weekday_;
            if (n > last) return false;
            int dow = quartz_day_of_week(
                year_month_day(date.year(), date.month(), std::chrono::day(unsigned(n))));
            int target = n;
            if (dow == 7)
                target = n == 1 ? n + 2 : n - 1;  // Saturday
            else if (dow == 1)
                target = n == last ? n - 2 : n + 1;  // Sunday
            return day == target;
        }
        return days_of_month_.test(static_cast<std::size_t>(day));
    }
    int dow = quartz_day_of_week(date);
    if (last_weekday_of_month_) return dow == *last_weekday_of_month_ && day + 7 > last;
    if (nth_weekday_day_)
        return dow == *nth_weekday_day_ && (day - 1) / 7 + 1 == nth_weekday_index_;
    return days_of_week_.test(static_cast<std::size_t>(dow));
}

std::optional<CronSchedule::TimePoint> CronSchedule::next_after(TimePoint after) const {
    const auto start = floor<seconds>(after) + seconds(1);
    sys_days day = floor<days>(start);
    seconds time_of_day = start - day;

    // The calendar repeats every 400 years: no match within 401 means none ever.
    int last_year = static_cast<int>(year_month_day(day).year()) + 401;
    for (int y = kLastYear; y >= kFirstYear; --y) {
        if (years_.test(static_cast<std::size_t>(y - kFirstYear))) {
            if (!years_.all()) last_year = std::min(last_year, y);
            break;
        }
    }

    while (true) {
        year_month_day date(day);
        int y = static_cast<int>(date.year());
        if (y > last_year) return std::nullopt;
        bool year_ok = y >= kFirstYear && y <= kLastYear
                           ? years_.test(static_cast<std::size_t>(y - kFirstYear))
                           : years_.all();
        if (!year_ok) {
            day = sys_days(year(y + 1) / January / 1);
            time_of_day = seconds(0);
            continue;
        }
        unsigned m = unsigned(date.month());
        if (!months_.test(m)) {
            day = sys_days(m == 12 ? year(y + 1) / January / 1 : year(y) / month(m + 1) / 1);
            time_of_day = seconds(0);
            continue;
        }
        if (day_matches(date)) {
            auto hms = hh_mm_ss<seconds>(time_of_day);
            int h0 = static_cast<int>(hms.hours().count());
            int m0 = static_cast<int>(hms.minutes().count());
            int s0 = static_cast<int>(hms.seconds().count());
            for (int h = h0; h < 24; ++h) {
                if (!hours_.test(static_cast<std::size_t>(h))) continue;
                for (int mi = h == h0 ? m0 : 0; mi < 60; ++mi) {
                    if (!minutes_.test(static_cast<std::size_t>(mi))) continue;
                    for (int s = (h == h0 && mi == m0) ? s0 : 0; s < 60; ++s) {
                        if (seconds_.test(static_cast<std::size_t>(s))) {
                            return TimePoint(day + hours(h) + minutes(mi) + seconds(s));
                        }
                    }
                }
            }
        }
        day += days(1);
        time_of_day = seconds(0);
    }
}

}  // namespace wharf::host
