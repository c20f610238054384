#!/usr/bin/env bash
# Fails when clang-format (the repository's .clang-format) would change a C file.
set -u
top=${1:-.}
cd "$top" || exit 2
files=$(find core shards transports tests tools -name '*.[ch]' -not -path '*/corpus/*' | sort)
out=$(clang-format --dry-run --Werror $files 2>&1)
if [ -n "$out" ]; then
    echo "$out" | head -40
    echo "run: clang-format -i \$(find core shards transports tests tools -name '*.[ch]')"
    echo "0 passed, 1 failed"
    exit 1
fi
echo "1 passed, 0 failed"
