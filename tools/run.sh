#!/usr/bin/env bash
# Installs what Wharf needs, builds Release into build/, and starts
#   wharfd --config configs/
# on the embedded defaults (data under the data_dir named in configs/wharf.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."

tools/deps.sh build

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DWHARF_BUILD_TESTS=OFF -DWHARF_BUILD_BENCH=OFF
cmake --build build --parallel "$(nproc)"

data_dir=$(realpath -m "configs/$(sed -n 's/^data_dir:[[:space:]]*//p' configs/wharf.yaml)")
listen=$(sed -n 's/^listen:[[:space:]]*//p' configs/wharf.yaml)

# First run: a local admin for the API and dashboard. Only the token's SHA-256
# goes into configs/users.yaml; the token itself is printed once, here.
if ! grep -q '^  - name: local-admin$' configs/users.yaml; then
  token=$(openssl rand -hex 32)
  hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
  sed -i 's/^users: \[\]$/users:/' configs/users.yaml
  printf '  - name: local-admin\n    role: admin\n    token_sha256: %s\n' "$hash" >> configs/users.yaml
  echo "wharf: created the local admin user in configs/users.yaml; its token (shown once):"
  echo "       $token"
  echo "       dashboard: http://$listen/ (log in with the token)"
  echo "       e.g. export WHARF_SERVER=http://$listen WHARF_TOKEN=$token"
fi

# First run on an empty data directory: a demo repository to try the
# operations on (3,000 assets in /content/dam/gen, 300 pages with references
# in /content/gen/en, and its live copies /content/gen/lc0 and lc1).
if [ ! -e "$data_dir/repository/repository.db" ]; then
  echo "wharf: empty data directory: seeding a demo repository (a few seconds)"
  build/tools/wharf/wharf repo generate --config configs \
    --assets 3000 --pages 300 --refs-per-page 8 --live-copies 2
fi

echo "wharf: data in $data_dir"
echo "wharf: plugins from $(realpath -m "configs/$(sed -n 's/^plugins_dir:[[:space:]]*//p' configs/wharf.yaml)")"
echo "wharf: dashboard at http://$listen/, API at http://$listen/api (build/tools/wharf/wharf is the CLI)"
echo "wharf: stop with Ctrl-C"
exec build/host/wharfd --config configs/
