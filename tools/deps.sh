#!/usr/bin/env bash
# Installs the Debian 12 packages Wharf needs, skipping what is installed.
#   tools/deps.sh build   -> compile and run wharfd
#   tools/deps.sh test    -> also what the tests need
# Runs `apt-get update` first, but only when something is missing.
set -euo pipefail

build_pkgs=(
  cmake ninja-build g++ pkg-config
  libboost-filesystem-dev libboost-dev
  libyaml-cpp-dev libsqlitecpp-dev libsqlite3-dev
  libspdlog-dev libfmt-dev
  libssl-dev libmagic-dev openssl
  libcli11-dev nlohmann-json3-dev libcpp-httplib-dev
  libcurl4-openssl-dev
  libcsv-dev
  libpqxx-dev
)
# prometheus: only for promtool, which checks /metrics in the tests.
# python3-aiosmtpd: a real SMTP server for the e-mail notification tests.
# chromium, chromium-driver, python3-selenium: the dashboard's browser tests;
# firefox-esr, libfirefox-marionette-perl: the same dashboard in Firefox
# (Debian 12 packages no geckodriver, so Firefox is driven over Marionette).
# postgresql: a throwaway server for the PostgreSQL job store tests.
test_pkgs=(catch2 prometheus python3-aiosmtpd chromium chromium-driver python3-selenium firefox-esr libfirefox-marionette-perl postgresql)

want=("${build_pkgs[@]}")
if [ "${1:-build}" = "test" ]; then want+=("${test_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

echo "tools/deps.sh: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
