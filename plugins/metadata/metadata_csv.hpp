#pragma once
// The metadata CSV format (AEM's): reading and writing records, the typed
// column headers (`dc:title{{String}}`, `dc:subject{{String: multi}}`,
// `photoshop:DateCreated{{Date: DateFormat: yyyy-MM-dd}}`), value conversion
// between cells and repository properties, multi-value splitting with escapes,
// dates and the spreadsheet formula guard.
//
// CsvReader wraps libcsv (RFC 4180, streaming): bytes go in as they arrive,
// complete records come out, so memory is bounded by the longest record, not
// the file. A malformed input (a quote inside an unquoted field, text after a
// closing quote, an unterminated quoted field) is refused with CsvError naming
// the record (row, 1-based, the header being row 1) and the field (column).
//
// Threading: every function is reentrant; a CsvReader belongs to one thread.

#include <csv.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>
#include <wharf/paths.hpp>
#include <wharf/repository.hpp>

namespace wharf_metadata {

/// A CSV input that cannot be read, with its position.
class CsvError : public std::runtime_error {
public:
    CsvError(std::uint64_t row, std::uint64_t column, const std::string& reason)
        : std::runtime_error("row " + std::to_string(row) + ", column " + std::to_string(column) +
                             ": " + reason),
          row_(row),
          column_(column) {}
    std::uint64_t row() const noexcept { return row_; }
    std::uint64_t column() const noexcept { return column_; }

private:
    std::uint64_t row_;
    std::uint64_t column_;
};

/// One record: its row number (1 = the header) and its cells.
struct CsvRecord {
    std::uint64_t row = 0;
    std::vector<std::string> cells;
};

/// Streaming reader over libcsv. A UTF-8 byte order mark at the start is
/// skipped; blank lines are skipped (they do not count as rows).
class CsvReader {
public:
    explicit CsvReader(char separator);
    ~CsvReader();
    CsvReader(const CsvReader&) = delete;
    CsvReader& operator=(const CsvReader&) = delete;

    /// Parses the next bytes; records completed by them are appended to `out`.
    /// Throws CsvError.
    void feed(const char* data, std::size_t size, std::vector<CsvRecord>& out);
    /// Ends the input (a last record without a line break). Throws CsvError.
    void finish(std::vector<CsvRecord>& out);

private:
    static void on_field(void* data, std::size_t size, void* self);
    static void on_record(int terminator, void* self);
    [[noreturn]] void fail(const char* reason) const;

    csv_parser parser_{};
    std::vector<CsvRecord>* out_ = nullptr;
    CsvRecord current_;
    std::uint64_t rows_ = 0;
    std::size_t bom_seen_ = 0;  // bytes of a leading BOM matched so far
    bool started_ = false;
};

/// Reads a whole binary as CSV records, in order, calling `visit` for each;
/// stops when it returns false. Throws CsvError and what `visit` throws.
void read_csv(wharf::BinaryReader& input, char separator,
              const std::function<bool(CsvRecord&)>& visit);

/// Appends one field to a record under construction: quoted (by libcsv) when
/// it holds the separator, a quote, CR or LF, or starts or ends with a space.
void append_field(std::string& line, std::string_view value, char separator, bool first);

// --- columns ---------------------------------------------------------------------------

/// A typed column of the metadata CSV.
struct Column {
    std::string name;  ///< the property name
    wharf::PropertyType type = wharf::PropertyType::string;
    bool multiple = false;
    bool number = false;      ///< AEM's "Number": Long, or Double when a value has a fraction
    std::string date_format;  ///< a `DateFormat:` pattern, "" = the default
};

/// Parses a header cell (`name{{Type}}`, `name{{ Type : multi }}`,
/// `name{{Date: DateFormat: pattern}}`, or a bare name = String). Returns the
/// reason when it is malformed.
std::optional<std::string> parse_column(std::string_view header, Column& out);

/// The header cell that describes `column` (the export's).
std::string column_header(const Column& column);

/// The cell text of a property (multi-values joined by `delimiter`, a
/// delimiter or backslash inside a value escaped with a backslash).
std::string format_property(const wharf::Property& property, char delimiter);

/// The text of one value, as format_property writes it (unescaped).
std::string format_value(const wharf::Scalar& value);

/// Appends `value` to a multi-value cell: a delimiter or backslash inside it
/// escaped with a backslash.
void append_escaped(std::string& cell, std::string_view value, char delimiter);

/// Converts a non-empty cell to a property of `column`'s type. Returns the
/// reason when a value does not parse.
std::optional<std::string> parse_cell(const Column& column, std::string_view cell,
                                      char delimiter, wharf::Property& out);

/// Dates as the export writes them: yyyy-MM-dd'T'HH:mm:ss.SSSXXX in UTC.
std::string format_date(wharf::Date date);
/// Parses `text` with a SimpleDateFormat-style pattern (y M d H m s S, X/Z
/// zones, quoted literals); "" = ISO 8601 with optional millis and zone.
std::optional<wharf::Date> parse_date(std::string_view text, std::string_view pattern);

using wharf::valid_utf8;

/// OWASP's CSV injection guard: a String cell that a spreadsheet would take
/// for a formula (it starts with = + - @, tab or CR, possibly after quotes
/// this guard added) gets one more leading `'`; `unguard` removes it.
std::string guard_formula(std::string value);
std::string unguard_formula(std::string value);

}  // namespace wharf_metadata
