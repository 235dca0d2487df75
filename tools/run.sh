#!/usr/bin/env bash
# Installs what Wharf needs, builds Release into build/, and starts
#   wharfd --config configs/
# on the embedded defaults (data under the data_dir named in configs/wharf.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."

tools/deps.sh build

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DWHARF_BUILD_TESTS=OFF -DWHARF_BUILD_BENCH=OFF
cmake --build build --parallel "$(nproc)"

data_dir=$(sed -n 's/^data_dir:[[:space:]]*//p' configs/wharf.yaml)
echo "wharf: data in $(realpath -m "configs/${data_dir:-../var}")"
echo "wharf: plugins from $(realpath -m "configs/$(sed -n 's/^plugins_dir:[[:space:]]*//p' configs/wharf.yaml)")"
echo "wharf: stop with Ctrl-C"
exec build/host/wharfd --config configs/
