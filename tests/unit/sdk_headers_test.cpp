// The SDK headers stand alone and say what they promise.
#include <catch2/catch.hpp>

#include <wharf/config.hpp>
#include <wharf/jobs.hpp>
#include <wharf/logger.hpp>
#include <wharf/operations.hpp>
#include <wharf/plugin.hpp>
#include <wharf/queues.hpp>
#include <wharf/repository.hpp>
#include <wharf/services.hpp>
#include <wharf/version.hpp>

namespace {

struct EchoOperation final : wharf::Operation {
    wharf::OperationDescriptor descriptor() const override {
        return {"echo", "Echo", "test/echo", "operations/echo", "items", {}};
    }
    void validate(const boost::property_tree::ptree& request) const override {
        if (!request.get_optional<std::string>("text"))
            throw wharf::OperationRefused("text", "", "field 'text' is required");
    }
    std::uint64_t count(const boost::property_tree::ptree&) const override { return 1; }
    std::string describe(const boost::property_tree::ptree& r, std::uint64_t) const override {
        return "Echo " + r.get<std::string>("text");
    }
    wharf::JobResult run(wharf::JobContext& context) override {
        return wharf::JobResult::succeeded(context.payload().get<std::string>("text"));
    }
};

struct PayloadOnlyContext final : wharf::JobContext {
    wharf::Job job_;
    const wharf::Job& job() const override { return job_; }
    const boost::property_tree::ptree& payload() const override { return job_.payload; }
    void init_progress(std::int64_t) override {}
    void increment_progress(std::int64_t) override {}
    void log(std::string_view) override {}
    void report_row(std::vector<std::string>) override {}
    void checkpoint(std::string_view, std::string_view) override {}
    std::optional<std::string> checkpoint(std::string_view) const override { return std::nullopt; }
    bool is_stopped() const override { return false; }
};

}  // namespace

TEST_CASE("an operation consumer runs the operation it wraps with the job's payload") {
    auto op = std::make_shared<EchoOperation>();
    wharf::OperationConsumer consumer(op);
    PayloadOnlyContext ctx;
    ctx.job_.payload.put("text", "hello");
    auto result = consumer.process(ctx);
    CHECK(result.outcome == wharf::JobResult::Outcome::succeeded);
    CHECK(result.message == "hello");
}

TEST_CASE("a refused operation request names the field, the value and the reason") {
    EchoOperation op;
    try {
        op.validate({});
        FAIL("validate accepted a request without text");
    } catch (const wharf::OperationRefused& e) {
        CHECK(e.field() == "text");
        CHECK(std::string(e.what()) == "field 'text' is required");
    }
}

TEST_CASE("a manifest survives the trip through its property tree form") {
    wharf::Manifest m;
    m.id = "example.ops";
    m.version = "1.2.3";
    m.provides = {wharf::interfaces::kOperation, wharf::interfaces::kJobConsumer};
    m.requires_services = {{wharf::interfaces::kRepository, false}, {"x.Optional", true}};
    wharf::ConfigSchema schema;
    schema.name = "operations/ops";
    wharf::ConfigField threshold;
    threshold.name = "threshold";
    threshold.type = wharf::ConfigType::integer;
    threshold.default_value = "100";
    threshold.minimum = 0;
    schema.fields = {threshold};
    m.configs = {schema};

    auto back = wharf::Manifest::from_ptree(m.to_ptree());
    CHECK(back.id == m.id);
    CHECK(back.version == m.version);
    CHECK(back.provides == m.provides);
    REQUIRE(back.requires_services.size() == 2);
    CHECK(back.requires_services[1].optional);
    REQUIRE(back.configs.size() == 1);
    CHECK(back.configs[0].fields[0].default_value == "100");
    CHECK(back.configs[0].fields[0].minimum == 0);
}
