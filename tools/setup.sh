#!/usr/bin/env bash
# tools/setup.sh - installs what a fresh Debian 12 machine lacks to build and test ringhub.
# Idempotent: packages already present are left alone, so a second run costs one dpkg query.
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config
    liburing-dev libwslay-dev libhiredis-dev libmsgpack-dev libssl-dev libinih-dev)
# chromium: tests/browser drives Debian's headless Chromium (/usr/bin/chromium) with playwright-core
# (its fonts come with fontconfig's fonts-dejavu-core, enough for the test's screenshot).
# prometheus: its promtool checks /metrics in tests/node/metrics.test.mjs.
# redis-server, redis-tools, nginx: the multi-node tests (tests/node/cluster_helpers.mjs,
# tools/cluster.sh) start their own Redis, Redis Cluster and nginx on free ports as this user;
# services the packages may start on the default ports are left alone and never used.
test_pkgs=(clang clang-format libclang-rt-14-dev libck-dev chromium prometheus
    redis-server redis-tools nginx)

want=()
for p in "${build_pkgs[@]}" "${test_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || want+=("$p")
done

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
if [ ${#want[@]} -gt 0 ]; then
    echo "setup: installing ${want[*]}"
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${want[@]}"
fi

# Node tests use the official SignalR clients from npm, pinned in tests/node/package-lock.json.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "setup: installing nodejs and npm"
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq nodejs npm
fi
node_dir="$(dirname "$0")/../tests/node"
if [ ! -d "$node_dir/node_modules/@microsoft/signalr" ] ||
   [ "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]; then
    echo "setup: npm ci in tests/node"
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
