#!/usr/bin/env bash
# bench/run.sh - the standard benchmark set, in about three minutes: ringhub with one shard
# pinned to CPU 0, ringhub-bench (and the ceiling's reader) pinned to CPU 1. Every run starts
# a fresh server, so RSS figures are not muddied by an earlier run. The JSON lines go to
# bench/results/<date>.jsonl; a summary goes to stdout.
#
#   bench/run.sh            the whole set
#   bench/run.sh fanout     one part: connect, fanout, groups, echo, alloc, idle or ws (the
#                           same scenarios against a minimal Node `ws` server)
#
# Needs a build: tools/run.sh or tools/test.sh made build/ (RelWithDebInfo).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${RH_BUILD:-build}
ringhub=$build/shards/ringhub
bench=$build/tools/ringhub-bench
ceiling=$build/tools/ringhub-ceiling
server_cpu=${RH_SERVER_CPU:-0}
client_cpu=${RH_CLIENT_CPU:-1}
port=${RH_BENCH_PORT:-7311}
only=${1:-all}

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target ringhub ringhub-bench ringhub-ceiling >/dev/null
mkdir -p bench/results
out=bench/results/$(date -u +%Y-%m-%dT%H%M%SZ).jsonl
echo "# $(uname -r), $(nproc) CPUs; server on CPU $server_cpu, generator on CPU $client_cpu" >&2

server_pid=
start_server() {
    # Load generators send far above a client's --message-rate: lift it for the benchmarks.
    taskset -c "$server_cpu" "$ringhub" --listen 127.0.0.1 --port "$port" --shards 1 \
        --message-rate 10000000 --message-burst 10000000 --log-level warn "$@" &
    server_pid=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "ringhub did not start" >&2
    exit 1
}
stop_server() {
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}
trap 'if [ -n "$server_pid" ]; then kill -9 "$server_pid" 2>/dev/null || true; fi' EXIT

# Runs ringhub-bench on the client CPU; every JSON line goes to the results (a ramp prints one
# per step, then the best), the summary lines to stderr.
run_bench() {
    taskset -c "$client_cpu" "$bench" "$@" --port "$port" --pid "$server_pid" >>"$out" || true
}
field() { # field NAME JSON: a number from a flat JSON line
    sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" <<<"$2"
}

# First, before earlier runs leave thousands of the generator's sockets in TIME_WAIT.
if [ "$only" = all ] || [ "$only" = connect ]; then
    start_server
    run_bench connect --conns 15000 --concurrency 128 --sources 16
    stop_server
    start_server
    run_bench connect --conns 15000 --concurrency 128 --sources 16 --skip-negotiation
    stop_server
fi

# A ramp finds the highest rate with nothing lost and p99 under 50 ms; the ceiling program then
# runs the same sockets at the same rate (so it batches the same way: one send in flight per
# socket, the rest caught up in the next), and ringhub runs once more at that rate with
# --ceiling, which reports its deliveries per CPU-second as a fraction of the ceiling's.
ramp_and_compare() { # SOCKETS GROUPS ringhub-bench-args...
    local sockets=$1 groups=$2
    shift 2
    start_server
    run_bench "$@" --ramp --seconds 4
    local best rate ceiling_rate line ceiling_figure
    best=$(grep -- '-best"' "$out" | tail -1)
    rate=$(field rate "$best")
    stop_server
    if [ -z "$rate" ]; then
        echo "no rate passed the ramp" >&2
        return
    fi
    ceiling_rate=$(awk -v r="$rate" -v g="$groups" 'BEGIN { printf "%.2f", r / g }')
    line=$("$ceiling" --sockets "$sockets" --rate "$ceiling_rate" --seconds 4 \
        --writer-cpu "$server_cpu" --reader-cpu "$client_cpu")
    echo "$line" >>"$out"
    ceiling_figure=$(field deliveries_per_writer_cpu_s "$line")
    start_server
    run_bench "$@" --rate "$rate" --seconds 4 --ceiling "$ceiling_figure"
    stop_server
}

if [ "$only" = all ] || [ "$only" = fanout ]; then
    ramp_and_compare 1000 1 fanout --subs 1000 --ramp-start 1000 --ramp-factor 1.4
fi

if [ "$only" = all ] || [ "$only" = groups ]; then
    # Each round of the ceiling writes one frame to every socket, so its rate is ringhub's
    # message rate over the group count (the same frames per socket per second); 9,000 sockets
    # is as many pairs as one process may hold.
    ramp_and_compare 9000 100 groups --subs 10000 --groups 100 --ramp-start 500 --ramp-factor 1.4
    # 100,000 subscribers over 10,000 groups does not fit the 20,000-descriptor limit of one
    # process; the same shape (10 per group) at the largest size that does:
    ramp_and_compare 9000 1900 groups --subs 19000 --groups 1900 --ramp-start 2000 \
        --ramp-factor 1.4
fi

if [ "$only" = all ] || [ "$only" = echo ]; then
    start_server
    run_bench echo --conns 100 --seconds 5
    stop_server
fi


if [ "$only" = all ] || [ "$only" = alloc ]; then
    # No heap allocation per recipient: the same fan-out for 2 s and for 4 s on fresh servers;
    # the server's allocation count at exit differs by the extra messages' share only.
    declare -A allocs delivered
    for secs in 2 4; do
        log=$(mktemp)
        taskset -c "$server_cpu" "$ringhub" --listen 127.0.0.1 --port "$port" --shards 1 \
            --message-rate 10000000 --message-burst 10000000 2>"$log" &
        server_pid=$!
        sleep 0.5
        line=$(taskset -c "$client_cpu" "$bench" fanout --subs 1000 --rate 1000 --seconds "$secs" \
            --port "$port" --pid "$server_pid" 2>/dev/null)
        stop_server
        delivered[$secs]=$(field delivered "$line")
        allocs[$secs]=$(sed -n 's/.* \([0-9]*\) heap allocations.*/\1/p' "$log")
        rm -f "$log"
    done
    extra_deliveries=$((delivered[4] - delivered[2]))
    extra_allocs=$((allocs[4] - allocs[2]))
    echo "{\"scenario\":\"alloc\",\"extra_deliveries\":$extra_deliveries,\"extra_allocations\":$extra_allocs}" |
        tee -a "$out"
    echo "alloc: $extra_allocs more heap allocations for $extra_deliveries more deliveries" >&2
fi

if [ "$only" = all ] || [ "$only" = idle ]; then
    for n in 1000 10000 19000; do
        start_server
        run_bench idle --conns "$n" --seconds 3 --sources 4
        stop_server
    done
fi
if [ "$only" = all ] || [ "$only" = ws ]; then
    # The same scenarios against the smallest SignalR-speaking server on Node's `ws` package
    # (bench/ws_node_server.mjs), pinned the same way: a baseline measured in the same run.
    for scenario in "fanout --subs 1000 --ramp --ramp-start 50 --ramp-factor 1.5" \
        "groups --subs 10000 --groups 100 --ramp --ramp-start 200 --ramp-factor 1.4" \
        "idle --conns 10000 --seconds 3 --sources 4"; do
        taskset -c "$server_cpu" node bench/ws_node_server.mjs "$port" 2>/dev/null &
        server_pid=$!
        for _ in $(seq 100); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
            sleep 0.05
        done
        # shellcheck disable=SC2086 # the scenario's words are separate arguments
        taskset -c "$client_cpu" "$bench" $scenario --seconds 3 --port "$port" \
            --pid "$server_pid" | sed 's/^{"scenario":"/{"server":"ws-node","scenario":"/' >>"$out" || true
        stop_server
    done
fi

echo "results: $out" >&2
