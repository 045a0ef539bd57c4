#!/usr/bin/env bash
# Fuzzes the public API (docs/openapi.yaml) through the gateway with schemathesis.
#
#   pip install -r Tools/fuzz/requirements.txt      # once (CI does this)
#   swift build --product suite                      # or point SUITE_BIN at another build
#   Tools/fuzz/run.sh
#
# Starts the suite (its own throwaway PostgreSQL under a temp DATA_DIR, free loopback ports, rate limits
# raised so the fuzzer reaches the handlers, BCRYPT_COST=4), registers an owner to get a bearer token, then
# runs every schemathesis phase (examples, coverage, fuzzing, stateful) with every check against the
# gateway, for a fixed time budget; the super_admin-only operations get a short pass of their own with a
# super_admin's token. Exits non-zero on any finding; the suite is stopped whatever happens.
#
# Environment (all optional):
#   SUITE_BIN        suite executable                       (.build/debug/suite)
#   ST               schemathesis CLI                       (st on PATH)
#   FUZZ_SEED        seed to replay a run                   (random, printed)
#   FUZZ_MAX_TIME    time budget of the whole st run, s     (180)
#   FUZZ_WORKERS     concurrent schemathesis workers        (1: see below)
#   FUZZ_REPORT_DIR  where the reports go                   (a new temp dir, printed)
#   FUZZ_ST_ARGS     extra arguments for `st run`, e.g. "--include-path /chatkit" (word-split)
#   GATEWAY_PORT AUTH_PORT TENANCY_PORT BILLING_PORT CHAT_PORT PG_PORT GATEWAY_ADMIN_PORT   (free ports when unset)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo=$(pwd)

SUITE_BIN=${SUITE_BIN:-.build/debug/suite}
ST=${ST:-st}
FUZZ_MAX_TIME=${FUZZ_MAX_TIME:-180}
# One worker: with two, a run once died inside Hypothesis (which schemathesis drives) with CPython
# 3.11's spurious "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905: an
# error path that does not restore the ast recursion counter, reported mostly from threaded
# programs): a crash of the tool, not a finding about the API, but a red run all the same.
FUZZ_WORKERS=${FUZZ_WORKERS:-1}
FUZZ_SEED=${FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}

[[ -x $SUITE_BIN ]] || { echo "fuzz: no suite executable at $SUITE_BIN (swift build --product suite, or set SUITE_BIN)" >&2; exit 2; }
ST=$(command -v "$ST") || { echo "fuzz: '${ST:-st}' not found; pip install -r Tools/fuzz/requirements.txt (or set ST)" >&2; exit 2; }
[[ $ST == /* ]] || ST=$repo/$ST # st runs from a temporary folder below
command -v curl >/dev/null || { echo "fuzz: curl is required" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/suite-fuzz.XXXXXX")
chmod 755 "$work" # as root, PostgreSQL runs as the postgres user and must reach DATA_DIR
report_dir=${FUZZ_REPORT_DIR:-$work/report}
mkdir -p "$report_dir"
suite_log=$work/suite.log
suite_pid=

# Free loopback ports for whatever is not set (held together while choosing, so they differ).
read -r free_gateway free_auth free_tenancy free_billing free_chat free_pg free_admin < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(7):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)
export GATEWAY_PORT=${GATEWAY_PORT:-$free_gateway} AUTH_PORT=${AUTH_PORT:-$free_auth}
export TENANCY_PORT=${TENANCY_PORT:-$free_tenancy} BILLING_PORT=${BILLING_PORT:-$free_billing}
export CHAT_PORT=${CHAT_PORT:-$free_chat} PG_PORT=${PG_PORT:-$free_pg} GATEWAY_ADMIN_PORT=${GATEWAY_ADMIN_PORT:-$free_admin}
export DATA_DIR=$work/data
# High limits: the fuzzer should reach the handlers, not spend its budget on 429s (still declared in the spec).
export RATE_LIMIT_PUBLIC_PER_MINUTE=1000000 RATE_LIMIT_AUTH_PER_MINUTE=1000000
export RATE_LIMIT_TENANT_PER_MINUTE=1000000 RATE_LIMIT_SESSION_PER_MINUTE=1000000
# Tenants registered during the run carry their own limit (tenancy's default), which the gateway applies.
export TENANT_DEFAULT_RATE_LIMIT_PER_MINUTE=1000000
# Likewise API keys: past the tenant's limit every new key is 409, and the stateful phase would never
# get one to use or revoke.
export API_KEYS_PER_TENANT=10000
# Stripe's routes answer 503 without credentials; with these (an API no one listens on) they are
# exercised: a webhook without a valid signature is 400, the portal 409 for a tenant that never paid
# through Stripe. Payments themselves stay with the offline sandbox.
export STRIPE_SECRET_KEY=sk_test_fuzz STRIPE_WEBHOOK_SECRET=whsec_fuzz STRIPE_API_URL=http://127.0.0.1:9
export BCRYPT_COST=4 CHAT_STREAM_TOKEN_DELAY_MS=0 LOG_LEVEL=${LOG_LEVEL:-info} HEALTH_CHECK_INTERVAL_SECONDS=1
# A super_admin for the operations only one may call (the owner's token meets their 403 in the main run).
export SUPER_ADMIN_EMAIL=fuzz-root@example.com SUPER_ADMIN_PASSWORD=Fuzz-Root-$RANDOM$RANDOM
gateway=http://127.0.0.1:$GATEWAY_PORT

stop_suite() {
    [[ -n $suite_pid ]] || return 0
    if kill -0 "$suite_pid" 2>/dev/null; then
        kill -TERM "$suite_pid" 2>/dev/null || true
        # The suite drains (grace 25 s), stops its services, then stops PostgreSQL.
        for _ in $(seq 1 600); do kill -0 "$suite_pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$suite_pid" 2>/dev/null; then
            echo "fuzz: suite did not stop within 60 s; killing it" >&2
            kill -KILL "$suite_pid" 2>/dev/null || true
        fi
    fi
    wait "$suite_pid" 2>/dev/null || true
    suite_pid=
    # A suite that was killed leaves its PostgreSQL running: stop it by the pid in its own pid file.
    local pidfile=$DATA_DIR/postgres/data/postmaster.pid
    if [[ -f $pidfile ]]; then
        local pg_pid
        pg_pid=$(head -n1 "$pidfile")
        if [[ $pg_pid =~ ^[0-9]+$ ]] && kill -0 "$pg_pid" 2>/dev/null; then
            echo "fuzz: stopping the PostgreSQL the suite left running (pid $pg_pid)" >&2
            kill -QUIT "$pg_pid" 2>/dev/null || true
            for _ in $(seq 1 100); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.1; done
        fi
    fi
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_suite
    if [[ $status -ne 0 && -f $suite_log ]]; then
        echo "== suite log (last 60 lines of $suite_log)" >&2
        tail -n 60 "$suite_log" >&2 || true
    fi
    rm -rf "$DATA_DIR"
    echo "fuzz: reports in $report_dir (suite log: $suite_log)"
    [[ $status -eq 0 ]] || echo "fuzz: FAILED; replay with FUZZ_SEED=$FUZZ_SEED $0" >&2
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "fuzz: seed $FUZZ_SEED (replay: FUZZ_SEED=$FUZZ_SEED $0)"
echo "fuzz: starting $SUITE_BIN (gateway :$GATEWAY_PORT, auth :$AUTH_PORT, tenancy :$TENANCY_PORT, billing :$BILLING_PORT, chat :$CHAT_PORT, PostgreSQL :$PG_PORT, data $DATA_DIR)"
"$SUITE_BIN" >"$suite_log" 2>&1 &
suite_pid=$!

ready=false
for _ in $(seq 1 240); do
    kill -0 "$suite_pid" 2>/dev/null || { echo "fuzz: the suite exited during start" >&2; exit 1; }
    # "ok" once the gateway has seen every service answer /ready (a 200 "degraded" is not enough).
    if curl -fsS --max-time 2 "$gateway/health" 2>/dev/null | grep -q '"status":"ok"'; then ready=true; break; fi
    sleep 0.5
done
$ready || { echo "fuzz: the gateway did not answer /health within 120 s" >&2; exit 1; }

# The owner whose token every request carries (security: [] operations ignore it).
register=$(curl -sS --max-time 30 -X POST "$gateway/api/onboarding/register" -H 'Content-Type: application/json' \
    -d "{\"email\":\"fuzz-owner-$FUZZ_SEED@example.com\",\"password\":\"Fuzz-Owner1\",\"account_name\":\"Fuzz Owner $FUZZ_SEED\"}")
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1" 2>/dev/null; }
token=$(printf '%s' "$register" | json_field access_token) || { echo "fuzz: registration failed: $register" >&2; exit 1; }
slug=$(printf '%s' "$register" | json_field tenant_slug) || { echo "fuzz: registration failed: $register" >&2; exit 1; }
# That tenant's id for the `{tenantID}` of the admin paths (schemathesis.toml: parameters), so they are
# exercised past the 404 of an unknown tenant.
FUZZ_TENANT_ID=$(printf '%s' "$register" | json_field tenant_id) || { echo "fuzz: registration failed: $register" >&2; exit 1; }
export FUZZ_TENANT_ID
# A widget session of that tenant, for the session routes (schemathesis.toml: auth.openapi.sessionId).
session=$(curl -sS --max-time 30 -X POST "$gateway/api/sessions/init" -H "X-Tenant-Slug: $slug" -H 'Content-Type: application/json' -d '{}')
FUZZ_SESSION_ID=$(printf '%s' "$session" | json_field session_id) || { echo "fuzz: session init failed: $session" >&2; exit 1; }
export FUZZ_SESSION_ID
# Attachments are off in a new tenant's theme; on, so POST /attachments is exercised past its 403.
curl -sS --max-time 30 -o /dev/null -X PUT "$gateway/api/admin/tenants/$FUZZ_TENANT_ID/theme" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d '{"attachments_enabled":true,"attachments_max_size":10485760}'
echo "fuzz: tenant $slug, widget session ${FUZZ_SESSION_ID:0:12}…"
root=$(curl -sS --max-time 30 -X POST "$gateway/api/auth/login" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$SUPER_ADMIN_EMAIL\",\"password\":\"$SUPER_ADMIN_PASSWORD\"}")
root_token=$(printf '%s' "$root" | json_field access_token) || { echo "fuzz: super_admin login failed: $root" >&2; exit 1; }

# Run from the temp dir: schemathesis and hypothesis keep their caches (.schemathesis, .hypothesis) in the cwd.
cd "$work"
# fuzz MAX_TIME PHASES [st filter args...]: one schemathesis run against the suite, as the owner
# (or as whoever's token is in $bearer).
fuzz() {
    local max_time="$1" phases="$2"
    shift 2
    # shellcheck disable=SC2086 # FUZZ_ST_ARGS is meant to be word-split
    "$ST" --config-file "$repo/Tools/fuzz/schemathesis.toml" run "$repo/docs/openapi.yaml" \
        --url "$gateway" \
        -H "Authorization: Bearer ${bearer:-$token}" \
        --checks all \
        --phases "$phases" \
        --mode all \
        --workers "$FUZZ_WORKERS" \
        --max-time "$max_time" \
        --seed "$FUZZ_SEED" \
        --generation-database none \
        --request-timeout 10 \
        --report junit,ndjson \
        --report-dir "$report_dir" \
        --no-color \
        "$@" \
        ${FUZZ_ST_ARGS:-}
}
# Logging out ends the session of the token every request carries (and logging out everywhere voids
# it), after which every bearer route could only answer 401: those two go last, in a run of their own.
set +e
fuzz "$FUZZ_MAX_TIME" examples,coverage,fuzzing,stateful --exclude-operation-id logout --exclude-operation-id logoutEverywhere
status=$?
# The signing-key operations as a super_admin: a rotation, then 409 ROTATION_PENDING while its key waits.
mkdir -p "$report_dir/signing-keys"
bearer=$root_token report_dir="$report_dir/signing-keys" fuzz 30 examples,coverage,fuzzing \
    --include-operation-id listSigningKeys --include-operation-id rotateSigningKey
keys_status=$?
(( status == 0 )) && status=$keys_status
mkdir -p "$report_dir/logout"
# (Their stateful phase has nothing to chain: no link leads to or from them.)
report_dir="$report_dir/logout" fuzz 30 examples,coverage,fuzzing \
    --include-operation-id logout --include-operation-id logoutEverywhere
logout_status=$?
(( status == 0 )) && status=$logout_status
# Platform administration as a super_admin (the owner meets its 403s in the main run): listing, creating,
# reading and changing tenants, the dashboard, usage. Last: it may suspend or throttle the owner's tenant.
mkdir -p "$report_dir/platform"
bearer=$root_token report_dir="$report_dir/platform" fuzz 60 examples,coverage,fuzzing \
    --include-operation-id listTenants --include-operation-id createTenant --include-operation-id getTenant \
    --include-operation-id updateTenant --include-operation-id getTenantUsage --include-operation-id getDashboardStats
platform_status=$?
(( status == 0 )) && status=$platform_status
set -e
if [[ $status -eq 0 ]] && ! kill -0 "$suite_pid" 2>/dev/null; then
    echo "fuzz: the suite exited during the run" >&2
    status=1
fi

# (The outbox and mail workers' LISTEN connections are held on purpose, and not counted.)
# Pooled connections leased and never given back: idle for longer than PostgresNIO's keep-alive
# interval (30 s, which would have run `SELECT 1` on a connection back in its pool), last statement
# something else. The fuzzer once drained tenancy's pool this way; a few minutes later every request
# needing that pool hung.
psql=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | tail -n1 || true)
if [[ -n $psql ]]; then
    leaked=$("$psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atc \
        "SELECT datname || ': ' || left(regexp_replace(query, '\s+', ' ', 'g'), 80) FROM pg_stat_activity
         WHERE backend_type = 'client backend' AND state = 'idle' AND now() - state_change > interval '45 seconds'
           AND query NOT ILIKE 'select 1%' AND query NOT ILIKE 'listen %'" 2>&1) || leaked="could not ask PostgreSQL: $leaked"
    if [[ -n $leaked ]]; then
        echo "fuzz: database connections leased and never returned (idle > 45 s):" >&2
        printf '  %s\n' "$leaked" >&2
        status=1
    else
        echo "fuzz: no database connection left leased"
    fi
fi
exit "$status"
