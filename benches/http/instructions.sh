#!/usr/bin/env bash
# User-space instructions per request over real sockets (callgrind), the figure that does not
# move with the machine's load: what benches/http/run.sh measures in requests per second.
# Each server runs under `valgrind --tool=callgrind --instr-atstart=no`; counting is switched on
# around a wrk run (-t1 -c8) and divided by the requests wrk made.
#
# Needs valgrind (with callgrind_control and callgrind_annotate), wrk, nginx, curl and cargo
# (Debian: apt-get install valgrind wrk nginx-light curl). Installs nothing. Not part of
# `cargo test`; a full run takes about five minutes.
#
#   benches/http/instructions.sh [--only servers|gateway] [--duration SECONDS] [--no-build]
#
# servers: bench_server, bench_axum and bench_hyper on /plaintext, /json, /user/7, POST /echo.
# gateway: the proxy's own instructions (bench_gateway, then nginx with one worker and no
# master process, as usual and sending the gateway's fields too: see write_nginx_conf), and
# those of the axum upstream behind each (what the proxy's request costs the service it
# reaches).
set -euo pipefail

ONLY=all
DURATION=4
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --only) ONLY=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "instructions.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
case "$ONLY" in all|servers|gateway) ;; *) echo "instructions.sh: --only takes servers or gateway" >&2; exit 2 ;; esac
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || { echo "instructions.sh: --duration takes seconds" >&2; exit 2; }

NGINX=$(command -v nginx || true)
[ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
missing=()
for tool in valgrind callgrind_control callgrind_annotate wrk curl cargo python3; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
[ -n "$NGINX" ] || [ "$ONLY" = servers ] || missing+=("nginx")
if [ ${#missing[@]} -gt 0 ]; then
    echo "instructions.sh: missing ${missing[*]} (Debian: apt-get install valgrind wrk nginx-light curl)" >&2
    exit 1
fi

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=benches/http/common.sh
. "$ROOT/benches/http/common.sh"
cd "$ROOT"
build_servers "$ROOT" "$BUILD"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/microkit-instructions.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

write_echo_lua "$WORK"
declare -A PATH_OF=([plaintext]=/plaintext [json]=/json [user]=/user/7 [echo]=/echo)

# A free port from the kernel.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() {
    local url=$1
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "$url" && return 0
        sleep 0.2
    done
    echo "instructions.sh: nothing answered at $url" >&2
    exit 1
}

# start COMMAND...: runs COMMAND in the background; its pid goes to STARTED.
start() {
    "$@" >>"$WORK/servers.log" 2>&1 &
    PIDS+=($!)
    STARTED=$!
}

# stop PID: asks the process to end (callgrind writes its counts as it exits): SIGINT for the
# Rust servers, SIGQUIT (graceful shutdown) for nginx, then SIGTERM.
stop() {
    local signal
    for signal in INT QUIT TERM; do
        kill "-$signal" "$1" 2>/dev/null || break
        for _ in $(seq 1 30); do
            kill -0 "$1" 2>/dev/null || break 2
            sleep 0.1
        done
    done
    wait "$1" 2>/dev/null || true
}

# count PID OUT URL ENDPOINT: instructions per request of the callgrind'ed process PID while
# wrk loads URL.
count() {
    local pid=$1 out=$2 url=$3 endpoint=$4
    local args=(-t1 -c8)
    [ "$endpoint" = echo ] && args+=(-s "$WORK/echo.lua")
    wrk "${args[@]}" -d1s "$url" >/dev/null
    callgrind_control -i on "$pid" >/dev/null 2>&1
    local requests
    requests=$(wrk "${args[@]}" "-d${DURATION}s" "$url" | awk '/requests in/ {print $1}')
    callgrind_control -i off "$pid" >/dev/null 2>&1
    stop "$pid"
    local total
    total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    awk -v t="$total" -v r="$requests" 'BEGIN { printf "%.1fk", t / r / 1000 }'
}

callgrind() {
    local out=$1
    shift
    start valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" "$@"
}

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), callgrind, wrk -t1 -c8 -d${DURATION}s; user-space instructions per request"

if [ "$ONLY" != gateway ]; then
    echo
    echo "| endpoint | microkit | axum | raw hyper |"
    echo "|---|---|---|---|"
    for endpoint in plaintext json user echo; do
        row="| $endpoint"
        for server in bench_server bench_axum bench_hyper; do
            port=$(free_port)
            callgrind "$WORK/cg.$server.$endpoint" "$BIN/$server" --listen "127.0.0.1:$port" --threads 1
            pid=$STARTED
            wait_for "http://127.0.0.1:$port/plaintext"
            row+=" | $(count "$pid" "$WORK/cg.$server.$endpoint" "http://127.0.0.1:$port${PATH_OF[$endpoint]}" "$endpoint")"
        done
        echo "$row |"
    done
fi

if [ "$ONLY" != servers ]; then
    # proxy KIND PORT UPSTREAM OUT: starts the gateway, nginx or nginx_fields (nginx sending the
    # gateway's fields) under callgrind when WATCH is "proxy"; its pid goes to STARTED.
    proxy() {
        local kind=$1 port=$2 upstream=$3 out=$4
        local command
        if [ "$kind" = gateway ]; then
            command=("$BIN/bench_gateway" --listen "127.0.0.1:$port" --upstream "127.0.0.1:$upstream" --threads 1)
        else
            # One process, so that callgrind sees the proxying.
            local fields=usual
            [ "$kind" = nginx_fields ] && fields=gateway
            write_nginx_conf "$WORK/nginx" "$port" "$upstream" off "$fields"
            command=("$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/logs/error.log")
        fi
        if [ "$WATCH" = proxy ]; then
            callgrind "$out" "${command[@]}"
        else
            start "${command[@]}"
        fi
    }
    echo
    echo "| endpoint | gateway | nginx | nginx (gateway's fields) | upstream behind the gateway | upstream behind nginx | upstream behind nginx (gateway's fields) |"
    echo "|---|---|---|---|---|---|---|"
    for endpoint in plaintext user echo; do
        row="| $endpoint"
        for WATCH in proxy upstream; do
            for kind in gateway nginx nginx_fields; do
                upstream=$(free_port)
                port=$(free_port)
                out="$WORK/cg.$kind.$WATCH.$endpoint"
                if [ "$WATCH" = upstream ]; then
                    callgrind "$out" "$BIN/bench_axum" --listen "127.0.0.1:$upstream" --threads 1
                else
                    start "$BIN/bench_axum" --listen "127.0.0.1:$upstream" --threads 1
                fi
                up_pid=$STARTED
                wait_for "http://127.0.0.1:$upstream/plaintext"
                proxy "$kind" "$port" "$upstream" "$out"
                proxy_pid=$STARTED
                wait_for "http://127.0.0.1:$port/plaintext"
                if [ "$WATCH" = upstream ]; then
                    row+=" | $(count "$up_pid" "$out" "http://127.0.0.1:$port${PATH_OF[$endpoint]}" "$endpoint")"
                    stop "$proxy_pid"
                else
                    row+=" | $(count "$proxy_pid" "$out" "http://127.0.0.1:$port${PATH_OF[$endpoint]}" "$endpoint")"
                    stop "$up_pid"
                fi
            done
        done
        echo "$row |"
    done
fi
