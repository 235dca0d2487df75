#include <map>
#include <set>

#include "metadata_csv.hpp"
#include "metadata_operations.hpp"
#include "metadata_request.hpp"

namespace wharf_metadata {
namespace {

using boost::property_tree::ptree;
using wharf::OperationRefused;

struct ImportRequest {
    std::string csv;
    bool uploaded = false;
    std::size_t batch_size = 50;
    std::string path_column = "assetPath";
    char separator = ',';
    char delimiter = '|';
    bool formula_protection = true;
};

ImportRequest parse(const ptree& request) {
    check_fields(request,
                 {"csv", "csv_uploaded", "batch_size", "asset_path_column", "separator",
                  "multi_delimiter", "formula_protection"},
                 "csv, batch_size, asset_path_column, separator, multi_delimiter, "
                 "formula_protection");
    ImportRequest out;
    out.csv = request.get<std::string>("csv", "");
    if (out.csv.empty())
        throw OperationRefused("csv", "",
                               "'csv' is required: the repository path of the CSV file (or "
                               "upload it as the text/csv body)");
    out.uploaded = bool_field(request, "csv_uploaded", false);
    auto batch = request.get<std::string>("batch_size", "50");
    try {
        std::size_t used = 0;
        long long n = std::stoll(batch, &used);
        if (used != batch.size() || n < 1 || n > 100) throw std::out_of_range(batch);
        out.batch_size = static_cast<std::size_t>(n);
    } catch (const std::exception&) {
        throw OperationRefused("batch_size", batch,
                               "'batch_size' must be a whole number from 1 to 100, not '" + batch +
                                   "'");
    }
    out.path_column = request.get<std::string>("asset_path_column", "assetPath");
    if (out.path_column.empty())
        throw OperationRefused("asset_path_column", "", "'asset_path_column' must not be empty");
    out.separator = char_field(request, "separator", ',');
    out.delimiter = char_field(request, "multi_delimiter", '|');
    if (out.delimiter == out.separator)
        throw OperationRefused("multi_delimiter", std::string(1, out.delimiter),
                               "'multi_delimiter' must differ from 'separator'");
    out.formula_protection = bool_field(request, "formula_protection", true);
    return out;
}

// The header as the import reads it: the asset path column and the typed
// property columns (by cell index).
struct Layout {
    std::size_t cells = 0;
    std::size_t path_index = 0;
    std::vector<std::pair<std::size_t, Column>> columns;
};

// Checks the header; the reason names the column (1-based) and its text.
std::optional<std::string> read_layout(const CsvRecord& header, const ImportRequest& r,
                                       Layout& out) {
    out = Layout{};
    out.cells = header.cells.size();
    std::optional<std::size_t> path_index;
    std::set<std::string> names;
    for (std::size_t i = 0; i < header.cells.size(); ++i) {
        const auto& text = header.cells[i];
        auto where = "header column " + std::to_string(i + 1) + " '" + text + "': ";
        if (!valid_utf8(text)) return where + "not valid UTF-8";
        if (text == r.path_column) {
            if (path_index) return where + "the asset path column appears twice";
            path_index = i;
            continue;
        }
        Column c;
        if (auto why = parse_column(text, c)) return where + *why;
        if (!names.insert(c.name).second) return where + "property '" + c.name + "' appears twice";
        out.columns.emplace_back(i, c);
    }
    if (!path_index)
        return "the header has no asset path column '" + r.path_column +
               "' (set asset_path_column if it has another name)";
    out.path_index = *path_index;
    return std::nullopt;
}

std::unique_ptr<wharf::BinaryReader> open_csv(const wharf::Repository& repository,
                                              const std::string& path) {
    std::optional<wharf::Node> node;
    try {
        node = repository.get(path);
    } catch (const wharf::RepositoryError& e) {
        throw OperationRefused("csv", path, "'" + path + "' is not a valid path: " + e.what());
    }
    if (!node || node->kind != wharf::NodeKind::asset)
        throw OperationRefused("csv", path, "no CSV file (an asset) at '" + path + "'");
    auto reader = repository.read_binary(path);
    if (!reader) throw OperationRefused("csv", path, "'" + path + "' has no binary");
    return reader;
}

// Reads the whole CSV: the layout and the number of data rows. Refuses a
// malformed header or a file that cannot be parsed, with the position.
std::uint64_t scan(const wharf::Repository& repository, const ImportRequest& r, Layout& layout) {
    auto input = open_csv(repository, r.csv);
    std::uint64_t rows = 0;
    bool header = false;
    try {
        read_csv(*input, r.separator, [&](CsvRecord& record) {
            if (!header) {
                header = true;
                if (auto why = read_layout(record, r, layout))
                    throw OperationRefused("csv", r.csv, "malformed header in '" + r.csv + "': " + *why);
            } else {
                ++rows;
            }
            return true;
        });
    } catch (const CsvError& e) {
        throw OperationRefused("csv", r.csv, "'" + r.csv + "' is not valid CSV: " + e.what());
    }
    if (!header) throw OperationRefused("csv", r.csv, "'" + r.csv + "' is empty: no header row");
    return rows;
}

// "next=<row>;applied=<n>;refused=<n>": the first row not yet applied.
struct Position {
    std::uint64_t next = 2;
    std::uint64_t applied = 0;
    std::uint64_t refused = 0;

    std::string encode() const {
        return "next=" + std::to_string(next) + ";applied=" + std::to_string(applied) +
               ";refused=" + std::to_string(refused);
    }
    static std::optional<Position> decode(const std::optional<std::string>& text) {
        if (!text) return std::nullopt;
        Position p;
        if (std::sscanf(text->c_str(), "next=%lu;applied=%lu;refused=%lu", &p.next, &p.applied,
                        &p.refused) != 3)
            return std::nullopt;
        return p;
    }
};

// One row's changes, kept until its batch commits.
struct RowChange {
    std::uint64_t row = 0;
    std::string path;
    wharf::PropertyMap set;
    std::vector<std::string> remove;
};

struct RowError {
    std::uint64_t row = 0;
    std::string path, column, value, reason;
};

std::string shorten(std::string value) {
    if (value.size() > 200) value = value.substr(0, 200) + "...";
    return value;
}

}  // namespace

MetadataImport::MetadataImport(std::shared_ptr<wharf::Repository> repository)
    : repository_(std::move(repository)) {}

wharf::OperationDescriptor MetadataImport::descriptor() const {
    wharf::OperationDescriptor d;
    d.name = "metadata-import";
    d.title = "Import metadata from CSV";
    d.topic = kImportTopic;
    d.config = kImportConfig;
    d.unit = "rows";
    auto csv = wharf::make_field(
        "csv", wharf::ConfigType::string,
        "Repository path of the CSV file; or POST the CSV itself as a text/csv body");
    csv.required = true;
    csv.format = "path";
    auto batch = wharf::make_field("batch_size", wharf::ConfigType::integer,
                                   "Rows per transaction (and checkpoint)", "50");
    batch.minimum = 1;
    batch.maximum = 100;
    auto column = wharf::make_field("asset_path_column", wharf::ConfigType::string,
                                    "Name of the column that holds the asset paths", "assetPath");
    auto separator = wharf::make_field("separator", wharf::ConfigType::string,
                                       "Field separator (one character; \\t for a tab)", ",");
    auto delimiter = wharf::make_field("multi_delimiter", wharf::ConfigType::string,
                                       "Separates the values of a multi-valued property", "|");
    auto guard = wharf::make_field(
        "formula_protection", wharf::ConfigType::boolean,
        "Remove the ' the export puts before String values that start like a formula", "true");
    auto uploaded = wharf::make_field(
        "csv_uploaded", wharf::ConfigType::boolean,
        "Set by the upload: the CSV is deleted from the repository once the import ends", "false");
    d.request_schema = {csv, batch, column, separator, delimiter, guard, uploaded};
    return d;
}

void MetadataImport::validate(const ptree& request) const {
    auto r = parse(request);
    Layout layout;
    scan(*repository_, r, layout);
}

std::uint64_t MetadataImport::count(const ptree& request) const {
    auto r = parse(request);
    Layout layout;
    return scan(*repository_, r, layout);
}

std::string MetadataImport::describe(const ptree& request, std::uint64_t count) const {
    auto r = parse(request);
    return "Import metadata of " + std::to_string(count) + " rows from '" +
           (r.uploaded ? std::string("an uploaded CSV") : r.csv) + "'";
}

wharf::JobResult MetadataImport::run(wharf::JobContext& context) {
    ImportRequest r;
    Layout layout;
    std::uint64_t total = 0;
    try {
        r = parse(context.payload());
        total = scan(*repository_, r, layout);
    } catch (const OperationRefused& e) {
        // Nothing was changed: the header and the syntax are checked first.
        context.log(std::string("refused: ") + e.what());
        return wharf::JobResult::error(std::string("refused: ") + e.what());
    }
    const auto id = context.job().id;
    const std::string checkpoint_name =
        id > 0 ? "wharf.metadata/import/job/" + std::to_string(id) : std::string();
    auto resumed = checkpoint_name.empty()
                       ? std::nullopt
                       : Position::decode(repository_->checkpoint(checkpoint_name));
    Position position = resumed.value_or(Position{});
    context.init_progress(static_cast<std::int64_t>(total));
    if (resumed) {
        context.increment_progress(static_cast<std::int64_t>(position.next - 2));
        context.log("resuming at row " + std::to_string(position.next));
    } else {
        context.report_row({"row", "assetPath", "column", "value", "reason"});
    }

    wharf::SessionOptions options;
    options.batch_size = 100000;  // this code commits each batch itself
    auto session = repository_->open_session(options);
    std::vector<RowChange> changes;
    std::vector<RowError> errors;
    std::uint64_t batch_rows = 0, batch_refused = 0, last_row = position.next - 1;
    bool stopped = false;

    // Applies the batch with its checkpoint in one transaction. A change the
    // repository refuses rolls the batch back: that row becomes an error and
    // the rest are applied again.
    auto flush = [&] {
        for (;;) {
            try {
                std::uint64_t applied = 0;
                for (const auto& c : changes) {
                    if (!c.set.empty()) session->set_properties(c.path, c.set);
                    if (!c.remove.empty()) session->remove_properties(c.path, c.remove);
                    ++applied;
                }
                Position next = position;
                next.next = last_row + 1;
                next.applied += applied;
                next.refused += batch_refused;
                if (!checkpoint_name.empty()) session->set_checkpoint(checkpoint_name, next.encode());
                session->commit();
                position = next;
                break;
            } catch (const wharf::RepositoryError& e) {
                session->rollback();
                if (e.code() == wharf::RepositoryError::Code::conflict ||
                    e.code() == wharf::RepositoryError::Code::io)
                    throw;
                // Find the row the repository refused: the first that fails alone.
                bool found = false;
                for (auto it = changes.begin(); it != changes.end() && !found; ++it) {
                    try {
                        if (!it->set.empty()) session->set_properties(it->path, it->set);
                        if (!it->remove.empty()) session->remove_properties(it->path, it->remove);
                        session->rollback();
                    } catch (const wharf::RepositoryError& row_error) {
                        session->rollback();
                        errors.push_back({it->row, it->path, "", "", row_error.what()});
                        ++batch_refused;
                        changes.erase(it);
                        found = true;
                    }
                }
                if (!found) throw;
            }
        }
        // Only what is durably applied is reported.
        for (const auto& e : errors)
            context.report_row({std::to_string(e.row), e.path, e.column, shorten(e.value), e.reason});
        context.increment_progress(static_cast<std::int64_t>(batch_rows));
        changes.clear();
        errors.clear();
        batch_rows = 0;
        batch_refused = 0;
        return context.is_stopped();
    };

    auto handle = [&](const CsvRecord& record) {
        std::vector<RowError> row_errors;
        auto error = [&](std::string path, std::string column, std::string value,
                         std::string reason) {
            row_errors.push_back({record.row, std::move(path), std::move(column), std::move(value),
                                  std::move(reason)});
        };
        std::string path =
            record.cells.size() > layout.path_index ? record.cells[layout.path_index] : "";
        if (record.cells.size() != layout.cells) {
            error(path, "", "",
                  "the row has " + std::to_string(record.cells.size()) + " cells, the header " +
                      std::to_string(layout.cells));
        } else if (!valid_utf8(path)) {
            error("", r.path_column, path, "not valid UTF-8");
        } else if (path.empty()) {
            error("", r.path_column, "", "no asset path");
        } else {
            std::optional<wharf::Node> node;
            try {
                node = repository_->get(path);
            } catch (const wharf::RepositoryError& e) {
                error(path, r.path_column, path, std::string("not a valid path: ") + e.what());
            }
            if (row_errors.empty() && (!node || node->kind != wharf::NodeKind::asset))
                error(path, r.path_column, path, node ? "not an asset" : "no asset at this path");
        }
        RowChange change;
        change.row = record.row;
        change.path = path;
        if (row_errors.empty()) {
            for (const auto& [index, column] : layout.columns) {
                std::string cell = record.cells[index];
                if (cell.empty()) continue;  // empty: the property stays as it is
                if (!valid_utf8(cell)) {
                    error(path, column.name, cell, "not valid UTF-8");
                    continue;
                }
                auto first = cell.find_first_not_of(" \t");
                auto last = cell.find_last_not_of(" \t");
                if (first != std::string::npos &&
                    std::string_view(cell).substr(first, last - first + 1) == kClearCell) {
                    change.remove.push_back(column.name);
                    continue;
                }
                if (r.formula_protection && column.type == wharf::PropertyType::string)
                    cell = unguard_formula(std::move(cell));
                wharf::Property property;
                if (auto why = parse_cell(column, cell, r.delimiter, property)) {
                    error(path, column.name, record.cells[index], *why);
                    continue;
                }
                change.set.emplace(column.name, std::move(property));
            }
        }
        if (row_errors.empty()) {
            changes.push_back(std::move(change));
        } else {
            for (auto& e : row_errors) errors.push_back(std::move(e));
            ++batch_refused;
        }
    };

    try {
        auto input = open_csv(*repository_, r.csv);
        read_csv(*input, r.separator, [&](CsvRecord& record) {
            if (record.row < position.next) return true;  // the header, or applied before
            handle(record);
            last_row = record.row;
            if (++batch_rows >= r.batch_size && flush()) stopped = true;
            return !stopped;
        });
        if (!stopped && batch_rows > 0 && flush()) stopped = true;
    } catch (const CsvError& e) {
        // The file changed since it was scanned.
        return wharf::JobResult::error(std::string("the CSV cannot be read any more: ") + e.what());
    } catch (const OperationRefused& e) {
        return wharf::JobResult::error(std::string("refused: ") + e.what());
    } catch (const wharf::RepositoryError& e) {
        // The open batch rolled back; a retry resumes after the last commit.
        return wharf::JobResult::failed(std::string("repository: ") + e.what());
    }
    auto summary = "applied " + std::to_string(position.applied) + " rows; " +
                   std::to_string(position.refused) + " rows refused" +
                   (position.refused > 0 ? " (see the report)" : "");
    if (stopped) {
        auto message = "stopped before row " + std::to_string(position.next) + ": " + summary;
        context.log(message);
        return wharf::JobResult::failed(message);
    }
    if (!checkpoint_name.empty()) session->set_checkpoint(checkpoint_name, std::nullopt);
    if (r.uploaded) session->remove(r.csv);
    session->commit();
    context.log(summary);
    return wharf::JobResult::succeeded(summary);
}

}  // namespace wharf_metadata
