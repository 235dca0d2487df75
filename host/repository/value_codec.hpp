#pragma once
// Typed property values to and from their stored form, and their validation.
//
// A single value (other than NaN) is stored as a native SQLite value: TEXT for
// String and Path, INTEGER for Long, Boolean and Date (milliseconds), REAL for
// Double (IEEE 754, so it round-trips bit for bit). Multi-valued properties,
// and NaN, are stored as a BLOB: a packed list where each value is
//   String / Path : LEB128 length, then the bytes
//   Long / Date   : 8 bytes little endian
//   Double        : the 8 bytes of its bit pattern, little endian
//   Boolean       : 1 byte
// The column's storage class says which form a row has, the property row's
// type says how to read it. Pure functions; thread-safe.

#include <string>
#include <string_view>
#include <vector>

#include "wharf/repository.hpp"

namespace wharf::host::repo {

/// Why `property` is not valid (type, multiplicity, value types, Path values
/// that are not valid paths), or empty.
std::string property_problem(const Property& property);

/// Throws RepositoryError{invalid_property} for the first bad name or value,
/// naming the node, the property and the reason.
void require_valid_properties(std::string_view node_path, const PropertyMap& properties);

/// Throws RepositoryError{invalid_property} for the first bad property name of
/// `node_path` (removals, cancelled inheritance: names without values).
void require_valid_property_names(std::string_view node_path,
                                  const std::vector<std::string>& names);

/// The packed-list form of `values` (all of `type`, as checked by property_problem).
std::string pack_values(PropertyType type, const std::vector<Scalar>& values);

/// Reads a packed list. Throws RepositoryError{io} if `bytes` is corrupt.
std::vector<Scalar> unpack_values(PropertyType type, std::string_view bytes);

/// A list of strings in packed form (used for rollout configs, exclusions).
std::string pack_strings(const std::vector<std::string>& values);
std::vector<std::string> unpack_strings(std::string_view bytes);

/// Whether a property must be stored packed rather than as a native value.
bool needs_packing(const Property& property);

// Type and kind names are the SDK's (wharf/repository.hpp).
using wharf::to_string;

}  // namespace wharf::host::repo
