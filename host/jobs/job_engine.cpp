#include "jobs/job_engine.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "base/cron.hpp"
#include "base/error.hpp"
#include "base/log.hpp"
#include "jobs/job_routing.hpp"
#include "jobs/operation_submission.hpp"

namespace wharf::host {

namespace {

using Ptree = boost::property_tree::ptree;
using SystemClock = std::chrono::system_clock;

std::int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               SystemClock::now().time_since_epoch())
        .count();
}

JobTimePoint from_us(std::int64_t us) {
    return JobTimePoint(
        std::chrono::duration_cast<JobClock::duration>(std::chrono::microseconds(us)));
}

// How long a worker whose run ended waits for runs that started with it, so
// that their ends share one exchange (see JobEngine::Core::worker_loop).
constexpr std::chrono::microseconds kCompanyWindow{1000};

// Why a running job was asked to stop. Only `user` ends it as stopped; the
// others are the host's own reasons and put the job back in its queue.
enum class StopReason : int { none = 0, user, drain, shutdown };

// `job.topics` as a list: list children, or one value. Plugins may write the
// key as a path (job -> topics) or as one literal key; both are accepted.
std::vector<std::string> consumer_topics(const Properties& props) {
    const Ptree* node = nullptr;
    if (auto child = props.get_child_optional(wharf::JobConsumer::kTopicsProperty)) {
        node = &*child;
    } else {
        auto it = props.find(wharf::JobConsumer::kTopicsProperty);
        if (it != props.not_found()) node = &it->second;
    }
    std::vector<std::string> topics;
    if (!node) return topics;
    if (node->empty()) {
        if (!node->data().empty()) topics.push_back(node->data());
    } else {
        for (const auto& [key, value] : *node)
            if (!value.data().empty()) topics.push_back(value.data());
    }
    return topics;
}

int priority_order(wharf::QueuePriority p) {
    switch (p) {
        case wharf::QueuePriority::high:
            return 0;
        case wharf::QueuePriority::normal:
            return 1;
        case wharf::QueuePriority::low:
            return 2;
    }
    return 1;
}

const char* queue_type_name(wharf::QueueType t) {
    switch (t) {
        case wharf::QueueType::ordered:
            return "ordered";
        case wharf::QueueType::parallel:
            return "parallel";
        case wharf::QueueType::topic_round_robin:
            return "topic-round-robin";
    }
    return "parallel";
}

}  // namespace

// --- the engine's shared state ------------------------------------------------------

struct JobEngine::Core : std::enable_shared_from_this<JobEngine::Core> {
    struct QueueState {
        std::shared_ptr<const wharf::QueueSettings> settings;
        std::uint64_t service_id = 0;
        bool live = false;
        unsigned active = 0;   // runs in progress, overdue ones included
        unsigned overdue = 0;  // of those, runs past their stop grace
        // Topics that may have queued jobs here. Claims are restricted to the
        // ones with a consumer, so a topic nobody takes never blocks the rest.
        std::set<std::string> topics;
        bool maybe_waiting = true;
        std::uint64_t generation = 0;  // bumped whenever work may have arrived
        std::size_t round_robin = 0;
        std::optional<JobId> held_by;  // ordered: the failed job whose retry holds it
    };

    struct ConsumerEntry {
        std::uint64_t service_id = 0;
        std::string owner;
        std::shared_ptr<wharf::JobConsumer> consumer;
    };

    struct Run {
        std::shared_ptr<const Job> job;
        std::string queue;
        std::shared_ptr<const wharf::QueueSettings> settings;  // as claimed
        ConsumerEntry consumer;
        std::atomic<int> stop{static_cast<int>(StopReason::none)};
        std::atomic<std::int64_t> last_beat_us{0};
        std::atomic<std::int64_t> progress_done{0};
        std::atomic<std::int64_t> progress_total{0};
        std::int64_t started_us = 0;
        // The run's buffered log lines, report rows and progress (RunContext)
        // and, while the consumer runs, how to write them when they are older
        // than flush_interval: the timer does it for a consumer that reported
        // and then blocks, so a followed log shows its lines anyway.
        std::mutex buffer_mutex;
        std::function<void()> flush_stale;  // guarded by buffer_mutex
        // Guarded by Core::mutex.
        std::optional<std::int64_t> stop_at_us;
        std::optional<std::int64_t> drain_deadline_us;
        bool overdue = false;
        bool stuck = false;
        bool ended = false;  // the consumer returned

        StopReason stop_reason() const { return static_cast<StopReason>(stop.load()); }
    };

    struct Ended {
        std::shared_ptr<Run> run;
        JobCompletion completion;
    };

    struct WorkerThread {
        std::thread thread;
        bool busy = false;
        bool exited = false;
    };

    // One claim of a round, with what the dispatcher needs to interpret it.
    struct PlannedClaim {
        std::string queue;
        std::uint64_t generation = 0;
        std::vector<std::string> topics;  // the topics asked for; empty = all
    };

    Core(ServiceRegistryImpl& r, JobStore& s, JobEngineOptions o)
        : registry(r), store(s), options(std::move(o)), log(logger("jobs")) {}

    ServiceRegistryImpl& registry;
    JobStore& store;
    const JobEngineOptions options;
    std::shared_ptr<spdlog::logger> log;

    mutable std::mutex mutex;
    std::condition_variable dispatch_cv;  // dispatcher: work arrived
    std::condition_variable timer_cv;     // timer: something to re-check
    std::condition_variable task_cv;      // workers: a run to execute
    std::condition_variable company_cv;   // a worker waiting for runs that started with its own
    std::condition_variable idle_cv;      // stop(): runs ended
    bool started = false;
    bool stopping = false;
    bool stopped = false;
    bool dispatcher_exit = false;
    bool timer_exit = false;
    bool workers_exit = false;
    bool wake = false;
    // One thread at a time runs dispatch rounds: the dispatcher thread, or a
    // worker whose run just ended (it then usually runs the next job itself,
    // with no thread hand-off on the hot path).
    bool round_active = false;
    bool timer_wake = false;
    bool reroute_needed = false;

    std::map<std::string, QueueState> queues;
    std::vector<ConsumerCandidate> candidates;  // parallel to consumers
    std::vector<ConsumerEntry> consumers;
    std::unordered_map<JobId, std::shared_ptr<Run>> running;
    std::vector<Ended> ended;
    std::vector<JobCompletion> put_back;  // claimed, but no consumer any more
    std::unordered_set<JobId> stop_requests;
    std::deque<std::shared_ptr<Run>> tasks;
    // Runs started within kCompanyWindow, oldest first: a worker whose run
    // ended while some of these still run waits briefly for them, so that
    // their ends share one exchange (see worker_loop).
    std::deque<std::shared_ptr<Run>> recent_starts;
    std::uint64_t rounds_taken = 0;  // bumped whenever a round takes `ended`
    std::size_t idle_workers = 0;
    std::size_t company_waiters = 0;  // idle workers waiting for company, not taking runs
    std::vector<std::shared_ptr<WorkerThread>> workers;

    // Events: published in change order, delivered on the event thread.
    std::mutex event_mutex;
    std::condition_variable event_cv;
    std::deque<wharf::JobEvent> events;
    bool events_exit = false;
    std::mutex listeners_mutex;
    std::vector<std::pair<std::uint64_t, std::shared_ptr<wharf::JobListener>>> listeners;
    std::atomic<std::size_t> listener_count{0};
    // Enqueue holds it shared from insert until its `added` event is
    // published; the dispatcher takes it exclusively before publishing
    // `started`, so a listener never sees a job start before it was added.
    std::shared_mutex announce_mutex;

    std::atomic<bool> closed{false};
    std::atomic<std::uint64_t> n_started{0}, n_ended{0}, n_exchanges{0}, n_overdue{0},
        n_stuck{0}, n_requeued{0}, n_moved{0};

    std::thread dispatcher_thread, timer_thread, event_thread;
    std::unique_ptr<wharf::ServiceTracker> queue_tracker, consumer_tracker, listener_tracker;
    std::shared_ptr<wharf::ServiceRegistration> manager_registration, purge_registration;
    std::shared_ptr<wharf::JobManager> manager_service;

    // Where consumers keep attached result files (the directory above each
    // `<job id>/` directory), learnt from attach_result and remove_job: purge
    // deletes the directories of the jobs it removed from each of them.
    struct ResultRoots {
        std::mutex mutex;
        std::set<std::filesystem::path> roots;
        void add(const ResultFile& file) {
            std::lock_guard lock(mutex);
            roots.insert(file.path.parent_path().parent_path());
        }
    };
    std::shared_ptr<ResultRoots> result_roots = std::make_shared<ResultRoots>();

    // --- helpers (REQUIRES: mutex held) --------------------------------------------

    QueueState& queue_state(const std::string& name) { return queues[name]; }

    // The queue jobs fall back to must always exist: while no default.yaml is
    // in force (none shipped, or an admin removed it) built-in settings take
    // its place, so no job waits for a queue that will never come.
    void use_builtin_default_locked() {
        auto settings = std::make_shared<wharf::QueueSettings>();
        settings->name = kDefaultQueueName;
        settings->title = "Built-in default queue (no queues/default.yaml in force)";
        settings->type = wharf::QueueType::parallel;
        settings->max_parallel = std::max(1u, std::thread::hardware_concurrency() / 2);
        settings->ranking = std::numeric_limits<std::int32_t>::min();
        auto& q = queue_state(kDefaultQueueName);
        q.settings = std::move(settings);
        q.live = true;
        q.service_id = 0;
        q.maybe_waiting = true;
        ++q.generation;
        log->info("queue in force name={} built-in=true max_parallel={}", kDefaultQueueName,
                  q.settings->max_parallel);
    }

    std::string route_locked(std::string_view topic) const {
        std::vector<QueueCandidate> live;
        for (const auto& [name, q] : queues)
            if (q.live && q.settings) live.push_back({q.service_id, q.settings});
        return select_queue(live, topic);
    }

    const ConsumerEntry* consumer_for(std::string_view topic) const {
        auto i = select_consumer(candidates, topic);
        return i ? &consumers[*i] : nullptr;
    }

    void work_arrived(QueueState& q, const std::string& topic) {
        q.topics.insert(topic);
        q.maybe_waiting = true;
        ++q.generation;
        wake = true;
    }

    // Whether a job of `topic` just queued in `q` could start at once. When
    // not, waking the dispatcher (a thread switch per enqueue) would find
    // nothing to do: a topic without consumer waits for one (its arrival
    // wakes every queue), a queue with every slot busy claims the job in the
    // round that the end of one of its runs starts, an ordered queue held by a
    // retry is woken by the timer when the retry is due.
    bool may_start_now_locked(const QueueState& q, const std::string& topic) const {
        if (!consumer_for(topic)) return false;
        if (!q.live || !q.settings) return true;
        const auto& s = *q.settings;
        bool ordered = s.type == wharf::QueueType::ordered;
        if (ordered && q.held_by) return false;
        unsigned limit = ordered ? 1u : std::max(1u, s.max_parallel);
        return q.active < limit;
    }

    void all_queues_may_have_work() {
        for (auto& [name, q] : queues) {
            q.maybe_waiting = true;
            ++q.generation;
        }
        wake = true;
    }

    // --- events ----------------------------------------------------------------

    void publish(wharf::JobEventType type, const Job& job) {
        if (listener_count.load(std::memory_order_acquire) == 0) return;
        {
            std::lock_guard lock(event_mutex);
            events.push_back({type, job});
        }
        event_cv.notify_one();
    }

    void event_loop() {
        std::unique_lock lock(event_mutex);
        while (true) {
            event_cv.wait(lock, [&] { return events_exit || !events.empty(); });
            if (events.empty()) return;
            auto event = std::move(events.front());
            events.pop_front();
            lock.unlock();
            std::vector<std::pair<std::uint64_t, std::shared_ptr<wharf::JobListener>>> targets;
            {
                std::lock_guard l(listeners_mutex);
                targets = listeners;
            }
            for (auto& [id, listener] : targets) {
                try {
                    listener->on_job_event(event);
                } catch (const std::exception& e) {
                    log->warn("job listener threw service={} job={} error={}", id,
                              event.job.id, e.what());
                } catch (...) {
                    log->warn("job listener threw service={} job={}", id, event.job.id);
                }
            }
            lock.lock();
        }
    }

    // --- workers -----------------------------------------------------------------

    void spawn_workers_locked() {
        while (tasks.size() > idle_workers) {
            auto w = std::make_shared<WorkerThread>();
            ++idle_workers;  // counted before it runs, so it is not spawned twice
            w->thread = std::thread([self = shared_from_this(), w] { self->worker_loop(w); });
            workers.push_back(std::move(w));
        }
    }

    void worker_loop(std::shared_ptr<WorkerThread> me) {
        std::unique_lock lock(mutex);
        while (true) {
            task_cv.wait(lock, [&] { return workers_exit || !tasks.empty(); });
            if (tasks.empty()) break;
            --idle_workers;
            auto run = std::move(tasks.front());
            tasks.pop_front();
            me->busy = true;
            lock.unlock();
            auto completion = execute(run);
            lock.lock();
            me->busy = false;
            run->ended = true;
            ended.push_back({std::move(run), std::move(completion)});
            ++idle_workers;  // counted as a taker for what its own round claims
            // Claimed runs that no other idle worker will take (idle_workers
            // counts this one): this worker must not sleep on them.
            auto left_to_me = [&] {
                std::size_t takers = idle_workers - company_waiters - 1;  // not this one
                return tasks.size() > takers;
            };
            // When a round is running, its runner sees this completion before
            // it stops (it re-checks under the lock): no wake-up needed.
            if (!round_active && !dispatcher_exit && !left_to_me() &&
                should_wait_for_company_locked()) {
                // Runs that started with this one are still going, or are
                // about to (claimed, and another worker was woken for them):
                // if they end within the window, the last of them commits
                // every end in one exchange (one transaction and one claim
                // round instead of one each). Without waiting for the runs a
                // woken worker has not picked up yet, ends fell out of step
                // and every exchange carried one. A run that takes longer
                // costs this end at most kCompanyWindow before it is committed.
                const std::uint64_t taken = rounds_taken;
                // On a condition of its own: a notification of task_cv meant
                // for a worker that takes the claimed runs must not be spent
                // on this one.
                ++company_waiters;
                company_cv.wait_for(lock, kCompanyWindow, [&] {
                    --company_waiters;
                    bool done = workers_exit || dispatcher_exit || round_active ||
                                rounds_taken != taken || left_to_me() ||
                                !should_wait_for_company_locked();
                    ++company_waiters;
                    return done;
                });
                --company_waiters;
            }
            if (!round_active && !dispatcher_exit && has_round_work()) {
                round_active = true;
                run_rounds(lock, true);
            }
        }
        --idle_workers;
        me->exited = true;
    }

    JobCompletion execute(const std::shared_ptr<Run>& run);

    // Whether the ends collected so far should wait for runs that started
    // recently and still run: while at least as many of those are out as ends
    // are waiting, waiting can at least double the exchange. REQUIRES: mutex.
    bool should_wait_for_company_locked() {
        std::int64_t horizon =
            now_us() - std::chrono::duration_cast<std::chrono::microseconds>(kCompanyWindow).count();
        while (!recent_starts.empty() &&
               (recent_starts.front()->ended || recent_starts.front()->started_us < horizon))
            recent_starts.pop_front();
        std::size_t out = 0;
        for (const auto& r : recent_starts)
            if (!r->ended) ++out;
        return out > 0 && out >= ended.size();
    }

    // --- dispatcher ------------------------------------------------------------------

    struct Round {
        std::vector<Ended> ended;
        std::vector<JobCompletion> put_back;
        std::vector<PlannedClaim> planned;
        ExchangeRequest request;
        bool empty() const { return request.completions.empty() && request.claims.empty(); }
    };

    Round build_round() {
        Round r;
        r.ended = std::move(ended);
        ended.clear();
        if (!r.ended.empty()) ++rounds_taken;
        r.put_back = std::move(put_back);
        put_back.clear();
        std::map<std::string, unsigned> freeing;
        for (const auto& e : r.ended) {
            r.request.completions.push_back(e.completion);
            ++freeing[e.run->queue];
            // An ordered queue is held from the moment its job fails, so the
            // claim in this same round does not overtake the retry.
            auto& q = queue_state(e.run->queue);
            if (e.completion.outcome == JobOutcome::failed && q.settings &&
                q.settings->type == wharf::QueueType::ordered)
                q.held_by = e.completion.id;
        }
        for (const auto& c : r.put_back) r.request.completions.push_back(c);
        r.request.worker = options.worker;
        if (stopping) return r;

        std::size_t global_free = std::numeric_limits<std::size_t>::max();
        if (options.max_workers > 0) {
            std::size_t busy = running.size() - std::min(running.size(), r.ended.size());
            global_free = options.max_workers > busy ? options.max_workers - busy : 0;
        }
        std::vector<std::pair<std::string, QueueState*>> order;
        for (auto& [name, q] : queues)
            if (q.live && q.settings && q.maybe_waiting) order.emplace_back(name, &q);
        std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
            int pa = priority_order(a.second->settings->priority);
            int pb = priority_order(b.second->settings->priority);
            if (pa != pb) return pa < pb;
            return a.second->settings->ranking > b.second->settings->ranking;
        });
        for (auto& [name, qp] : order) {
            if (global_free == 0) break;
            QueueState& q = *qp;
            const auto& s = *q.settings;
            bool ordered = s.type == wharf::QueueType::ordered;
            if (ordered && q.held_by) continue;
            unsigned limit = ordered ? 1u : std::max(1u, s.max_parallel);
            unsigned busy = q.active - std::min(q.active, freeing[name]);
            if (busy >= limit) continue;
            std::size_t slots = std::min<std::size_t>(limit - busy, global_free);
            std::vector<std::string> takeable;
            for (const auto& t : q.topics)
                if (consumer_for(t)) takeable.push_back(t);
            if (takeable.empty()) {
                q.maybe_waiting = false;
                continue;
            }
            bool all = takeable.size() == q.topics.size();
            if (s.type == wharf::QueueType::topic_round_robin && takeable.size() > 1) {
                // One job per topic in turn; more slots than topics go round again.
                std::map<std::string, std::size_t> per_topic;
                for (std::size_t k = 0; k < slots; ++k)
                    ++per_topic[takeable[(q.round_robin + k) % takeable.size()]];
                q.round_robin = (q.round_robin + slots) % takeable.size();
                for (auto& [topic, n] : per_topic) {
                    ClaimRequest c;
                    c.queues = {name};
                    c.topics = {topic};
                    c.limit = n;
                    c.worker = options.worker;
                    r.request.claims.push_back(std::move(c));
                    r.planned.push_back({name, q.generation, {topic}});
                }
            } else {
                ClaimRequest c;
                c.queues = {name};
                if (!all) c.topics = takeable;
                c.limit = slots;
                c.worker = options.worker;
                r.request.claims.push_back(std::move(c));
                r.planned.push_back({name, q.generation, all ? std::vector<std::string>{}
                                                             : takeable});
            }
            global_free -= slots;
        }
        return r;
    }

    void apply_round(Round& r, ExchangeResult& result, bool by_worker) {
        std::int64_t now = now_us();
        for (std::size_t i = 0; i < r.ended.size(); ++i) {
            auto& e = r.ended[i];
            const FinishedRun& f = result.finished[i];
            auto& q = queue_state(e.run->queue);
            if (q.active > 0) --q.active;
            if (e.run->overdue && q.overdue > 0) --q.overdue;
            running.erase(e.completion.id);
            stop_requests.erase(e.completion.id);
            n_ended.fetch_add(1, std::memory_order_relaxed);
            if (q.held_by == e.completion.id && (!f.applied || f.state != JobState::failed)) {
                q.held_by.reset();
                q.maybe_waiting = true;
                wake = true;
            }
            if (!f.applied) {
                log->warn("job run ended but the job was no longer active id={} topic={}",
                          e.completion.id, e.run->job->topic);
                continue;
            }
            if (f.state == JobState::queued) {
                n_requeued.fetch_add(1, std::memory_order_relaxed);
                work_arrived(q, e.run->job->topic);
            }
            if (f.state == JobState::failed) timer_wake = true;
            // The common case (a success, nobody listening, debug off) builds
            // no snapshot: copying the payload per job is measurable.
            bool listening = listener_count.load(std::memory_order_relaxed) > 0;
            bool loud = f.state != JobState::succeeded && f.state != JobState::queued;
            if (!listening && !loud && !log->should_log(spdlog::level::debug)) continue;
            Job after = *e.run->job;
            after.state = f.state;
            after.retry_count = f.retry_count;
            after.result_message = e.completion.message;
            after.finished = is_final(f.state) ? std::optional<JobTime>(from_us(now))
                                               : std::nullopt;
            switch (f.state) {
                case JobState::succeeded:
                    publish(wharf::JobEventType::finished, after);
                    break;
                case JobState::failed:
                    after.scheduled = e.completion.retry_at;
                    publish(wharf::JobEventType::failed, after);
                    break;
                case JobState::error:
                case JobState::given_up:
                    publish(wharf::JobEventType::failed, after);
                    break;
                case JobState::stopped:
                    publish(wharf::JobEventType::stopped, after);
                    break;
                default:
                    break;
            }
            if (f.state != JobState::succeeded || log->should_log(spdlog::level::debug)) {
                auto level = f.state == JobState::succeeded || f.state == JobState::queued
                                 ? spdlog::level::debug
                                 : spdlog::level::info;
                log->log(level, "job ended id={} topic={} queue={} state={} retry={} message={}",
                         after.id, after.topic, e.run->queue, to_string(f.state), f.retry_count,
                         e.completion.message);
            }
        }
        if (!r.put_back.empty()) timer_wake = true;

        std::size_t claimed_total = 0;
        bool short_claim = false;
        bool learned = false;  // a short claim told us some topics are empty now
        for (std::size_t i = 0; i < r.planned.size(); ++i) {
            const auto& plan = r.planned[i];
            auto& jobs = result.claimed[i];
            auto& q = queue_state(plan.queue);
            claimed_total += jobs.size();
            if (jobs.size() < r.request.claims[i].limit) {
                short_claim = true;
                if (q.generation == plan.generation) {
                    // Nothing more of those topics is waiting (nothing arrived
                    // since the round was planned).
                    learned = true;
                    if (plan.topics.empty()) {
                        q.topics.clear();
                    } else {
                        for (const auto& t : plan.topics) q.topics.erase(t);
                    }
                    bool takeable = std::any_of(q.topics.begin(), q.topics.end(),
                                                [&](const auto& t) { return consumer_for(t); });
                    if (!takeable) q.maybe_waiting = false;
                }
            }
            for (auto& job : jobs) start_run(q, plan.queue, std::move(job), now);
        }
        // Slots a short claim left free may be filled by other topics or
        // queues: plan again, but only after a round that made progress
        // (claimed something, or crossed empty topics off), so it ends.
        if (short_claim && (claimed_total > 0 || learned)) wake = true;
        spawn_workers_locked();
        for (std::size_t i = by_worker ? 1 : 0; i < tasks.size(); ++i) task_cv.notify_one();
        company_cv.notify_all();
    }

    void start_run(QueueState& q, const std::string& queue_name, Job job, std::int64_t now) {
        const ConsumerEntry* consumer = consumer_for(job.topic);
        if (!consumer) {
            // The consumer went away between planning and claiming.
            put_back.push_back({job.id, JobOutcome::requeued, "no consumer for the topic", {}});
            q.topics.insert(job.topic);
            return;
        }
        auto run = std::make_shared<Run>();
        run->queue = queue_name;
        run->settings = q.settings;
        run->consumer = *consumer;
        run->started_us = now;
        run->last_beat_us = now;
        // The description is the host's (wharf/jobs.hpp): consumers never see it.
        job.payload.erase(wharf::kJobDescriptionKey);
        run->job = std::make_shared<const Job>(std::move(job));
        JobId id = run->job->id;
        if (stop_requests.count(id)) {
            run->stop = static_cast<int>(StopReason::user);
            run->stop_at_us = now;
        }
        ++q.active;
        running[id] = run;
        tasks.push_back(run);
        recent_starts.push_back(run);
        n_started.fetch_add(1, std::memory_order_relaxed);
        publish(wharf::JobEventType::started, *run->job);
    }

    bool has_round_work() const { return wake || !ended.empty() || !put_back.empty(); }

    // Runs rounds until nothing is left to do. REQUIRES: `lock` holds mutex
    // and this thread set round_active.
    // `by_worker`: the runner is a worker that takes one claimed run itself.
    void run_rounds(std::unique_lock<std::mutex>& lock, bool by_worker) {
        while (has_round_work() && !(dispatcher_exit && ended.empty() && put_back.empty())) {
            wake = false;
            Round round = build_round();
            if (round.empty()) continue;
            lock.unlock();
            ExchangeResult result;
            std::string error;
            try {
                result = store.exchange(round.request);
            } catch (const std::exception& e) {
                error = e.what();
            }
            n_exchanges.fetch_add(1, std::memory_order_relaxed);
            // See announce_mutex: `added` of claimed jobs goes out first.
            std::unique_lock<std::shared_mutex> announce(announce_mutex, std::defer_lock);
            if (!round.request.claims.empty() && listener_count.load() > 0) announce.lock();
            lock.lock();
            if (!error.empty()) {
                log->error("job dispatch failed; retrying in 100 ms runs={} error={}",
                           round.ended.size(), error);
                // Nothing was committed: the same completions go again.
                for (auto& e : round.ended) ended.push_back(std::move(e));
                for (auto& c : round.put_back) put_back.push_back(std::move(c));
                round_active = false;
                dispatch_cv.notify_one();
                return;
            }
            apply_round(round, result, by_worker);
            if (announce.owns_lock()) announce.unlock();
            if (timer_wake) timer_cv.notify_one();
            idle_cv.notify_all();
        }
        round_active = false;
    }

    void dispatcher_loop() {
        std::unique_lock lock(mutex);
        while (true) {
            dispatch_cv.wait(lock, [&] {
                return dispatcher_exit || (!round_active && has_round_work());
            });
            if (dispatcher_exit && ended.empty() && put_back.empty() && !round_active) return;
            if (round_active) continue;
            round_active = true;
            run_rounds(lock, false);
            if (has_round_work() && !dispatcher_exit) {
                // A failed exchange: back off before the same batch goes again.
                dispatch_cv.wait_for(lock, std::chrono::milliseconds(100),
                                     [&] { return dispatcher_exit; });
            }
        }
    }

    void wake_dispatcher_locked() {
        wake = true;
        dispatch_cv.notify_one();
    }

    // --- timer ----------------------------------------------------------------------

    std::chrono::milliseconds check_interval() const {
        auto shortest = std::min({options.stuck_after, options.stop_grace, options.drain_timeout});
        return std::clamp<std::chrono::milliseconds>(shortest / 4, std::chrono::milliseconds(5),
                                                     std::chrono::milliseconds(1000));
    }

    void queue_due_jobs() {
        std::int64_t before = now_us();
        std::vector<Job> due;
        {
            std::shared_lock<std::shared_mutex> announce(announce_mutex, std::defer_lock);
            if (listener_count.load() > 0) announce.lock();
            due = store.due_scheduled(SystemClock::now());
            if (due.empty()) return;
            std::lock_guard lock(mutex);
            for (const auto& job : due) {
                auto& q = queue_state(job.queue);
                if (q.held_by == job.id) q.held_by.reset();
                work_arrived(q, job.topic);
                // A cron fire time creates a new job; a one-shot or a retry
                // only changes state.
                bool spawned = job.retry_count == 0 && !job.started &&
                               job.created >= from_us(before - 1000);
                if (spawned) publish(wharf::JobEventType::added, job);
            }
            dispatch_cv.notify_one();
        }
        log->debug("scheduled jobs queued count={}", due.size());
    }

    void check_runs() {
        std::int64_t now = now_us();
        std::lock_guard lock(mutex);
        for (auto& [id, run] : running) {
            auto& q = queue_state(run->queue);
            if (run->drain_deadline_us && *run->drain_deadline_us <= now &&
                run->stop_reason() == StopReason::none) {
                run->stop = static_cast<int>(StopReason::drain);
                run->stop_at_us = now;
                log->info(
                    "job asked to stop after drain_timeout; it will be requeued id={} topic={} "
                    "consumer_owner={}",
                    id, run->job->topic, run->consumer.owner);
            }
            if (run->stop_at_us && !run->overdue &&
                now - *run->stop_at_us >= options.stop_grace.count() * 1000) {
                run->overdue = true;
                ++q.overdue;
                n_overdue.fetch_add(1, std::memory_order_relaxed);
                log->warn(
                    "job overdue: asked to stop {} ms ago and still running; its slot stays "
                    "taken until the consumer returns id={} topic={} queue={} consumer_owner={}",
                    options.stop_grace.count(), id, run->job->topic, run->queue,
                    run->consumer.owner);
            }
            std::int64_t silent = now - run->last_beat_us.load();
            if (!run->stuck && silent >= options.stuck_after.count() * 1000) {
                run->stuck = true;
                n_stuck.fetch_add(1, std::memory_order_relaxed);
                log->warn("job stuck: no heartbeat for {} ms id={} topic={} queue={}",
                          silent / 1000, id, run->job->topic, run->queue);
            } else if (run->stuck && silent < options.stuck_after.count() * 1000) {
                run->stuck = false;
                log->info("job no longer stuck id={}", id);
            }
        }
    }

    // Writes what running consumers reported and did not flush themselves
    // within flush_interval (outside the engine lock: it is store I/O).
    void flush_stale_buffers() {
        std::vector<std::shared_ptr<Run>> runs;
        {
            std::lock_guard lock(mutex);
            runs.reserve(running.size());
            for (auto& [id, run] : running) runs.push_back(run);
        }
        for (auto& run : runs) {
            std::lock_guard buffer(run->buffer_mutex);
            if (!run->flush_stale) continue;
            try {
                run->flush_stale();
            } catch (const std::exception& e) {
                log->warn("job log or progress not written id={} error={}", run->job->id,
                          e.what());
            }
        }
    }

    // Moves waiting jobs out of queues that no longer take them.
    void reroute() {
        std::vector<WaitingGroup> groups;
        try {
            groups = store.waiting_groups();
        } catch (const std::exception& e) {
            log->error("cannot read waiting jobs for re-routing: {}", e.what());
            return;
        }
        for (const auto& g : groups) {
            std::string target;
            {
                std::lock_guard lock(mutex);
                auto it = queues.find(g.queue);
                bool stays = it != queues.end() && it->second.live && it->second.settings &&
                             queue_takes(*it->second.settings, g.topic);
                if (stays) continue;
                target = route_locked(g.topic);
                auto t = queues.find(target);
                if (target == g.queue || t == queues.end() || !t->second.live) continue;
            }
            std::size_t moved = 0;
            try {
                moved = store.move_waiting(g.queue, g.topic, target);
            } catch (const std::exception& e) {
                log->error("cannot move waiting jobs from={} to={} topic={}: {}", g.queue, target,
                           g.topic, e.what());
                continue;
            }
            std::lock_guard lock(mutex);
            auto& from = queue_state(g.queue);
            from.held_by.reset();
            work_arrived(queue_state(target), g.topic);
            n_moved.fetch_add(moved, std::memory_order_relaxed);
            log->info("waiting jobs moved to the queue that now takes them from={} to={} topic={} "
                      "count={}",
                      g.queue, target, g.topic, moved);
            dispatch_cv.notify_one();
        }
    }

    void timer_loop() {
        std::unique_lock lock(mutex);
        while (!timer_exit) {
            bool do_reroute = reroute_needed;
            reroute_needed = false;
            timer_wake = false;
            lock.unlock();
            if (do_reroute) reroute();
            std::optional<JobTimePoint> next;
            try {
                queue_due_jobs();
                next = store.next_due();
            } catch (const std::exception& e) {
                log->error("job scheduler failed; retrying error={}", e.what());
            }
            check_runs();
            flush_stale_buffers();
            auto deadline = SystemClock::now() + check_interval();
            if (next && *next < deadline) deadline = *next;
            lock.lock();
            timer_cv.wait_until(lock, deadline,
                                [&] { return timer_exit || timer_wake || reroute_needed; });
        }
    }

    // --- trackers ----------------------------------------------------------------------

    void on_queue_event(const wharf::ServiceEvent& event) {
        auto queue = wharf::service_cast<wharf::Queue>(event);
        if (!queue) return;
        auto settings = queue->settings();
        std::lock_guard lock(mutex);
        auto& q = queue_state(queue->name());
        if (event.type == wharf::ServiceEventType::removed) {
            if (q.service_id != event.reference->id) return;
            q.live = false;
            log->info("queue closed name={} running={}; its waiting jobs move to the queue that "
                      "takes them now",
                      queue->name(), q.active);
            if (queue->name() == kDefaultQueueName) use_builtin_default_locked();
        } else {
            q.settings = settings;
            q.live = true;
            q.service_id = event.reference->id;
            q.maybe_waiting = true;
            ++q.generation;
            log->info("queue in force name={} type={} max_parallel={} retries={} version={}",
                      queue->name(), queue_type_name(settings->type), settings->max_parallel,
                      settings->retries, settings->version);
            if (settings->type != wharf::QueueType::ordered) q.held_by.reset();
            wake_dispatcher_locked();
        }
        reroute_needed = true;
        timer_cv.notify_one();
    }

    void on_consumer_event(const wharf::ServiceEvent& event) {
        const auto& ref = *event.reference;
        std::lock_guard lock(mutex);
        auto it = std::find_if(consumers.begin(), consumers.end(),
                               [&](const auto& c) { return c.service_id == ref.id; });
        if (event.type == wharf::ServiceEventType::removed) {
            if (it == consumers.end()) return;
            auto index = static_cast<std::size_t>(it - consumers.begin());
            consumers.erase(it);
            candidates.erase(candidates.begin() + static_cast<std::ptrdiff_t>(index));
            std::int64_t deadline = now_us() + options.drain_timeout.count() * 1000;
            std::size_t draining = 0;
            for (auto& [id, run] : running) {
                if (run->consumer.service_id != ref.id) continue;
                run->drain_deadline_us = deadline;
                ++draining;
            }
            log->info("job consumer gone service={} owner={} running_jobs={} drain_timeout_ms={}",
                      ref.id, ref.owner, draining, options.drain_timeout.count());
            timer_cv.notify_one();
            return;
        }
        auto topics = consumer_topics(ref.properties);
        auto consumer = wharf::service_cast<wharf::JobConsumer>(event);
        if (it == consumers.end()) {
            consumers.push_back({ref.id, ref.owner, consumer});
            candidates.push_back({ref.id, ref.ranking, topics});
        } else {
            auto index = static_cast<std::size_t>(it - consumers.begin());
            candidates[index] = {ref.id, ref.ranking, topics};
        }
        log->info("job consumer available service={} owner={} topics={}", ref.id, ref.owner,
                  topics.size());
        all_queues_may_have_work();
        dispatch_cv.notify_one();
    }

    void on_listener_event(const wharf::ServiceEvent& event) {
        std::lock_guard lock(listeners_mutex);
        auto id = event.reference->id;
        listeners.erase(std::remove_if(listeners.begin(), listeners.end(),
                                       [&](const auto& l) { return l.first == id; }),
                        listeners.end());
        if (event.type != wharf::ServiceEventType::removed)
            listeners.emplace_back(id, wharf::service_cast<wharf::JobListener>(event));
        listener_count.store(listeners.size(), std::memory_order_release);
    }

    // --- views -------------------------------------------------------------------------

    JobView view_locked(Job job) const {
        JobView v;
        auto it = running.find(job.id);
        if (it != running.end() && job.state == JobState::active) {
            const Run& run = *it->second;
            job.stuck = run.stuck;
            job.overdue = run.overdue;
            job.stop_requested = job.stop_requested || run.stop_reason() != StopReason::none;
            job.last_heartbeat = from_us(run.last_beat_us.load());
            std::int64_t done = run.progress_done.load();
            std::int64_t total = run.progress_total.load();
            if (total > 0 || done > 0) {
                job.progress_done = done;
                job.progress_total = total;
                if (done > 0 && total >= done) {
                    std::int64_t now = now_us();
                    double per_step = static_cast<double>(now - run.started_us) /
                                      static_cast<double>(done);
                    job.eta = from_us(now + static_cast<std::int64_t>(
                                                per_step * static_cast<double>(total - done)));
                }
            }
        }
        v.no_consumer = job.state == JobState::queued && !consumer_for(job.topic);
        auto q = queues.find(job.queue);
        v.queue_live = q != queues.end() && q->second.live;
        v.job = std::move(job);
        return v;
    }
};

// --- the context a consumer runs with ----------------------------------------------

namespace {

class RunContext final : public wharf::JobContext {
public:
    using Run = JobEngine::Core::Run;

    RunContext(JobEngine::Core& core, Run& run) : core_(core), run_(run) {
        last_flush_us_ = run.started_us;
        last_store_beat_us_ = run.started_us;
    }

    const Job& job() const override { return *run_.job; }
    const Ptree& payload() const override { return run_.job->payload; }

    void init_progress(std::int64_t total) override {
        std::lock_guard buffer(run_.buffer_mutex);
        run_.progress_total = std::max<std::int64_t>(0, total);
        run_.progress_done = 0;
        progress_dirty_ = true;
        beat();
        maybe_flush();
    }

    void increment_progress(std::int64_t steps) override {
        std::lock_guard buffer(run_.buffer_mutex);
        std::int64_t total = run_.progress_total.load();
        std::int64_t done = run_.progress_done.load() + std::max<std::int64_t>(0, steps);
        if (total > 0) done = std::min(done, total);
        run_.progress_done = done;
        progress_dirty_ = true;
        beat();
        maybe_flush();
    }

    void log(std::string_view line) override {
        std::lock_guard buffer(run_.buffer_mutex);
        logs_.emplace_back(line);
        beat();
        maybe_flush();
    }

    void report_row(std::vector<std::string> cells) override {
        std::lock_guard buffer(run_.buffer_mutex);
        rows_.push_back(std::move(cells));
        beat();
        maybe_flush();
    }

    void checkpoint(std::string_view key, std::string_view value) override {
        std::lock_guard buffer(run_.buffer_mutex);
        beat();
        flush();
        if (core_.closed.load()) throw std::runtime_error("job engine is shut down");
        std::string k(key), v(value);
        if (!core_.store.put_checkpoint(run_.job->id, k, v))
            throw std::runtime_error("job " + std::to_string(run_.job->id) + " no longer exists");
        last_store_beat_us_ = now_us();
        if (checkpoints_) (*checkpoints_)[k] = v;
    }

    std::optional<std::string> checkpoint(std::string_view key) const override {
        if (!checkpoints_) checkpoints_ = core_.store.checkpoints(run_.job->id);
        auto it = checkpoints_->find(std::string(key));
        if (it == checkpoints_->end()) return std::nullopt;
        return it->second;
    }

    bool is_stopped() const override { return run_.stop_reason() != StopReason::none; }

    void attach_result(const std::filesystem::path& file, std::string_view download_name,
                       std::string_view content_type) override {
        auto next = check_result_file(file, download_name, content_type, run_.job->id);
        auto previous = checkpoint(kResultCheckpoint);
        checkpoint(kResultCheckpoint, encode_result_file(next));
        core_.result_roots->add(next);
        if (previous) {
            auto old = decode_result_file(*previous);
            // Same directory (the job's own): only the old file goes.
            if (old && old->path != next.path) {
                std::error_code ec;
                std::filesystem::remove(old->path, ec);
            }
        }
    }

    // Writes what is buffered when it is older than flush_interval. The
    // caller holds run_.buffer_mutex.
    void flush_if_stale() {
        if (logs_.empty() && rows_.empty() && !progress_dirty_) return;
        if (now_us() - last_flush_us_ >= core_.options.flush_interval.count() * 1000) flush();
    }

    // Writes what is buffered. Called at the end of the run too. The caller
    // holds run_.buffer_mutex.
    void flush(bool final = false) {
        if (core_.closed.load()) return;
        JobId id = run_.job->id;
        bool wrote = false;
        if (!logs_.empty()) {
            core_.store.append_log(id, logs_);
            logs_.clear();
            wrote = true;
        }
        if (!rows_.empty()) {
            core_.store.append_report_rows(id, rows_);
            rows_.clear();
            wrote = true;
        }
        if (progress_dirty_) {
            core_.store.record_progress(id, run_.progress_done.load(),
                                        run_.progress_total.load());
            progress_dirty_ = false;
            wrote = true;
        }
        std::int64_t now = now_us();
        if (!wrote && !final && run_.last_beat_us.load() > last_store_beat_us_) {
            core_.store.heartbeat(id);
            wrote = true;
        }
        if (wrote) last_store_beat_us_ = now;
        last_flush_us_ = now;
    }

private:
    void beat() { run_.last_beat_us = now_us(); }

    void maybe_flush() {
        // Heartbeats and buffered lines reach the store at most once per
        // flush_interval, so a consumer that reports every item does not
        // turn into one transaction per item.
        if (logs_.size() >= 256 || rows_.size() >= 256 ||
            now_us() - last_flush_us_ >= core_.options.flush_interval.count() * 1000)
            flush();
    }

    JobEngine::Core& core_;
    Run& run_;
    std::vector<std::string> logs_;
    std::vector<std::vector<std::string>> rows_;
    bool progress_dirty_ = false;
    std::int64_t last_flush_us_ = 0;
    std::int64_t last_store_beat_us_ = 0;
    mutable std::optional<std::map<std::string, std::string>> checkpoints_;
};

}  // namespace

JobCompletion JobEngine::Core::execute(const std::shared_ptr<Run>& run) {
    RunContext context(*this, *run);
    {
        std::lock_guard buffer(run->buffer_mutex);
        run->flush_stale = [&context] { context.flush_if_stale(); };
    }
    JobResult result;
    try {
        result = run->consumer.consumer->process(context);
    } catch (const std::exception& e) {
        result = JobResult::error(std::string("consumer threw: ") + e.what());
        log->error("job consumer threw id={} topic={} owner={} error={}", run->job->id,
                   run->job->topic, run->consumer.owner, e.what());
    } catch (...) {
        result = JobResult::error("consumer threw a non-standard exception");
        log->error("job consumer threw id={} topic={} owner={}", run->job->id, run->job->topic,
                   run->consumer.owner);
    }
    try {
        std::lock_guard buffer(run->buffer_mutex);
        run->flush_stale = nullptr;
        context.flush(true);
    } catch (const std::exception& e) {
        log->warn("job log or progress not written at the end of the run id={} error={}",
                  run->job->id, e.what());
    }
    JobCompletion c;
    c.id = run->job->id;
    StopReason why = run->stop_reason();
    if (why == StopReason::user) {
        c.outcome = JobOutcome::stopped;
        c.message = result.message.empty() ? "stopped on request" : result.message;
    } else if (why != StopReason::none && result.outcome != JobResult::Outcome::succeeded) {
        c.outcome = JobOutcome::requeued;
        c.message = why == StopReason::drain
                        ? "requeued: its plugin was replaced or removed (drain_timeout passed)"
                        : "requeued: the host shut down while it ran";
    } else {
        c.message = std::move(result.message);
        switch (result.outcome) {
            case JobResult::Outcome::succeeded:
                c.outcome = JobOutcome::succeeded;
                break;
            case JobResult::Outcome::error:
                c.outcome = JobOutcome::error;
                break;
            case JobResult::Outcome::failed: {
                c.outcome = JobOutcome::failed;
                std::shared_ptr<const wharf::QueueSettings> settings = run->settings;
                {
                    std::lock_guard lock(mutex);
                    auto it = queues.find(run->queue);
                    if (it != queues.end() && it->second.live && it->second.settings)
                        settings = it->second.settings;
                }
                auto delay = result.retry_delay
                                 ? *result.retry_delay
                                 : settings->delay_before_retry(
                                       static_cast<unsigned>(run->job->retry_count + 1));
                c.retry_at = SystemClock::now() + delay;
                break;
            }
        }
    }
    c.discard = c.outcome == JobOutcome::succeeded && run->settings && !run->settings->keep_jobs;
    return c;
}

// --- the JobManager service ------------------------------------------------------------

namespace {

// Translates the host's errors into the SDK's (std::invalid_argument for bad
// input), so plugins need no host header.
class ManagerService final : public wharf::JobManager {
public:
    explicit ManagerService(JobEngine& engine) : engine_(engine) {}

    Job enqueue(std::string_view topic, Ptree payload,
                const wharf::EnqueueOptions& options) override {
        try {
            return engine_.enqueue(topic, std::move(payload), options);
        } catch (const Error& e) {
            if (e.code() == ErrorCode::invalid_argument) throw std::invalid_argument(e.what());
            throw std::runtime_error(e.what());
        }
    }
    std::optional<Job> find(JobId id) const override {
        auto v = engine_.find(id);
        if (!v) return std::nullopt;
        return std::move(v->job);
    }
    JobActionResult stop(JobId id) override { return engine_.stop_job(id); }
    JobActionResult remove(JobId id) override { return engine_.remove_job(id); }
    JobPage list(const JobFilter& filter) const override {
        auto page = engine_.list(filter);
        JobPage out;
        out.next_cursor = page.next_cursor;
        for (auto& v : page.jobs) out.jobs.push_back(std::move(v.job));
        return out;
    }

private:
    JobEngine& engine_;
};

class PurgeConsumer final : public wharf::JobConsumer {
public:
    PurgeConsumer(JobStore& store, std::shared_ptr<JobEngine::Core::ResultRoots> roots)
        : store_(store), roots_(std::move(roots)) {}

    JobResult process(wharf::JobContext& context) override {
        const auto& p = context.payload();
        auto days = p.get<std::int64_t>("threshold_days", 1);
        auto max_jobs = p.get<std::int64_t>("max_jobs", 10000);
        auto batch = p.get<std::size_t>("batch_size", 500);
        PurgeRequest request;
        request.finished_before = SystemClock::now() - std::chrono::hours(24) * days;
        request.max_keep = static_cast<std::size_t>(std::max<std::int64_t>(0, max_jobs));
        request.batch_size = batch;
        auto result = store_.purge(request);
        if (result.removed > 0) remove_orphaned_results();
        std::string message = "removed " + std::to_string(result.removed) +
                              " finished jobs in " + std::to_string(result.batches) +
                              " batches (threshold_days=" + std::to_string(days) +
                              ", max_jobs=" + std::to_string(max_jobs) + ")";
        context.log(message);
        return JobResult::succeeded(message);
    }

private:
    // Result directories (`<root>/<job id>/`) whose job is gone.
    void remove_orphaned_results() {
        std::vector<std::filesystem::path> roots;
        {
            std::lock_guard lock(roots_->mutex);
            roots.assign(roots_->roots.begin(), roots_->roots.end());
        }
        for (const auto& root : roots) {
            std::error_code ec;
            for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
                const auto name = entry.path().filename().string();
                if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos)
                    continue;
                JobId id = 0;
                try {
                    id = std::stoll(name);
                } catch (const std::exception&) {
                    continue;
                }
                if (!store_.find(id)) {
                    std::error_code rm;
                    std::filesystem::remove_all(entry.path(), rm);
                }
            }
        }
    }

    JobStore& store_;
    std::shared_ptr<JobEngine::Core::ResultRoots> roots_;
};

}  // namespace

// --- JobEngine ---------------------------------------------------------------------------

JobEngine::JobEngine(ServiceRegistryImpl& registry, JobStore& store, JobEngineOptions options)
    : core_(std::make_shared<Core>(registry, store, std::move(options))) {}

JobEngine::~JobEngine() { stop(); }

void JobEngine::start() {
    auto& c = *core_;
    {
        std::lock_guard lock(c.mutex);
        if (c.started) return;
        c.started = true;
        if (!c.queues.count(kDefaultQueueName) || !c.queues[kDefaultQueueName].live)
            c.use_builtin_default_locked();
    }
    auto recovered =
        c.store.requeue_active(c.options.recover_every_worker ? std::string{} : c.options.worker);
    std::size_t requeued = 0, given_up = 0, stopped = 0;
    for (const auto& job : recovered) {
        if (job.state == JobState::queued) ++requeued;
        if (job.state == JobState::given_up) ++given_up;
        if (job.state == JobState::stopped) ++stopped;
    }
    if (!recovered.empty()) {
        c.log->warn(
            "jobs that were active when the host ended recovered requeued={} given_up={} "
            "stopped={}",
            requeued, given_up, stopped);
    }
    {
        auto groups = c.store.waiting_groups();
        JobFilter failed;
        failed.states = {JobState::failed};
        failed.limit = 1000;
        auto retrying = c.store.list(failed);
        std::lock_guard lock(c.mutex);
        for (const auto& g : groups) c.queue_state(g.queue).topics.insert(g.topic);
        for (const auto& job : retrying.jobs) {
            auto& q = c.queue_state(job.queue);
            if (!q.held_by || job.id < *q.held_by) q.held_by = job.id;
        }
        c.reroute_needed = true;
    }
    c.event_thread = std::thread([&c] { c.event_loop(); });
    c.dispatcher_thread = std::thread([&c] { c.dispatcher_loop(); });
    c.timer_thread = std::thread([&c] { c.timer_loop(); });

    Owner host{"host", 0};
    c.listener_tracker = c.registry.track(
        host, wharf::interfaces::kJobListener,
        [&c](const wharf::ServiceEvent& e) { c.on_listener_event(e); }, {});
    c.queue_tracker = c.registry.track(
        host, wharf::interfaces::kQueue, [&c](const wharf::ServiceEvent& e) { c.on_queue_event(e); },
        {});
    c.consumer_tracker = c.registry.track(
        host, wharf::interfaces::kJobConsumer,
        [&c](const wharf::ServiceEvent& e) { c.on_consumer_event(e); }, {});

    c.manager_service = std::make_shared<ManagerService>(*this);
    c.manager_registration = c.registry.register_service(
        host, nullptr, wharf::interfaces::kJobManager, c.manager_service, {}, 0);
    Properties purge_props;
    Ptree topics;
    topics.push_back({"", Ptree(kPurgeTopic)});
    purge_props.add_child(wharf::JobConsumer::kTopicsProperty, topics);
    c.purge_registration = c.registry.register_service(
        host, nullptr, wharf::interfaces::kJobConsumer,
        std::make_shared<PurgeConsumer>(c.store, c.result_roots), purge_props, 0);
    c.log->info("job engine started worker={} stop_grace_ms={} stuck_after_ms={} "
                "drain_timeout_ms={}",
                c.options.worker, c.options.stop_grace.count(), c.options.stuck_after.count(),
                c.options.drain_timeout.count());
}

void JobEngine::stop() {
    auto& c = *core_;
    std::size_t left = 0;
    {
        std::unique_lock lock(c.mutex);
        if (!c.started || c.stopped) return;
        c.stopping = true;
        std::int64_t now = now_us();
        for (auto& [id, run] : c.running) {
            int none = static_cast<int>(StopReason::none);
            if (run->stop.compare_exchange_strong(none, static_cast<int>(StopReason::shutdown)))
                run->stop_at_us = now;
        }
        c.idle_cv.wait_for(lock, c.options.shutdown_grace, [&] {
            return c.running.empty() && c.ended.empty() && c.put_back.empty();
        });
        left = c.running.size();
        c.dispatcher_exit = true;
        c.dispatch_cv.notify_all();
        c.company_cv.notify_all();
    }
    if (left > 0) {
        c.log->warn("job engine stopping with runs still in plugin code count={}; they stay "
                    "active in the store and are recovered at the next start",
                    left);
    }
    if (c.manager_registration) c.manager_registration->unregister();
    if (c.purge_registration) c.purge_registration->unregister();
    if (c.dispatcher_thread.joinable()) c.dispatcher_thread.join();
    {
        std::lock_guard lock(c.mutex);
        c.timer_exit = true;
        c.workers_exit = true;
    }
    c.timer_cv.notify_all();
    c.task_cv.notify_all();
    c.company_cv.notify_all();
    if (c.timer_thread.joinable()) c.timer_thread.join();
    for (auto& tracker : {c.queue_tracker.get(), c.consumer_tracker.get()})
        if (tracker) tracker->close();
    std::vector<std::shared_ptr<Core::WorkerThread>> workers;
    {
        std::lock_guard lock(c.mutex);
        workers = c.workers;
    }
    for (auto& w : workers) {
        bool busy;
        {
            std::lock_guard lock(c.mutex);
            busy = w->busy;
        }
        // A thread still inside plugin code cannot be joined; it keeps the
        // engine's state alive (shared ownership) and writes nothing more.
        if (busy) {
            w->thread.detach();
        } else {
            w->thread.join();
        }
    }
    c.closed = true;
    {
        std::lock_guard lock(c.event_mutex);
        c.events_exit = true;
    }
    c.event_cv.notify_all();
    if (c.event_thread.joinable()) c.event_thread.join();
    if (c.listener_tracker) c.listener_tracker->close();
    {
        std::lock_guard lock(c.mutex);
        c.stopped = true;
    }
    c.log->info("job engine stopped");
}

std::shared_ptr<wharf::JobManager> JobEngine::manager() {
    std::lock_guard lock(core_->mutex);
    if (!core_->manager_service) core_->manager_service = std::make_shared<ManagerService>(*this);
    return core_->manager_service;
}

void JobEngine::set_purge(const PurgeSettings& settings) {
    auto& c = *core_;
    if (settings.enabled) {
        Ptree payload;
        payload.put("threshold_days", settings.threshold_days);
        payload.put("max_jobs", settings.max_jobs);
        payload.put("batch_size", settings.batch_size);
        wharf::EnqueueOptions options;
        options.user = "system";
        options.cron = settings.schedule;
        options.schedule_name = kPurgeScheduleName;
        auto job = enqueue(kPurgeTopic, std::move(payload), options);
        c.log->info("purge job scheduled schedule=\"{}\" threshold_days={} max_jobs={} next={}",
                    settings.schedule, settings.threshold_days, settings.max_jobs,
                    job.scheduled ? std::chrono::duration_cast<std::chrono::seconds>(
                                        job.scheduled->time_since_epoch())
                                        .count()
                                  : 0);
    } else if (auto job = c.store.find_schedule(kPurgeScheduleName)) {
        c.store.remove(job->id);
        c.log->info("purge job unscheduled (purge.yaml: enabled is false)");
    }
}

Job JobEngine::enqueue(std::string_view topic, Ptree payload,
                       const wharf::EnqueueOptions& options) {
    auto& c = *core_;
    if (!is_valid_job_topic(topic)) {
        throw Error(ErrorCode::invalid_argument,
                    "invalid job topic '" + std::string(topic) +
                        "': use tokens of letters, digits, '_' and '-' separated by '/'");
    }
    if (options.at && !options.cron.empty())
        throw Error(ErrorCode::invalid_argument, "give either a time or a cron expression");
    if (options.at && *options.at <= SystemClock::now())
        throw Error(ErrorCode::invalid_argument, "the time to run the job is in the past");
    NewJob job;
    job.topic = std::string(topic);
    job.payload = std::move(payload);
    job.submitted_by = options.user;
    job.scheduled_at = options.at;
    job.cron = options.cron;
    job.schedule_name = options.schedule_name;
    {
        std::lock_guard lock(c.mutex);
        job.queue = c.route_locked(topic);
        auto it = c.queues.find(job.queue);
        std::int64_t retries =
            it != c.queues.end() && it->second.settings ? it->second.settings->retries : 10;
        job.max_retries = static_cast<std::int32_t>(
            std::clamp<std::int64_t>(retries, -1, std::numeric_limits<std::int32_t>::max()));
    }
    std::shared_lock<std::shared_mutex> announce(c.announce_mutex, std::defer_lock);
    if (c.listener_count.load() > 0) announce.lock();
    Job stored;
    try {
        stored = c.store.insert(job);
    } catch (const CronSyntaxError& e) {
        throw Error(ErrorCode::invalid_argument,
                    "invalid cron expression '" + job.cron + "' at column " +
                        std::to_string(e.column() + 1) + ": " + e.reason());
    }
    {
        std::lock_guard lock(c.mutex);
        if (stored.state == JobState::queued) {
            auto& q = c.queue_state(stored.queue);
            c.work_arrived(q, stored.topic);
            if (c.may_start_now_locked(q, stored.topic)) c.dispatch_cv.notify_one();
        } else {
            c.timer_wake = true;
            c.timer_cv.notify_one();
        }
        c.publish(wharf::JobEventType::added, stored);
    }
    return stored;
}

JobActionResult JobEngine::stop_job(JobId id) {
    auto& c = *core_;
    // Flags the run here, if there is one; true when this call flagged it.
    auto flag_running = [&] {
        auto it = c.running.find(id);
        if (it == c.running.end()) return false;
        auto& run = *it->second;
        if (run.stop_reason() == StopReason::user) return false;
        run.stop = static_cast<int>(StopReason::user);
        if (!run.stop_at_us) run.stop_at_us = now_us();
        return true;
    };
    bool flagged_here = false;
    {
        std::lock_guard lock(c.mutex);
        c.stop_requests.insert(id);
        flagged_here = flag_running();
    }
    auto result = c.store.request_stop(id);
    if (!result && result.status == wharf::JobActionResult::Status::refused && flagged_here) {
        // The run, flagged above, saw the flag and ended before the store was
        // asked: this request stopped it.
        if (auto ended = c.store.find(id); ended && ended->state == JobState::stopped) {
            c.log->info("job stop requested id={} topic={}: stopped", id, ended->topic);
            return {};
        }
    }
    auto job = result ? c.store.find(id) : std::nullopt;
    std::lock_guard lock(c.mutex);
    if (job && job->state == JobState::active) {
        flag_running();  // claimed while the request was on its way
        c.log->info("job stop requested id={} topic={}", id, job->topic);
        return result;
    }
    if (!c.running.count(id)) c.stop_requests.erase(id);
    if (job && job->state == JobState::stopped) {
        c.log->info("job stopped before it ran id={} topic={}", id, job->topic);
        c.publish(wharf::JobEventType::stopped, *job);
    }
    return result;
}

JobActionResult JobEngine::remove_job(JobId id) {
    auto& c = *core_;
    auto job = c.store.find(id);
    std::optional<ResultFile> result_file;
    if (job) {
        auto checkpoints = c.store.checkpoints(id);
        if (auto it = checkpoints.find(kResultCheckpoint); it != checkpoints.end())
            result_file = decode_result_file(it->second);
    }
    auto result = c.store.remove(id);
    if (result && result_file) {
        c.result_roots->add(*result_file);
        remove_result_file(*result_file, id);
    }
    if (result && job) {
        c.log->info("job removed id={} topic={} state={}", id, job->topic, to_string(job->state));
        std::lock_guard lock(c.mutex);
        c.publish(wharf::JobEventType::removed, *job);
    }
    return result;
}

std::optional<JobView> JobEngine::find(JobId id) const {
    auto job = core_->store.find(id);
    if (!job) return std::nullopt;
    std::lock_guard lock(core_->mutex);
    return core_->view_locked(std::move(*job));
}

JobViewPage JobEngine::list(const JobFilter& filter) const {
    auto page = core_->store.list(filter);
    JobViewPage out;
    out.next_cursor = page.next_cursor;
    out.jobs.reserve(page.jobs.size());
    std::lock_guard lock(core_->mutex);
    for (auto& job : page.jobs) out.jobs.push_back(core_->view_locked(std::move(job)));
    return out;
}

std::vector<QueueView> JobEngine::queues() const {
    std::lock_guard lock(core_->mutex);
    std::map<std::string, unsigned> stuck;
    for (const auto& [id, run] : core_->running)
        if (run->stuck) ++stuck[run->queue];
    std::vector<QueueView> out;
    for (const auto& [name, q] : core_->queues) {
        if (!q.live && q.active == 0) continue;
        QueueView v;
        v.name = name;
        v.settings = q.settings;
        v.live = q.live;
        v.running = q.active;
        v.overdue = q.overdue;
        if (auto it = stuck.find(name); it != stuck.end()) v.stuck = it->second;
        if (q.settings && q.settings->type == wharf::QueueType::ordered) v.held_by_retry = q.held_by;
        for (const auto& t : q.topics)
            if (!core_->consumer_for(t)) v.topics_without_consumer.push_back(t);
        out.push_back(std::move(v));
    }
    return out;
}

std::vector<JobStatistics> JobEngine::statistics(StatisticsGroup group) const {
    return core_->store.statistics(group);
}

std::vector<JobLogLine> JobEngine::log(JobId id, std::int64_t after_seq, std::size_t limit) const {
    return core_->store.log(id, after_seq, limit);
}

std::vector<std::vector<std::string>> JobEngine::report(JobId id, std::int64_t offset,
                                                        std::size_t limit) const {
    return core_->store.report(id, offset, limit);
}

std::string JobEngine::route(std::string_view topic) const {
    std::lock_guard lock(core_->mutex);
    return core_->route_locked(topic);
}

std::size_t JobEngine::running_jobs() const {
    auto& c = *core_;
    std::lock_guard lock(c.mutex);
    return c.running.size();
}

void JobEngine::work_queued_elsewhere(const std::string& queue, const std::string& topic) {
    auto& c = *core_;
    std::lock_guard lock(c.mutex);
    if (!c.started || c.stopping) return;
    c.work_arrived(c.queue_state(queue), topic);
    c.dispatch_cv.notify_one();
}

void JobEngine::stop_requested_elsewhere(JobId id) {
    auto& c = *core_;
    std::lock_guard lock(c.mutex);
    auto it = c.running.find(id);
    if (it == c.running.end()) return;
    auto& run = *it->second;
    if (run.stop_reason() == StopReason::user) return;
    c.stop_requests.insert(id);
    run.stop = static_cast<int>(StopReason::user);
    if (!run.stop_at_us) run.stop_at_us = now_us();
    c.log->info("job stop requested through another instance id={} topic={}", id,
                run.job->topic);
}

JobEngineCounters JobEngine::counters() const {
    auto& c = *core_;
    return {c.n_started.load(), c.n_ended.load(), c.n_exchanges.load(), c.n_overdue.load(),
            c.n_stuck.load(),   c.n_requeued.load(), c.n_moved.load()};
}

}  // namespace wharf::host
