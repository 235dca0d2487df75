#include "repository/value_codec.hpp"

#include <bit>
#include <cmath>
#include <cstring>

#include "repository/path.hpp"

namespace wharf::host::repo {
namespace {

using Code = RepositoryError::Code;

std::size_t expected_index(PropertyType type) {
    switch (type) {
        case PropertyType::string:
            return 0;
        case PropertyType::long_:
            return 1;
        case PropertyType::double_:
            return 2;
        case PropertyType::boolean:
            return 3;
        case PropertyType::date:
            return 4;
        case PropertyType::path:
            return 5;
    }
    return std::variant_npos;
}

const char* scalar_type_name(std::size_t index) {
    static constexpr const char* kNames[] = {"String", "Long", "Double", "Boolean", "Date", "Path"};
    return index < 6 ? kNames[index] : "unknown";
}

void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_varint(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}

class Reader {
public:
    explicit Reader(std::string_view bytes) : bytes_(bytes) {}
    bool done() const { return pos_ == bytes_.size(); }
    std::uint64_t u64() {
        need(8);
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i)
            v |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes_[pos_ + i]))
                 << (8 * i);
        pos_ += 8;
        return v;
    }
    std::uint8_t u8() {
        need(1);
        return static_cast<std::uint8_t>(bytes_[pos_++]);
    }
    std::string str() {
        std::uint64_t len = 0;
        for (int shift = 0;; shift += 7) {
            if (shift > 56) corrupt();
            auto b = u8();
            len |= static_cast<std::uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80)) break;
        }
        need(len);
        std::string s(bytes_.substr(pos_, len));
        pos_ += len;
        return s;
    }

private:
    void need(std::uint64_t n) const {
        if (bytes_.size() - pos_ < n) corrupt();
    }
    [[noreturn]] static void corrupt() {
        throw RepositoryError(Code::io, "corrupt packed property value in the database");
    }
    std::string_view bytes_;
    std::size_t pos_ = 0;
};

}  // namespace

std::string property_problem(const Property& property) {
    std::size_t want = expected_index(property.type);
    if (want == std::variant_npos) return "unknown property type";
    if (!property.multiple && property.values.size() != 1)
        return "single-valued but has " + std::to_string(property.values.size()) + " values";
    for (std::size_t i = 0; i < property.values.size(); ++i) {
        const auto& v = property.values[i];
        if (v.index() != want)
            return std::string("value ") + std::to_string(i) + " is a " +
                   scalar_type_name(v.index()) + ", the property is " + scalar_type_name(want);
        if (property.type == PropertyType::path) {
            const auto& p = std::get<PathRef>(v).path;
            if (auto problem = path_problem(p); !problem.empty())
                return "value " + std::to_string(i) + " " + quote_path(p) +
                       " is not a valid path: " + problem;
        }
    }
    return {};
}

namespace {

void require_valid_property_name(std::string_view node_path, std::string_view name) {
    if (auto problem = property_name_problem(name); !problem.empty())
        throw RepositoryError(Code::invalid_property, "node " + quote_path(node_path) +
                                                          ": invalid property name " +
                                                          quote_path(name) + ": " + problem);
}

}  // namespace

void require_valid_property_names(std::string_view node_path,
                                  const std::vector<std::string>& names) {
    for (const auto& name : names) require_valid_property_name(node_path, name);
}

void require_valid_properties(std::string_view node_path, const PropertyMap& properties) {
    for (const auto& [name, property] : properties) {
        require_valid_property_name(node_path, name);
        if (auto problem = property_problem(property); !problem.empty())
            throw RepositoryError(Code::invalid_property, "node " + quote_path(node_path) +
                                                              ": property " + quote_path(name) +
                                                              ": " + problem);
    }
}

bool needs_packing(const Property& property) {
    if (property.multiple) return true;
    return property.type == PropertyType::double_ &&
           std::isnan(std::get<double>(property.values.front()));
}

std::string pack_values(PropertyType type, const std::vector<Scalar>& values) {
    std::string out;
    for (const auto& v : values) {
        switch (type) {
            case PropertyType::string:
                put_varint(out, std::get<std::string>(v).size());
                out += std::get<std::string>(v);
                break;
            case PropertyType::path:
                put_varint(out, std::get<PathRef>(v).path.size());
                out += std::get<PathRef>(v).path;
                break;
            case PropertyType::long_:
                put_u64(out, static_cast<std::uint64_t>(std::get<std::int64_t>(v)));
                break;
            case PropertyType::date:
                put_u64(out,
                        static_cast<std::uint64_t>(std::get<Date>(v).time_since_epoch().count()));
                break;
            case PropertyType::double_:
                put_u64(out, std::bit_cast<std::uint64_t>(std::get<double>(v)));
                break;
            case PropertyType::boolean:
                out.push_back(std::get<bool>(v) ? 1 : 0);
                break;
        }
    }
    return out;
}

std::vector<Scalar> unpack_values(PropertyType type, std::string_view bytes) {
    std::vector<Scalar> values;
    Reader r(bytes);
    while (!r.done()) {
        switch (type) {
            case PropertyType::string:
                values.emplace_back(r.str());
                break;
            case PropertyType::path:
                values.emplace_back(PathRef{r.str()});
                break;
            case PropertyType::long_:
                values.emplace_back(static_cast<std::int64_t>(r.u64()));
                break;
            case PropertyType::date:
                values.emplace_back(
                    Date(std::chrono::milliseconds(static_cast<std::int64_t>(r.u64()))));
                break;
            case PropertyType::double_:
                values.emplace_back(std::bit_cast<double>(r.u64()));
                break;
            case PropertyType::boolean:
                values.emplace_back(r.u8() != 0);
                break;
        }
    }
    return values;
}

std::string pack_strings(const std::vector<std::string>& values) {
    std::string out;
    for (const auto& s : values) {
        put_varint(out, s.size());
        out += s;
    }
    return out;
}

std::vector<std::string> unpack_strings(std::string_view bytes) {
    std::vector<std::string> out;
    Reader r(bytes);
    while (!r.done()) out.push_back(r.str());
    return out;
}

}  // namespace wharf::host::repo
