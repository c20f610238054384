#!/usr/bin/env bash
# tests/integration/bench_smoke.sh - ringhub-bench against a real ringhub on loopback: small,
# bounded runs of every scenario (JSON, MessagePack, mixed, with and without negotiate) must
# each exit 0 and print a JSON line saying nothing was lost, duplicated or failed; then ringhub
# must stop on SIGTERM with exit status 0, which it gives only when it freed everything.
# Speed is never asserted. Exit codes: 0 pass, 1 fail, 77 skip (no io_uring for the bench).
#
# Usage: bench_smoke.sh RINGHUB RINGHUB_BENCH
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 RINGHUB RINGHUB_BENCH" >&2
    exit 2
fi
ringhub=$1
bench=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench_smoke.XXXXXX") || exit 1
pid=
drain=
passed=0
failed=0

# On any exit: the server, if still running, is killed and reaped; its log goes to stderr.
cleanup() {
    if [ -n "$pid" ] && ! has_exited; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    [ -n "$drain" ] && wait "$drain" 2>/dev/null
    if [ "$failed" -ne 0 ] && [ -s "$tmp/server.log" ]; then
        echo "--- ringhub stderr ---" >&2
        cat "$tmp/server.log" >&2
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
    echo "FAIL: $*" >&2
    failed=$((failed + 1))
    echo "$passed passed, $failed failed"
    exit 1
}

# True once the server has exited (a zombie counts: it is reaped by wait).
has_exited() {
    [ ! -e "/proc/$pid" ] || grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}

# Starts ringhub on an ephemeral port and reads its stderr until it says where it listens.
start_server() {
    mkfifo "$tmp/stderr" || fail "mkfifo"
    # The load generator sends far above a client's default --message-rate.
    "$ringhub" --listen 127.0.0.1 --port 0 --shards 2 --message-rate 10000000 \
        --message-burst 10000000 2>"$tmp/stderr" &
    pid=$!
    exec 3<"$tmp/stderr"
    port=
    local line end=$((SECONDS + 10))
    while [ -z "$port" ] && [ "$SECONDS" -lt "$end" ]; do
        IFS= read -r -t $((end - SECONDS)) line <&3 || break # timeout, or the server ended
        printf '%s\n' "$line" >>"$tmp/server.log"
        if [[ $line =~ listening\ on\ 127\.0\.0\.1:([0-9]+) ]]; then
            port=${BASH_REMATCH[1]}
        fi
    done
    # Keep reading its stderr so that logging can never block it.
    cat <&3 >>"$tmp/server.log" &
    drain=$!
    exec 3<&-
    [ -n "$port" ] || fail "ringhub printed no 'listening on 127.0.0.1:PORT' within 10 s"
    echo "ringhub pid $pid listening on port $port"
}

# run NAME 'REQUIRED...' ARGS...: runs the bench with ARGS, --port and --pid; it must exit 0
# and print a JSON line for scenario NAME containing every REQUIRED text (space-separated).
run() {
    local name=$1 required=$2 out rc line
    shift 2
    out=$(timeout -k 5 15 "$bench" "$@" --port "$port" --pid "$pid" 2>"$tmp/bench.err")
    rc=$?
    if [ $rc -ne 0 ] && grep -q 'ringhub-bench: io_uring:' "$tmp/bench.err"; then
        cat "$tmp/bench.err"
        echo "SKIP: ringhub-bench needs io_uring"
        exit 77
    fi
    line=$(printf '%s\n' "$out" | grep -F "{\"scenario\":\"$name\"" | tail -1)
    echo "$name: $*: exit $rc: $line"
    local ok=1
    [ $rc -eq 0 ] || ok=0
    for text in $required; do
        [[ $line == *"$text"* ]] || ok=0
    done
    if [ $ok -eq 1 ]; then
        passed=$((passed + 1))
        return
    fi
    failed=$((failed + 1))
    echo "FAIL: $name $*: exit $rc; want exit 0 and a JSON line holding $required" >&2
    cat "$tmp/bench.err" >&2
}

# SIGTERM: ringhub drains (grace 5 s by default) and exits 0 only when everything was freed.
stop_server() {
    kill -TERM "$pid" || fail "ringhub (pid $pid) was no longer running"
    local end=$((SECONDS + 20))
    while ! has_exited && [ "$SECONDS" -lt "$end" ]; do
        sleep 0.05
    done
    has_exited || fail "ringhub did not exit within 20 s of SIGTERM"
    wait "$pid"
    local rc=$?
    pid=
    wait "$drain" 2>/dev/null
    drain=
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: ringhub exited with status $rc after SIGTERM (want 0)" >&2
    fi
}

start_server
# Fan-out, groups and echo report deliveries; idle and connect report failed connections.
no_loss='"lost":0, "dup":0, "gaps":0, "errors":0,'
run fanout "$no_loss" fanout --subs 50 --rate 200 --seconds 1
run groups "$no_loss" groups --subs 100 --groups 10 --pubs 2 --rate 400 --seconds 1 \
    --protocol mixed
run fanout "$no_loss" fanout --subs 30 --rate 200 --seconds 1 --protocol messagepack \
    --skip-negotiation
run echo "$no_loss" echo --conns 20 --seconds 1
run idle '"failed":0,' idle --conns 100 --seconds 1
run connect '"failed":0,' connect --conns 300 --concurrency 32
stop_server

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
