#include "base/cron.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <sstream>
#include <string>

using wharf::host::CronSchedule;
using wharf::host::CronSyntaxError;
using namespace std::chrono;

namespace {

using TimePoint = CronSchedule::TimePoint;

TimePoint utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
    return TimePoint(sys_days(year(y) / month(mo) / day(d)) + hours(h) + minutes(mi) + seconds(s));
}

// Readable times in failure messages.
std::string show(std::optional<TimePoint> t) {
    if (!t) return "never";
    auto secs = floor<seconds>(*t);
    auto day_point = floor<days>(secs);
    year_month_day ymd(day_point);
    hh_mm_ss<seconds> hms(secs - day_point);
    std::ostringstream out;
    out << int(ymd.year()) << '-' << unsigned(ymd.month()) << '-' << unsigned(ymd.day()) << ' '
        << hms.hours().count() << ':' << hms.minutes().count() << ':' << hms.seconds().count();
    return out.str();
}

std::string next(const char* expression, TimePoint after) {
    return show(CronSchedule::parse(expression).next_after(after));
}

// The column a bad expression is refused at.
std::size_t error_column(const char* expression) {
    try {
        CronSchedule::parse(expression);
    } catch (const CronSyntaxError& e) {
        INFO(e.what());
        return e.column();
    }
    FAIL("expression was accepted: " << expression);
    return 0;
}

std::string error_reason(const char* expression) {
    try {
        CronSchedule::parse(expression);
    } catch (const CronSyntaxError& e) {
        return e.reason();
    }
    return "accepted";
}

}  // namespace

TEST_CASE("the purge default fires daily at 01:00, strictly after the given time") {
    REQUIRE(next("0 0 1 * * ?", utc(2024, 3, 10, 0, 30)) == show(utc(2024, 3, 10, 1)));
    REQUIRE(next("0 0 1 * * ?", utc(2024, 3, 10, 1)) == show(utc(2024, 3, 11, 1)));
}

TEST_CASE("every second fires on the next whole second, even from a fraction") {
    auto half_past = utc(2024, 1, 1, 12) + milliseconds(500);
    REQUIRE(next("* * * * * ?", half_past) == show(utc(2024, 1, 1, 12, 0, 1)));
    REQUIRE(next("* * * * * ?", utc(2024, 1, 1, 23, 59, 59)) == show(utc(2024, 1, 2)));
}

TEST_CASE("a step over a star counts from the field's minimum") {
    REQUIRE(next("*/15 * * * * ?", utc(2024, 1, 1, 10, 0, 14)) == show(utc(2024, 1, 1, 10, 0, 15)));
    REQUIRE(next("*/15 * * * * ?", utc(2024, 1, 1, 10, 0, 45)) == show(utc(2024, 1, 1, 10, 1, 0)));
}

TEST_CASE("a step from a value runs to the field's maximum") {
    auto expr = "5/20 * * * * ?";
    REQUIRE(next(expr, utc(2024, 1, 1, 10, 0, 5)) == show(utc(2024, 1, 1, 10, 0, 25)));
    REQUIRE(next(expr, utc(2024, 1, 1, 10, 0, 25)) == show(utc(2024, 1, 1, 10, 0, 45)));
    REQUIRE(next(expr, utc(2024, 1, 1, 10, 0, 45)) == show(utc(2024, 1, 1, 10, 1, 5)));
}

TEST_CASE("a range with a step fires at each step inside the range only") {
    auto expr = "0 10-20/5 * * * ?";
    REQUIRE(next(expr, utc(2024, 1, 1, 9, 0)) == show(utc(2024, 1, 1, 9, 10)));
    REQUIRE(next(expr, utc(2024, 1, 1, 9, 15)) == show(utc(2024, 1, 1, 9, 20)));
    REQUIRE(next(expr, utc(2024, 1, 1, 9, 20)) == show(utc(2024, 1, 1, 10, 10)));
}

TEST_CASE("lists mix single values and ranges") {
    auto expr = "0 0,30 9-10,14 * * ?";
    REQUIRE(next(expr, utc(2024, 1, 1, 8)) == show(utc(2024, 1, 1, 9)));
    REQUIRE(next(expr, utc(2024, 1, 1, 9, 0)) == show(utc(2024, 1, 1, 9, 30)));
    REQUIRE(next(expr, utc(2024, 1, 1, 10, 30)) == show(utc(2024, 1, 1, 14)));
    REQUIRE(next(expr, utc(2024, 1, 1, 14, 30)) == show(utc(2024, 1, 2, 9)));
}

TEST_CASE("an hour range that wraps past midnight covers both ends") {
    auto expr = "0 0 22-2 * * ?";
    REQUIRE(next(expr, utc(2024, 1, 1, 3)) == show(utc(2024, 1, 1, 22)));
    REQUIRE(next(expr, utc(2024, 1, 1, 23)) == show(utc(2024, 1, 2, 0)));
    REQUIRE(next(expr, utc(2024, 1, 2, 2)) == show(utc(2024, 1, 2, 22)));
}

TEST_CASE("month names are case-insensitive and skip the months not listed") {
    auto expr = "0 0 0 1 JAN,jul ?";
    REQUIRE(next(expr, utc(2024, 2, 1)) == show(utc(2024, 7, 1)));
    REQUIRE(next(expr, utc(2024, 7, 1)) == show(utc(2025, 1, 1)));
}

TEST_CASE("weekday names select Monday to Friday") {
    // 2024-03-08 is a Friday.
    REQUIRE(next("0 0 9 ? * MON-FRI", utc(2024, 3, 8, 10)) == show(utc(2024, 3, 11, 9)));
    REQUIRE(next("0 0 9 ? * mon-fri", utc(2024, 3, 11, 8)) == show(utc(2024, 3, 11, 9)));
}

TEST_CASE("day-of-week numbers start at 1 for Sunday as in Quartz") {
    // 2024-03-06 is a Wednesday; the next Sunday is 2024-03-10.
    REQUIRE(next("0 0 0 ? * 1", utc(2024, 3, 6)) == show(utc(2024, 3, 10)));
    REQUIRE(next("0 0 0 ? * 7", utc(2024, 3, 6)) == show(utc(2024, 3, 9)));
}

TEST_CASE("a weekday range that wraps runs Friday through Monday") {
    auto expr = "0 0 0 ? * FRI-MON";
    REQUIRE(next(expr, utc(2024, 3, 5)) == show(utc(2024, 3, 8)));    // Tue -> Fri
    REQUIRE(next(expr, utc(2024, 3, 10)) == show(utc(2024, 3, 11)));  // Sun -> Mon
    REQUIRE(next(expr, utc(2024, 3, 11)) == show(utc(2024, 3, 15)));  // Mon -> Fri
}

TEST_CASE("L is the last day of each month, including leap February") {
    auto expr = "0 0 0 L * ?";
    REQUIRE(next(expr, utc(2024, 2, 1)) == show(utc(2024, 2, 29)));
    REQUIRE(next(expr, utc(2023, 2, 1)) == show(utc(2023, 2, 28)));
    REQUIRE(next(expr, utc(2024, 4, 1)) == show(utc(2024, 4, 30)));
    REQUIRE(next(expr, utc(2024, 12, 1)) == show(utc(2024, 12, 31)));
    REQUIRE(next(expr, utc(2024, 12, 31)) == show(utc(2025, 1, 31)));
}

TEST_CASE("L-n counts back from the last day of the month") {
    REQUIRE(next("0 0 0 L-3 * ?", utc(2024, 2, 1)) == show(utc(2024, 2, 26)));
    REQUIRE(next("0 0 0 L-3 * ?", utc(2023, 2, 1)) == show(utc(2023, 2, 25)));
}

TEST_CASE("LW is the last weekday of the month") {
    // 2024-03-31 is a Sunday, 2024-08-31 a Saturday, 2024-10-31 a Thursday.
    REQUIRE(next("0 0 0 LW * ?", utc(2024, 3, 1)) == show(utc(2024, 3, 29)));
    REQUIRE(next("0 0 0 LW * ?", utc(2024, 8, 1)) == show(utc(2024, 8, 30)));
    REQUIRE(next("0 0 0 LW * ?", utc(2024, 10, 1)) == show(utc(2024, 10, 31)));
}

TEST_CASE("nW is the weekday nearest day n without leaving the month") {
    // 2024-06-15 is a Saturday, 2024-09-15 a Sunday, 2024-06-01 a Saturday.
    REQUIRE(next("0 0 0 15W * ?", utc(2024, 6, 1)) == show(utc(2024, 6, 14)));
    REQUIRE(next("0 0 0 15W * ?", utc(2024, 9, 1)) == show(utc(2024, 9, 16)));
    REQUIRE(next("0 0 0 1W * ?", utc(2024, 5, 31)) == show(utc(2024, 6, 3)));
    // 2024-03-31 is a Sunday and the month's last day: back to Friday the 29th.
    REQUIRE(next("0 0 0 31W 3 ?", utc(2024, 3, 1)) == show(utc(2024, 3, 29)));
}

TEST_CASE("nL in day-of-week is the month's last such day") {
    REQUIRE(next("0 0 0 ? * 6L", utc(2024, 3, 1)) == show(utc(2024, 3, 29)));
    REQUIRE(next("0 0 0 ? * 6L", utc(2024, 5, 1)) == show(utc(2024, 5, 31)));
    REQUIRE(next("0 0 0 ? * FRIL", utc(2024, 5, 1)) == show(utc(2024, 5, 31)));
}

TEST_CASE("L alone in day-of-week means Saturday, as in Quartz") {
    REQUIRE(next("0 0 0 ? * L", utc(2024, 3, 6)) == show(utc(2024, 3, 9)));
}

TEST_CASE("n#k is the k-th such weekday of the month and skips months without one") {
    REQUIRE(next("0 0 0 ? * 2#1", utc(2024, 3, 31)) == show(utc(2024, 4, 1)));
    REQUIRE(next("0 0 0 ? * MON#3", utc(2024, 4, 2)) == show(utc(2024, 4, 15)));
    // Fifth Fridays: March 2024 has one (29th), April none, May one (31st).
    REQUIRE(next("0 0 0 ? * 6#5", utc(2024, 3, 1)) == show(utc(2024, 3, 29)));
    REQUIRE(next("0 0 0 ? * 6#5", utc(2024, 3, 30)) == show(utc(2024, 5, 31)));
}

TEST_CASE("29 February fires only in leap years") {
    REQUIRE(next("0 0 0 29 2 ?", utc(2024, 3, 1)) == show(utc(2028, 2, 29)));
    REQUIRE(next("0 0 0 29 FEB ?", utc(2099, 3, 1)) ==
            show(utc(2104, 2, 29)));  // 2100 is no leap year
}

TEST_CASE("day 31 skips the months that are shorter") {
    REQUIRE(next("0 0 12 31 * ?", utc(2024, 4, 1)) == show(utc(2024, 5, 31, 12)));
    REQUIRE(next("0 0 12 31 * ?", utc(2024, 5, 31, 12)) == show(utc(2024, 7, 31, 12)));
}

TEST_CASE("the year rolls over at the end of December") {
    REQUIRE(next("0 0 0 1 1 ?", utc(2024, 12, 31, 23, 59, 59)) == show(utc(2025, 1, 1)));
}

TEST_CASE("the year field limits the fire times and ends the schedule") {
    REQUIRE(next("0 0 0 1 1 ? 2030", utc(2024, 6, 1)) == show(utc(2030, 1, 1)));
    REQUIRE(next("0 0 0 1 1 ? 2030", utc(2030, 1, 1)) == "never");
    REQUIRE(next("0 0 0 1 1 ? 2025-2026,2028", utc(2026, 6, 1)) == show(utc(2028, 1, 1)));
    REQUIRE(next("0 0 0 1 1 ? 2020", utc(2024, 1, 1)) == "never");
}

TEST_CASE("a day that never exists never fires, and the search ends") {
    REQUIRE(next("0 0 0 30 FEB ?", utc(2024, 1, 1)) == "never");
    REQUIRE(next("0 0 0 31 4,6,9,11 ?", utc(2024, 1, 1)) == "never");
}

TEST_CASE("times are UTC: DST change dates have no gap and no repeat") {
    // 2024-03-10 (US) and 2024-03-31 (EU) spring forward; 2024-10-27 (EU) falls back.
    auto expr = CronSchedule::parse("0 30 2 * * ?");
    for (auto day : {utc(2024, 3, 10), utc(2024, 3, 31), utc(2024, 10, 27)}) {
        auto fire = expr.next_after(day);
        REQUIRE(fire);
        REQUIRE(*fire == day + hours(2) + minutes(30));
        auto following = expr.next_after(*fire);
        REQUIRE(following);
        REQUIRE(*following - *fire == hours(24));
    }
}

TEST_CASE("consecutive fire times all match the expression and increase") {
    auto expr = CronSchedule::parse("0 */7 */3 ? * MON-FRI");
    TimePoint t = utc(2024, 2, 27);
    for (int i = 0; i < 500; ++i) {
        auto fire = expr.next_after(t);
        REQUIRE(fire);
        REQUIRE(*fire > t);
        auto secs = floor<seconds>(*fire);
        auto day_point = floor<days>(secs);
        hh_mm_ss<seconds> hms(secs - day_point);
        unsigned wd = weekday(day_point).c_encoding();
        REQUIRE(hms.seconds().count() == 0);
        REQUIRE(hms.minutes().count() % 7 == 0);
        REQUIRE(hms.hours().count() % 3 == 0);
        REQUIRE(wd >= 1);
        REQUIRE(wd <= 5);
        t = *fire;
    }
}

TEST_CASE("as in Quartz, one day field must be '?': a star and a value together are refused") {
    REQUIRE(next("0 0 0 ? * MON", utc(2024, 3, 6)) == show(utc(2024, 3, 11)));
    REQUIRE(next("0 0 0 15 * ?", utc(2024, 3, 6)) == show(utc(2024, 3, 15)));
    REQUIRE(error_column("0 0 0 * * MON") == 10);
    REQUIRE(error_column("0 0 0 15 * *") == 11);
}

TEST_CASE("the expression keeps its text") {
    REQUIRE(CronSchedule::parse("0 0 1 * * ?").text() == "0 0 1 * * ?");
}

TEST_CASE("the wrong number of fields is refused at the end or at the extra field") {
    REQUIRE(error_column("0 0 1 * *") == 9);
    REQUIRE(error_column("") == 0);
    REQUIRE(error_column("0 0 1 * * ? 2024 x") == 17);
    REQUIRE_THAT(error_reason("0 0 1 * *"), Catch::Contains("found 5"));
}

TEST_CASE("values out of range are refused at the value") {
    REQUIRE(error_column("60 * * * * ?") == 0);
    REQUIRE(error_column("0 0 25 * * ?") == 4);
    REQUIRE(error_column("0 0 0 32 * ?") == 6);
    REQUIRE(error_column("0 0 0 0 * ?") == 6);
    REQUIRE(error_column("0 0 0 1 13 ?") == 8);
    REQUIRE(error_column("0 0 0 ? * 8") == 10);
    REQUIRE(error_column("0 0 0 1 1 ? 1969") == 12);
    REQUIRE(error_column("0 0 0 1-40 * ?") == 8);
    REQUIRE_THAT(error_reason("0 0 25 * * ?"), Catch::Contains("out of range 0-23"));
}

TEST_CASE("unknown names and stray characters are refused where they start") {
    REQUIRE(error_column("0 0 0 * FOO ?") == 8);
    REQUIRE(error_column("0 0 0 ? * MON,FUN") == 14);
    REQUIRE(error_column("0 0 x * * ?") == 4);
    REQUIRE_THAT(error_reason("0 0 0 * FOO ?"), Catch::Contains("'FOO'"));
}

TEST_CASE("bad steps, empty list items and half ranges are refused at their column") {
    REQUIRE(error_column("*/0 * * * * ?") == 2);
    REQUIRE(error_column("0 */61 * * * ?") == 4);
    REQUIRE(error_column("0 5/x * * * ?") == 4);
    REQUIRE(error_column("0 1,,2 * * * ?") == 4);
    REQUIRE(error_column("0 1, * * * ?") == 4);
    REQUIRE(error_column("0 5- * * * ?") == 4);
    REQUIRE(error_column("0 -5 * * * ?") == 2);
}

TEST_CASE("question marks and day specials are refused where Quartz refuses them") {
    REQUIRE(error_column("? 0 0 * * ?") == 0);
    REQUIRE(error_column("0 0 0 ? * ?") == 10);
    REQUIRE(error_column("0 0 0 1 * MON") == 10);
    REQUIRE(error_column("0 0 0 1,L * ?") == 8);
    REQUIRE(error_column("0 0 0 L-31 * ?") == 8);
    REQUIRE(error_column("0 0 0 ? * MON#6") == 14);
    REQUIRE(error_column("0 0 0 ? * MON#1,2") == 13);
    REQUIRE(error_column("0 0 0 ? * 1,L") == 12);
    REQUIRE(error_column("0 0 0 1#2 * ?") == 7);
    REQUIRE(error_column("0 0 L * * ?") == 4);
}
