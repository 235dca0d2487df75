#pragma once
// Test support for Catch2 test cases (includes catch.hpp): checks that an
// operation refuses a bad request both when it is validated and when it is
// run as a job anyway.
#include <catch2/catch.hpp>

#include <string>

#include "move_crash/move_harness.hpp"
#include "wharf/operations.hpp"

namespace wharf::test {

/// Checks that `op` refuses `request` naming `field` and `value` with `message`,
/// and that run as a job anyway it ends as error with that message.
inline void check_refused(Operation& op, const boost::property_tree::ptree& request,
                          const std::string& field, const std::string& value,
                          const std::string& message) {
    bool refused = false;
    try {
        op.validate(request);
    } catch (const OperationRefused& e) {
        refused = true;
        INFO(e.what());
        CHECK(e.field() == field);
        CHECK(e.value() == value);
        CHECK(std::string(e.what()).find(message) != std::string::npos);
    }
    CHECK(refused);
    MemoryContext ctx(request);
    auto result = op.run(ctx);
    CHECK(result.outcome == JobResult::Outcome::error);
    CHECK(result.message.find(message) != std::string::npos);
}

}  // namespace wharf::test
