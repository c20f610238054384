#!/usr/bin/env bash
# Fails when a file includes a header from a layer above its own: core/ may include only
# core/; transports/ may include core/ and transports/; shards/ anything but tests/.
set -u
top=${1:-.}
cd "$top" || exit 2
bad=0
check() { # folder, forbidden include prefixes...
    local dir=$1; shift
    for prefix in "$@"; do
        hits=$(grep -rn --include='*.[ch]' -E "^#include \"$prefix/" "$dir" 2>/dev/null)
        if [ -n "$hits" ]; then
            echo "layer violation: $dir/ must not include $prefix/:"; echo "$hits"; bad=1
        fi
    done
}
check core transports shards tests tools
check transports shards tests tools
check shards tests tools
if [ $bad -eq 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit $bad
