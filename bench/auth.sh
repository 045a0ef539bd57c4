#!/usr/bin/env bash
# Auth benchmark (see bench/README.md). Runs the whole suite in one process (.build/release/suite)
# and measures, each time against a baseline taken in the same run:
#
# 1. Login ceiling: the seconds one password hash takes at BCRYPT_COST on one core
#    (`suite bcrypt-time`, the same code sign-in runs); ceiling = cores / that.
# 2. Logins: wrk POSTs /api/auth/login through the gateway for DURATION seconds with
#    LOGIN_CONNECTIONS connections, each request one of LOGIN_USERS accounts at random (right
#    password; many users, as in production: one account hit by more than MAX_LOGIN_ATTEMPTS
#    logins at once is refused 429 while they are in flight, by design of the lockout, which
#    counts an attempt before its check): req/s against the ceiling (goal >= 90 %). Every answer
#    must be 200.
# 3. /me under login load: GET /api/auth/me through the gateway at ME_RATE req/s (hey), first on
#    an idle suite, then while step 2's load runs: p99 loaded / p99 idle (goal <= 1.5).
# 4. Revocation at the gateway: two separate gateway processes whose upstreams are a static nginx
#    (so the proxy is the bottleneck, as in bench/gateway.sh's gw-static-auth row), both checking
#    the same real JWT against the suite's JWKS. `plain` has no SERVICE_KEY (no revocation or
#    tenant-policy checks); `revoking` has one, and its revocation feed (served by the static nginx:
#    everything on the first read, nothing new after) holds REVOCATIONS entries, one of them the session of a second real token, which it must
#    refuse (401 TOKEN_REVOKED) before anything is measured. wrk -t THREADS -c CONNECTIONS on
#    GET /api/auth/me, plain / revoking / plain / revoking: req/s and p99 ratios (goal: ~1.0).
#
# Usage (from anywhere):
#   bench/auth.sh                                        # builds suite and gateway (release) first
#   BENCH_SKIP_BUILD=1 bench/auth.sh                     # the existing release build
#   BENCH_SKIP_BUILD=1 DURATION=5 WARMUP=1 bench/auth.sh # a quick check of the script
#   BENCH_SKIP_BUILD=1 PASSWORD_HASH_ISOLATION=threads SKIP_REVOCATION=1 bench/auth.sh  # hashes on auth's threads, steps 1-3 only
# Environment:
#   BCRYPT_COST (12)          the cost the suite hashes with (the production default)
#   DURATION (20) WARMUP (3)  seconds per measured run / before it
#   LOGIN_CONNECTIONS (8)     wrk connections for logins (4 per core keeps the hash pool busy)
#   LOGIN_USERS (16)          accounts the logins spread over (each registered first)
#   ME_RATE (50) ME_CONNECTIONS (5)  hey's total rate and workers for /me
#   THREADS (2) CONNECTIONS (64)     wrk settings for step 4
#   REVOCATIONS (10000)       entries in the revocation feed of step 4
#   PASSWORD_HASH_ISOLATION (process)  where the suite's auth hashes: process (a worker process of
#                             its own, niced) or threads (auth's own threads; PASSWORD_HASH_PRIORITY
#                             applies); the summary says which ran, as found in /proc
#   SKIP_REVOCATION (0)       1: skip step 4 (steps 1-3 are what the isolation changes)
#   SUITE_BIN, GATEWAY_BIN, BENCH_HEALTH_TIMEOUT (120), BENCH_OUT_DIR (bench/out)
# Ports (127.0.0.1, checked free first): suite 18180-18184, its gateway's admin 18185, its
# PostgreSQL 18189, static nginx 18191, gateways 18194 (plain) and 18195 (revoking), admin
# 18197-18198. Requires wrk, hey, nginx, curl, openssl, python3.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BCRYPT_COST="${BCRYPT_COST:-12}"
DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-3}"
LOGIN_CONNECTIONS="${LOGIN_CONNECTIONS:-8}"
LOGIN_USERS="${LOGIN_USERS:-16}"
ME_RATE="${ME_RATE:-50}"
ME_CONNECTIONS="${ME_CONNECTIONS:-5}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
REVOCATIONS="${REVOCATIONS:-10000}"
PASSWORD_HASH_ISOLATION="${PASSWORD_HASH_ISOLATION:-process}"
SKIP_REVOCATION="${SKIP_REVOCATION:-0}"
[[ "$PASSWORD_HASH_ISOLATION" == process || "$PASSWORD_HASH_ISOLATION" == threads ]] \
    || { printf '[bench] error: PASSWORD_HASH_ISOLATION must be process or threads\n' >&2; exit 1; }
HEALTH_TIMEOUT="${BENCH_HEALTH_TIMEOUT:-120}"
SUITE_BIN="${SUITE_BIN:-.build/release/suite}"
GATEWAY_BIN="${GATEWAY_BIN:-$(dirname "$SUITE_BIN")/gateway}"
OUT_DIR="${BENCH_OUT_DIR:-bench/out}"
CORES="$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)"

HOST=127.0.0.1
GATEWAY_PORT=18180
AUTH_PORT=18181
SUITE_ADMIN_PORT=18185
PG_PORT=18189
STATIC_PORT=18191
PLAIN_PORT=18194
REVOKING_PORT=18195
NO_LIMIT=1000000000

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

for v in BCRYPT_COST DURATION WARMUP LOGIN_CONNECTIONS LOGIN_USERS ME_RATE ME_CONNECTIONS THREADS CONNECTIONS REVOCATIONS HEALTH_TIMEOUT; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
(( BCRYPT_COST >= 4 && BCRYPT_COST <= 31 )) || die "BCRYPT_COST must be 4-31"
(( ME_RATE >= ME_CONNECTIONS )) || die "ME_RATE ($ME_RATE) must be at least ME_CONNECTIONS ($ME_CONNECTIONS)"
NGINX_BIN="${NGINX_BIN:-$(command -v nginx || true)}"
if [[ -z "$NGINX_BIN" && -x /usr/sbin/nginx ]]; then NGINX_BIN=/usr/sbin/nginx; fi
missing=()
for t in wrk hey curl openssl python3; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
[[ -n "$NGINX_BIN" && -x "$NGINX_BIN" ]] || missing+=(nginx)
(( ${#missing[@]} == 0 )) || die "missing: ${missing[*]} (apt-get install -y ${missing[*]})"

BG_NAMES=()
BG_PIDS=()
BG_LOGS=()
SUITE_PID=""
CHILD_PID=""
TMP_DIR=""
DATA_DIR=""
STAMP="$(date +%Y%m%d-%H%M%S)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH_NAME=auth
BG_STOP_SECONDS=30
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for p in "$GATEWAY_PORT" "$AUTH_PORT" 18182 18183 18184 "$SUITE_ADMIN_PORT" "$PG_PORT" "$STATIC_PORT" "$PLAIN_PORT" "$REVOKING_PORT" 18197 18198; do
    port_free "$p" || die "port $p on $HOST is already in use"
done

if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    build_release suite gateway
fi
[[ -x "$SUITE_BIN" && ( -x "$GATEWAY_BIN" || "$SKIP_REVOCATION" == 1 ) ]] \
    || die "need $SUITE_BIN and $GATEWAY_BIN (build them, or set SUITE_BIN / GATEWAY_BIN)"

TMP_DIR="$(mktemp -d -t auth-bench.XXXXXX)"
DATA_DIR="$(mktemp -d -t auth-bench-data.XXXXXX)"
chmod 755 "$DATA_DIR"   # run as root, the suite hands its cluster to the postgres user
mkdir -p "$OUT_DIR"
SUMMARY="$OUT_DIR/$STAMP-auth-summary.txt"
out() { printf '%s\n' "$*" | tee -a "$SUMMARY"; }

# --- 1. the ceiling -----------------------------------------------------------
log "timing one password hash at cost $BCRYPT_COST (suite bcrypt-time)"
HASH_SECONDS="$(BCRYPT_COST="$BCRYPT_COST" "$SUITE_BIN" bcrypt-time 8)"
CEILING="$(awk -v c="$CORES" -v t="$HASH_SECONDS" 'BEGIN { printf "%.2f", c / t }')"

# --- the suite ------------------------------------------------------------------
log "starting the suite (BCRYPT_COST=$BCRYPT_COST, PASSWORD_HASH_ISOLATION=$PASSWORD_HASH_ISOLATION)"
start_bg suite "$TMP_DIR/suite.log" env DATA_DIR="$DATA_DIR" PG_PORT="$PG_PORT" GATEWAY_PORT="$GATEWAY_PORT" \
    PASSWORD_HASH_ISOLATION="$PASSWORD_HASH_ISOLATION" \
    AUTH_PORT="$AUTH_PORT" TENANCY_PORT=18182 BILLING_PORT=18183 CHAT_PORT=18184 GATEWAY_ADMIN_PORT="$SUITE_ADMIN_PORT" \
    BCRYPT_COST="$BCRYPT_COST" RATE_LIMIT_PUBLIC_PER_MINUTE="$NO_LIMIT" RATE_LIMIT_AUTH_PER_MINUTE="$NO_LIMIT" \
    RATE_LIMIT_TENANT_PER_MINUTE="$NO_LIMIT" TENANT_DEFAULT_RATE_LIMIT_PER_MINUTE=1000000 LOG_LEVEL="${LOG_LEVEL:-warning}" \
    "$SUITE_BIN"
SUITE_PID=$LAST_PID
GATEWAY="http://$HOST:$GATEWAY_PORT"
for port in "$AUTH_PORT" 18182 18183 18184; do
    wait_for_http "http://$HOST:$port/ready" "$SUITE_PID" suite "$HEALTH_TIMEOUT"
done
wait_for_http "$GATEWAY/health" "$SUITE_PID" suite "$HEALTH_TIMEOUT"

# Where the suite's auth hashes, as the kernel shows it: a worker child (auth-password-hash-worker)
# with its session and autogroup, or none (auth's own threads).
hashing_where() {
    local pid
    for pid in $(pgrep -P "$SUITE_PID" 2>/dev/null); do
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q ' auth-password-hash-worker' || continue
        local session nices
        session="$(awk '{ sub(/.*\) /, ""); print $4 }' "/proc/$pid/stat")"
        nices="$(for t in /proc/"$pid"/task/*/stat; do awk '{ sub(/.*\) /, ""); print $17, $39 }' "$t"; done | sort | uniq -c | awk '{ printf "%s%sx nice %s policy %s", (NR > 1 ? ", " : ""), $1, $2, $3 }')"
        printf 'process (worker pid %s, session %s, autogroup "%s", threads: %s)' "$pid" "$session" \
            "$(cat "/proc/$pid/autogroup" 2>/dev/null || echo none)" "$nices"
        return
    done
    printf 'threads (no worker process; PASSWORD_HASH_PRIORITY=%s)' "${PASSWORD_HASH_PRIORITY:-normal}"
}
HASHING_WHERE="$(hashing_where)"
[[ "$PASSWORD_HASH_ISOLATION" == threads || "$HASHING_WHERE" == process* ]] \
    || log "warning: PASSWORD_HASH_ISOLATION=process but no worker process found; see $TMP_DIR/suite.log"
log "password hashing: $HASHING_WHERE"

PASSWORD="Bench-Passw0rd-$(openssl rand -hex 4)"
RUN="$(openssl rand -hex 4)"
LOGIN_BODIES=()
log "registering $LOGIN_USERS accounts"
for (( i = 1; i <= LOGIN_USERS; i++ )); do
    email="bench-$RUN-$i@example.com"
    code="$(curl -sS -o "$TMP_DIR/register.json" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data "{\"email\":\"$email\",\"password\":\"$PASSWORD\",\"account_name\":\"Bench $RUN $i\"}" "$GATEWAY/api/onboarding/register")"
    [[ "$code" == 201 ]] || die "registration answered $code: $(head -c 300 "$TMP_DIR/register.json")"
    LOGIN_BODIES+=("{\"email\":\"$email\",\"password\":\"$PASSWORD\"}")
done
# token_of FILE: the access_token of a login or registration answer.
token_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$1"; }
TOKEN="$(token_of "$TMP_DIR/register.json")"
curl -sS -o "$TMP_DIR/login2.json" -H 'Content-Type: application/json' --data "${LOGIN_BODIES[-1]}" "$GATEWAY/api/auth/login"
REVOKED_TOKEN="$(token_of "$TMP_DIR/login2.json")"

# hey_p99 FILE: hey's 99th percentile in milliseconds (fails when hey saw errors or non-200s).
hey_p99() {
    python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
codes = dict((int(c), int(n)) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", text))
if set(codes) != {200} or "Error distribution" in text:
    sys.exit(f"/me answers were not all 200: {codes}")
print("%.2f" % (float(re.search(r"99% in ([0-9.]+) secs", text).group(1)) * 1000))
PY
}
# wrk_field FILE rps|p99: Requests/sec, or the 99% latency in ms (fails on non-2xx or socket errors).
wrk_field() {
    python3 - "$1" "$2" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
if "Non-2xx" in text or "Socket errors" in text:
    sys.exit(f"{sys.argv[1]}: errors during the run:\n{text}")
if sys.argv[2] == "rps":
    print(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))
else:
    value, unit = re.search(r"^\s+99%\s+([0-9.]+)(us|ms|s)\s*$", text, re.M).groups()
    print("%.2f" % (float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]))
PY
}
me() { # me NAME BASE_URL: hey at ME_RATE for DURATION seconds on BASE_URL/api/auth/me; prints p99 (ms)
    local file="$OUT_DIR/$STAMP-auth-$1.txt"
    hey -z "${DURATION}s" -c "$ME_CONNECTIONS" -q "$((ME_RATE / ME_CONNECTIONS))" -H "Authorization: Bearer $TOKEN" \
        "$2/api/auth/me" >"$file"
    hey_p99 "$file"
}
AUTH="http://$HOST:$AUTH_PORT"

# --- 2 and 3: /me idle, then logins with /me beside them ---------------------------------
log "warm-up, then /me idle at $ME_RATE req/s for ${DURATION}s"
hey -z "${WARMUP}s" -c "$ME_CONNECTIONS" -H "Authorization: Bearer $TOKEN" "$GATEWAY/api/auth/me" >/dev/null
ME_IDLE="$(me me-idle "$GATEWAY")"
ME_DIRECT_IDLE="$(me me-direct-idle "$AUTH")"
{
    echo 'local bodies = {'
    printf "    '%s',\n" "${LOGIN_BODIES[@]}"
    echo '}'
    cat <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
    return wrk.format(nil, nil, nil, bodies[math.random(#bodies)])
end
local shown = 0
-- Say what went wrong with the first few refused logins (wrk only counts them).
response = function(status, headers, body)
    if status ~= 200 and shown < 3 then
        shown = shown + 1
        io.stderr:write("login answered " .. status .. ": " .. body .. "\n")
    end
end
EOF
} >"$TMP_DIR/login.lua"
LOGIN_FILE="$OUT_DIR/$STAMP-auth-logins.txt"
log "logins: wrk -t2 -c$LOGIN_CONNECTIONS for $((2 * DURATION + 2 * WARMUP))s, /me at $ME_RATE req/s in the middle (gateway, then auth)"
wrk -t2 -c"$LOGIN_CONNECTIONS" -d"$((2 * DURATION + 2 * WARMUP))s" --timeout 30s --latency -s "$TMP_DIR/login.lua" \
    "$GATEWAY/api/auth/login" >"$LOGIN_FILE" &
CHILD_PID=$!
sleep "$WARMUP"
ME_LOADED="$(me me-loaded "$GATEWAY")"
ME_DIRECT_LOADED="$(me me-direct-loaded "$AUTH")"
wait "$CHILD_PID"
CHILD_PID=""
LOGIN_RPS="$(wrk_field "$LOGIN_FILE" rps)"

# --- 4. revocation at the gateway ---------------------------------------------------------
declare -A RPS P99
if [[ "$SKIP_REVOCATION" != 1 ]]; then
STATIC_DIR="$TMP_DIR/static"
mkdir -p "$STATIC_DIR"
python3 - "$REVOKED_TOKEN" "$REVOCATIONS" >"$STATIC_DIR/revocations.json" <<'PY'
import base64, datetime, json, sys, uuid
payload = sys.argv[1].split(".")[1]
sid = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"]
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
stamp = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
rows = [{"kind": "session", "subject": str(uuid.uuid4()), "updated_at": stamp(now), "expires_at": stamp(now + datetime.timedelta(days=1))}
        for _ in range(int(sys.argv[2]) - 1)]
rows.append({"kind": "session", "subject": sid, "updated_at": stamp(now), "expires_at": stamp(now + datetime.timedelta(days=1))})
json.dump({"revocations": rows, "next": None}, sys.stdout)
PY
{
    nginx_common "$STATIC_DIR" 1
    cat <<EOF

http {
$(nginx_temp_paths "$STATIC_DIR")
    keepalive_requests 1000000;
    server {
        listen $HOST:$STATIC_PORT;
        default_type application/json;
        # As auth's feed does: everything on the first read (changed_since=0), then only what changed
        # since (here: nothing), so the gateway is not re-reading 10,000 rows every pass.
        location = /internal/gateway/revocations {
            if (\$arg_changed_since = "0") { rewrite ^ /revocations-full.json last; }
            return 200 '{"revocations":[],"next":null}';
        }
        location = /revocations-full.json { internal; alias $STATIC_DIR/revocations.json; }
        location = /internal/gateway/tenant-policies { return 200 '{"policies":[],"next":null}'; }
        location / { return 200 '{"ok":true}'; }
    }
}
EOF
} >"$STATIC_DIR/nginx.conf"
start_nginx static-nginx "$STATIC_DIR" "$STATIC_PORT"

openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt >"$TMP_DIR/gateway.key"
STATIC_URL="http://$HOST:$STATIC_PORT"
GW_ENV=(
    HTTP_HOST="$HOST" AUTH_URL="$STATIC_URL" TENANCY_URL="$STATIC_URL" BILLING_URL="$STATIC_URL" CHAT_URL="$STATIC_URL"
    JWKS_URL="http://$HOST:$AUTH_PORT/.well-known/jwks.json" LOG_LEVEL="${LOG_LEVEL:-warning}"
    RATE_LIMIT_PUBLIC_PER_MINUTE="$NO_LIMIT" RATE_LIMIT_AUTH_PER_MINUTE="$NO_LIMIT"
    RATE_LIMIT_TENANT_PER_MINUTE="$NO_LIMIT" RATE_LIMIT_SESSION_PER_MINUTE="$NO_LIMIT"
)
start_bg plain "$TMP_DIR/plain.log" env "${GW_ENV[@]}" HTTP_PORT="$PLAIN_PORT" GATEWAY_ADMIN_PORT=18197 "$GATEWAY_BIN"
wait_for_http "http://$HOST:$PLAIN_PORT/health" "$LAST_PID" plain "$HEALTH_TIMEOUT"
start_bg revoking "$TMP_DIR/revoking.log" env "${GW_ENV[@]}" HTTP_PORT="$REVOKING_PORT" GATEWAY_ADMIN_PORT=18198 \
    SERVICE_KEY="$(cat "$TMP_DIR/gateway.key")" "$GATEWAY_BIN"
REVOKING_PID=$LAST_PID
wait_for_http "http://$HOST:$REVOKING_PORT/health" "$REVOKING_PID" revoking "$HEALTH_TIMEOUT"
# The revoking gateway must have taken in the feed: the second token is refused, the first is not.
deadline=$((SECONDS + 30))
until [[ "$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $REVOKED_TOKEN" "http://$HOST:$REVOKING_PORT/api/auth/me")" == 401 ]]; do
    (( SECONDS < deadline )) || die "the revoking gateway still accepts the revoked token after 30 s"
    sleep 0.5
done
for port in "$PLAIN_PORT" "$REVOKING_PORT"; do
    code="$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://$HOST:$port/api/auth/me")"
    [[ "$code" == 200 ]] || die "gateway :$port answered $code to the valid token"
done
[[ "$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $REVOKED_TOKEN" "http://$HOST:$PLAIN_PORT/api/auth/me")" == 200 ]] \
    || die "the plain gateway refused the second token"
log "revoking gateway holds $REVOCATIONS revocations and refuses the revoked token"

for round in 1 2; do
    for name in plain revoking; do
        port=$PLAIN_PORT
        [[ $name == revoking ]] && port=$REVOKING_PORT
        file="$OUT_DIR/$STAMP-auth-$name-$round.txt"
        log "$name (round $round): wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s GET /api/auth/me"
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -H "Authorization: Bearer $TOKEN" "http://$HOST:$port/api/auth/me" >/dev/null
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" \
            "http://$HOST:$port/api/auth/me" >"$file"
        RPS[$name]="${RPS[$name]:-} $(wrk_field "$file" rps)"
        P99[$name]="${P99[$name]:-} $(wrk_field "$file" p99)"
    done
done
fi
mean() { awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.2f", s / NF }' <<<"$1"; }

# --- summary -----------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v v="$1" -v goal="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? v >= goal : v <= goal; print ok ? "met" : "NOT met" }'; }
LOGIN_RATIO="$(ratio "$LOGIN_RPS" "$CEILING")"
ME_RATIO="$(ratio "$ME_LOADED" "$ME_IDLE")"
out "auth benchmark $STAMP: $CORES cores, BCRYPT_COST=$BCRYPT_COST, runs of ${DURATION}s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
out "   password hashing: $HASHING_WHERE"
out "1. one password hash: $(awk -v t="$HASH_SECONDS" 'BEGIN { printf "%.1f", t * 1000 }') ms on one core; ceiling = $CORES / that = $CEILING logins/s"
out "2. logins through the gateway (wrk -c$LOGIN_CONNECTIONS): $LOGIN_RPS/s = $LOGIN_RATIO of the ceiling (goal >= 0.90: $(verdict "$LOGIN_RATIO" 0.90 '>='))"
out "3. GET /api/auth/me p99 at $ME_RATE req/s: idle $ME_IDLE ms, during logins $ME_LOADED ms = ${ME_RATIO}x (goal <= 1.5: $(verdict "$ME_RATIO" 1.5 '<='))"
out "   the same straight to auth (no gateway): idle $ME_DIRECT_IDLE ms, during logins $ME_DIRECT_LOADED ms = $(ratio "$ME_DIRECT_LOADED" "$ME_DIRECT_IDLE")x"
if [[ "$SKIP_REVOCATION" != 1 ]]; then
    RPS_RATIO="$(ratio "$(mean "${RPS[revoking]}")" "$(mean "${RPS[plain]}")")"
    P99_RATIO="$(ratio "$(mean "${P99[revoking]}")" "$(mean "${P99[plain]}")")"
    out "4. gateway GET /api/auth/me, static upstream, wrk -t$THREADS -c$CONNECTIONS, two rounds each:"
    out "   plain (no revocation checks)        req/s:${RPS[plain]}  p99 ms:${P99[plain]}"
    out "   revoking ($REVOCATIONS revocations) req/s:${RPS[revoking]}  p99 ms:${P99[revoking]}"
    out "   revoking / plain: req/s ${RPS_RATIO}x, p99 ${P99_RATIO}x"
else
    out "4. skipped (SKIP_REVOCATION=1)"
fi
log "summary saved to $SUMMARY; raw outputs in $OUT_DIR/$STAMP-auth-*.txt"
