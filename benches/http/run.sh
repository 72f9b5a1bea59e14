#!/usr/bin/env bash
# End-to-end HTTP benchmarks over real sockets (issue 9): microkit's bench_server against an
# axum and a raw hyper twin, and microkit's Gateway against nginx, each in front of the same
# axum upstream. Servers run pinned to CPU 0, wrk to CPU 1; rounds interleave the targets;
# the table shows medians of requests per second and of server CPU microseconds per request
# (utime + stime from /proc/<pid>/stat). nginx runs twice: with the forwarding fields an nginx
# deployment sends, and with the gateway's own three added (see write_nginx_conf), so that the
# upstream parses the same request from both proxies; the upstream's CPU per request is shown.
#
# Needs wrk and nginx (Debian: apt-get install wrk nginx-light), taskset (util-linux), curl
# and cargo. Installs nothing. Not part of `cargo test` or .ci/run: a full run takes about
# five minutes.
#
#   benches/http/run.sh [--rounds N] [--duration SECONDS] [--connections N]
#                       [--only servers|gateway] [--port-base PORT] [--no-build] [--control]
#
# --control runs a second raw hyper server among the servers' targets, and a second nginx
# among the proxies, and shows each against its twin: the ratio one run gives two identical
# servers, the noise floor of the others.
set -euo pipefail

ROUNDS=3
DURATION=4
CONNECTIONS=64
ONLY=all
PORT_BASE=18080
BUILD=1
CONTROL=0

usage() {
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
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
        --control) CONTROL=1; shift ;;
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

# The CPU ticks processes (all their threads; for nginx, the master and its worker) have
# used: "total user", user time being the proxy's own code and system time the kernel's work
# for it (the sockets, on loopback both ends of each).
cpu_ticks() {
    local total=0 user=0 pid
    for pid in "$@"; do
        # Fields 14 (utime) and 15 (stime), counted after the ")" that ends the command name.
        local fields
        fields=$(sed 's/.*) //' "/proc/$pid/stat")
        set -- $fields
        total=$((total + ${12} + ${13}))
        user=$((user + ${12}))
    done
    echo "$total $user"
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

# measure SUITE ENDPOINT TARGET ROUND SECONDS PID...: one wrk run, one line of results:
# requests per second, CPU microseconds per request of the PIDs, of UPSTREAM_PID (the server
# behind a proxy; 0 when unset), and the PIDs' user-space share of theirs.
UPSTREAM_PID=
measure() {
    local suite=$1 endpoint=$2 target=$3 round=$4 seconds=$5
    shift 5
    local port=${PORT_OF[$target]}
    local args=(-t1 "-c$CONNECTIONS" "-d${seconds}s")
    [ -n "${SCRIPT_OF[$endpoint]:-}" ] && args+=(-s "${SCRIPT_OF[$endpoint]}")
    local before after output up_before=0 up_after=0 ticks user
    before=($(cpu_ticks "$@"))
    [ -n "$UPSTREAM_PID" ] && up_before=$(cpu_ticks "$UPSTREAM_PID" | cut -d' ' -f1)
    output=$(taskset -c "$LOAD_CPU" wrk "${args[@]}" "http://127.0.0.1:$port${PATH_OF[$endpoint]}")
    after=($(cpu_ticks "$@"))
    [ -n "$UPSTREAM_PID" ] && up_after=$(cpu_ticks "$UPSTREAM_PID" | cut -d' ' -f1)
    ticks=$((after[0] - before[0]))
    user=$((after[1] - before[1]))
    local rps requests errors
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$output")
    requests=$(awk '/requests in/ {print $1}' <<<"$output")
    errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$output")
    if [ -n "$errors" ]; then
        echo "  warning: $target $endpoint: $errors" >&2
    fi
    [ "$round" = 0 ] && return 0
    awk -v s="$suite" -v e="$endpoint" -v t="$target" -v r="$round" -v rps="$rps" \
        -v req="$requests" -v ticks="$ticks" -v up=$((up_after - up_before)) -v user="$user" -v hz="$TICKS" \
        'BEGIN { n = req > 0 ? req : 1; printf "%s %s %s %s %.0f %.2f %.2f %.2f\n", s, e, t, r, rps, ticks / hz * 1e6 / n, up / hz * 1e6 / n, user / hz * 1e6 / n }' \
        >>"$RESULTS"
    printf '  round %s %-9s %-14s %9.0f req/s %7.2f us/req\n' "$round" "$endpoint" "$target" \
        "$rps" "$(awk -v t="$ticks" -v hz="$TICKS" -v req="$requests" 'BEGIN { print t / hz * 1e6 / (req > 0 ? req : 1) }')"
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

# stat SUITE ENDPOINT TARGET FIELD (5 = req/s, 6 = CPU us/req, 7 = upstream's CPU us/req,
# 8 = user-space CPU us/req)
stat() {
    awk -v s="$1" -v e="$2" -v t="$3" -v f="$4" '$1 == s && $2 == e && $3 == t { print $f }' "$RESULTS" | median
}

# paired SUITE ENDPOINT A B FIELD: A's figure over B's, round by round (the two ran minutes
# apart at most, so a machine that drifts between rounds moves both), as "median (lowest-highest)":
# the spread says how far one run's ratio can be trusted.
paired() {
    awk -v s="$1" -v e="$2" -v a="$3" -v b="$4" -v f="$5" '
        $1 == s && $2 == e && $3 == a { x[$4] = $f }
        $1 == s && $2 == e && $3 == b { y[$4] = $f }
        END { for (r in x) if ((r in y) && y[r] > 0) print x[r] / y[r] }' "$RESULTS" |
        sort -n | awk '{ v[NR] = $1 }
            END {
                if (NR == 0) { print "-"; exit }
                m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                printf "%.2f (%.2f-%.2f)", m, v[1], v[NR]
            }'
}

# control_table TITLE SUITE A B ENDPOINTS...: A against its twin B (--control), endpoint by
# endpoint.
control_table() {
    local title=$1 suite=$2 a=$3 b=$4 endpoint
    shift 4
    echo "Control, $title (1.00 on a quiet machine):"
    echo
    echo "| endpoint | req/s | CPU per request |"
    echo "|---|---|---|"
    for endpoint in "$@"; do
        printf '| %s | %s | %s |\n' "$endpoint" "$(paired "$suite" "$endpoint" "$a" "$b" 5)" \
            "$(paired "$suite" "$endpoint" "$a" "$b" 6)"
    done
}

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds, servers on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU"

P=$PORT_BASE
if [ "$ONLY" != gateway ]; then
    start microkit $((P + 0)) "$BIN/bench_server" --listen "127.0.0.1:$((P + 0))" --threads 1
    start axum $((P + 1)) "$BIN/bench_axum" --listen "127.0.0.1:$((P + 1))" --threads 1
    start hyper $((P + 2)) "$BIN/bench_hyper" --listen "127.0.0.1:$((P + 2))" --threads 1
    SERVERS=(microkit axum hyper)
    if [ "$CONTROL" = 1 ]; then
        start control $((P + 7)) "$BIN/bench_hyper" --listen "127.0.0.1:$((P + 7))" --threads 1
        SERVERS+=(control)
    fi
    for endpoint in plaintext json user echo; do
        same_answers "$endpoint" "${SERVERS[@]}"
    done
    ENDPOINTS=(plaintext json user echo github)
    echo "warming up..."
    for target in "${SERVERS[@]}"; do
        for endpoint in "${ENDPOINTS[@]}"; do
            measure servers "$endpoint" "$target" 0 1 "${PID_OF[$target]}"
        done
    done
    for round in $(seq 1 "$ROUNDS"); do
        for endpoint in "${ENDPOINTS[@]}"; do
            for target in $(rotate "$round" "${SERVERS[@]}"); do
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
    # nginx's master forks the worker that does the proxying: count both.
    declare -A PROXY_PIDS=([gateway]="${PID_OF[gateway]}")
    PROXIES=(gateway nginx nginx_fields)
    [ "$CONTROL" = 1 ] && PROXIES+=(nginx_control)
    for name in "${PROXIES[@]:1}"; do
        case "$name" in
            nginx) fields=usual port=$((P + 5)) ;;
            nginx_fields) fields=gateway port=$((P + 6)) ;;
            nginx_control) fields=usual port=$((P + 8)) ;;
        esac
        write_nginx_conf "$WORK/$name" "$port" "$UPSTREAM" on "$fields"
        start "$name" "$port" "$NGINX" -p "$WORK/$name" -c "$WORK/$name/nginx.conf" -e "$WORK/$name/logs/error.log"
        PROXY_PIDS[$name]="${PID_OF[$name]} $(ps -o pid= --ppid "${PID_OF[$name]}" | tr '\n' ' ')"
    done
    for endpoint in plaintext user echo; do
        same_answers "$endpoint" upstream "${PROXIES[@]}"
    done
    UPSTREAM_PID=${PID_OF[upstream]}
    echo "warming up..."
    for endpoint in plaintext user echo; do
        for target in "${PROXIES[@]}"; do
            # shellcheck disable=SC2086 # the pids are words
            measure gateway "$endpoint" "$target" 0 1 ${PROXY_PIDS[$target]}
        done
    done
    for round in $(seq 1 "$ROUNDS"); do
        for endpoint in plaintext user echo; do
            for target in $(rotate "$round" "${PROXIES[@]}"); do
                # shellcheck disable=SC2086
                measure gateway "$endpoint" "$target" "$round" "$DURATION" ${PROXY_PIDS[$target]}
            done
        done
    done
    UPSTREAM_PID=
fi

echo
if [ "$ONLY" != gateway ]; then
    echo "| endpoint | microkit req/s | axum req/s | raw hyper req/s | microkit / axum req/s | microkit / axum CPU per request | microkit / raw hyper req/s | microkit / raw hyper CPU per request | CPU us/req (user) microkit / raw hyper |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for endpoint in plaintext json user echo github; do
        mk=$(stat servers "$endpoint" microkit 5)
        ax=$(stat servers "$endpoint" axum 5)
        hy=$(stat servers "$endpoint" hyper 5)
        printf '| %s | %.0f | %.0f | %.0f | %s | %s | %s | %s | %.1f (%.1f) / %.1f (%.1f) |\n' "$endpoint" "$mk" "$ax" "$hy" \
            "$(paired servers "$endpoint" microkit axum 5)" "$(paired servers "$endpoint" microkit axum 6)" \
            "$(paired servers "$endpoint" microkit hyper 5)" "$(paired servers "$endpoint" microkit hyper 6)" \
            "$(stat servers "$endpoint" microkit 6)" "$(stat servers "$endpoint" microkit 8)" \
            "$(stat servers "$endpoint" hyper 6)" "$(stat servers "$endpoint" hyper 8)"
    done
    echo
    if [ "$CONTROL" = 1 ]; then
        control_table "raw hyper / a second raw hyper" servers hyper control plaintext json user echo github
        echo
    fi
fi
if [ "$ONLY" != servers ]; then
    echo "| endpoint | gateway req/s | nginx req/s | gateway / nginx req/s | gateway CPU us/req (user) | nginx CPU us/req (user) | gateway / nginx CPU per request | upstream CPU us/req behind gateway / nginx |"
    echo "|---|---|---|---|---|---|---|---|"
    for endpoint in plaintext user echo; do
        gw=$(stat gateway "$endpoint" gateway 5)
        ng=$(stat gateway "$endpoint" nginx 5)
        gw_cpu=$(stat gateway "$endpoint" gateway 6)
        ng_cpu=$(stat gateway "$endpoint" nginx 6)
        printf '| %s | %.0f | %.0f | %s | %.1f (%.1f) | %.1f (%.1f) | %s | %.1f / %.1f |\n' "$endpoint" "$gw" "$ng" \
            "$(paired gateway "$endpoint" gateway nginx 5)" "$gw_cpu" "$(stat gateway "$endpoint" gateway 8)" \
            "$ng_cpu" "$(stat gateway "$endpoint" nginx 8)" "$(paired gateway "$endpoint" gateway nginx 6)" \
            "$(stat gateway "$endpoint" gateway 7)" "$(stat gateway "$endpoint" nginx 7)"
    done
    echo
    echo "nginx sending the gateway's fields too (the same request reaches the upstream):"
    echo
    echo "| endpoint | nginx (gateway's fields) req/s | gateway / nginx req/s | nginx CPU us/req (user) | gateway / nginx CPU per request | upstream CPU us/req behind nginx |"
    echo "|---|---|---|---|---|---|"
    for endpoint in plaintext user echo; do
        ng=$(stat gateway "$endpoint" nginx_fields 5)
        ng_cpu=$(stat gateway "$endpoint" nginx_fields 6)
        printf '| %s | %.0f | %s | %.1f (%.1f) | %s | %.1f |\n' "$endpoint" "$ng" "$(paired gateway "$endpoint" gateway nginx_fields 5)" \
            "$ng_cpu" "$(stat gateway "$endpoint" nginx_fields 8)" "$(paired gateway "$endpoint" gateway nginx_fields 6)" "$(stat gateway "$endpoint" nginx_fields 7)"
    done
    if [ "$CONTROL" = 1 ]; then
        echo
        control_table "nginx / a second nginx" gateway nginx nginx_control plaintext user echo
    fi
fi
