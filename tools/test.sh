#!/usr/bin/env bash
# Installs what the tests need, builds everything with tests from scratch in
# build-test/, and runs the whole suite. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/deps.sh test

build=build-test
rm -rf "$build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DWHARF_BUILD_TESTS=ON -DWHARF_BUILD_BENCH=ON -DWHARF_WERROR=ON
cmake --build "$build" --parallel "$(nproc)"
ctest --test-dir "$build" --output-on-failure --parallel "$(nproc)" --timeout 300
