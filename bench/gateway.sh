#!/usr/bin/env bash
# Gateway overhead benchmark (see bench/README.md).
#
# Runs the whole suite in one process (.build/release/suite), registers one
# tenant, then measures, in one run, each time against baselines measured in
# the same run:
#
# (Ports below are those of the default PORT_BASE=18080.)
# 1. Suite: the authenticated GET /api/auth/me three ways (wrk):
#      direct   http://127.0.0.1:18081/api/auth/me  (auth service itself)
#      nginx    http://127.0.0.1:18090/api/auth/me  (nginx reverse proxy -> auth)
#      gateway  http://127.0.0.1:18080/api/auth/me  (the suite's gateway -> auth)
#    in ROUNDS rounds: each round measures each target once, the order rotating (round 1: direct
#    nginx gateway, 2: nginx gateway direct, 3: gateway direct nginx, ...), after one warm-up per
#    target before round 1. The summary gives per target the median and min-max of the rounds,
#    ratios of the medians and ratios within each round; the goal line (gateway/nginx >= 1.00)
#    uses the median of the per-round ratios, so drift during the run (PostgreSQL warming up,
#    autovacuum, other load) no longer decides it by falling on one row.
# 2. Static upstream: a second nginx answers every request with a constant
#    {"ok":true} (:18091); the same wrk settings against it directly and
#    through three proxies:
#      static          :18091  no proxy: the upstream's own ceiling
#      nginx-static    :18092  nginx, keep-alive upstream
#      haproxy-static  :18093  HAProxy, mode http, http-reuse always
#      gw-static       :18094  a separate gateway process (GATEWAY_BIN) whose four
#                              upstream URLs all point at the static nginx:
#                              GET /api/payments/plans (public: limiter, no token)
#      gw-static-auth  :18094  same process, GET /api/auth/me with the JWT
#                              (token check against the suite's JWKS + tenant limiter)
# 3. Latency at a fixed rate: half of nginx's median req/s from 1 (or FIXED_RATE), with hey
#    (-c RATE_CONNECTIONS, -q per worker): the static nginx once (the load generator's own
#    floor), then ROUNDS rounds of direct, nginx -> auth and gateway in the same rotating order;
#    per round "p99 added = gateway p99 - direct p99" (and nginx's); the goal line (< 1 ms) uses
#    the median of the rounds.
# 4. VmRSS/VmHWM of the separate gateway process before and after its load runs.
# 5. SHARED_LIMITS_URL set: one more gateway process with
#    GATEWAY_DATABASE_URL=$SHARED_LIMITS_URL (:18095), measured like gw-static.
# 6. PROFILE=perf or PROFILE=callgrind (optional, see below).
# CPU per request: around every measured wrk run (sections 1, 2, 5) bench/proc_cpu.py reads utime
# and stime (/proc/PID/stat fields 14 and 15, all threads) of each process group: the suite, its
# PostgreSQL (postmaster + its children), the proxy nginx's workers, the static nginx's worker,
# HAProxy, the separate gateways; the summary gives user and system microseconds of CPU per
# answered request per group, and "proxy CPU per request": section 1, the suite's CPU/request in
# the gateway row minus in the direct row (the gateway runs inside the suite) against nginx's
# workers in the nginx row; section 2, the separate gateway against nginx's workers and HAProxy.
# A summary with tables and ratios is printed and saved; raw tool output goes
# to bench/out/ (re-print a summary with bench/gateway_report.py <manifest>).
#
# Usage (from anywhere, usually the repo root):
#   bench/gateway.sh                       # builds suite and gateway first, as the Dockerfile does
#                                          # (release, --static-swift-stdlib: bench/lib.sh build_release)
#   BENCH_SKIP_BUILD=1 bench/gateway.sh    # use the existing release build
#   BENCH_SKIP_BUILD=1 DURATION=3 WARMUP=1 ROUNDS=2 bench/gateway.sh   # quick check of the script
#   BENCH_SKIP_BUILD=1 PORT_BASE=28080 bench/gateway.sh                 # beside something on 18080-18099
# Environment:
#   THREADS (2) CONNECTIONS (64) DURATION (10, seconds) WARMUP (3, seconds)
#                           wrk settings for every throughput row (sections 1, 2, 5)
#   ROUNDS (3)              rounds of sections 1 and 3 (each: direct, nginx, gateway once)
#   PORT_BASE (18080)       every port is PORT_BASE + its offset (0-19, below), so two runs, or a
#                           run and a developer's lab, can coexist: e.g. PORT_BASE=28080
#   PROXY_WORKERS           nginx worker_processes and HAProxy nbthread (default: CPU count,
#                           what nginx's "auto" picks)
#   STATIC_WORKERS (1)      worker_processes of the static nginx upstream
#   RATE_CONNECTIONS (16)   hey workers (connections) for the fixed-rate section
#   FIXED_RATE              total req/s for the fixed-rate section (default: half of the
#                           nginx row's median req/s); set it to compare runs at the same rate
#   RATE_DURATION           seconds per fixed-rate run (default DURATION)
#   SHARED_LIMITS (1)       0 skips the shared-limit row; otherwise it runs against SHARED_LIMITS_URL,
#                           or a database made in the suite's own cluster (needs psql)
#   SHARED_LIMITS_URL       PostgreSQL URL; when set, a gateway with GATEWAY_DATABASE_URL set to
#                           it (shared-limit mode) is measured beside the local-limit one
#   PROFILE                 empty (default), perf or callgrind:
#                             perf       perf record (call graphs) of the separate gateway during
#                                        its measured PROFILE_TARGET run; prints the top 30 symbols
#                             callgrind  at the end, one more gateway (:18096) under
#                                        valgrind --tool=callgrind serves CALLGRIND_REQUESTS
#                                        requests (after CALLGRIND_WARMUP); prints total Ir,
#                                        Ir per request and the top 30 functions
#   PROFILE_TARGET (static) static = GET /api/payments/plans, auth = GET /api/auth/me with the JWT
#   PERF_EVENT              perf event (default cycles, or cpu-clock where the CPU counters
#                           are not available, as in most VMs)
#   CALLGRIND_REQUESTS (20000) CALLGRIND_WARMUP (500) CALLGRIND_CONNECTIONS (8)
#   BENCH_SKIP_BUILD=1      use the existing release build
#   SUITE_BIN               suite binary (default .build/release/suite)
#   GATEWAY_BIN             gateway binary (default: `gateway` next to SUITE_BIN)
#   BENCH_HEALTH_TIMEOUT    seconds to wait for the suite or a gateway to start (120)
#   BENCH_OUT_DIR           where results go (bench/out)
#   LOG_LEVEL etc.          inherited by the suite and the gateways like any other variable
# Ports (all on 127.0.0.1, checked free first), as PORT_BASE + offset: suite +0 to +4 (its
# gateway's admin listener +5), its PostgreSQL +9, nginx +10 (-> auth) and +12 (-> static), static
# nginx +11, HAProxy +13, separate gateways +14 (local limits), +15 (shared limits), +16
# (callgrind) with admin listeners +17 to +19. With the default 18080: 18080-18099.
# Requires: wrk, hey, nginx, haproxy, curl, python3 (apt-get install -y wrk hey nginx haproxy);
# perf (linux-perf) for PROFILE=perf; valgrind, binutils and a C compiler for PROFILE=callgrind.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH_DIR="bench"

THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-3}"
HEALTH_TIMEOUT="${BENCH_HEALTH_TIMEOUT:-120}"
SUITE_BIN="${SUITE_BIN:-.build/release/suite}"
GATEWAY_BIN="${GATEWAY_BIN:-$(dirname "$SUITE_BIN")/gateway}"
OUT_DIR="${BENCH_OUT_DIR:-bench/out}"
PROXY_WORKERS="${PROXY_WORKERS:-$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)}"
STATIC_WORKERS="${STATIC_WORKERS:-1}"
RATE_CONNECTIONS="${RATE_CONNECTIONS:-16}"
FIXED_RATE="${FIXED_RATE:-}"
RATE_DURATION="${RATE_DURATION:-$DURATION}"
SHARED_LIMITS_URL="${SHARED_LIMITS_URL:-}"
PROFILE="${PROFILE:-}"
PROFILE_TARGET="${PROFILE_TARGET:-static}"
PERF_EVENT="${PERF_EVENT:-}"
CALLGRIND_REQUESTS="${CALLGRIND_REQUESTS:-20000}"
CALLGRIND_WARMUP="${CALLGRIND_WARMUP:-500}"
CALLGRIND_CONNECTIONS="${CALLGRIND_CONNECTIONS:-8}"
PORT_BASE="${PORT_BASE:-18080}"
ROUNDS="${ROUNDS:-3}"

HOST=127.0.0.1
# Every limiter scope this high: the limiter runs on every request but never rejects one.
NO_LIMIT=1000000000

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

for v in THREADS CONNECTIONS DURATION WARMUP HEALTH_TIMEOUT PROXY_WORKERS STATIC_WORKERS RATE_CONNECTIONS \
    RATE_DURATION CALLGRIND_REQUESTS CALLGRIND_WARMUP CALLGRIND_CONNECTIONS ROUNDS PORT_BASE; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
(( PORT_BASE >= 1024 && PORT_BASE <= 65535 - 19 )) \
    || die "PORT_BASE must be from 1024 to 65516 (got $PORT_BASE): the script uses PORT_BASE to PORT_BASE+19"
# Every port is PORT_BASE + a fixed offset (with the default 18080: 18080-18099). Admin listeners
# (/metrics, detailed /health) of the gateways that have one; each needs its own port.
GATEWAY_PORT=$((PORT_BASE + 0))
AUTH_PORT=$((PORT_BASE + 1))
TENANCY_PORT=$((PORT_BASE + 2))
BILLING_PORT=$((PORT_BASE + 3))
CHAT_PORT=$((PORT_BASE + 4))
SUITE_ADMIN_PORT=$((PORT_BASE + 5))
PG_PORT=$((PORT_BASE + 9))
NGINX_PORT=$((PORT_BASE + 10))
STATIC_PORT=$((PORT_BASE + 11))
NGINX_STATIC_PORT=$((PORT_BASE + 12))
HAPROXY_PORT=$((PORT_BASE + 13))
GW_LOCAL_PORT=$((PORT_BASE + 14))
GW_SHARED_PORT=$((PORT_BASE + 15))
GW_CALLGRIND_PORT=$((PORT_BASE + 16))
GW_LOCAL_ADMIN_PORT=$((PORT_BASE + 17))
GW_SHARED_ADMIN_PORT=$((PORT_BASE + 18))
GW_CALLGRIND_ADMIN_PORT=$((PORT_BASE + 19))
(( THREADS <= CONNECTIONS )) || die "THREADS ($THREADS) must not exceed CONNECTIONS ($CONNECTIONS)"
(( CALLGRIND_CONNECTIONS <= CALLGRIND_REQUESTS && CALLGRIND_CONNECTIONS <= CALLGRIND_WARMUP )) \
    || die "CALLGRIND_CONNECTIONS ($CALLGRIND_CONNECTIONS) must not exceed CALLGRIND_REQUESTS or CALLGRIND_WARMUP"
if [[ -n "$FIXED_RATE" ]]; then
    if ! [[ "$FIXED_RATE" =~ ^[0-9]+([.][0-9]+)?$ ]] || ! awk -v r="$FIXED_RATE" 'BEGIN { exit !(r > 0) }'; then
        die "FIXED_RATE must be a positive number of requests per second (got '$FIXED_RATE')"
    fi
fi
case "$PROFILE" in
    "" | none) PROFILE="" ;;
    perf | callgrind) ;;
    *) die "PROFILE must be perf, callgrind or empty (got '$PROFILE')" ;;
esac
case "$PROFILE_TARGET" in
    static | auth) ;;
    *) die "PROFILE_TARGET must be static or auth (got '$PROFILE_TARGET')" ;;
esac

# --- tools ------------------------------------------------------------------
NGINX_BIN="${NGINX_BIN:-$(command -v nginx || true)}"
if [[ -z "$NGINX_BIN" && -x /usr/sbin/nginx ]]; then NGINX_BIN=/usr/sbin/nginx; fi
HAPROXY_BIN="${HAPROXY_BIN:-$(command -v haproxy || true)}"
if [[ -z "$HAPROXY_BIN" && -x /usr/sbin/haproxy ]]; then HAPROXY_BIN=/usr/sbin/haproxy; fi
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v hey >/dev/null 2>&1 || missing+=(hey)
[[ -n "$NGINX_BIN" && -x "$NGINX_BIN" ]] || missing+=(nginx)
[[ -n "$HAPROXY_BIN" && -x "$HAPROXY_BIN" ]] || missing+=(haproxy)
if [[ "$PROFILE" == perf ]] && ! command -v perf >/dev/null 2>&1; then missing+=(linux-perf); fi
if [[ "$PROFILE" == callgrind ]]; then
    for t in valgrind callgrind_control callgrind_annotate; do
        command -v "$t" >/dev/null 2>&1 || { missing+=(valgrind); break; }
    done
    command -v objcopy >/dev/null 2>&1 || missing+=(binutils)
    command -v cc >/dev/null 2>&1 || missing+=(gcc)
fi
if (( ${#missing[@]} > 0 )); then
    printf '[bench] missing: %s\n' "${missing[*]}" >&2
    printf '[bench] install with: sudo apt-get install -y %s\n' "${missing[*]}" >&2
    exit 1
fi
for t in curl python3 awk; do
    command -v "$t" >/dev/null 2>&1 || die "$t is required"
done
[[ -r /proc/self/status ]] || die "/proc is required (Linux) to read the gateway's memory"
# Swift symbols in profiles are easier to read demangled; the toolchain ships the demangler.
if command -v swift-demangle >/dev/null 2>&1; then
    demangle() { swift-demangle --simplified; }
else
    demangle() { cat; }
fi

# --- state and cleanup --------------------------------------------------------
# Background processes, stopped in reverse order of start on exit (the suite last).
BG_NAMES=()
BG_PIDS=()
BG_LOGS=()
SUITE_PID=""
CHILD_PID=""
PERF_PID=""
TMP_DIR=""
DATA_DIR=""
SUITE_LOG=""
STAMP="$(date +%Y%m%d-%H%M%S)"

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [[ -n "$CHILD_PID" ]]; then
        stop_process "$CHILD_PID" "current step" 10
    fi
    if [[ -n "$PERF_PID" ]]; then
        stop_process "$PERF_PID" "perf record" 30 INT
    fi
    local i pg died=()
    for (( i = 0; i < ${#BG_PIDS[@]}; i++ )); do
        proc_running "${BG_PIDS[$i]}" || died+=("$i")
    done
    for (( i = ${#BG_PIDS[@]} - 1; i >= 0; i-- )); do
        if [[ "${BG_PIDS[$i]}" == "$SUITE_PID" ]]; then
            stop_process "${BG_PIDS[$i]}" "${BG_NAMES[$i]}" 60
        else
            stop_process "${BG_PIDS[$i]}" "${BG_NAMES[$i]}" 30
        fi
    done
    if pg="$(postmaster_pid "$DATA_DIR")" && proc_running "$pg"; then
        # Left behind (suite killed before it could stop it): fast shutdown.
        stop_process "$pg" "PostgreSQL postmaster" 30 INT
    fi
    if (( rc != 0 )); then
        # Keep every log; show the end of those whose process died (else of the suite's).
        mkdir -p "$OUT_DIR"
        (( ${#died[@]} > 0 )) || died=(0)
        for (( i = 0; i < ${#BG_PIDS[@]}; i++ )); do
            local file="${BG_LOGS[$i]}" name="${BG_NAMES[$i]}"
            [[ -n "$file" && -s "$file" ]] || continue
            cp "$file" "$OUT_DIR/$STAMP-$name.log"
            # Ctrl-C reaches the whole process group: then the early exits are expected.
            if (( rc != 130 && rc != 143 )) && [[ " ${died[*]} " == *" $i "* ]]; then
                log "last lines of the $name log (full log: $OUT_DIR/$STAMP-$name.log):"
                tail -n 30 "$file" >&2
            fi
        done
        if [[ -n "$TMP_DIR" && -s "$TMP_DIR/nginx/error.log" ]]; then
            log "nginx error log:"
            tail -n 20 "$TMP_DIR/nginx/error.log" >&2
        fi
    fi
    [[ -n "$TMP_DIR" ]] && rm -rf "$TMP_DIR"
    [[ -n "$DATA_DIR" ]] && rm -rf "$DATA_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# expect_200 NAME URL [curl args...]: one request; dies unless it answers 200.
expect_200() {
    local name="$1" url="$2" code
    shift 2
    code="$(curl -sS --max-time 60 -o "$TMP_DIR/check.out" -w '%{http_code}' "$@" "$url")" \
        || die "$name: request to $url failed"
    [[ "$code" == 200 ]] || die "$name: $url answered HTTP $code: $(head -c 500 "$TMP_DIR/check.out")"
    log "$name: $url -> 200"
}

# One line per result, tab-separated, for bench/gateway_report.py.
record() {
    local IFS=$'\t'
    printf '%s\n' "$*" >>"$MANIFEST"
}

ports=("$GATEWAY_PORT" "$AUTH_PORT" "$TENANCY_PORT" "$BILLING_PORT" "$CHAT_PORT" "$SUITE_ADMIN_PORT" "$PG_PORT" \
    "$NGINX_PORT" "$STATIC_PORT" "$NGINX_STATIC_PORT" "$HAPROXY_PORT" "$GW_LOCAL_PORT" "$GW_LOCAL_ADMIN_PORT")
[[ -n "$SHARED_LIMITS_URL" ]] && ports+=("$GW_SHARED_PORT" "$GW_SHARED_ADMIN_PORT")
[[ "$PROFILE" == callgrind ]] && ports+=("$GW_CALLGRIND_PORT" "$GW_CALLGRIND_ADMIN_PORT")
for p in "${ports[@]}"; do
    port_free "$p" || die "port $p on $HOST is already in use; stop whatever listens there"
done

if [[ "$PROFILE" == perf ]]; then
    if [[ -z "$PERF_EVENT" ]]; then
        # Hardware counters are often missing in VMs; the kernel's timer works everywhere.
        if perf stat -x, -e cycles true 2>&1 | grep -q -e '<not supported>' -e '<not counted>'; then
            PERF_EVENT=cpu-clock
        else
            PERF_EVENT=cycles
        fi
    fi
fi

# --- build ------------------------------------------------------------------
if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    build_release suite gateway
fi
[[ -x "$SUITE_BIN" ]] || die "suite binary not found at $SUITE_BIN (build it, or set SUITE_BIN)"
[[ -x "$GATEWAY_BIN" ]] \
    || die "gateway binary not found at $GATEWAY_BIN (build_release in bench/lib.sh, or set GATEWAY_BIN)"

TMP_DIR="$(mktemp -d -t gateway-bench.XXXXXX)"
DATA_DIR="$(mktemp -d -t gateway-bench-data.XXXXXX)"
# When run as root, the suite hands the cluster to the postgres user, who must be able to enter this folder.
chmod 755 "$DATA_DIR"
SUITE_LOG="$TMP_DIR/suite.log"
mkdir -p "$OUT_DIR"
if [[ "$PROFILE" == perf ]]; then
    perf record -q -e "$PERF_EVENT" -g -o "$TMP_DIR/probe.perf.data" -- true >"$TMP_DIR/perf.log" 2>&1 \
        || die "perf record -e $PERF_EVENT does not work here (root? kernel.perf_event_paranoid?): $(tail -n 3 "$TMP_DIR/perf.log")"
fi
MANIFEST="$OUT_DIR/$STAMP-manifest.tsv"
: >"$MANIFEST"
record meta stamp "$STAMP"
record meta started "$(date '+%Y-%m-%d %H:%M:%S')"
record meta cpus "$(nproc 2>/dev/null || echo '?')"
record meta wrk "-t$THREADS -c$CONNECTIONS -d${DURATION}s (warm-up ${WARMUP}s)"
record meta port_base "$PORT_BASE"
record meta load_before "$(cut -d " " -f 1-3 /proc/loadavg)"
record meta proxy_workers "$PROXY_WORKERS"
record meta static_workers "$STATIC_WORKERS"
record meta suite_bin "$SUITE_BIN"
record meta gateway_bin "$GATEWAY_BIN"
record meta log_level "${LOG_LEVEL:-info (default)}"

# --- suite ------------------------------------------------------------------
log "starting $SUITE_BIN (data in $DATA_DIR, log in $SUITE_LOG)"
# The limits are huge so that the limiter still runs on every request (its cost
# is part of what we measure) but never rejects one.
start_bg suite "$SUITE_LOG" env DATA_DIR="$DATA_DIR" PG_PORT="$PG_PORT" \
    GATEWAY_PORT="$GATEWAY_PORT" AUTH_PORT="$AUTH_PORT" TENANCY_PORT="$TENANCY_PORT" \
    BILLING_PORT="$BILLING_PORT" CHAT_PORT="$CHAT_PORT" GATEWAY_ADMIN_PORT="$SUITE_ADMIN_PORT" \
    BCRYPT_COST=10 \
    RATE_LIMIT_TENANT_PER_MINUTE="$NO_LIMIT" TENANT_DEFAULT_RATE_LIMIT_PER_MINUTE=1000000 \
    "$SUITE_BIN"
SUITE_PID=$LAST_PID

log "waiting up to ${HEALTH_TIMEOUT}s for http://$HOST:$GATEWAY_PORT/health"
wait_for_http "http://$HOST:$GATEWAY_PORT/health" "$SUITE_PID" suite "$HEALTH_TIMEOUT"
log "suite is healthy"
# The suite's PostgreSQL (started through pg_ctl, so not our child): its postmaster and backends are
# one group of the CPU table.
PG_PID="$(postmaster_pid "$DATA_DIR")" || { PG_PID=""; log "no postmaster.pid under $DATA_DIR: PostgreSQL's CPU is not measured"; }

# --- tenant + token -----------------------------------------------------------
RAND="$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
REGISTER_BODY="$(python3 -c '
import json, sys
r = sys.argv[1]
print(json.dumps({"email": f"bench-{r}@example.com", "password": "BenchPass123", "account_name": f"Bench {r}"}))
' "$RAND")"
code="$(curl -sS --max-time 30 -o "$TMP_DIR/register.json" -w '%{http_code}' \
    -H 'Content-Type: application/json' --data "$REGISTER_BODY" \
    "http://$HOST:$GATEWAY_PORT/api/onboarding/register")" || die "registration request failed"
[[ "$code" == 2?? ]] || die "registration answered HTTP $code: $(head -c 500 "$TMP_DIR/register.json")"

TOKEN="$(python3 - "$TMP_DIR/register.json" <<'PY'
import json, sys

def find(node):
    """First "access_token" string anywhere in the JSON document."""
    if isinstance(node, dict):
        value = node.get("access_token")
        if isinstance(value, str) and value:
            return value
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = find(child)
        if found:
            return found
    return None

with open(sys.argv[1]) as f:
    token = find(json.load(f))
if not token:
    sys.exit("no access_token in the registration response")
print(token)
PY
)" || die "could not extract access_token: $(head -c 500 "$TMP_DIR/register.json")"
log "registered bench-$RAND@example.com"
AUTH_HEADER="Authorization: Bearer $TOKEN"

# --- nginx: static upstream, then the proxy instance ------------------------------
STATIC_DIR="$TMP_DIR/static"
mkdir -p "$STATIC_DIR"
{
    nginx_common "$STATIC_DIR" "$STATIC_WORKERS"
    cat <<EOF

http {
$(nginx_temp_paths "$STATIC_DIR")
    keepalive_requests 1000000;
    keepalive_timeout 300s;

    server {
        listen $HOST:$STATIC_PORT;
        default_type application/json;
        location / {
            return 200 '{"ok":true}';
        }
    }
}
EOF
} >"$STATIC_DIR/nginx.conf"
log "starting the static upstream (nginx, $STATIC_WORKERS worker(s)) on $HOST:$STATIC_PORT"
start_nginx static-nginx "$STATIC_DIR" "$STATIC_PORT"
STATIC_NGINX_PID=$LAST_PID

NGX="$TMP_DIR/nginx"
mkdir -p "$NGX"
nginx_proxy_server() {
    local port="$1" upstream="$2"
    cat <<EOF
    server {
        listen $HOST:$port;
        # Do not close wrk's connections every 1000 requests (the default).
        keepalive_requests 1000000;

        location / {
            proxy_pass http://$upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
EOF
}
{
    nginx_common "$NGX" "$PROXY_WORKERS"
    cat <<EOF

http {
$(nginx_temp_paths "$NGX")

    upstream auth_service {
        server $HOST:$AUTH_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }

    upstream static_service {
        server $HOST:$STATIC_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }

$(nginx_proxy_server "$NGINX_PORT" auth_service)

$(nginx_proxy_server "$NGINX_STATIC_PORT" static_service)
}
EOF
} >"$NGX/nginx.conf"
log "starting nginx ($PROXY_WORKERS workers) on $HOST:$NGINX_PORT -> auth and $HOST:$NGINX_STATIC_PORT -> static"
start_nginx nginx "$NGX" "$NGINX_PORT" "$NGINX_STATIC_PORT"
NGINX_PID=$LAST_PID

# --- HAProxy --------------------------------------------------------------------
HAP="$TMP_DIR/haproxy"
mkdir -p "$HAP"
cat >"$HAP/haproxy.cfg" <<EOF
global
    nbthread $PROXY_WORKERS
    maxconn 4096

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    timeout http-request 10s

frontend bench
    bind $HOST:$HAPROXY_PORT
    default_backend static_service

backend static_service
    server static $HOST:$STATIC_PORT
EOF
"$HAPROXY_BIN" -c -q -f "$HAP/haproxy.cfg" || die "haproxy rejected $HAP/haproxy.cfg"
log "starting HAProxy (nbthread $PROXY_WORKERS) on $HOST:$HAPROXY_PORT -> static"
# -db: stay in the foreground, so the pid we hold is HAProxy's.
start_bg haproxy "$HAP/haproxy.log" "$HAPROXY_BIN" -db -f "$HAP/haproxy.cfg"
HAPROXY_PID=$LAST_PID
wait_for_port "$HAPROXY_PORT" "$LAST_PID" haproxy 10

# --- separate gateways -------------------------------------------------------------
# What the suite passes its gateway (Tools/suite/main.swift), but every upstream is the static
# nginx; the token is still checked against the suite's auth service.
STATIC_URL="http://$HOST:$STATIC_PORT"
GW_ENV=(
    HTTP_HOST="$HOST"
    AUTH_URL="$STATIC_URL" TENANCY_URL="$STATIC_URL" BILLING_URL="$STATIC_URL" CHAT_URL="$STATIC_URL"
    JWKS_URL="http://$HOST:$AUTH_PORT/.well-known/jwks.json"
    RATE_LIMIT_PUBLIC_PER_MINUTE="$NO_LIMIT" RATE_LIMIT_AUTH_PER_MINUTE="$NO_LIMIT"
    RATE_LIMIT_TENANT_PER_MINUTE="$NO_LIMIT" RATE_LIMIT_SESSION_PER_MINUTE="$NO_LIMIT"
)
STATIC_PATH=/api/payments/plans
AUTH_PATH=/api/auth/me

# start_gateway NAME PORT ADMIN_PORT [VAR=value...] [-- WRAPPER COMMAND...]: starts GATEWAY_BIN and
# waits until it forwards (the static upstream answers 200 to anything, so that is when it is ready).
start_gateway() {
    local name="$1" port="$2" admin_port="$3" extra=() wrapper=()
    shift 3
    while (( $# > 0 )) && [[ "$1" != -- ]]; do extra+=("$1"); shift; done
    if (( $# > 0 )); then shift; wrapper=("$@"); fi
    log "starting $name: $GATEWAY_BIN on $HOST:$port, every upstream -> $STATIC_URL${extra[*]:+ (${extra[*]%%=*} set)}"
    start_bg "$name" "$TMP_DIR/$name.log" env "${GW_ENV[@]}" HTTP_PORT="$port" GATEWAY_ADMIN_PORT="$admin_port" \
        "${extra[@]}" "${wrapper[@]}" "$GATEWAY_BIN"
    wait_for_http "http://$HOST:$port$STATIC_PATH" "$LAST_PID" "$name" "$HEALTH_TIMEOUT"
    expect_200 "$name" "http://$HOST:$port$STATIC_PATH"
    expect_200 "$name" "http://$HOST:$port$AUTH_PATH" -H "$AUTH_HEADER"
}

start_gateway gw-local "$GW_LOCAL_PORT" "$GW_LOCAL_ADMIN_PORT"
GW_LOCAL_PID=$LAST_PID
GW_SHARED_PID=""
if [[ -z "$SHARED_LIMITS_URL" && "${SHARED_LIMITS:-1}" == 1 ]] && command -v psql >/dev/null 2>&1; then
    # The suite's throwaway cluster (trust authentication on loopback) holds the shared limits too.
    if psql -q -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -c 'CREATE DATABASE gateway_limits' >/dev/null 2>&1 \
        || psql -q -h "$HOST" -p "$PG_PORT" -U postgres -d gateway_limits -c 'SELECT 1' >/dev/null 2>&1; then
        SHARED_LIMITS_URL="postgres://postgres@$HOST:$PG_PORT/gateway_limits"
    else
        log "could not create a database for the shared-limit row; set SHARED_LIMITS_URL"
    fi
fi
if [[ -n "$SHARED_LIMITS_URL" ]]; then
    start_gateway gw-shared "$GW_SHARED_PORT" "$GW_SHARED_ADMIN_PORT" GATEWAY_DATABASE_URL="$SHARED_LIMITS_URL"
    GW_SHARED_PID=$LAST_PID
fi

# --- checks -----------------------------------------------------------------------
expect_200 direct "http://$HOST:$AUTH_PORT$AUTH_PATH" -H "$AUTH_HEADER"
expect_200 nginx "http://$HOST:$NGINX_PORT$AUTH_PATH" -H "$AUTH_HEADER"
expect_200 gateway "http://$HOST:$GATEWAY_PORT$AUTH_PATH" -H "$AUTH_HEADER"
expect_200 static "http://$HOST:$STATIC_PORT$STATIC_PATH"
expect_200 nginx-static "http://$HOST:$NGINX_STATIC_PORT$STATIC_PATH"
expect_200 haproxy-static "http://$HOST:$HAPROXY_PORT$STATIC_PATH"

# --- measuring helpers ---------------------------------------------------------------
# rss_sample NAME PID LABEL: the process's VmRSS and VmHWM (kB) into the manifest.
rss_sample() {
    local name="$1" pid="$2" label="$3" rss hwm
    rss="$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)" || true
    hwm="$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)" || true
    [[ -n "$rss" && -n "$hwm" ]] || die "$name (pid $pid) is gone; cannot read its memory"
    record rss "$name" "$label" "$pid" "$rss" "$hwm"
    log "$name: VmRSS $((rss / 1024)) MiB, VmHWM $((hwm / 1024)) MiB ($label)"
}

# perf_start PID NAME / perf_stop: perf record of one measured run.
PERF_DATA=""
perf_start() {
    local pid="$1" name="$2"
    PERF_DATA="$OUT_DIR/$STAMP-$name.perf.data"
    log "perf record -e $PERF_EVENT -g -p $pid -> $PERF_DATA"
    perf record -q -e "$PERF_EVENT" -g -p "$pid" -o "$PERF_DATA" >"$TMP_DIR/perf.log" 2>&1 &
    PERF_PID=$!
    sleep 1
    proc_running "$PERF_PID" || { cat "$TMP_DIR/perf.log" >&2; die "perf record exited at once"; }
    PERF_NAME="$name"
}
perf_stop() {
    stop_process "$PERF_PID" "perf record" 60 INT
    PERF_PID=""
    local report="$OUT_DIR/$STAMP-$PERF_NAME.perf-report.txt" top="$OUT_DIR/$STAMP-$PERF_NAME.perf-top.txt"
    if [[ ! -s "$PERF_DATA" ]]; then
        log "perf record wrote nothing: $(tail -n 5 "$TMP_DIR/perf.log")"
        record perf "$PERF_NAME" "$PERF_EVENT" "-" "-" "-"
        return
    fi
    # Flat profile (self time per symbol) for the summary; the call graphs go to the full report.
    perf report --stdio -i "$PERF_DATA" --no-children -F overhead,dso,sym -g none 2>/dev/null \
        | grep -v '^#' | sed '/^[[:space:]]*$/d' | head -n 30 | demangle \
        | sed 's/[[:space:]]*$//' | cut -c 1-220 >"$top" || true
    perf report --stdio -i "$PERF_DATA" --no-children --percent-limit 0.5 2>/dev/null | demangle >"$report" || true
    record perf "$PERF_NAME" "$PERF_EVENT" "$PERF_DATA" "$report" "$top"
}

# cpu_snapshot FILE: utime/stime of every process group of the CPU table (bench/proc_cpu.py): the
# suite (its gateway runs in-process), its PostgreSQL (postmaster + backends), the proxy nginx's
# workers, the static nginx's worker, HAProxy, the separate gateways. Gone processes are skipped.
cpu_snapshot() {
    local groups=(suite=pid:"$SUITE_PID" nginx-workers=children:"$NGINX_PID"
        static-nginx=children:"$STATIC_NGINX_PID" haproxy=pid:"$HAPROXY_PID" gw-local=pid:"$GW_LOCAL_PID")
    [[ -n "$PG_PID" ]] && groups+=(postgres=tree:"$PG_PID")
    [[ -n "$GW_SHARED_PID" ]] && groups+=(gw-shared=pid:"$GW_SHARED_PID")
    python3 "$BENCH_DIR/proc_cpu.py" snapshot "$1" "${groups[@]}" || die "could not read /proc for the CPU table"
}

# wrk_warmup NAME URL [wrk args...]: WARMUP seconds of the same load, not measured.
wrk_warmup() {
    local name="$1" url="$2"
    shift 2
    log "$name: warm-up ${WARMUP}s"
    run_interruptible wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "$@" "$url" \
        >"$OUT_DIR/$STAMP-$name-warmup.txt"
}

# wrk_measure SECTION NAME ROUND FILE_TAG URL PROFILE_PID [wrk args...]: one measured run, with the CPU
# snapshots around it; its output goes to $OUT_DIR/$STAMP-FILE_TAG.txt.
wrk_measure() {
    local section="$1" name="$2" round="$3" tag="$4" url="$5" profile_pid="$6"
    shift 6
    local out="$OUT_DIR/$STAMP-$tag.txt" cpu0="$OUT_DIR/$STAMP-$tag.cpu-before.json"
    local cpu1="$OUT_DIR/$STAMP-$tag.cpu-after.json"
    if [[ -n "$profile_pid" ]]; then perf_start "$profile_pid" "$name"; fi
    log "$name${round:+ (round $round)}: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency $url"
    cpu_snapshot "$cpu0"
    run_interruptible wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url" >"$out"
    cpu_snapshot "$cpu1"
    if [[ -n "$profile_pid" ]]; then perf_stop; fi
    record wrk "$section" "$name" "$url" "$out" "${round:-1}"
    record cpu "$section" "$name" "${round:-1}" "$cpu0" "$cpu1"
}

# run_wrk SECTION NAME URL PROFILE_PID [wrk args...]: warm-up, then one measured run (section 2).
run_wrk() {
    local section="$1" name="$2" url="$3" profile_pid="$4"
    shift 4
    wrk_warmup "$name" "$url" "$@"
    wrk_measure "$section" "$name" "" "$name" "$url" "$profile_pid" "$@"
}

# hey_warmup NAME URL RATE [hey args...] / hey_measure NAME ROUND FILE_TAG URL RATE [hey args...]:
# RATE req/s in total over RATE_CONNECTIONS workers (-q is per worker).
hey_per_worker() {
    awk -v r="$1" -v c="$RATE_CONNECTIONS" 'BEGIN { printf "%.3f", r / c }'
}
hey_warmup() {
    local name="$1" url="$2" rate="$3"
    shift 3
    log "$name: warm-up ${WARMUP}s at $rate req/s"
    run_interruptible hey -z "${WARMUP}s" -c "$RATE_CONNECTIONS" -q "$(hey_per_worker "$rate")" "$@" "$url" \
        >"$OUT_DIR/$STAMP-rate-$name-warmup.txt"
}
hey_measure() {
    local name="$1" round="$2" tag="$3" url="$4" rate="$5" per_worker
    shift 5
    local out="$OUT_DIR/$STAMP-rate-$tag.txt"
    per_worker="$(hey_per_worker "$rate")"
    log "$name${round:+ (round $round)}: hey -z ${RATE_DURATION}s -c $RATE_CONNECTIONS -q $per_worker $url"
    run_interruptible hey -z "${RATE_DURATION}s" -c "$RATE_CONNECTIONS" -q "$per_worker" "$@" "$url" >"$out"
    record hey "$name" "$url" "$rate" "$out" "${round:-1}"
}

wrk_rps() {
    awk '/^Requests\/sec:/ { print $2 }' "$1"
}

# median NUMBER...: the median (the mean of the two middle ones for an even count).
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The three targets of sections 1 and 3, measured in ROUNDS rounds; round r starts at target
# (r - 1) mod 3 of this list (1: direct nginx gateway, 2: nginx gateway direct, 3: gateway direct
# nginx, ...), so that drift during the run (PostgreSQL warming up, autovacuum, other load) falls
# on each target in turn instead of always on the last one.
SUITE_TARGETS=(direct nginx gateway)
suite_url() {
    case "$1" in
        direct) echo "http://$HOST:$AUTH_PORT$AUTH_PATH" ;;
        nginx) echo "http://$HOST:$NGINX_PORT$AUTH_PATH" ;;
        gateway) echo "http://$HOST:$GATEWAY_PORT$AUTH_PATH" ;;
    esac
}
# round_order ROUND: the targets of that round, in order.
round_order() {
    local r="$1" k
    for (( k = 0; k < ${#SUITE_TARGETS[@]}; k++ )); do
        printf '%s\n' "${SUITE_TARGETS[$(( (r - 1 + k) % ${#SUITE_TARGETS[@]} ))]}"
    done
}

# --- 1. suite: direct, nginx, gateway -> auth, ROUNDS rounds -------------------------------
record meta rounds "$ROUNDS"
for name in "${SUITE_TARGETS[@]}"; do
    wrk_warmup "$name" "$(suite_url "$name")" -H "$AUTH_HEADER"
done
for (( round = 1; round <= ROUNDS; round++ )); do
    mapfile -t order < <(round_order "$round")
    record round suite "$round" "${order[*]}"
    for name in "${order[@]}"; do
        wrk_measure suite "$name" "$round" "$name-r$round" "$(suite_url "$name")" "" -H "$AUTH_HEADER"
    done
done

# --- 3. latency at a fixed rate, ROUNDS rounds -------------------------------------------------
nginx_rps=()
for (( round = 1; round <= ROUNDS; round++ )); do
    rps="$(wrk_rps "$OUT_DIR/$STAMP-nginx-r$round.txt")"
    [[ -n "$rps" ]] || die "no Requests/sec in $OUT_DIR/$STAMP-nginx-r$round.txt"
    nginx_rps+=("$rps")
done
NGINX_RPS="$(median "${nginx_rps[@]}")"
if [[ -n "$FIXED_RATE" ]]; then
    RATE="$FIXED_RATE"
    record meta rate_source "FIXED_RATE"
else
    RATE="$(awk -v r="$NGINX_RPS" 'BEGIN { printf "%d", r / 2 }')"
    (( RATE >= RATE_CONNECTIONS )) || die "half of nginx's $NGINX_RPS req/s is below one request/s per worker"
    record meta rate_source "half of nginx -> auth's median, $NGINX_RPS req/s"
fi
record meta rate "$RATE"
record meta rate_settings "hey -c $RATE_CONNECTIONS -z ${RATE_DURATION}s (warm-up ${WARMUP}s), $ROUNDS round(s)"
hey_warmup static "http://$HOST:$STATIC_PORT$STATIC_PATH" "$RATE"
hey_measure static "" static "http://$HOST:$STATIC_PORT$STATIC_PATH" "$RATE"
for name in "${SUITE_TARGETS[@]}"; do
    hey_warmup "$name" "$(suite_url "$name")" "$RATE" -H "$AUTH_HEADER"
done
for (( round = 1; round <= ROUNDS; round++ )); do
    mapfile -t order < <(round_order "$round")
    record round rate "$round" "${order[*]}"
    for name in "${order[@]}"; do
        hey_measure "$name" "$round" "$name-r$round" "$(suite_url "$name")" "$RATE" -H "$AUTH_HEADER"
    done
done

# --- 2. static upstream: no proxy, nginx, HAProxy, gateway --------------------------------
run_wrk static static "http://$HOST:$STATIC_PORT$STATIC_PATH" ""
run_wrk static nginx-static "http://$HOST:$NGINX_STATIC_PORT$STATIC_PATH" ""
run_wrk static haproxy-static "http://$HOST:$HAPROXY_PORT$STATIC_PATH" ""

# measure_gateway PROCESS ROW_PREFIX PID PORT: the public and the authenticated route, memory around them.
measure_gateway() {
    local process="$1" prefix="$2" pid="$3" port="$4" static_profile="" auth_profile=""
    if [[ "$PROFILE" == perf && "$process" == gw-local ]]; then
        if [[ "$PROFILE_TARGET" == static ]]; then static_profile="$pid"; else auth_profile="$pid"; fi
    fi
    rss_sample "$process" "$pid" "idle, before its load runs"
    run_wrk static "$prefix" "http://$HOST:$port$STATIC_PATH" "$static_profile"
    rss_sample "$process" "$pid" "after $prefix (warm-up + run)"
    run_wrk static "$prefix-auth" "http://$HOST:$port$AUTH_PATH" "$auth_profile" -H "$AUTH_HEADER"
    rss_sample "$process" "$pid" "after $prefix-auth (warm-up + run)"
}

measure_gateway gw-local gw-static "$GW_LOCAL_PID" "$GW_LOCAL_PORT"

# --- 5. shared-limit mode ------------------------------------------------------------------
if [[ -n "$GW_SHARED_PID" ]]; then
    record meta shared_limits "measured"
    measure_gateway gw-shared gw-shared-static "$GW_SHARED_PID" "$GW_SHARED_PORT"
else
    record meta shared_limits "unset"
fi

# --- 6. callgrind --------------------------------------------------------------------------
if [[ "$PROFILE" == callgrind ]]; then
    CG_OUT="$OUT_DIR/$STAMP-callgrind.out"
    if [[ "$PROFILE_TARGET" == static ]]; then
        CG_URL="http://$HOST:$GW_CALLGRIND_PORT$STATIC_PATH"
        CG_ARGS=()
    else
        CG_URL="http://$HOST:$GW_CALLGRIND_PORT$AUTH_PATH"
        CG_ARGS=(-H "$AUTH_HEADER")
    fi
    # Valgrind 3.19 gives up on the DWARF 5 parts of the debug info (the C dependencies'); a copy
    # without debug info still has the symbol table, so functions keep their names (not their lines).
    CG_BIN="$TMP_DIR/gateway-nodebug"
    objcopy --strip-debug "$GATEWAY_BIN" "$CG_BIN" || die "objcopy --strip-debug $GATEWAY_BIN failed"
    # Valgrind 3.19 also dies on libdispatch's sigsuspend() (see the comment in the file).
    CG_SHIM="$TMP_DIR/valgrind-sigsuspend.so"
    cc -shared -fPIC -O2 -o "$CG_SHIM" "$BENCH_DIR/valgrind-sigsuspend.c" \
        || die "could not compile $BENCH_DIR/valgrind-sigsuspend.c"
    # Under valgrind the gateway is ~50x slower; give it time to start.
    HEALTH_TIMEOUT=$(( HEALTH_TIMEOUT * 3 ))
    GATEWAY_BIN="$CG_BIN" start_gateway gw-callgrind "$GW_CALLGRIND_PORT" "$GW_CALLGRIND_ADMIN_PORT" \
        LD_PRELOAD="$CG_SHIM" -- valgrind --tool=callgrind --callgrind-out-file="$CG_OUT"
    CG_PID=$LAST_PID
    log "gw-callgrind: warm-up, $CALLGRIND_WARMUP requests"
    run_interruptible hey -n "$CALLGRIND_WARMUP" -c "$CALLGRIND_CONNECTIONS" -t 120 "${CG_ARGS[@]}" "$CG_URL" \
        >"$OUT_DIR/$STAMP-callgrind-warmup.txt"
    # Count only the measured requests: zero the counters now, dump them after the last answer
    # (the dump is $CG_OUT.1; $CG_OUT itself, written at exit, holds shutdown).
    callgrind_control -z "$CG_PID" >"$TMP_DIR/callgrind_control.log" 2>&1 \
        || die "callgrind_control -z failed: $(cat "$TMP_DIR/callgrind_control.log")"
    log "gw-callgrind: hey -n $CALLGRIND_REQUESTS -c $CALLGRIND_CONNECTIONS $CG_URL"
    run_interruptible hey -n "$CALLGRIND_REQUESTS" -c "$CALLGRIND_CONNECTIONS" -t 120 "${CG_ARGS[@]}" "$CG_URL" \
        >"$OUT_DIR/$STAMP-callgrind-hey.txt"
    callgrind_control -d "$CG_PID" >>"$TMP_DIR/callgrind_control.log" 2>&1 \
        || die "callgrind_control -d failed: $(cat "$TMP_DIR/callgrind_control.log")"
    for _ in $(seq 1 100); do
        [[ -s "$CG_OUT.1" ]] && grep -q '^totals:' "$CG_OUT.1" && break
        sleep 0.2
    done
    [[ -s "$CG_OUT.1" ]] || die "callgrind wrote no dump to $CG_OUT.1"
    CG_TOP="$OUT_DIR/$STAMP-callgrind-top.txt"
    # The table of functions (self cost) only: skip callgrind_annotate's header, and the frames that
    # were on the threads' stacks when the counters were zeroed (thread entry, the event loop):
    # a dump in mid-run books their calls in progress as their own cost, ~100 % each.
    callgrind_annotate --inclusive=no --threshold=100 --auto=no "$CG_OUT.1" 2>/dev/null \
        | awk '/file:function/ { header = 1; next }
               header && !table && /^-+$/ { table = 1; next }
               table {
                   if (!NF) exit
                   if (match($0, /[0-9.]+%\)/) && substr($0, RSTART, RLENGTH - 2) + 0 >= 50) next
                   print
                   if (++n == 30) exit
               }' \
        | demangle | sed "s|\[$CG_BIN\]|[gateway]|" | cut -c 1-220 >"$CG_TOP" || true
    record callgrind "$CALLGRIND_REQUESTS" "$CG_URL" "$CG_OUT.1" "$CG_TOP" "$OUT_DIR/$STAMP-callgrind-hey.txt"
fi

# --- report -------------------------------------------------------------------
record meta load_after "$(cut -d " " -f 1-3 /proc/loadavg)"
SUMMARY="$OUT_DIR/$STAMP-summary.txt"
report_rc=0
python3 "$BENCH_DIR/gateway_report.py" "$MANIFEST" >"$SUMMARY" || report_rc=$?
cat "$SUMMARY"
log "summary saved to $SUMMARY"
if (( report_rc == 3 )); then
    exit 1
elif (( report_rc != 0 )); then
    die "could not parse the tool output (see $OUT_DIR/$STAMP-*.txt)"
fi
