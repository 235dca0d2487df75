// `wharf repo check|import|generate|gc`: offline work on a host's content
// repository, opened directly (a running wharfd may keep using it meanwhile:
// SQLite in WAL mode, PostgreSQL with its own transactions).
//
// The repository is found with --repository DIR (a SQLite repository's data
// directory), or from the host configured in --config DIR (default: configs):
// <data_dir>/repository, or with `store.backend: postgresql` the shared
// database at store.url with binaries in store.blob_dir.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "commands.hpp"
#include "config/host_settings.hpp"
#include "repository/generator.hpp"
#include "repository/importer.hpp"
#include "repository/pg_repository.hpp"
#include "repository/repository_check.hpp"
#include "repository/sqlite_repository.hpp"

namespace fs = std::filesystem;

namespace wharf::cli {
namespace {

struct RepoTarget {
    std::string repository;       // explicit repository data dir
    std::string config = "configs";  // else: <data_dir>/repository of this config
};

// The repository a target names: exactly one of the two is set.
struct OpenedRepository {
    std::shared_ptr<host::SqliteRepository> sqlite;
    std::shared_ptr<host::PgRepository> pg;

    wharf::Repository& operator*() const {
        return sqlite ? static_cast<wharf::Repository&>(*sqlite) : *pg;
    }
    host::RepositoryCheckReport check() const {
        return sqlite ? host::check_repository(*sqlite) : host::check_repository(*pg);
    }
    host::BlobGcStats collect_garbage(std::chrono::seconds grace) const {
        return sqlite ? sqlite->collect_garbage(grace) : pg->collect_garbage(grace);
    }
};

OpenedRepository open_repository(const RepoTarget& target) {
    OpenedRepository opened;
    if (!target.repository.empty()) {
        opened.sqlite = host::SqliteRepository::open(target.repository);
        return opened;
    }
    auto settings = host::load_host_settings(target.config);
    if (settings.store.backend == "postgresql") {
        host::PgRepositoryOptions options;
        options.url = settings.store.url;
        options.pool_size = 2;
        options.blob_dir = settings.store.blob_dir.empty()
                               ? settings.data_dir / "repository" / "blobs"
                               : settings.store.blob_dir;
        opened.pg = host::PgRepository::open(options);
    } else {
        opened.sqlite = host::SqliteRepository::open(settings.data_dir / "repository");
    }
    return opened;
}

void add_target_options(CLI::App& command, RepoTarget& target) {
    command.add_option("--repository", target.repository,
                       "a SQLite repository's data directory (default: the repository of the "
                       "host in --config: <data_dir>/repository, or its PostgreSQL store)");
    command.add_option("--config", target.config, "the host's configuration directory")
        ->capture_default_str();
}

// Runs `body`, turning any error into a message and exit code 1.
template <class Body>
void guarded(int& exit_code, const char* what, Body body) {
    try {
        exit_code = body();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wharf repo %s: %s\n", what, e.what());
        exit_code = 1;
    }
}

}  // namespace

void add_repo_commands(CLI::App& app, int& exit_code) {
    auto* repo = app.add_subcommand(
        "repo", "the content repository (opened directly: its data dir or PostgreSQL store)");
    repo->require_subcommand(1);

    // check
    static RepoTarget check_target;
    auto* check = repo->add_subcommand(
        "check", "verify the reference index, binaries and database; exit 1 on any error");
    add_target_options(*check, check_target);
    check->callback([&exit_code] {
        guarded(exit_code, "check", [] {
            auto repository = open_repository(check_target);
            auto report = repository.check();
            for (const auto& problem : report.problems)
                std::printf("%s\n", host::format(problem).c_str());
            if (report.problems_not_listed)
                std::printf("... and %llu more problems\n",
                            static_cast<unsigned long long>(report.problems_not_listed));
            std::printf("wharf repo check: %s: nodes=%llu references=%llu binaries=%llu "
                        "errors=%llu\n",
                        report.ok() ? "ok" : "FAILED",
                        static_cast<unsigned long long>(report.nodes),
                        static_cast<unsigned long long>(report.references),
                        static_cast<unsigned long long>(report.binaries),
                        static_cast<unsigned long long>(report.errors()));
            return report.ok() ? 0 : 1;
        });
    });

    // import
    static RepoTarget import_target;
    static std::string import_source, import_path;
    auto* import = repo->add_subcommand(
        "import", "import a local directory tree as folders and assets under PATH");
    import->add_option("DIR", import_source, "local directory")->required()->check(
        CLI::ExistingDirectory);
    import->add_option("PATH", import_path, "repository path, e.g. /content/dam/photos")
        ->required();
    add_target_options(*import, import_target);
    import->callback([&exit_code] {
        guarded(exit_code, "import", [] {
            auto repository = open_repository(import_target);
            auto stats = host::import_directory(*repository, import_source, import_path);
            std::printf("imported folders=%llu assets=%llu bytes=%llu skipped=%llu into %s\n",
                        static_cast<unsigned long long>(stats.folders),
                        static_cast<unsigned long long>(stats.assets),
                        static_cast<unsigned long long>(stats.bytes),
                        static_cast<unsigned long long>(stats.skipped), import_path.c_str());
            return 0;
        });
    });

    // generate
    static RepoTarget generate_target;
    static host::ContentGeneratorOptions generate;
    auto* gen = repo->add_subcommand(
        "generate", "make deterministic test content: assets, pages with references, live copies");
    add_target_options(*gen, generate_target);
    gen->add_option("--seed", generate.seed, "same seed, same repository")->capture_default_str();
    gen->add_option("--assets", generate.assets)->capture_default_str();
    gen->add_option("--assets-root", generate.assets_root)->capture_default_str();
    gen->add_option("--pages", generate.pages)->capture_default_str();
    gen->add_option("--pages-root", generate.pages_root)->capture_default_str();
    gen->add_option("--refs-per-page", generate.references_per_page)->capture_default_str();
    gen->add_option("--live-copies", generate.live_copies)->capture_default_str();
    gen->add_option("--live-root", generate.live_root)->capture_default_str();
    gen->callback([&exit_code] {
        guarded(exit_code, "generate", [] {
            auto start = std::chrono::steady_clock::now();
            auto repository = open_repository(generate_target);
            auto stats = host::generate_content(*repository, generate);
            double seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            std::printf("generated folders=%llu assets=%llu pages=%llu references=%llu "
                        "live_copies=%llu bytes=%llu seconds=%.2f\n",
                        static_cast<unsigned long long>(stats.folders),
                        static_cast<unsigned long long>(stats.assets),
                        static_cast<unsigned long long>(stats.pages),
                        static_cast<unsigned long long>(stats.references),
                        static_cast<unsigned long long>(stats.live_copies),
                        static_cast<unsigned long long>(stats.bytes), seconds);
            return 0;
        });
    });

    // gc
    static RepoTarget gc_target;
    static long gc_grace_seconds = 3600;
    auto* gc = repo->add_subcommand(
        "gc", "delete binaries no asset uses any more (older than the grace period)");
    add_target_options(*gc, gc_target);
    gc->add_option("--grace-seconds", gc_grace_seconds, "keep younger binaries (in-flight writes)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    gc->callback([&exit_code] {
        guarded(exit_code, "gc", [] {
            auto repository = open_repository(gc_target);
            auto stats = repository.collect_garbage(std::chrono::seconds(gc_grace_seconds));
            std::printf("gc binaries_seen=%llu removed=%llu bytes_removed=%llu "
                        "temporaries_removed=%llu\n",
                        static_cast<unsigned long long>(stats.binaries_seen),
                        static_cast<unsigned long long>(stats.binaries_removed),
                        static_cast<unsigned long long>(stats.bytes_removed),
                        static_cast<unsigned long long>(stats.temporaries_removed));
            return 0;
        });
    });
}

}  // namespace wharf::cli
