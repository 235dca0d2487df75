#!/usr/bin/env bash
# Builds Release into build-bench/ (benchmarks on, tests off) and runs every
# benchmark program, tools/bench/bench_*, printing each one's Markdown table.
# Exits non-zero if the build or any benchmark fails (after running the rest).
#   tools/bench.sh            all benchmarks
#   JOBS=2 tools/bench.sh     limit build parallelism (default: number of cores)
set -euo pipefail
cd "$(dirname "$0")/.."

tools/deps.sh build

build=build-bench
generator=()
# The generator is fixed when the build dir is first configured.
if [ ! -f "$build/CMakeCache.txt" ]; then generator=(-G Ninja); fi
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DWHARF_BUILD_TESTS=OFF -DWHARF_BUILD_BENCH=ON >/dev/null
# The build log is kept out of the tables; it is shown when the build fails.
echo "building Release in $build/ (log: $build/bench-build.log)" >&2
if ! cmake --build "$build" --parallel "${JOBS:-$(nproc)}" >"$build/bench-build.log" 2>&1; then
  cat "$build/bench-build.log" >&2
  echo "tools/bench.sh: build failed" >&2
  exit 1
fi

echo "Wharf benchmarks: $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores," \
  "$(uname -sr), Release"
status=0
found=0
# Plugins and other outputs live in subfolders or end in .so; benchmarks are the
# executables directly in the folder.
while IFS= read -r -d '' bench; do
  found=1
  echo
  echo "## $(basename "$bench")"
  echo
  if ! "$bench"; then
    echo "tools/bench.sh: $(basename "$bench") failed" >&2
    status=1
  fi
done < <(find "$build/tools/bench" -maxdepth 1 -type f -name 'bench_*' ! -name '*.so' \
           -perm -u+x -print0 | sort -z)
if [ "$found" -eq 0 ]; then
  echo "tools/bench.sh: no bench_* programs in $build/tools/bench" >&2
  exit 1
fi
exit "$status"
