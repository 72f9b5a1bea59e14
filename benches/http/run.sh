#!/usr/bin/env bash
# End-to-end HTTP benchmarks over real sockets (issue 9): microkit's bench_server against an
# axum and a raw hyper twin, and microkit's Gateway against nginx, each in front of the same
# axum upstream. Servers run pinned to CPU 0, wrk to CPU 1; rounds interleave the targets;
# the table shows medians of requests per second and of server CPU microseconds per request
# (utime + stime from /proc/<pid>/stat).
#
# Needs wrk and nginx (Debian: apt-get install wrk nginx-light), taskset (util-linux), curl
# and cargo. Installs nothing. Not part of `cargo test` or .ci/run: a full run takes about
# four minutes.
#
#   benches/http/run.sh [--rounds N] [--duration SECONDS] [--connections N]
#                       [--only servers|gateway] [--port-base PORT] [--no-build]
set -euo pipefail

ROUNDS=3
DURATION=4
CONNECTIONS=64
ONLY=all
PORT_BASE=18080
BUILD=1

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --port-base) PORT_BASE=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) usage 0 ;;
        *) echo "run.sh: unknown option $1" >&2; usage 2 ;;
    esac
done
case "$ONLY" in all|servers|gateway) ;; *) echo "run.sh: --only takes servers or gateway" >&2; exit 2 ;; esac
for number in "$ROUNDS" "$DURATION" "$CONNECTIONS" "$PORT_BASE"; do
    [[ "$number" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: $number is not a positive number" >&2; exit 2; }
done

# --- what the machine must have ------------------------------------------------------------
NGINX=$(command -v nginx || true)
[ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
missing=()
command -v wrk >/dev/null || missing+=("wrk (apt-get install wrk)")
[ -n "$NGINX" ] || [ "$ONLY" = servers ] || missing+=("nginx (apt-get install nginx-light)")
command -v taskset >/dev/null || missing+=("taskset (apt-get install util-linux)")
command -v curl >/dev/null || missing+=("curl (apt-get install curl)")
command -v cargo >/dev/null || missing+=("cargo (https://rustup.rs)")
if [ ${#missing[@]} -gt 0 ]; then
    printf 'run.sh: missing %s\n' "${missing[@]}" >&2
    exit 1
fi
CPUS=$(nproc)
if [ "$CPUS" -ge 2 ]; then
    SERVER_CPU=0
    LOAD_CPU=1
else
    echo "run.sh: one CPU only; servers and wrk share it, figures will be pessimistic" >&2
    SERVER_CPU=0
    LOAD_CPU=0
fi
TICKS=$(getconf CLK_TCK)

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=benches/http/common.sh
. "$ROOT/benches/http/common.sh"
cd "$ROOT"
build_servers "$ROOT" "$BUILD"
for binary in bench_server bench_axum bench_hyper bench_gateway; do
    [ -x "$BIN/$binary" ] || { echo "run.sh: $BIN/$binary is missing (drop --no-build)" >&2; exit 1; }
done

# --- processes we start, and only those, are stopped on exit -------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/microkit-http-bench.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_for_port() {
    local port=$1 name=$2
    for _ in $(seq 1 100); do
        port_in_use "$port" && return 0
        sleep 0.1
    done
    echo "run.sh: $name did not start listening on $port (see $WORK/$name.log)" >&2
    cat "$WORK/$name.log" >&2 || true
    exit 1
}

# start NAME PORT COMMAND...: runs COMMAND pinned to the server CPU, records its pid.
declare -A PID_OF PORT_OF
start() {
    local name=$1 port=$2
    shift 2
    if port_in_use "$port"; then
        echo "run.sh: port $port is taken; choose another --port-base" >&2
        exit 1
    fi
    taskset -c "$SERVER_CPU" "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    PID_OF[$name]=$!
    PORT_OF[$name]=$port
    wait_for_port "$port" "$name"
}

# The CPU ticks a process (all its threads) and, for nginx, its workers have used.
cpu_ticks() {
    local total=0 pid
    for pid in "$@"; do
        # Fields 14 and 15, counted after the ")" that ends the command name.
        local fields
        fields=$(sed 's/.*) //' "/proc/$pid/stat")
        set -- $fields
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

# --- the load ------------------------------------------------------------------------------
write_echo_lua "$WORK"
{
    echo "local paths = {"
    grep -v '^[[:space:]]*$' benches/data/github-api-routes.txt |
        sed -E 's/\{\*[^}]*\}/rest/g; s/\{[^}]*\}/x1/g; s/.*/  "&",/'
    echo "}"
    echo 'local i = 0'
    echo 'request = function()'
    echo '  i = i % #paths + 1'
    echo '  return wrk.format("GET", paths[i])'
    echo 'end'
} >"$WORK/github.lua"

# endpoint name -> path and wrk script
declare -A PATH_OF=([plaintext]=/plaintext [json]=/json [user]=/user/7 [echo]=/echo [github]=/)
declare -A SCRIPT_OF=([echo]="$WORK/echo.lua" [github]="$WORK/github.lua")

RESULTS="$WORK/results"
: >"$RESULTS"

# measure SUITE ENDPOINT TARGET ROUND SECONDS PID...: one wrk run, one line of results.
measure() {
    local suite=$1 endpoint=$2 target=$3 round=$4 seconds=$5
    shift 5
    local port=${PORT_OF[$target]}
    local args=(-t1 "-c$CONNECTIONS" "-d${seconds}s")
    [ -n "${SCRIPT_OF[$endpoint]:-}" ] && args+=(-s "${SCRIPT_OF[$endpoint]}")
    local before after output
    before=$(cpu_ticks "$@")
    output=$(taskset -c "$LOAD_CPU" wrk "${args[@]}" "http://127.0.0.1:$port${PATH_OF[$endpoint]}")
    after=$(cpu_ticks "$@")
    local rps requests errors
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$output")
    requests=$(awk '/requests in/ {print $1}' <<<"$output")
    errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$output")
    if [ -n "$errors" ]; then
        echo "  warning: $target $endpoint: $errors" >&2
    fi
    [ "$round" = 0 ] && return 0
    awk -v s="$suite" -v e="$endpoint" -v t="$target" -v r="$round" -v rps="$rps" \
        -v req="$requests" -v ticks=$((after - before)) -v hz="$TICKS" \
        'BEGIN { printf "%s %s %s %s %.0f %.2f\n", s, e, t, r, rps, ticks / hz * 1e6 / (req > 0 ? req : 1) }' \
        >>"$RESULTS"
    printf '  round %s %-9s %-14s %9.0f req/s %7.2f us/req\n' "$round" "$endpoint" "$target" \
        "$rps" "$(awk -v t=$((after - before)) -v hz="$TICKS" -v req="$requests" 'BEGIN { print t / hz * 1e6 / (req > 0 ? req : 1) }')"
}

# Same bytes from every twin, or the comparison means nothing.
same_answers() {
    local endpoint=$1
    shift
    local first="" name body
    for name in "$@"; do
        local curl_args=(-s -D - -o "$WORK/body.$name" "http://127.0.0.1:${PORT_OF[$name]}${PATH_OF[$endpoint]}")
        if [ "$endpoint" = echo ]; then
            curl_args+=(-H 'content-type: application/json' --data "$ECHO_BODY")
        fi
        curl "${curl_args[@]}" | grep -i '^content-type' | tr 'A-Z' 'a-z' | tr -d '\r' >"$WORK/type.$name"
        body="$(cat "$WORK/type.$name" "$WORK/body.$name")"
        if [ -z "$first" ]; then
            first=$body
        elif [ "$body" != "$first" ]; then
            echo "run.sh: $name answers $endpoint differently from $1:" >&2
            diff <(echo "$first") <(echo "$body") >&2 || true
            exit 1
        fi
    done
}

# rotate LIST... by ROUND: each round starts with a different target, so none always runs
# first (on a cold cache) or last (on a warm machine).
rotate() {
    local round=$1
    shift
    local list=("$@") n=$#
    for i in $(seq 0 $((n - 1))); do
        echo "${list[$(((i + round) % n))]}"
    done
}

median() {
    sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# stat SUITE ENDPOINT TARGET FIELD (5 = req/s, 6 = us/req)
stat() {
    awk -v s="$1" -v e="$2" -v t="$3" -v f="$4" '$1 == s && $2 == e && $3 == t { print $f }' "$RESULTS" | median
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds, servers on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU"

P=$PORT_BASE
if [ "$ONLY" != gateway ]; then
    start microkit $((P + 0)) "$BIN/bench_server" --listen "127.0.0.1:$((P + 0))" --threads 1
    start axum $((P + 1)) "$BIN/bench_axum" --listen "127.0.0.1:$((P + 1))" --threads 1
    start hyper $((P + 2)) "$BIN/bench_hyper" --listen "127.0.0.1:$((P + 2))" --threads 1
    for endpoint in plaintext json user echo; do
        same_answers "$endpoint" microkit axum hyper
    done
    ENDPOINTS=(plaintext json user echo github)
    echo "warming up..."
    for target in microkit axum hyper; do
        for endpoint in "${ENDPOINTS[@]}"; do
            measure servers "$endpoint" "$target" 0 1 "${PID_OF[$target]}"
        done
    done
    for round in $(seq 1 "$ROUNDS"); do
        for endpoint in "${ENDPOINTS[@]}"; do
            for target in $(rotate "$round" microkit axum hyper); do
                measure servers "$endpoint" "$target" "$round" "$DURATION" "${PID_OF[$target]}"
            done
        done
    done
fi

if [ "$ONLY" != servers ]; then
    UPSTREAM=$((P + 3))
    start upstream "$UPSTREAM" "$BIN/bench_axum" --listen "127.0.0.1:$UPSTREAM" --threads 1
    start gateway $((P + 4)) "$BIN/bench_gateway" --listen "127.0.0.1:$((P + 4))" \
        --upstream "127.0.0.1:$UPSTREAM" --threads 1
    write_nginx_conf "$WORK/nginx" $((P + 5)) "$UPSTREAM" on
    start nginx $((P + 5)) "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/logs/error.log"
    # nginx's master forks the worker that does the proxying: count both.
    NGINX_PIDS=("${PID_OF[nginx]}" $(ps -o pid= --ppid "${PID_OF[nginx]}"))
    for endpoint in plaintext user echo; do
        same_answers "$endpoint" upstream gateway nginx
    done
    echo "warming up..."
    for endpoint in plaintext user echo; do
        measure gateway "$endpoint" gateway 0 1 "${PID_OF[gateway]}"
        measure gateway "$endpoint" nginx 0 1 "${NGINX_PIDS[@]}"
    done
    for round in $(seq 1 "$ROUNDS"); do
        for endpoint in plaintext user echo; do
            for target in $(rotate "$round" gateway nginx); do
                if [ "$target" = nginx ]; then
                    measure gateway "$endpoint" nginx "$round" "$DURATION" "${NGINX_PIDS[@]}"
                else
                    measure gateway "$endpoint" gateway "$round" "$DURATION" "${PID_OF[gateway]}"
                fi
            done
        done
    done
fi

echo
if [ "$ONLY" != gateway ]; then
    echo "| endpoint | microkit req/s | axum req/s | raw hyper req/s | microkit / axum req/s | microkit / axum CPU per request | microkit / raw hyper req/s |"
    echo "|---|---|---|---|---|---|---|"
    for endpoint in plaintext json user echo github; do
        mk=$(stat servers "$endpoint" microkit 5)
        ax=$(stat servers "$endpoint" axum 5)
        hy=$(stat servers "$endpoint" hyper 5)
        mk_cpu=$(stat servers "$endpoint" microkit 6)
        ax_cpu=$(stat servers "$endpoint" axum 6)
        printf '| %s | %.0f | %.0f | %.0f | %s | %s | %s |\n' "$endpoint" "$mk" "$ax" "$hy" \
            "$(ratio "$mk" "$ax")" "$(ratio "$mk_cpu" "$ax_cpu")" "$(ratio "$mk" "$hy")"
    done
    echo
fi
if [ "$ONLY" != servers ]; then
    echo "| endpoint | gateway req/s | nginx req/s | gateway / nginx req/s | gateway CPU us/req | nginx CPU us/req | gateway / nginx CPU per request |"
    echo "|---|---|---|---|---|---|---|"
    for endpoint in plaintext user echo; do
        gw=$(stat gateway "$endpoint" gateway 5)
        ng=$(stat gateway "$endpoint" nginx 5)
        gw_cpu=$(stat gateway "$endpoint" gateway 6)
        ng_cpu=$(stat gateway "$endpoint" nginx 6)
        printf '| %s | %.0f | %.0f | %s | %.1f | %.1f | %s |\n' "$endpoint" "$gw" "$ng" \
            "$(ratio "$gw" "$ng")" "$gw_cpu" "$ng_cpu" "$(ratio "$gw_cpu" "$ng_cpu")"
    done
fi
