#include <unistd.h>

#include <fstream>
#include <map>
#include <set>

#include "metadata_csv.hpp"
#include "metadata_operations.hpp"
#include "metadata_request.hpp"

namespace wharf_metadata {
namespace {

using boost::property_tree::ptree;
using wharf::OperationRefused;

constexpr std::uint64_t kProgressStep = 500;

struct ExportRequest {
    std::string folder;
    bool subfolders = true;
    std::vector<std::string> properties;  // empty = all
    char separator = ',';
    char delimiter = '|';
    bool formula_protection = true;
};

ExportRequest parse(const ptree& request) {
    check_fields(request,
                 {"folder", "subfolders", "properties", "separator", "multi_delimiter",
                  "formula_protection"},
                 "folder, subfolders, properties, separator, multi_delimiter, formula_protection");
    ExportRequest out;
    out.folder = request.get<std::string>("folder", "");
    if (out.folder.empty())
        throw OperationRefused("folder", "", "'folder' is required: the folder to export");
    if (out.folder.front() != '/')
        throw OperationRefused("folder", out.folder,
                               "'" + out.folder + "' is not an absolute path");
    out.subfolders = bool_field(request, "subfolders", true);
    if (auto list = request.get_child_optional("properties")) {
        if (list->empty() && !list->data().empty()) {
            out.properties.push_back(list->data());
        } else {
            for (const auto& [key, value] : *list) {
                if (!value.empty() || value.data().empty())
                    throw OperationRefused("properties", value.data(),
                                           "'properties' must be a list of property names");
                out.properties.push_back(value.data());
            }
        }
    }
    out.separator = char_field(request, "separator", ',');
    out.delimiter = char_field(request, "multi_delimiter", '|');
    if (out.delimiter == out.separator)
        throw OperationRefused("multi_delimiter", std::string(1, out.delimiter),
                               "'multi_delimiter' must differ from 'separator'");
    out.formula_protection = bool_field(request, "formula_protection", true);
    return out;
}

wharf::WalkOptions asset_walk(const ExportRequest& r, bool properties) {
    wharf::WalkOptions w;
    w.folders = false;
    w.pages = false;
    w.with_properties = properties;
    if (!r.subfolders) w.max_depth = 1;
    return w;
}

// The column type for a property seen with several types across assets.
wharf::PropertyType merge(wharf::PropertyType a, wharf::PropertyType b) {
    using T = wharf::PropertyType;
    if (a == b) return a;
    if ((a == T::long_ && b == T::double_) || (a == T::double_ && b == T::long_)) return T::double_;
    return T::string;
}

// One asset's row as the walk saw it: for each property it has, the column
// (in discovery order) and its values as text, values[first .. first+count).
struct SpooledCell {
    std::uint32_t column = 0;
    std::size_t first = 0;
    std::size_t count = 0;
};

struct SpooledRow {
    std::string path;
    std::vector<SpooledCell> cells;
    std::vector<std::string> values;  // reused: only the first `used` are this row's
};

// The rows of an export between its walk and the CSV, in a file beside the
// result: path, cell count, then per cell column, value count and values.
// Lengths are native 32-bit integers: the file never leaves this run.
class RowSpool {
public:
    explicit RowSpool(const std::filesystem::path& file)
        : out_(file, std::ios::binary | std::ios::trunc) {}

    void add(std::string_view path,
             const std::vector<std::pair<std::uint32_t, const wharf::Property*>>& cells) {
        buffer_.clear();
        put(path);
        put(static_cast<std::uint32_t>(cells.size()));
        for (const auto& [column, property] : cells) {
            put(column);
            put(static_cast<std::uint32_t>(property->values.size()));
            for (const auto& value : property->values) put(format_value(value));
        }
        out_.write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    }

    bool close() {
        out_.close();
        return static_cast<bool>(out_);
    }

    class Reader {
    public:
        explicit Reader(const std::filesystem::path& file) : in_(file, std::ios::binary) {}

        bool next(SpooledRow& row) {
            std::uint32_t length = 0, cells = 0;
            if (!get(length)) return false;  // the end
            row.path.resize(length);
            if (length > 0 && !in_.read(row.path.data(), length)) return fail();
            if (!get(cells)) return fail();
            row.cells.resize(cells);
            std::size_t used = 0;
            for (auto& cell : row.cells) {
                std::uint32_t column = 0, count = 0;
                if (!get(column) || !get(count)) return fail();
                cell.column = column;
                cell.first = used;
                cell.count = count;
                for (std::uint32_t v = 0; v < count; ++v, ++used) {
                    if (row.values.size() <= used) row.values.emplace_back();
                    if (!get(row.values[used])) return fail();
                }
            }
            return true;
        }
        /// False when the spool was cut short.
        bool ok() const { return !broken_; }

    private:
        bool get(std::uint32_t& v) {
            return static_cast<bool>(in_.read(reinterpret_cast<char*>(&v), sizeof v));
        }
        bool get(std::string& s) {
            std::uint32_t n = 0;
            if (!get(n)) return false;
            s.resize(n);
            return n == 0 || static_cast<bool>(in_.read(s.data(), n));
        }
        bool fail() {
            broken_ = true;
            return false;
        }
        std::ifstream in_;
        bool broken_ = false;
    };

private:
    void put(std::uint32_t v) { buffer_.append(reinterpret_cast<const char*>(&v), sizeof v); }
    void put(std::string_view s) {
        put(static_cast<std::uint32_t>(s.size()));
        buffer_.append(s);
    }
    std::ofstream out_;
    std::string buffer_;
};

std::string file_name_for(const std::string& folder) {
    auto slash = folder.rfind('/');
    std::string name = folder.substr(slash + 1);
    if (name.empty()) name = "root";
    for (auto& c : name)
        if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = '_';
    return "metadata-" + name + ".csv";
}

}  // namespace

MetadataExport::MetadataExport(std::shared_ptr<wharf::Repository> repository,
                               std::filesystem::path results_dir)
    : repository_(std::move(repository)), results_dir_(std::move(results_dir)) {}

wharf::OperationDescriptor MetadataExport::descriptor() const {
    wharf::OperationDescriptor d;
    d.name = "metadata-export";
    d.title = "Export metadata to CSV";
    d.topic = kExportTopic;
    d.config = kExportConfig;
    d.unit = "assets";
    auto folder = wharf::make_field("folder", wharf::ConfigType::string,
                                    "The folder whose assets are exported");
    folder.required = true;
    folder.format = "path";
    auto subfolders = wharf::make_field("subfolders", wharf::ConfigType::boolean,
                                        "Include assets in subfolders", "true");
    auto properties = wharf::make_field(
        "properties", wharf::ConfigType::list,
        "Property names to export, as columns in this order; empty = every property found");
    properties.item.push_back(wharf::make_field("", wharf::ConfigType::string, "a property name"));
    auto separator = wharf::make_field("separator", wharf::ConfigType::string,
                                       "Field separator (one character; \\t for a tab)", ",");
    auto delimiter = wharf::make_field("multi_delimiter", wharf::ConfigType::string,
                                       "Separates the values of a multi-valued property", "|");
    auto guard = wharf::make_field(
        "formula_protection", wharf::ConfigType::boolean,
        "Prefix String values a spreadsheet would run as a formula (= + - @ tab CR) with '",
        "true");
    d.request_schema = {folder, subfolders, properties, separator, delimiter, guard};
    return d;
}

void MetadataExport::validate(const ptree& request) const {
    auto r = parse(request);
    std::optional<wharf::Node> node;
    try {
        node = repository_->get(r.folder);
    } catch (const wharf::RepositoryError& e) {
        throw OperationRefused("folder", r.folder, "'" + r.folder + "' is not a valid path: " + e.what());
    }
    if (!node) throw OperationRefused("folder", r.folder, "no folder at '" + r.folder + "'");
    if (node->kind != wharf::NodeKind::folder)
        throw OperationRefused("folder", r.folder, "'" + r.folder + "' is not a folder");
    for (const auto& name : r.properties) {
        Column c;
        if (auto why = parse_column(name, c); why || c.name != name)
            throw OperationRefused("properties", name,
                                   "'" + name + "' is not a property name" +
                                       (why ? ": " + *why : std::string()));
    }
}

std::uint64_t MetadataExport::count(const ptree& request) const {
    auto r = parse(request);
    return repository_->count(r.folder, asset_walk(r, false));
}

std::string MetadataExport::describe(const ptree& request, std::uint64_t count) const {
    auto r = parse(request);
    return "Export metadata of " + std::to_string(count) + " assets in '" + r.folder + "'" +
           (r.subfolders ? "" : " (without subfolders)");
}

wharf::JobResult MetadataExport::run(wharf::JobContext& context) {
    ExportRequest r;
    try {
        r = parse(context.payload());
        validate(context.payload());
    } catch (const OperationRefused& e) {
        return wharf::JobResult::error(std::string("refused: ") + e.what());
    }
    context.init_progress(
        static_cast<std::int64_t>(repository_->count(r.folder, asset_walk(r, false))));

    const auto id = context.job().id;
    auto dir = results_dir_ / (id > 0 ? std::to_string(id)
                                      : "inline-" + std::to_string(::getpid()) + "-" +
                                            std::to_string(++inline_runs_) + "-" +
                                            std::to_string(reinterpret_cast<std::uintptr_t>(&context)));
    std::filesystem::create_directories(dir);
    const auto name = file_name_for(r.folder);
    const auto spool_path = dir / (name + ".rows");
    const auto part = dir / (name + ".part");
    const auto final_path = dir / name;
    auto give_up = [&](const std::string& message) {
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
        return wharf::JobResult::failed(message);
    };

    // One walk: the columns and their types are learnt while the rows go to
    // the spool (memory grows with the distinct property names, not with the
    // assets; the rows are one consistent read of the repository).
    std::map<std::string, std::uint32_t> index_of;  // name -> column in discovery order
    std::vector<Column> found;
    const std::set<std::string> wanted(r.properties.begin(), r.properties.end());
    std::uint64_t assets = 0;
    bool stopped = false;
    {
        RowSpool spool(spool_path);
        std::vector<std::pair<std::uint32_t, const wharf::Property*>> cells;
        repository_->walk(r.folder, asset_walk(r, true), [&](const wharf::Node& node) {
            cells.clear();
            for (const auto& [property_name, property] : node.properties) {
                if (!wanted.empty() && !wanted.count(property_name)) continue;
                auto [it, added] =
                    index_of.try_emplace(property_name, static_cast<std::uint32_t>(found.size()));
                if (added) {
                    Column c;
                    c.name = property_name;
                    c.type = property.type;
                    found.push_back(std::move(c));
                } else {
                    found[it->second].type = merge(found[it->second].type, property.type);
                }
                found[it->second].multiple = found[it->second].multiple || property.multiple;
                cells.emplace_back(it->second, &property);
            }
            spool.add(node.path, cells);
            if (++assets % kProgressStep == 0) {
                context.increment_progress(static_cast<std::int64_t>(kProgressStep));
                if (context.is_stopped()) stopped = true;
            }
            return !stopped;
        });
        if (!spool.close()) return give_up("cannot write " + spool_path.string() + " (disk full?)");
    }
    if (stopped) return give_up("stopped after " + std::to_string(assets) + " assets");

    // The columns in their final order, and where each found one goes.
    std::vector<Column> columns;
    std::vector<std::int64_t> position(found.size(), -1);
    if (wanted.empty()) {
        for (const auto& [column_name, index] : index_of) {
            position[index] = static_cast<std::int64_t>(columns.size());
            columns.push_back(found[index]);
        }
    } else {
        for (const auto& column_name : r.properties) {
            auto it = index_of.find(column_name);
            if (it != index_of.end()) position[it->second] = static_cast<std::int64_t>(columns.size());
            Column c;
            c.name = column_name;
            columns.push_back(it == index_of.end() ? c : found[it->second]);
        }
    }

    // The CSV, from the spool.
    std::uint64_t written = 0;
    {
        std::ofstream out(part, std::ios::binary | std::ios::trunc);
        if (!out) return give_up("cannot write " + part.string());
        std::string line;
        append_field(line, "assetPath", r.separator, true);
        for (const auto& c : columns) append_field(line, column_header(c), r.separator, false);
        line += "\r\n";
        out << line;
        SpooledRow row;
        std::vector<const SpooledCell*> by_position(columns.size());
        std::string text;
        RowSpool::Reader spool(spool_path);
        while (spool.next(row)) {
            std::fill(by_position.begin(), by_position.end(), nullptr);
            for (const auto& cell : row.cells)
                if (position[cell.column] >= 0)
                    by_position[static_cast<std::size_t>(position[cell.column])] = &cell;
            line.clear();
            append_field(line, row.path, r.separator, true);
            for (std::size_t k = 0; k < columns.size(); ++k) {
                const auto* cell = by_position[k];
                if (!cell) {
                    line.push_back(r.separator);
                    continue;
                }
                const auto& c = columns[k];
                text.clear();
                for (std::size_t v = 0; v < cell->count; ++v) {
                    const auto& value = row.values[cell->first + v];
                    if (v > 0) text.push_back(r.delimiter);
                    if (c.multiple) {
                        append_escaped(text, value, r.delimiter);
                    } else {
                        text += value;
                    }
                }
                if (r.formula_protection && c.type == wharf::PropertyType::string)
                    text = guard_formula(std::move(text));
                append_field(line, text, r.separator, false);
            }
            line += "\r\n";
            out << line;
            ++written;
        }
        if (!spool.ok()) return give_up("cannot read " + spool_path.string());
        out.flush();
        if (!out) return give_up("cannot write " + part.string() + " (disk full?)");
    }
    std::filesystem::remove(spool_path);
    std::filesystem::rename(part, final_path);
    context.increment_progress(static_cast<std::int64_t>(assets % kProgressStep));
    context.attach_result(final_path, name, "text/csv; charset=utf-8");
    std::string message = "exported " + std::to_string(written) + " assets with " +
                          std::to_string(columns.size()) + " properties to " + name;
    context.log(message);
    return wharf::JobResult::succeeded(message);
}

}  // namespace wharf_metadata
