#pragma once
// The queue factory configuration (`queues/<name>.yaml`): its schema, the
// rules a schema cannot express, and the conversion of validated values into
// wharf::QueueSettings for a given core count.
//
// max_parallel is a count or a share of the cores, as in Sling and AEM:
//   an integer >= 1   that many jobs at once (may exceed the cores);
//   -1                all cores;
//   0 < v < 1         round(cores * v), at least 1 (default 0.5: half the cores).
// Anything else (0, -2, 1.5) is refused. An ordered queue runs one job at a
// time whatever max_parallel says.
//
// Pure functions; thread-safe.

#include <boost/property_tree/ptree.hpp>
#include <string>
#include <vector>

#include "config/schema_validator.hpp"
#include "wharf/config.hpp"
#include "wharf/queues.hpp"

namespace wharf::host {

inline constexpr const char* kQueuesSchema = "queues";

wharf::ConfigSchema queue_schema();

/// max_parallel's rule, as a ConfigCheck.
std::vector<CheckProblem> check_queue(const boost::property_tree::ptree& values);

/// max_parallel as a count for `cores` (>= 1). REQUIRES: `configured` passed
/// check_queue.
unsigned resolve_max_parallel(double configured, unsigned cores);

/// The number of cores of this machine (at least 1).
unsigned detect_cores();

/// Validated queue values -> settings for a host with `cores` cores.
wharf::QueueSettings queue_settings(const std::string& name,
                                    const boost::property_tree::ptree& values, unsigned cores);

}  // namespace wharf::host
