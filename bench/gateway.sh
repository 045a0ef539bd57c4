#!/usr/bin/env bash
# Gateway overhead benchmark (see bench/README.md).
#
# Runs the whole suite in one process (.build/release/suite), registers one
# tenant, then load-tests the same authenticated endpoint, GET /api/auth/me,
# three ways:
#   direct   http://127.0.0.1:18081/api/auth/me  (auth service itself)
#   nginx    http://127.0.0.1:18090/api/auth/me  (nginx reverse proxy -> auth)
#   gateway  http://127.0.0.1:18080/api/auth/me  (our gateway -> auth)
# and prints req/s and latency percentiles plus the gateway/nginx and
# gateway/direct ratios. Raw wrk output goes to bench/out/.
#
# Usage (from anywhere, usually the repo root):
#   bench/gateway.sh
# Environment:
#   THREADS (2) CONNECTIONS (64) DURATION (15, seconds) WARMUP (3, seconds)
#   BENCH_SKIP_BUILD=1      use the existing release build
#   SUITE_BIN               suite binary (default .build/release/suite)
#   BENCH_HEALTH_TIMEOUT    seconds to wait for the suite (120)
#   BENCH_OUT_DIR           where results go (bench/out)
#   LOG_LEVEL etc.          inherited by the suite like any other variable
# Requires: wrk, nginx, curl, python3. All traffic stays on 127.0.0.1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
DURATION="${DURATION:-15}"
WARMUP="${WARMUP:-3}"
HEALTH_TIMEOUT="${BENCH_HEALTH_TIMEOUT:-120}"
SUITE_BIN="${SUITE_BIN:-.build/release/suite}"
OUT_DIR="${BENCH_OUT_DIR:-bench/out}"

GATEWAY_PORT=18080
AUTH_PORT=18081
TENANCY_PORT=18082
BILLING_PORT=18083
CHAT_PORT=18084
NGINX_PORT=18090
HOST=127.0.0.1

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

for v in THREADS CONNECTIONS DURATION WARMUP HEALTH_TIMEOUT; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
(( THREADS <= CONNECTIONS )) || die "THREADS ($THREADS) must not exceed CONNECTIONS ($CONNECTIONS)"

# --- tools ------------------------------------------------------------------
NGINX_BIN="${NGINX_BIN:-$(command -v nginx || true)}"
if [[ -z "$NGINX_BIN" && -x /usr/sbin/nginx ]]; then NGINX_BIN=/usr/sbin/nginx; fi
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[[ -n "$NGINX_BIN" && -x "$NGINX_BIN" ]] || missing+=(nginx)
if (( ${#missing[@]} > 0 )); then
    printf '[bench] missing: %s\n' "${missing[*]}" >&2
    printf '[bench] install with: sudo apt-get install -y %s\n' "${missing[*]}" >&2
    exit 1
fi
for t in curl python3; do
    command -v "$t" >/dev/null 2>&1 || die "$t is required"
done

# --- state and cleanup --------------------------------------------------------
SUITE_PID=""
NGINX_PID=""
CHILD_PID=""
TMP_DIR=""
DATA_DIR=""
SUITE_LOG=""
STAMP="$(date +%Y%m%d-%H%M%S)"

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [[ -n "$CHILD_PID" ]]; then
        stop_process "$CHILD_PID" "current step" 10
    fi
    if [[ -n "$NGINX_PID" ]]; then
        stop_process "$NGINX_PID" nginx 10
    fi
    if [[ -n "$SUITE_PID" ]]; then
        stop_process "$SUITE_PID" suite 60
    fi
    if (( rc != 0 )) && [[ -n "$SUITE_LOG" && -s "$SUITE_LOG" ]]; then
        mkdir -p "$OUT_DIR"
        cp "$SUITE_LOG" "$OUT_DIR/$STAMP-suite.log"
        log "last lines of the suite log (full log: $OUT_DIR/$STAMP-suite.log):"
        tail -n 30 "$SUITE_LOG" >&2
    fi
    if (( rc != 0 )) && [[ -n "$TMP_DIR" && -s "$TMP_DIR/nginx/error.log" ]]; then
        log "nginx error log:"
        tail -n 20 "$TMP_DIR/nginx/error.log" >&2
    fi
    [[ -n "$TMP_DIR" ]] && rm -rf "$TMP_DIR"
    [[ -n "$DATA_DIR" ]] && rm -rf "$DATA_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for_port PORT PID NAME TIMEOUT_SECONDS
wait_for_port() {
    local port="$1" pid="$2" name="$3" timeout="$4" deadline=$((SECONDS + $4))
    while port_free "$port"; do
        proc_running "$pid" || die "$name exited before listening on port $port"
        (( SECONDS < deadline )) || die "$name not listening on port $port after ${timeout}s"
        sleep 0.2
    done
}

for p in "$GATEWAY_PORT" "$AUTH_PORT" "$TENANCY_PORT" "$BILLING_PORT" "$CHAT_PORT" "$NGINX_PORT"; do
    port_free "$p" || die "port $p on $HOST is already in use; stop whatever listens there"
done

# --- build ------------------------------------------------------------------
if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    log "building: swift build -c release --product suite"
    run_interruptible swift build -c release --product suite
fi
[[ -x "$SUITE_BIN" ]] || die "suite binary not found at $SUITE_BIN (build it, or set SUITE_BIN)"

TMP_DIR="$(mktemp -d -t gateway-bench.XXXXXX)"
DATA_DIR="$(mktemp -d -t gateway-bench-data.XXXXXX)"
# When run as root, the suite hands the cluster to the postgres user, who must be able to enter this folder.
chmod 755 "$DATA_DIR"
SUITE_LOG="$TMP_DIR/suite.log"
mkdir -p "$OUT_DIR"

# --- suite ------------------------------------------------------------------
log "starting $SUITE_BIN (data in $DATA_DIR, log in $SUITE_LOG)"
# RATE_LIMIT_TENANT_PER_MINUTE is huge so that the limiter still runs on every
# request (its cost is part of what we measure) but never rejects one.
env DATA_DIR="$DATA_DIR" \
    GATEWAY_PORT="$GATEWAY_PORT" AUTH_PORT="$AUTH_PORT" TENANCY_PORT="$TENANCY_PORT" \
    BILLING_PORT="$BILLING_PORT" CHAT_PORT="$CHAT_PORT" \
    BCRYPT_COST=10 \
    RATE_LIMIT_TENANT_PER_MINUTE=1000000000 \
    "$SUITE_BIN" >"$SUITE_LOG" 2>&1 &
SUITE_PID=$!

log "waiting up to ${HEALTH_TIMEOUT}s for http://$HOST:$GATEWAY_PORT/health"
deadline=$((SECONDS + HEALTH_TIMEOUT))
until curl -fsS --max-time 2 -o /dev/null "http://$HOST:$GATEWAY_PORT/health" 2>/dev/null; do
    proc_running "$SUITE_PID" || die "suite exited during start-up"
    (( SECONDS < deadline )) || die "suite not healthy after ${HEALTH_TIMEOUT}s"
    sleep 1
done
log "suite is healthy"

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

# --- nginx --------------------------------------------------------------------
NGX="$TMP_DIR/nginx"
mkdir -p "$NGX"
{
    # Workers would otherwise run as nobody and could not use the 0700 temp dir.
    if (( EUID == 0 )); then echo "user root;"; fi
    cat <<EOF
worker_processes auto;
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    client_body_temp_path $NGX/client_body;
    proxy_temp_path $NGX/proxy;
    fastcgi_temp_path $NGX/fastcgi;
    uwsgi_temp_path $NGX/uwsgi;
    scgi_temp_path $NGX/scgi;

    upstream auth_service {
        server $HOST:$AUTH_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }

    server {
        listen $HOST:$NGINX_PORT;
        # Do not close wrk's connections every 1000 requests (the default).
        keepalive_requests 1000000;

        location / {
            proxy_pass http://auth_service;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
EOF
} >"$NGX/nginx.conf"

NGINX_ARGS=(-p "$NGX/" -c "$NGX/nginx.conf")
# -e (nginx >= 1.19.5) keeps start-up messages out of /var/log/nginx.
if "$NGINX_BIN" -h 2>&1 | grep -q -- '-e filename'; then
    NGINX_ARGS+=(-e "$NGX/error.log")
fi
"$NGINX_BIN" "${NGINX_ARGS[@]}" -t -q || die "nginx rejected $NGX/nginx.conf"
log "starting nginx on $HOST:$NGINX_PORT -> $HOST:$AUTH_PORT"
"$NGINX_BIN" "${NGINX_ARGS[@]}" -g 'daemon off;' &
NGINX_PID=$!
wait_for_port "$NGINX_PORT" "$NGINX_PID" nginx 10

# --- targets ------------------------------------------------------------------
NAMES=(direct nginx gateway)
URLS=(
    "http://$HOST:$AUTH_PORT/api/auth/me"
    "http://$HOST:$NGINX_PORT/api/auth/me"
    "http://$HOST:$GATEWAY_PORT/api/auth/me"
)
AUTH_HEADER="Authorization: Bearer $TOKEN"

for i in "${!NAMES[@]}"; do
    code="$(curl -sS --max-time 10 -o "$TMP_DIR/check.json" -w '%{http_code}' \
        -H "$AUTH_HEADER" "${URLS[$i]}")" || die "${NAMES[$i]}: request to ${URLS[$i]} failed"
    [[ "$code" == 200 ]] || die "${NAMES[$i]}: ${URLS[$i]} answered HTTP $code: $(head -c 500 "$TMP_DIR/check.json")"
    log "${NAMES[$i]}: ${URLS[$i]} -> 200"
done

# --- load ---------------------------------------------------------------------
FILES=()
for i in "${!NAMES[@]}"; do
    name="${NAMES[$i]}" url="${URLS[$i]}"
    out="$OUT_DIR/$STAMP-$name.txt"
    log "$name: warm-up ${WARMUP}s"
    run_interruptible wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -H "$AUTH_HEADER" "$url" \
        >"$OUT_DIR/$STAMP-$name-warmup.txt"
    log "$name: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency $url"
    run_interruptible wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
        -H "$AUTH_HEADER" "$url" >"$out"
    FILES+=("$name" "$url" "$out")
done

# --- report -------------------------------------------------------------------
SUMMARY="$OUT_DIR/$STAMP-summary.txt"
report_rc=0
python3 - "$THREADS" "$CONNECTIONS" "$DURATION" "${FILES[@]}" >"$SUMMARY" <<'PY' || report_rc=$?
import os
import re
import sys
import time

UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}

def to_ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"unknown duration {text!r}")
    return float(m.group(1)) * UNIT_MS[m.group(2)]

def parse(path):
    text = open(path).read()
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    if not m:
        raise SystemExit(f"no Requests/sec in {path}; is it wrk output?")
    result = {"rps": float(m.group(1))}
    for p in ("50", "90", "99"):
        m = re.search(rf"^\s*{p}%\s+([0-9.]+[a-z]+)\s*$", text, re.M)
        if not m:
            raise SystemExit(f"no {p}% latency in {path}; was --latency given?")
        result[f"p{p}"] = to_ms(m.group(1))
    m = re.search(r"^\s*(\d+) requests in", text, re.M)
    result["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    result["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    result["sockerr"] = sum(int(x) for x in m.groups()) if m else 0
    return result

threads, connections, duration = sys.argv[1:4]
rows = {}
targets = sys.argv[4:]
for i in range(0, len(targets), 3):
    name, url, path = targets[i:i + 3]
    rows[name] = (url, parse(path), path)

print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs (shared by wrk, nginx and the suite)")
print(f"wrk -t{threads} -c{connections} -d{duration}s, GET /api/auth/me (authenticated)")
print()
header = f"{'target':<8} {'req/s':>10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'requests':>9} {'non-2xx':>8} {'sock err':>8}  url"
print(header)
print("-" * len(header))
for name, (url, r, _) in rows.items():
    print(f"{name:<8} {r['rps']:>10.1f} {r['p50']:>8.2f} {r['p90']:>8.2f} {r['p99']:>8.2f} "
          f"{r['requests']:>9} {r['non2xx']:>8} {r['sockerr']:>8}  {url}")
print()

def ratio(a, b):
    return a / b if b else float("nan")

g = rows["gateway"][1]
print("ratios (gateway / baseline):")
for base in ("nginx", "direct"):
    b = rows[base][1]
    print(f"  throughput  gateway/{base:<6} {ratio(g['rps'], b['rps']):6.2f}   (1.00 = same req/s; lower = gateway slower)")
for base in ("nginx", "direct"):
    b = rows[base][1]
    print(f"  p50 latency gateway/{base:<6} {ratio(g['p50'], b['p50']):6.2f}   (1.00 = same; higher = gateway slower)")
for base in ("nginx", "direct"):
    b = rows[base][1]
    print(f"  p99 latency gateway/{base:<6} {ratio(g['p99'], b['p99']):6.2f}   (1.00 = same; higher = gateway slower)")
print()
print("raw wrk output:")
for name, (_, _, path) in rows.items():
    print(f"  {name:<8} {path}")

bad = [n for n, (_, r, _) in rows.items() if r["non2xx"] > 0]
if bad:
    print()
    print(f"WARNING: non-2xx/3xx responses for: {', '.join(bad)}. Those runs measured errors "
          f"(rate limiting? expired token?), so their numbers are not comparable.")
    sys.exit(3)
PY
cat "$SUMMARY"
log "summary saved to $SUMMARY"
if (( report_rc == 3 )); then
    exit 1
elif (( report_rc != 0 )); then
    die "could not parse the wrk output (see $OUT_DIR/$STAMP-*.txt)"
fi
