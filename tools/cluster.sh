#!/usr/bin/env bash
# tools/cluster.sh - runs a local ringhub cluster in the foreground: a Redis (no persistence,
# in a temp dir) and three ringhub nodes sharing it (--redis), optionally nginx in front with
# the deployment kit's config (tools/deploy/nginx-ringhub.conf). Ctrl-C or SIGTERM stops it
# all. `tools/cluster.sh --help` lists the options.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kit="$root/tools/deploy/nginx-ringhub.conf"

usage() {
    cat <<EOF
Usage: tools/cluster.sh [OPTION]... [-- RINGHUB-FLAG...]
Starts a Redis on 127.0.0.1 and N ringhub nodes (--node-id 1..N) that share it through
--redis, each with its own port and admin socket, optionally nginx in front of them, prints
what runs where, and stops everything on Ctrl-C or SIGTERM (or when one of them exits).

  --nodes N           ringhub nodes (default 3)
  --port BASE         port of node 1; node i listens on BASE+i-1 (default 5001)
  --redis-port P      port of the Redis this script starts (default: the first free from 6380)
  --redis ADDR        use this Redis instead of starting one: host:port, or the seed
                      endpoints of a Redis Cluster (host:port,host:port,...)
  --prefix P          --redis-prefix of every node (default ringhub)
  --shards N          --shards of every node (default: ringhub's, one per CPU)
  --nginx             nginx in front of the nodes (the kit's config, its upstream and listen
                      port rewritten), run in the foreground as this user
  --nginx-port P      nginx's port (default 8080)
  --no-ip-hash        nginx balances round-robin instead of by client address (negotiated
                      connections then break without sticky sessions; for experiments)
  -h, --help          print this help and exit

Flags after -- go to every ringhub node (for example -- --log-level debug).
The binary is \$RINGHUB, else build/shards/ringhub (cmake --build build --target ringhub).
Needs redis-server, redis-cli and, with --nginx, nginx: tools/setup.sh installs them.
EOF
}

nodes=3
base_port=5001
redis_port=
redis_addr=
prefix=ringhub
shards=
with_nginx=0
nginx_port=8080
ip_hash=1
extra=()

need_value() {
    if [ "$#" -lt 2 ] || [ -z "$2" ]; then
        echo "cluster.sh: $1 needs a value" >&2
        exit 2
    fi
}

while [ "$#" -gt 0 ]; do
    case "$1" in
        --nodes) need_value "$@"; nodes="$2"; shift 2 ;;
        --port) need_value "$@"; base_port="$2"; shift 2 ;;
        --redis-port) need_value "$@"; redis_port="$2"; shift 2 ;;
        --redis) need_value "$@"; redis_addr="$2"; shift 2 ;;
        --prefix) need_value "$@"; prefix="$2"; shift 2 ;;
        --shards) need_value "$@"; shards="$2"; shift 2 ;;
        --nginx) with_nginx=1; shift ;;
        --nginx-port) need_value "$@"; nginx_port="$2"; with_nginx=1; shift 2 ;;
        --no-ip-hash) ip_hash=0; shift ;;
        -h | --help) usage; exit 0 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "cluster.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

for n in "$nodes" "$base_port" "$nginx_port" ${redis_port:+"$redis_port"} ${shards:+"$shards"}; do
    [[ "$n" =~ ^[0-9]+$ ]] || { echo "cluster.sh: $n is not a number" >&2; exit 2; }
done
if [ "$nodes" -lt 1 ] || [ "$nodes" -gt 64 ]; then
    echo "cluster.sh: --nodes is 1..64" >&2
    exit 2
fi

ringhub="${RINGHUB:-$root/build/shards/ringhub}"
if [ ! -x "$ringhub" ]; then
    echo "cluster.sh: no ringhub binary at $ringhub: build it (cmake -S . -B build &&" \
        "cmake --build build --target ringhub, or tools/run.sh) or set RINGHUB" >&2
    exit 1
fi
need_tool() {
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] ||
        { echo "cluster.sh: $1 not found: run tools/setup.sh, which installs it" >&2; exit 1; }
}
[ -n "$redis_addr" ] || need_tool redis-server
need_tool redis-cli
[ "$with_nginx" -eq 0 ] || need_tool nginx
nginx_bin="$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)"
# ringhub-ctl beside the binary's build tree, else the one on PATH.
ctl="ringhub-ctl"
if [ -x "$(dirname "$ringhub")/../tools/ringhub-ctl" ]; then
    ctl="$(cd "$(dirname "$ringhub")/../tools" && pwd)/ringhub-ctl"
fi

# Something accepts connections on 127.0.0.1:$1.
port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

tmp="$(mktemp -d "${TMPDIR:-/tmp}/ringhub-cluster.XXXXXX")"
pids=()
names=()

# Stops every process this script started (SIGTERM, SIGKILL after 20 s) and removes $tmp.
# shellcheck disable=SC2317 # reached through the traps
cleanup() {
    trap - EXIT INT TERM
    local i pid waited
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for i in "${!pids[@]}"; do
        pid="${pids[$i]}"
        waited=0
        while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 200 ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "cluster.sh: ${names[$i]} did not stop, killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "cluster.sh: stopping" >&2; exit 130' INT
trap 'echo "cluster.sh: stopping" >&2; exit 143' TERM

# Runs "$@" in the background, its output prefixed with [$1-name], and records its pid.
launch() {
    local name="$1"
    shift
    "$@" > >(sed -u "s/^/[$name] /") 2>&1 &
    pids+=("$!")
    names+=("$name")
}

# Waits until @check succeeds, or fails when the last started process has exited.
wait_ready() {
    local what="$1" pid="${pids[-1]}" tries=0
    shift
    until "$@" >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "cluster.sh: $what exited at start" >&2
            exit 1
        fi
        tries=$((tries + 1))
        if [ "$tries" -gt 300 ]; then
            echo "cluster.sh: $what did not come up in 30 s" >&2
            exit 1
        fi
        sleep 0.1
    done
}

# Redis: the one given, or a new one on a free port.
if [ -z "$redis_addr" ]; then
    if [ -z "$redis_port" ]; then
        redis_port=6380
        while port_busy "$redis_port"; do redis_port=$((redis_port + 1)); done
    elif port_busy "$redis_port"; then
        echo "cluster.sh: port $redis_port is taken" >&2
        exit 1
    fi
    mkdir "$tmp/redis"
    launch redis redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$tmp/redis" --daemonize no --logfile ''
    wait_ready "redis-server" redis-cli -p "$redis_port" ping
    redis_addr="127.0.0.1:$redis_port"
fi

# The nodes.
node_ports=()
for ((i = 1; i <= nodes; i++)); do
    port=$((base_port + i - 1))
    if port_busy "$port"; then
        echo "cluster.sh: port $port is taken (use --port BASE)" >&2
        exit 1
    fi
    flags=(--listen 127.0.0.1 --port "$port" --node-id "$i" --redis "$redis_addr"
        --redis-prefix "$prefix" --admin-socket "$tmp/node-$i.sock")
    [ -z "$shards" ] || flags+=(--shards "$shards")
    launch "node $i" "$ringhub" "${flags[@]}" ${extra[@]+"${extra[@]}"}
    node_ports+=("$port")
done
for ((i = 1; i <= nodes; i++)); do
    pid="${pids[-nodes + i - 1]}"
    port="${node_ports[$((i - 1))]}"
    tries=0
    until curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { echo "cluster.sh: node $i exited at start" >&2; exit 1; }
        tries=$((tries + 1))
        [ "$tries" -le 300 ] || { echo "cluster.sh: node $i did not answer /healthz" >&2; exit 1; }
        sleep 0.1
    done
done

# nginx, with the kit's config as shipped but for its upstream servers and listen port.
if [ "$with_nginx" -eq 1 ]; then
    if port_busy "$nginx_port"; then
        echo "cluster.sh: port $nginx_port is taken (use --nginx-port P)" >&2
        exit 1
    fi
    mkdir "$tmp/nginx"
    site="$(awk -v ports="${node_ports[*]}" -v listen_port="$nginx_port" -v ip_hash="$ip_hash" '
        /^[ \t]*upstream[ \t]+ringhub[ \t]*\{/ { in_up = 1; print; next }
        in_up && /^\}/ { in_up = 0; print; next }
        in_up && /^[ \t]*ip_hash;/ { if (ip_hash) print; next }
        in_up && /^[ \t]*server[ \t]/ {
            if (!servers_done) {
                n = split(ports, p, " ")
                for (k = 1; k <= n; k++) {
                    line = $0
                    sub(/[0-9.]+:[0-9]+/, "127.0.0.1:" p[k], line)
                    print line
                }
                servers_done = 1
            }
            next
        }
        /^[ \t]*listen[ \t]/ {
            if (!listen_done) { print "    listen 127.0.0.1:" listen_port ";"; listen_done = 1 }
            next
        }
        { print }
        END { if (!servers_done || !listen_done) exit 1 }
    ' "$kit")" || { echo "cluster.sh: $kit has no upstream servers or listen line" >&2; exit 1; }
    user_line=
    [ "$(id -u)" -ne 0 ] || user_line="user root;"
    cat >"$tmp/nginx/nginx.conf" <<EOF
# Generated by tools/cluster.sh around $kit
$user_line
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log stderr warn;
events {
    worker_connections 4096;
}
http {
    access_log $tmp/nginx/access.log;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    default_type application/octet-stream;

$site
}
EOF
    launch nginx "$nginx_bin" -p "$tmp/nginx" -e stderr -c "$tmp/nginx/nginx.conf" -g 'daemon off;'
    wait_ready nginx curl -fsS -o /dev/null "http://127.0.0.1:$nginx_port/healthz"
fi

# What runs where.
{
    echo
    echo "ringhub cluster: $nodes node(s), Redis $redis_addr, --redis-prefix $prefix, files in $tmp"
    for ((i = 1; i <= nodes; i++)); do
        port="${node_ports[$((i - 1))]}"
        echo "  node $i  http://127.0.0.1:$port/hubs/chat   $ctl -s $tmp/node-$i.sock stats"
    done
    if [ "$with_nginx" -eq 1 ]; then
        policy="ip_hash"
        [ "$ip_hash" -eq 1 ] || policy="round-robin"
        echo "  nginx   http://127.0.0.1:$nginx_port/hubs/chat   ($policy over the nodes; API at" \
            "http://127.0.0.1:$nginx_port/api/v1/hubs/chat/...)"
    fi
    case "$redis_addr" in
        *,*) echo "  redis   redis-cli -c -h ${redis_addr%%:*} -p $(echo "$redis_addr" | cut -d, -f1 | cut -d: -f2)" ;;
        *) echo "  redis   redis-cli -h ${redis_addr%%:*} -p ${redis_addr##*:}" ;;
    esac
    echo "ready; Ctrl-C stops everything"
    echo
} >&2

# Runs until a signal (the traps stop everything) or until one of the processes exits.
set +e
wait -n "${pids[@]}"
rc=$?
set -e
for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
        echo "cluster.sh: ${names[$i]} exited (status $rc); stopping the rest" >&2
        break
    fi
done
exit 1
