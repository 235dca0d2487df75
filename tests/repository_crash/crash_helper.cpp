// A child process for the repository crash tests: it runs one large batched
// change, recording its progress as a checkpoint in each batch, and is
// SIGKILLed by the test somewhere in the middle. Run again, it resumes from
// the committed checkpoint, as an operation job would.
//
//   wharf_repo_crash_helper create DATA_DIR COUNT BATCH
//       creates COUNT assets under /content/dam/crash, BATCH per transaction;
//       checkpoint "crash/create" = assets committed
//   wharf_repo_crash_helper move DATA_DIR BATCH
//       moves /content/dam/gen to /content/dam/moved (checkpoint "crash/moved"),
//       then rewrites every reference to the old paths, BATCH referrers per
//       transaction (a pause per referrer keeps the job long enough to kill)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <set>
#include <string>
#include <thread>

#include "repository/sqlite_repository.hpp"

using namespace wharf;

namespace {

std::string padded(std::uint64_t n) {
    auto s = std::to_string(n);
    return std::string(8 - std::min<std::size_t>(8, s.size()), '0') + s;
}

int create(const std::string& data_dir, std::uint64_t count, std::size_t batch) {
    auto repo = host::SqliteRepository::open(data_dir);
    auto done = std::stoull(repo->checkpoint("crash/create").value_or("0"));
    auto session = repo->open_session({batch});
    session->create_folders("/content/dam/crash");
    session->commit();
    std::printf("resuming at %llu\n", static_cast<unsigned long long>(done));
    std::fflush(stdout);
    for (std::uint64_t i = done; i < count; ++i) {
        auto writer = repo->write_binary();
        auto bytes = "crash asset " + std::to_string(i);
        writer->write(bytes.data(), bytes.size());
        Node asset;
        asset.path = "/content/dam/crash/a" + padded(i);
        asset.kind = NodeKind::asset;
        asset.binary = writer->finish("text/plain");
        asset.properties["index"] = Property::long_(static_cast<std::int64_t>(i));
        asset.properties["self"] = Property::path(asset.path);
        session->create(asset);
        // Commits with the batch it describes: always the number of assets committed.
        session->set_checkpoint("crash/create", std::to_string(i + 1));
    }
    session->set_checkpoint("crash/create", std::to_string(count));
    session->commit();
    std::printf("done\n");
    return 0;
}

int move(const std::string& data_dir, std::size_t batch) {
    const std::string from = "/content/dam/gen", to = "/content/dam/moved";
    auto repo = host::SqliteRepository::open(data_dir);
    auto session = repo->open_session({batch});
    if (!repo->checkpoint("crash/moved")) {
        session->move(from, to);
        session->set_checkpoint("crash/moved", "1");
        session->commit();
    }
    std::printf("moved\n");
    std::fflush(stdout);
    // The index still holds the old paths for every reference not yet
    // rewritten, so resuming is just asking again.
    std::set<std::string> referrers;  // rows come in to_path order: one node may repeat
    repo->referrers_under(from, false, [&](const Reference& r) {
        referrers.insert(r.from_path);
        return true;
    });
    std::uint64_t n = 0;
    for (const auto& referrer : referrers) {
        session->rewrite_references(referrer, from, to);
        session->set_checkpoint("crash/rewritten", std::to_string(++n));
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    session->commit();
    std::printf("done\n");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        std::string mode = argc > 1 ? argv[1] : "";
        if (mode == "create" && argc == 5)
            return create(argv[2], std::stoull(argv[3]), std::stoull(argv[4]));
        if (mode == "move" && argc == 4) return move(argv[2], std::stoull(argv[3]));
        std::fprintf(stderr, "usage: %s create DATA_DIR COUNT BATCH | move DATA_DIR BATCH\n",
                     argv[0]);
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wharf_repo_crash_helper: %s\n", e.what());
        return 1;
    }
}
