#include "repository/node_rows.hpp"

#include <algorithm>

#include "repository/links.hpp"
#include "repository/value_codec.hpp"

namespace wharf::host::repo {

std::int64_t read_node(const Statement& row, Node& node, bool with_text) {
    node.path.assign(row.text(1));
    node.kind = static_cast<NodeKind>(row.int64(2));
    node.order = row.int64(3);
    if (row.is_null(4)) {
        node.binary.reset();
    } else {
        node.binary =
            BinaryInfo{row.string(4), static_cast<std::uint64_t>(row.int64(5)), row.string(6)};
    }
    node.created = from_millis(row.int64(7));
    node.modified = from_millis(row.int64(8));
    if (with_text) {
        node.text.assign(row.text(9));
    } else {
        node.text.clear();
    }
    return row.int64(0);
}

Property read_property(const Statement& row, int first) {
    Property p;
    p.type = static_cast<PropertyType>(row.int64(first));
    p.multiple = row.int64(first + 1) != 0;
    int col = first + 2;
    if (row.column_type(col) == SQLITE_BLOB) {
        p.values = unpack_values(p.type, row.blob(col));
        return p;
    }
    switch (p.type) {
        case PropertyType::string:
            p.values.emplace_back(row.string(col));
            break;
        case PropertyType::path:
            p.values.emplace_back(PathRef{row.string(col)});
            break;
        case PropertyType::long_:
            p.values.emplace_back(row.int64(col));
            break;
        case PropertyType::double_:
            p.values.emplace_back(row.real(col));
            break;
        case PropertyType::boolean:
            p.values.emplace_back(row.int64(col) != 0);
            break;
        case PropertyType::date:
            p.values.emplace_back(from_millis(row.int64(col)));
            break;
    }
    return p;
}

void load_properties(Connection& connection, std::int64_t id, PropertyMap& properties) {
    auto q =
        connection.query("SELECT name, type, multiple, value FROM properties WHERE node_id = ?1");
    q->bind(1, id);
    while (q->step()) properties.emplace(q->string(0), read_property(*q, 1));
}

void bind_property_value(Statement& statement, int index, const Property& property) {
    if (needs_packing(property)) {
        statement.bind_blob(index, pack_values(property.type, property.values));
        return;
    }
    const auto& v = property.values.front();
    switch (property.type) {
        case PropertyType::string:
            statement.bind(index, std::get<std::string>(v));
            break;
        case PropertyType::path:
            statement.bind(index, std::get<PathRef>(v).path);
            break;
        case PropertyType::long_:
            statement.bind(index, std::get<std::int64_t>(v));
            break;
        case PropertyType::double_:
            statement.bind(index, std::get<double>(v));
            break;
        case PropertyType::boolean:
            statement.bind(index, static_cast<std::int64_t>(std::get<bool>(v)));
            break;
        case PropertyType::date:
            statement.bind(index, to_millis(std::get<Date>(v)));
            break;
    }
}

void append_property_references(const std::string& name, const Property& property,
                                std::vector<std::pair<std::string, std::string>>& out) {
    if (property.type != PropertyType::path) return;
    for (const auto& v : property.values) out.emplace_back(name, std::get<PathRef>(v).path);
}

std::vector<std::pair<std::string, std::string>> expected_references(const PropertyMap& properties,
                                                                     std::string_view text) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [name, property] : properties) append_property_references(name, property, out);
    for (const auto& link : find_links(text))
        out.emplace_back(kTextProperty,
                         std::string(text.substr(link.begin, link.end - link.begin)));
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

}  // namespace wharf::host::repo
