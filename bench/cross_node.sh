#!/usr/bin/env bash
# bench/cross_node.sh - what the Redis path adds: the same fan-out delivered on one node, then
# across two nodes of a cluster. A fresh redis-server (no persistence, a free port, a temporary
# directory) and two ringhub nodes (--node-id 1 and 2, one shard each) are started; then
# ringhub-bench runs the fanout scenario twice at the same rate and subscriber count:
#
#   same-node   publishers and subscribers on node A: delivered by A directly
#   cross-node  publishers on node A, subscribers on node B: A publishes each message to the
#               group's Redis channel once, Redis forwards it to B, B fans it out
#
# and prints p50/p99/p999 latency of both, the latency the Redis path adds (cross minus same,
# and cross over same), and deliveries per CPU-second charged to both ringhub nodes, and to
# both nodes plus redis-server. Every JSON line (and a summary line) is appended to
# bench/results/<time>.jsonl. Exit status: 0, or 1 when a run lost, duplicated or reordered a
# message (or a connection failed), or when something did not start.
#
# Pinning on this 2-CPU machine: the generator receives every delivery (2 M/s at the defaults)
# and is the first thing to saturate, so it gets CPU 1 to itself, as in bench/run.sh. Both
# nodes and redis-server share CPU 0: in either run only one node fans out (A same-node, B
# cross-node), the other node and Redis carry one message per publish, so CPU 0 carries the
# same fan-out work in both runs and the difference between them is the Redis path. Putting
# Redis or a node on CPU 1 instead would take CPU from the generator and move its queueing
# into the latency being compared.
#
#   bench/cross_node.sh
#   RH_SUBS=1000 RH_RATE=2000 RH_SECONDS=10 RH_PUBS=1 bench/cross_node.sh
#
# Environment: RH_BUILD (build-dev), RINGHUB (its ringhub), RH_BENCH (its ringhub-bench),
# RH_SUBS (1000), RH_RATE (2000 msg/s), RH_SECONDS (10), RH_PUBS (1), RH_PROTOCOL (json),
# RH_SERVER_CPU (0: nodes and Redis), RH_CLIENT_CPU (1: the generator), RH_RESULTS (the
# .jsonl file to append to; empty: none).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${RH_BUILD:-build-dev}
ringhub=${RINGHUB:-$build/shards/ringhub}
bench=${RH_BENCH:-$build/tools/ringhub-bench}
subs=${RH_SUBS:-1000}
rate=${RH_RATE:-2000}
seconds=${RH_SECONDS:-10}
pubs=${RH_PUBS:-1}
protocol=${RH_PROTOCOL:-json}
server_cpu=${RH_SERVER_CPU:-0}
client_cpu=${RH_CLIENT_CPU:-1}
results=${RH_RESULTS-bench/results/$(date -u +%Y-%m-%dT%H%M%SZ).jsonl}

for exe in "$ringhub" "$bench"; do
    if [ ! -x "$exe" ]; then
        echo "cross_node: $exe is missing: cmake --build $build --target ringhub ringhub-bench" >&2
        exit 1
    fi
done
command -v redis-server >/dev/null || { echo "cross_node: redis-server is missing" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringhub-cross-node.XXXXXX")
pids=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        # ringhub drains for up to --shutdown-grace-ms (set to 500 below); then it is killed.
        for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

is_listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port nothing listens on, from the range below the usual ephemeral ports.
free_port() {
    local port
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 12000))
        if ! is_listening "$port"; then echo "$port"; return 0; fi
    done
    echo "cross_node: no free port" >&2
    return 1
}

wait_listening() { # PORT PID NAME
    for _ in $(seq 200); do
        if is_listening "$1"; then return 0; fi
        if ! kill -0 "$2" 2>/dev/null; then break; fi
        sleep 0.05
    done
    echo "cross_node: $3 did not start; its log:" >&2
    cat "$tmp/$3.log" >&2 2>/dev/null || true
    exit 1
}

redis_port=$(free_port)
taskset -c "$server_cpu" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
    --appendonly no --dir "$tmp" --logfile "$tmp/redis.log" --daemonize no &
redis_pid=$!
pids+=("$redis_pid")
wait_listening "$redis_port" "$redis_pid" redis

port_a=$(free_port)
port_b=$(free_port)
while [ "$port_b" = "$port_a" ]; do port_b=$(free_port); done
start_node() { # ID PORT
    # Load generators send far above a client's --message-rate: lift it, as bench/run.sh does.
    taskset -c "$server_cpu" "$ringhub" --shards 1 --node-id "$1" \
        --redis "127.0.0.1:$redis_port" --listen 127.0.0.1 --port "$2" --admin-socket '' \
        --message-rate 10000000 --message-burst 10000000 --shutdown-grace-ms 500 \
        --log-level warn 2>"$tmp/node-$1.log" &
    pids+=("$!")
}
start_node 1 "$port_a"
node_a=$!
start_node 2 "$port_b"
node_b=$!
wait_listening "$port_a" "$node_a" node-1
wait_listening "$port_b" "$node_b" node-2
# Both nodes subscribe to their Redis channels as they start; a join waits for the node's
# group channel to be subscribed and announced, so the runs need no other handshake.
sleep 0.5

echo "# $(uname -r), $(nproc) CPUs; nodes and redis-server on CPU $server_cpu, generator on" \
    "CPU $client_cpu; $subs subscribers, $pubs publisher(s), $rate msg/s, $seconds s" >&2

field() { # NAME JSON: a number from a flat JSON line (the last field of that name)
    sed -n "s/.*\"$1\":\([0-9.eE+-]*\).*/\1/p" <<<"$2"
}

status=0
declare -A line
# run NAME SUBSCRIBERS_PORT PUBLISHERS_PORT PIDS: the subscribers' node first in PIDS, then the
# other node, then redis-server, so server_cpu_s_per_pid reads the same way in both runs.
run() {
    local name=$1 sub_port=$2 pub_port=$3 pid_list=$4 out rc=0
    out=$(taskset -c "$client_cpu" "$bench" fanout --subs "$subs" --pubs "$pubs" \
        --rate "$rate" --seconds "$seconds" --protocol "$protocol" --port "$sub_port" \
        --pub-port "$pub_port" --pid "$pid_list" 2> >(sed "s/^/$name: /" >&2)) || rc=$?
    out=$(tail -n 1 <<<"$out")
    if [ -z "$out" ]; then
        echo "cross_node: $name printed no result (exit $rc)" >&2
        status=1
        line[$name]=
        return
    fi
    # The run's name first, then the generator's line as it is.
    line[$name]="{\"run\":\"$name\",${out#\{}"
    if [ -n "$results" ]; then
        mkdir -p "$(dirname "$results")"
        echo "${line[$name]}" >>"$results"
    fi
    local lost dup gaps
    lost=$(field lost "$out")
    dup=$(field dup "$out")
    gaps=$(field gaps "$out")
    if [ "$rc" -ne 0 ] || [ "$lost" != 0 ] || [ "$dup" != 0 ] || [ "$gaps" != 0 ]; then
        echo "cross_node: $name: $lost lost, $dup duplicated, $gaps out of order (exit $rc)" >&2
        status=1
    fi
}
run same-node "$port_a" "$port_a" "$node_a,$node_b,$redis_pid"
run cross-node "$port_b" "$port_a" "$node_b,$node_a,$redis_pid"

# Figures of one run: p50 p99 p999 (us), deliveries, CPU of the nodes and of Redis (s),
# and whether the generator was saturated.
figures() {
    local l=${line[$1]} cpu
    [ -n "$l" ] || return 1
    cpu=$(sed -n 's/.*"server_cpu_s_per_pid":\[\([^]]*\)\].*/\1/p' <<<"$l")
    echo "$(field p50 "$l") $(field p99 "$l") $(field p999 "$l") $(field delivered "$l")" \
        "${cpu//,/ }" "$(sed -n 's/.*"generator_saturated":\([a-z]*\).*/\1/p' <<<"$l")"
}
if ! same=$(figures same-node) || ! cross=$(figures cross-node); then
    exit 1
fi
summary=$(awk -v same="$same" -v cross="$cross" -v subs="$subs" -v rate="$rate" '
function per(d, s) { return s > 0 ? d / s : 0 }
BEGIN {
    split(same, s, " "); split(cross, c, " ")
    # s[1..3] p50 p99 p999, s[4] deliveries, s[5] subscribers node CPU, s[6] other node CPU,
    # s[7] redis CPU, s[8] generator saturated
    printf "%-26s %12s %12s %12s %10s\n", "", "same-node", "cross-node", "added", "ratio" >"/dev/stderr"
    split("p50 p99 p999", names, " ")
    for (i = 1; i <= 3; i++)
        printf "%-26s %9.0f us %9.0f us %9.0f us %9.2fx\n", "latency " names[i], s[i], c[i],
            c[i] - s[i], per(c[i], s[i]) >"/dev/stderr"
    ss = s[5] + s[6]; cs = c[5] + c[6]
    printf "%-26s %12.2f %12.2f\n", "ringhub CPU-s (A+B)", ss, cs >"/dev/stderr"
    printf "%-26s %12.2f %12.2f\n", "redis-server CPU-s", s[7], c[7] >"/dev/stderr"
    printf "%-26s %10.2f M %10.2f M %12s %9.2fx\n", "deliveries / ringhub CPU-s",
        per(s[4], ss) / 1e6, per(c[4], cs) / 1e6, "", per(per(c[4], cs), per(s[4], ss)) >"/dev/stderr"
    printf "%-26s %10.2f M %10.2f M %12s %9.2fx\n", "  ... with redis CPU",
        per(s[4], ss + s[7]) / 1e6, per(c[4], cs + c[7]) / 1e6, "",
        per(per(c[4], cs + c[7]), per(s[4], ss + s[7])) >"/dev/stderr"
    printf "%-26s %12s %12s\n", "generator saturated", s[8], c[8] >"/dev/stderr"
    printf "{\"scenario\":\"cross-node-summary\",\"subscribers\":%d,\"rate\":%s," \
        "\"same_p50_us\":%.1f,\"same_p99_us\":%.1f,\"same_p999_us\":%.1f," \
        "\"cross_p50_us\":%.1f,\"cross_p99_us\":%.1f,\"cross_p999_us\":%.1f," \
        "\"added_p50_us\":%.1f,\"added_p99_us\":%.1f,\"ratio_p50\":%.3f,\"ratio_p99\":%.3f," \
        "\"same_deliveries_per_ringhub_cpu_s\":%.0f,\"cross_deliveries_per_ringhub_cpu_s\":%.0f," \
        "\"same_deliveries_per_cpu_s_with_redis\":%.0f,\"cross_deliveries_per_cpu_s_with_redis\":%.0f," \
        "\"same_redis_cpu_s\":%.3f,\"cross_redis_cpu_s\":%.3f}\n",
        subs, rate, s[1], s[2], s[3], c[1], c[2], c[3], c[1] - s[1], c[2] - s[2],
        per(c[1], s[1]), per(c[2], s[2]), per(s[4], ss), per(c[4], cs), per(s[4], ss + s[7]),
        per(c[4], cs + c[7]), s[7], c[7]
}')
echo "$summary"
if [ -n "$results" ]; then
    echo "$summary" >>"$results"
    echo "results: $results" >&2
fi
exit "$status"
