#!/usr/bin/env bash
# Soak test (see bench/README.md): mixed traffic through the gateway at a fixed
# arrival rate near 70 % of capacity, for 10 minutes by default. Not run in CI.
#
# Starts the whole suite in one process with a throwaway database, measures
# capacity with a short closed-loop ramp of the traffic mix, then runs the
# open-loop soak with bench/soak.py (Python 3 standard library only) and
# reports errors (intended 429s apart), p50/p90/p99/max latency per route and
# the resident memory of the suite and of PostgreSQL at start, every 30 s and
# at the end. Exit status 0 only when the verdict is PASS.
#
# Usage (from anywhere, usually the repo root):
#   bench/soak.sh                               # builds the release suite, 10-minute soak
#   SUITE_BIN=/path/to/suite DURATION=60 bench/soak.sh   # smoke run, no build
# Environment:
#   DURATION (600 s)   RATE (measure; else arrivals/s, skips the ramp)
#   CAPACITY_FRACTION (0.7)   RAMP (8,16,32,64 concurrent, doubled further while it still gains)
#   RAMP_SETTLE (2 s) + RAMP_STEP (5 s measured) per ramp step
#   MAX_INFLIGHT (256)  MIX (route=weight,... over bench/soak.py's DEFAULT_MIX)
#   CHATS_PER_SESSION (5)   SAMPLE_INTERVAL (30 s)   SEED (1: which tenant/session a request uses)
#   SUITE_BIN           suite binary; when unset, the suite is built first as the Dockerfile
#                       builds it (bench/lib.sh build_release); BENCH_SKIP_BUILD=1 uses the existing
#                       .build/release/suite
#   GATEWAY_PORT AUTH_PORT TENANCY_PORT BILLING_PORT CHAT_PORT PG_PORT (18180-18185)
#   DATA_DIR            parent folder of the throwaway database (default: the temp folder);
#                       a fresh folder is made inside it and removed at the end
#   LOG_LEVEL (warning) BCRYPT_COST (service default 12) and the suite's other variables
#   RATE_LIMIT_AUTH/PUBLIC/TENANT_PER_MINUTE (10^9: never refuse),
#   RATE_LIMIT_SESSION_PER_MINUTE (10: the rate-limit probe's 429s are the intended ones)
#   ALL_429_INTENDED=1  count 429s on every route as intended (when you lower the limits)
#   BENCH_HEALTH_TIMEOUT (180 s)   BENCH_OUT_DIR (bench/out)
# Requires: curl, python3 (>= 3.8), Linux /proc. All traffic stays on 127.0.0.1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DURATION="${DURATION:-600}"
RATE="${RATE:-0}"
CAPACITY_FRACTION="${CAPACITY_FRACTION:-0.7}"
RAMP="${RAMP:-8,16,32,64}"
RAMP_STEP="${RAMP_STEP:-5}"
RAMP_SETTLE="${RAMP_SETTLE:-2}"
MAX_INFLIGHT="${MAX_INFLIGHT:-256}"
MIX="${MIX:-}"
CHATS_PER_SESSION="${CHATS_PER_SESSION:-5}"
SAMPLE_INTERVAL="${SAMPLE_INTERVAL:-30}"
SEED="${SEED:-1}"
HEALTH_TIMEOUT="${BENCH_HEALTH_TIMEOUT:-180}"
OUT_DIR="${BENCH_OUT_DIR:-bench/out}"
DATA_PARENT="${DATA_DIR:-}"

GATEWAY_PORT="${GATEWAY_PORT:-18180}"
AUTH_PORT="${AUTH_PORT:-18181}"
TENANCY_PORT="${TENANCY_PORT:-18182}"
BILLING_PORT="${BILLING_PORT:-18183}"
CHAT_PORT="${CHAT_PORT:-18184}"
PG_PORT="${PG_PORT:-18185}"
HOST=127.0.0.1

RL_AUTH="${RATE_LIMIT_AUTH_PER_MINUTE:-1000000000}"
RL_PUBLIC="${RATE_LIMIT_PUBLIC_PER_MINUTE:-1000000000}"
RL_TENANT="${RATE_LIMIT_TENANT_PER_MINUTE:-1000000000}"
RL_SESSION="${RATE_LIMIT_SESSION_PER_MINUTE:-10}"
SUITE_LOG_LEVEL="${LOG_LEVEL:-warning}"

log() { printf '[soak] %s\n' "$*" >&2; }
die() { printf '[soak] error: %s\n' "$*" >&2; exit 1; }

for v in DURATION RAMP_STEP RAMP_SETTLE MAX_INFLIGHT CHATS_PER_SESSION SAMPLE_INTERVAL HEALTH_TIMEOUT SEED \
    GATEWAY_PORT AUTH_PORT TENANCY_PORT BILLING_PORT CHAT_PORT PG_PORT RL_AUTH RL_PUBLIC RL_TENANT RL_SESSION; do
    [[ "${!v}" =~ ^[0-9]+$ ]] && (( ${!v} > 0 )) || die "$v must be a positive integer (got '${!v}')"
done
[[ "$RATE" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "RATE must be a number of requests per second (got '$RATE')"
[[ "$CAPACITY_FRACTION" =~ ^[0-9]*[.]?[0-9]+$ ]] || die "CAPACITY_FRACTION must be a number (got '$CAPACITY_FRACTION')"
[[ "$RAMP" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "RAMP must be a comma list of integers (got '$RAMP')"
(( CHATS_PER_SESSION <= RL_SESSION )) || die "CHATS_PER_SESSION ($CHATS_PER_SESSION) must not exceed RATE_LIMIT_SESSION_PER_MINUTE ($RL_SESSION)"

for t in curl python3; do
    command -v "$t" >/dev/null 2>&1 || die "$t is required"
done
python3 -c 'import sys; sys.exit(sys.version_info < (3, 8))' || die "python3 >= 3.8 is required"
[[ -r /proc/self/status ]] || die "/proc is required (Linux) to sample memory"

# --- state and cleanup --------------------------------------------------------
SUITE_PID=""
SUITE_DIED=0
CHILD_PID=""
TMP_DIR=""
RUN_DATA=""
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
    if [[ -n "$SUITE_PID" ]]; then
        # The suite drains requests, stops the services, then stops PostgreSQL.
        stop_process "$SUITE_PID" suite 60
    fi
    local pg
    if pg="$(postmaster_pid "$RUN_DATA")" && proc_running "$pg"; then
        # Left behind (suite killed before it could stop it): fast shutdown.
        stop_process "$pg" "PostgreSQL postmaster" 30 INT
    fi
    if [[ -n "$SUITE_LOG" && -s "$SUITE_LOG" ]]; then
        mkdir -p "$OUT_DIR"
        local size
        size="$(stat -c %s "$SUITE_LOG" 2>/dev/null || echo 0)"
        if (( size > 50 * 1024 * 1024 )); then
            tail -n 100000 "$SUITE_LOG" >"$OUT_DIR/$STAMP-suite.log"
            log "suite log was $((size / 1024 / 1024)) MiB; kept its last 100000 lines in $OUT_DIR/$STAMP-suite.log"
        else
            cp "$SUITE_LOG" "$OUT_DIR/$STAMP-suite.log"
            log "suite log: $OUT_DIR/$STAMP-suite.log"
        fi
        if (( rc != 0 && rc != 1 )) || [[ "$SUITE_DIED" == 1 ]]; then
            log "last lines of the suite log:"
            tail -n 30 "$SUITE_LOG" >&2
        fi
    fi
    [[ -n "$TMP_DIR" ]] && rm -rf "$TMP_DIR"
    [[ -n "$RUN_DATA" ]] && rm -rf "$RUN_DATA"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for p in "$GATEWAY_PORT" "$AUTH_PORT" "$TENANCY_PORT" "$BILLING_PORT" "$CHAT_PORT" "$PG_PORT"; do
    port_free "$p" || die "port $p on $HOST is already in use; stop whatever listens there or choose other *_PORT values"
done

# --- build ------------------------------------------------------------------
if [[ -z "${SUITE_BIN:-}" ]]; then
    SUITE_BIN=.build/release/suite
    if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
        build_release suite
    fi
fi
[[ -x "$SUITE_BIN" ]] || die "suite binary not found at $SUITE_BIN (build it, or set SUITE_BIN)"

mkdir -p "$OUT_DIR"
TMP_DIR="$(mktemp -d -t soak.XXXXXX)"
if [[ -n "$DATA_PARENT" ]]; then
    mkdir -p "$DATA_PARENT"
    RUN_DATA="$(mktemp -d "$DATA_PARENT/soak-data.XXXXXX")"
else
    RUN_DATA="$(mktemp -d -t soak-data.XXXXXX)"
fi
RUN_DATA="$(cd "$RUN_DATA" && pwd)"
# When run as root, the suite hands the cluster to the postgres user, who must be able to enter this folder.
chmod 755 "$RUN_DATA"
SUITE_LOG="$TMP_DIR/suite.log"

# --- suite ------------------------------------------------------------------
SUITE_SETTINGS="LOG_LEVEL=$SUITE_LOG_LEVEL RATE_LIMIT_AUTH_PER_MINUTE=$RL_AUTH RATE_LIMIT_PUBLIC_PER_MINUTE=$RL_PUBLIC"
SUITE_SETTINGS+=" RATE_LIMIT_TENANT_PER_MINUTE=$RL_TENANT RATE_LIMIT_SESSION_PER_MINUTE=$RL_SESSION"
SUITE_SETTINGS+=" BCRYPT_COST=${BCRYPT_COST:-default}"
log "starting $SUITE_BIN (data in $RUN_DATA, log in $SUITE_LOG)"
log "suite settings: $SUITE_SETTINGS"
env DATA_DIR="$RUN_DATA" PG_PORT="$PG_PORT" \
    GATEWAY_PORT="$GATEWAY_PORT" AUTH_PORT="$AUTH_PORT" TENANCY_PORT="$TENANCY_PORT" \
    BILLING_PORT="$BILLING_PORT" CHAT_PORT="$CHAT_PORT" \
    LOG_LEVEL="$SUITE_LOG_LEVEL" \
    RATE_LIMIT_AUTH_PER_MINUTE="$RL_AUTH" RATE_LIMIT_PUBLIC_PER_MINUTE="$RL_PUBLIC" \
    RATE_LIMIT_TENANT_PER_MINUTE="$RL_TENANT" RATE_LIMIT_SESSION_PER_MINUTE="$RL_SESSION" \
    TENANT_DEFAULT_RATE_LIMIT_PER_MINUTE="$(( RL_TENANT < 1000000 ? RL_TENANT : 1000000 ))" \
    "$SUITE_BIN" >"$SUITE_LOG" 2>&1 &
SUITE_PID=$!

# The gateway's /health is 200 as soon as the gateway listens ("degraded" while upstreams are
# down; it polls them every 5 s), so wait for "status":"ok", i.e. every upstream seen ready.
log "waiting up to ${HEALTH_TIMEOUT}s for http://$HOST:$GATEWAY_PORT/health to say \"status\":\"ok\""
deadline=$((SECONDS + HEALTH_TIMEOUT))
until curl -fsS --max-time 2 "http://$HOST:$GATEWAY_PORT/health" 2>/dev/null | grep -q '"status":"ok"'; do
    proc_running "$SUITE_PID" || die "suite exited during start-up"
    (( SECONDS < deadline )) || die "suite not healthy after ${HEALTH_TIMEOUT}s"
    sleep 1
done
log "suite is healthy (pid $SUITE_PID)"

# --- soak ---------------------------------------------------------------------
DRIVER_ARGS=(
    --port "$GATEWAY_PORT" --rate "$RATE" --capacity-fraction "$CAPACITY_FRACTION"
    --duration "$DURATION" --ramp "$RAMP" --ramp-step "$RAMP_STEP" --ramp-settle "$RAMP_SETTLE" --max-inflight "$MAX_INFLIGHT"
    --mix "$MIX" --session-limit "$RL_SESSION" --chats-per-session "$CHATS_PER_SESSION"
    --sample-interval "$SAMPLE_INTERVAL" --seed "$SEED"
    --suite-pid "$SUITE_PID" --pg-pidfile "$RUN_DATA/postgres/data/postmaster.pid" --suite-log "$SUITE_LOG"
    --suite-settings "$SUITE_SETTINGS"
    --out-json "$OUT_DIR/$STAMP-soak.json" --out-text "$OUT_DIR/$STAMP-soak.txt"
)
if [[ "${ALL_429_INTENDED:-0}" == 1 ]]; then
    DRIVER_ARGS+=(--all-429-intended)
fi
rc=0
run_interruptible python3 bench/soak.py "${DRIVER_ARGS[@]}" || rc=$?
if ! proc_running "$SUITE_PID"; then
    log "the suite stopped during the run"
    (( rc != 0 )) || rc=1
    SUITE_DIED=1
fi
if [[ -s "$OUT_DIR/$STAMP-soak.json" ]]; then
    if (( rc == 0 )); then
        log "soak passed; figures in $OUT_DIR/$STAMP-soak.json and $OUT_DIR/$STAMP-soak.txt"
    else
        log "soak FAILED (see the verdict); figures in $OUT_DIR/$STAMP-soak.json and $OUT_DIR/$STAMP-soak.txt"
    fi
else
    log "the driver stopped with status $rc before writing its results"
fi
exit "$rc"
