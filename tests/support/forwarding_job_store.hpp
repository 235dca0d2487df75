#pragma once
// Test support: a JobStore that passes every call to another one. A test
// derives from it and overrides the one call it wants to slow down, fail or
// watch, to put the engine into an interleaving that timing alone would
// reach only now and then.
#include "jobs/job_store.hpp"

namespace wharf::test {

class ForwardingJobStore : public host::JobStore {
public:
    explicit ForwardingJobStore(host::JobStore& inner) : inner_(inner) {}

    void migrate() override { inner_.migrate(); }
    int schema_version() const override { return inner_.schema_version(); }
    Job insert(const host::NewJob& job) override { return inner_.insert(job); }
    std::vector<Job> claim_next(const host::ClaimRequest& request) override {
        return inner_.claim_next(request);
    }
    host::ExchangeResult exchange(const host::ExchangeRequest& request) override {
        return inner_.exchange(request);
    }
    std::vector<host::WaitingGroup> waiting_groups() const override {
        return inner_.waiting_groups();
    }
    std::size_t move_waiting(const std::string& from, const std::string& topic,
                             const std::string& to) override {
        return inner_.move_waiting(from, topic, to);
    }
    std::optional<Job> find_schedule(const std::string& schedule_name) const override {
        return inner_.find_schedule(schedule_name);
    }
    std::optional<Job> finish(const host::JobCompletion& completion) override {
        return inner_.finish(completion);
    }
    std::vector<Job> requeue_active(const std::string& worker) override {
        return inner_.requeue_active(worker);
    }
    std::vector<Job> due_scheduled(host::JobTimePoint now) override {
        return inner_.due_scheduled(now);
    }
    std::optional<host::JobTimePoint> next_due() const override { return inner_.next_due(); }
    bool record_progress(JobId id, std::int64_t done, std::int64_t total) override {
        return inner_.record_progress(id, done, total);
    }
    bool heartbeat(JobId id) override { return inner_.heartbeat(id); }
    bool append_log(JobId id, const std::vector<std::string>& lines) override {
        return inner_.append_log(id, lines);
    }
    bool append_report_rows(JobId id, const std::vector<std::vector<std::string>>& rows) override {
        return inner_.append_report_rows(id, rows);
    }
    bool put_checkpoint(JobId id, const std::string& key, const std::string& value) override {
        return inner_.put_checkpoint(id, key, value);
    }
    JobActionResult request_stop(JobId id) override { return inner_.request_stop(id); }
    JobActionResult remove(JobId id) override { return inner_.remove(id); }
    host::PurgeResult purge(const host::PurgeRequest& request) override {
        return inner_.purge(request);
    }
    std::optional<Job> find(JobId id) const override { return inner_.find(id); }
    JobPage list(const JobFilter& filter) const override { return inner_.list(filter); }
    std::vector<host::JobStatistics> statistics(host::StatisticsGroup group) const override {
        return inner_.statistics(group);
    }
    std::vector<host::JobLogLine> log(JobId id, std::int64_t after_seq,
                                      std::size_t limit) const override {
        return inner_.log(id, after_seq, limit);
    }
    std::vector<std::vector<std::string>> report(JobId id, std::int64_t offset,
                                                 std::size_t limit) const override {
        return inner_.report(id, offset, limit);
    }
    std::map<std::string, std::string> checkpoints(JobId id) const override {
        return inner_.checkpoints(id);
    }
    bool stop_requested(JobId id) const override { return inner_.stop_requested(id); }

protected:
    host::JobStore& inner_;
};

}  // namespace wharf::test
