#!/usr/bin/env bash
# Builds Release into build-bench/ (benchmarks on, tests off) and runs every
# benchmark program, tools/bench/bench_*, printing each one's Markdown tables,
# then one report table of the figures the issues set goals for: metric,
# Wharf, floor/peer (measured in the same run), ratio, goal, met or not.
# The programs give those rows as "@summary|metric|wharf|peer|ratio|goal|met"
# lines on stdout (wharf::bench::summary in tools/bench/bench_util.hpp); they
# are kept out of the per-program output and gathered at the end. A program
# that fails still lets the others run; it shows in the report as "failed".
# Each program's full output is kept in build-bench/bench-output/<name>.out.
# Exits non-zero if the build or any benchmark fails (after running the rest).
#   tools/bench.sh                  all benchmarks
#   JOBS=2 tools/bench.sh           limit build parallelism (default: number of cores)
#   tools/bench.sh --table FILE...  only print the report table from saved outputs
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

# The header line of the report: when, what and on which machine.
machine_line() {
  local cpu load
  cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1)
  load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || true)
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)," \
    "$(nproc) cores (${cpu:-unknown CPU}), $(uname -sr), load average ${load:-unknown}, Release"
}

# The report table from the @summary lines of the given output files.
report_table() {
  echo "## Summary"
  echo
  echo "$(machine_line)"
  echo
  echo "| metric | Wharf | floor / peer | ratio | goal | met |"
  echo "|---|---:|---:|---:|---|---|"
  # A field's own '|' arrives escaped as '\|' and stays so (a Markdown cell
  # needs it); only the bare '|' separate fields.
  cat -- "$@" | awk '
    index($0, "@summary|") == 1 {
      line = substr($0, 10)
      gsub(/\\\|/, "\001", line)
      n = split(line, f, "|")
      for (i = 1; i <= 6; i++) { v = (i <= n) ? f[i] : ""; gsub(/\001/, "\\|", v); f[i] = v }
      gsub(/  +/, " ", f[1])
      if (f[6] == "not met" || f[6] == "failed") f[6] = "**" f[6] "**"
      printf "| %s | %s | %s | %s | %s | %s |\n", f[1], f[2], f[3], f[4], f[5], f[6]
      rows++
    }
    END { if (!rows) print "| (no figures) | | | | | |" }'
}

if [ "${1:-}" = "--table" ]; then
  shift
  report_table "$@"
  exit 0
fi
cd "$repo"

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

outputs="$build/bench-output"
rm -rf "$outputs"
mkdir -p "$outputs"

echo "Wharf benchmarks: $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores," \
  "$(uname -sr), Release"
status=0
found=0
# Plugins and other outputs live in subfolders or end in .so; benchmarks are the
# executables directly in the folder.
while IFS= read -r -d '' bench; do
  found=1
  name=$(basename "$bench")
  out="$outputs/$name.out"
  echo
  echo "## $name"
  echo
  # The whole output goes to $out; what is shown is all but the @summary lines.
  set +e
  "$bench" | tee "$out" | { grep -v '^@summary|' || true; }
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    echo "tools/bench.sh: $name failed (exit $rc)" >&2
    echo "@summary|$name: failed (exit $rc); figures above this row, if any, are from before the failure|failed||||failed" >>"$out"
    status=1
  fi
done < <(find "$build/tools/bench" -maxdepth 1 -type f -name 'bench_*' ! -name '*.so' \
           -perm -u+x -print0 | sort -z)
if [ "$found" -eq 0 ]; then
  echo "tools/bench.sh: no bench_* programs in $build/tools/bench" >&2
  exit 1
fi
echo
report_table "$outputs"/*.out
exit "$status"
