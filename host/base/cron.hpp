#pragma once
// CronSchedule: a Quartz-style cron expression as the job engine's scheduler
// evaluates it (UTC, see below), with parse errors that name the column.
//
// Syntax: 6 or 7 fields separated by blanks:
//
//   seconds  minutes  hours  day-of-month  month  day-of-week  [year]
//   0-59     0-59     0-23   1-31          1-12   1-7 (1=SUN)  1970-2099
//                                          JAN-DEC SUN-SAT
//
// Every field takes `*`, a value, a range `a-b`, a step `a/n` or `a-b/n` or
// `*/n`, and comma lists of those. Names are case-insensitive. A range may
// wrap (`FRI-MON`, `22-2`). Day-of-month and day-of-week also take `?` (no
// specific value). Day-of-month takes `L` (last day), `L-n` (n days before the
// last), `nW` (weekday nearest day n, within the month), `LW` (last weekday).
// Day-of-week takes `nL` (last day n of the month, `6L` = last Friday), `L`
// alone (= 7, Saturday, as in Quartz) and `n#k` (k-th day n, `2#1` = first
// Monday). `L`, `W` and `#` cannot be combined with lists.
//
// As in Quartz, exactly one of day-of-month and day-of-week must be `?`: both
// given is refused (Unix cron's "either" rule surprises people), and so is a
// Unix-style five-field expression.
//
// Time zone: expressions are evaluated in UTC (the host's scheduler has no
// time zone configured), so there are no DST gaps or repeats.
//
// Thread-safety: a CronSchedule is an immutable value; share it freely.

#include <bitset>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.hpp"

namespace wharf::host {

/// A cron expression that does not parse. `column()` is the 0-based character
/// offset in the expression text where the problem starts.
class CronSyntaxError : public Error {
public:
    CronSyntaxError(std::size_t column, std::string reason);
    std::size_t column() const noexcept { return column_; }
    const std::string& reason() const noexcept { return reason_; }

private:
    std::size_t column_;
    std::string reason_;
};

class CronSchedule {
public:
    using TimePoint = std::chrono::system_clock::time_point;

    /// Parses `text`. Throws CronSyntaxError with the column and reason.
    static CronSchedule parse(std::string_view text);

    /// The first fire time strictly after `after` (whole seconds, UTC), or
    /// std::nullopt when the expression never fires again (a past year, or a
    /// day that does not exist such as 30 FEB).
    std::optional<TimePoint> next_after(TimePoint after) const;

    /// The text it was parsed from.
    const std::string& text() const noexcept { return text_; }

private:
    CronSchedule() = default;
    class Parser;

    bool day_matches(std::chrono::year_month_day date) const;

    std::string text_;
    std::bitset<60> seconds_;
    std::bitset<60> minutes_;
    std::bitset<24> hours_;
    std::bitset<32> days_of_month_;  // bit d = day d (1-31)
    std::bitset<13> months_;         // bit m = month m (1-12)
    std::bitset<8> days_of_week_;    // bit d = Quartz day d (1=SUN .. 7=SAT)
    std::bitset<130> years_;         // bit y = year 1970 + y
    bool any_day_of_month_ = true;   // `*` or `?`
    bool any_day_of_week_ = true;
    // Day-of-month specials (at most one is set).
    std::optional<int> last_day_offset_;  // L (0) or L-n (n)
    bool last_weekday_ = false;           // LW
    std::optional<int> nearest_weekday_;  // nW
    // Day-of-week specials (at most one is set).
    std::optional<int> last_weekday_of_month_;  // nL: Quartz day n
    std::optional<int> nth_weekday_day_;        // n#k: Quartz day n ...
    int nth_weekday_index_ = 0;                 // ... and k (1-5)
};

}  // namespace wharf::host
