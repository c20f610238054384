#!/usr/bin/env bash
# tools/run.sh [ringhub flags...] - installs what is missing, builds, and runs ringhub in the
# foreground (default: 127.0.0.1:5000, one shard per CPU, no Redis). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target ringhub
exec build/shards/ringhub "$@"
