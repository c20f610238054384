#!/usr/bin/env bash
# tools/setup.sh - installs what a fresh Debian 12 machine lacks to build and test ringhub.
# Idempotent: packages already present are left alone, so a second run costs one dpkg query.
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config
    liburing-dev libwslay-dev libhiredis-dev libmsgpack-dev libssl-dev libinih-dev)
test_pkgs=(clang clang-format libclang-rt-14-dev libck-dev)

want=()
for p in "${build_pkgs[@]}" "${test_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || want+=("$p")
done

if [ ${#want[@]} -gt 0 ]; then
    echo "setup: installing ${want[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${want[@]}"
fi
