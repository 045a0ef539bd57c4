#!/usr/bin/env bash
# Chat benchmark (see bench/README.md). Runs the whole suite in one process (.build/release/suite)
# and measures, in one run:
#
# 1. Ingestion: a realistic INGEST_MB MB text file uploaded through the gateway
#    (POST /api/knowledge-base/upload) until its status is `completed`: MB/s, with the upload and
#    the processing (the document's processed_at - created_at) apart.
# 2. Time to first event: POST /chatkit with the builtin responder at a fixed RATE (open loop) for
#    DURATION seconds, through the gateway and straight to chat (the baseline), ROUNDS times
#    alternately; p50/p99 of the time to the answer's head, to its first SSE `data:` event
#    (`message.started`, sent once the exchange is accepted; goal: p99 < 20 ms through the gateway)
#    and to its first `text.delta` (the first word, after history and retrieval). The tenant's
#    knowledge base is step 1's file, so every message runs a real retrieval. Every stream must open
#    with message.started and end with message.completed (same message id) and [DONE].
# 3. Retrieval: SEED_CHUNKS chunks across SEED_TENANTS tenants (five text-search configurations:
#    english, spanish, german, french, simple) copied into chat's tables, then
#    `suite chat-retrieval-time` runs the builtin responder's own retrieval statement, one at a time,
#    for QUESTIONS_PER_TENANT questions per tenant, RETRIEVAL_ROUNDS times: p50/p99 (goal p99 < 10 ms),
#    and EXPLAIN (ANALYZE, BUFFERS) of it (which indexes answer it).
# 4. Open streams: a second tenant answered by the openai responder, pointed at a local
#    OpenAI-compatible server (bench/chat_bench.py provider) that sends a token every second for
#    STREAM_TOKENS seconds; STREAMS /chatkit streams straight to chat, opened at STREAM_RAMP/s and
#    held; VmRSS/VmHWM of the suite process (chat and the other four services in one process, so an
#    upper bound for a chat replica) before and at STREAM_CHECKPOINTS open streams (each has had an
#    event and not ended); whether every stream ended with message.completed and [DONE]
#    (goal: >= 5,000 open with < 1 GiB).
#
# Usage (from anywhere):
#   bench/chat.sh                                   # builds `suite` (release) first
#   BENCH_SKIP_BUILD=1 bench/chat.sh                # the existing .build/release/suite
#   BENCH_SKIP_BUILD=1 SHORT=1 bench/chat.sh        # ~2-minute check of the script (smaller everything)
# Environment (defaults; SHORT=1 in brackets):
#   RATE (20) DURATION (30 [5]) ROUNDS (2 [1])     step 2: streams/s, seconds per run, gateway/direct pairs
#   TOKEN_DELAY_MS (40)                            the builtin responder's pause between words
#   INGEST_MB (10 [2])                             step 1's file size
#   SEED_TENANTS (100 [20]) SEED_CHUNKS (100000 [10000]) QUESTIONS_PER_TENANT (10 [5]) RETRIEVAL_ROUNDS (3 [2])
#   STREAMS (5000 [1000]) STREAM_CHECKPOINTS (1000,5000 [500,1000]) STREAM_RAMP (250) STREAM_TOKENS (60 [20])
#   SKIP (none)                                    comma list of steps to skip: ingest,ttfe,retrieval,streams
#   SUITE_BIN, BENCH_HEALTH_TIMEOUT (120), BENCH_OUT_DIR (bench/out), LOG_LEVEL (warning), PSQL
# Ports (127.0.0.1, checked free first): suite 18280-18284, its gateway's admin 18285, its
# PostgreSQL 18289, the local OpenAI-compatible server 18291. Raises `ulimit -n` to 65536 (the
# streams step needs two descriptors per stream in the suite and one in the client).
# Requires curl, python3, psql (PostgreSQL's client; PSQL=/usr/lib/postgresql/15/bin/psql works).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SHORT="${SHORT:-0}"
short() { if [[ "$SHORT" == 1 ]]; then echo "$2"; else echo "$1"; fi; }
RATE="${RATE:-20}"
DURATION="${DURATION:-$(short 30 5)}"
ROUNDS="${ROUNDS:-$(short 2 1)}"
TOKEN_DELAY_MS="${TOKEN_DELAY_MS:-40}"
INGEST_MB="${INGEST_MB:-$(short 10 2)}"
SEED_TENANTS="${SEED_TENANTS:-$(short 100 20)}"
SEED_CHUNKS="${SEED_CHUNKS:-$(short 100000 10000)}"
QUESTIONS_PER_TENANT="${QUESTIONS_PER_TENANT:-$(short 10 5)}"
RETRIEVAL_ROUNDS="${RETRIEVAL_ROUNDS:-$(short 3 2)}"
STREAMS="${STREAMS:-$(short 5000 1000)}"
STREAM_CHECKPOINTS="${STREAM_CHECKPOINTS:-$(short 1000,5000 500,1000)}"
STREAM_RAMP="${STREAM_RAMP:-250}"
STREAM_TOKENS="${STREAM_TOKENS:-$(short 60 20)}"
SKIP="${SKIP:-}"
HEALTH_TIMEOUT="${BENCH_HEALTH_TIMEOUT:-120}"
SUITE_BIN="${SUITE_BIN:-.build/release/suite}"
OUT_DIR="${BENCH_OUT_DIR:-bench/out}"
PSQL="${PSQL:-$(command -v psql || echo /usr/lib/postgresql/15/bin/psql)}"

HOST=127.0.0.1
GATEWAY_PORT=18280
CHAT_PORT=18284
SUITE_ADMIN_PORT=18285
PG_PORT=18289
PROVIDER_PORT=18291
NO_LIMIT=1000000000

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

for v in RATE DURATION ROUNDS INGEST_MB SEED_TENANTS SEED_CHUNKS QUESTIONS_PER_TENANT RETRIEVAL_ROUNDS STREAMS STREAM_RAMP STREAM_TOKENS HEALTH_TIMEOUT; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
[[ "$TOKEN_DELAY_MS" =~ ^[0-9]+$ ]] || die "TOKEN_DELAY_MS must be a number of milliseconds"
[[ "$STREAM_CHECKPOINTS" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "STREAM_CHECKPOINTS must be a comma list of numbers"
missing=()
for t in curl python3; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
[[ -x "$PSQL" ]] || missing+=(postgresql-client)
(( ${#missing[@]} == 0 )) || die "missing: ${missing[*]} (apt-get install -y ${missing[*]})"
skipped() { [[ ",$SKIP," == *",$1,"* ]]; }

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

BENCH_NAME=chat
BG_STOP_SECONDS=10
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for p in "$GATEWAY_PORT" 18281 18282 18283 "$CHAT_PORT" "$SUITE_ADMIN_PORT" "$PG_PORT" "$PROVIDER_PORT"; do
    port_free "$p" || die "port $p on $HOST is already in use"
done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
if (( $(ulimit -n) < 2 * STREAMS + 1024 )); then
    log "warning: ulimit -n is $(ulimit -n), too low for $STREAMS streams"
fi

if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    build_release suite
fi
[[ -x "$SUITE_BIN" ]] || die "need $SUITE_BIN (build it, or set SUITE_BIN)"

TMP_DIR="$(mktemp -d -t chat-bench.XXXXXX)"
DATA_DIR="$(mktemp -d -t chat-bench-data.XXXXXX)"
chmod 755 "$DATA_DIR"   # run as root, the suite hands its cluster to the postgres user
mkdir -p "$OUT_DIR"
SUMMARY="$OUT_DIR/$STAMP-chat-summary.txt"
out() { printf '%s\n' "$*" | tee -a "$SUMMARY"; }
BENCH_PY="$ROOT/bench/chat_bench.py"
raw() { echo "$OUT_DIR/$STAMP-chat-$1"; }

# --- the suite and the local provider -----------------------------------------------------
start_bg provider "$TMP_DIR/provider.log" python3 "$BENCH_PY" provider --port "$PROVIDER_PORT" --tokens "$STREAM_TOKENS" --interval 1
wait_for_port "$PROVIDER_PORT" "$LAST_PID" provider 10
log "starting the suite"
start_bg suite "$TMP_DIR/suite.log" env DATA_DIR="$DATA_DIR" PG_PORT="$PG_PORT" GATEWAY_PORT="$GATEWAY_PORT" \
    AUTH_PORT=18281 TENANCY_PORT=18282 BILLING_PORT=18283 CHAT_PORT="$CHAT_PORT" GATEWAY_ADMIN_PORT="$SUITE_ADMIN_PORT" \
    BCRYPT_COST=4 RATE_LIMIT_PUBLIC_PER_MINUTE="$NO_LIMIT" RATE_LIMIT_AUTH_PER_MINUTE="$NO_LIMIT" \
    RATE_LIMIT_TENANT_PER_MINUTE="$NO_LIMIT" RATE_LIMIT_SESSION_PER_MINUTE="$NO_LIMIT" TENANT_DEFAULT_RATE_LIMIT_PER_MINUTE=1000000 \
    CHAT_STREAM_TOKEN_DELAY_MS="$TOKEN_DELAY_MS" OPENAI_BASE_URL="http://$HOST:$PROVIDER_PORT/v1" OPENAI_API_KEY=bench-key \
    STORAGE_DIR="$TMP_DIR/storage" LOG_LEVEL="${LOG_LEVEL:-warning}" \
    "$SUITE_BIN"
SUITE_PID=$LAST_PID
GATEWAY="http://$HOST:$GATEWAY_PORT"
for port in 18281 18282 18283 "$CHAT_PORT"; do
    wait_for_http "http://$HOST:$port/ready" "$SUITE_PID" suite "$HEALTH_TIMEOUT"
done
wait_for_http "$GATEWAY/health" "$SUITE_PID" suite "$HEALTH_TIMEOUT"
pg() { "$PSQL" -X -q -v ON_ERROR_STOP=1 "postgres://postgres@$HOST:$PG_PORT/$1" "${@:2}"; }
# Bench tenants are on the trial plan; its 1,000 messages a month would end step 2 early.
pg billing -c "UPDATE plans SET monthly_message_quota = 2000000000 WHERE id = 'trial'"

RUN="$(python3 -c 'import secrets; print(secrets.token_hex(4))')"
register() { # register NAME: prints "tenant_id slug access_token"
    curl -sS -o "$TMP_DIR/register.json" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data "{\"email\":\"chat-$RUN-$1@example.com\",\"password\":\"Bench-Passw0rd-$RUN\",\"account_name\":\"Chat Bench $RUN $1\"}" \
        "$GATEWAY/api/onboarding/register" >"$TMP_DIR/register.code"
    [[ "$(cat "$TMP_DIR/register.code")" == 201 ]] || die "registration answered $(cat "$TMP_DIR/register.code"): $(head -c 300 "$TMP_DIR/register.json")"
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["tenant_id"], r["tenant_slug"], r["access_token"])' "$TMP_DIR/register.json"
}
read -r _ SLUG TOKEN <<<"$(register answers)"
[[ -n "${TOKEN:-}" ]] || die "could not register the bench tenant"
log "tenant $SLUG registered"

# --- 1. ingestion -----------------------------------------------------------------------
INGEST_SUMMARY="skipped"
if ! skipped ingest; then
    python3 "$BENCH_PY" text --bytes "$((INGEST_MB * 1048576))" --out "$TMP_DIR/handbook.txt"
    log "ingestion: uploading a $INGEST_MB MB text file through the gateway"
    started="$(date +%s.%N)"
    code="$(curl -sS -o "$TMP_DIR/upload.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
        -F "file=@$TMP_DIR/handbook.txt;type=text/plain" "$GATEWAY/api/knowledge-base/upload")"
    uploaded="$(date +%s.%N)"
    [[ "$code" == 201 || "$code" == 202 || "$code" == 200 ]] || die "upload answered $code: $(head -c 300 "$TMP_DIR/upload.json")"
    FILE_ID="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$TMP_DIR/upload.json")"
    deadline=$((SECONDS + 600))
    while :; do
        status="$(curl -sS -H "Authorization: Bearer $TOKEN" "$GATEWAY/api/knowledge-base/files/$FILE_ID/status")"
        state="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["status"])' "$status")"
        [[ "$state" == completed ]] && break
        [[ "$state" == failed ]] && die "ingestion failed: $status"
        (( SECONDS < deadline )) || die "ingestion not completed after 600 s: $status"
        sleep 0.05
    done
    finished="$(date +%s.%N)"
    echo "$status" >"$(raw ingest.json)"
    read -r CHUNKS PROCESSING <<<"$(pg chat -At -F ' ' -c "SELECT chunk_count, extract(epoch FROM processed_at - created_at) FROM knowledge_documents WHERE id = '$FILE_ID'")"
    INGEST_SUMMARY="$(awk -v mb="$INGEST_MB" -v s="$started" -v u="$uploaded" -v f="$finished" -v p="$PROCESSING" -v c="$CHUNKS" 'BEGIN {
        printf "%d MB, %d chunks: %.2f MB/s upload to completed (%.2f s: upload %.2f s, then %.2f s to completed; processing by the document'"'"'s own timestamps %.2f s)",
            mb, c, mb / (f - s), f - s, u - s, f - u, p }')"
    log "ingestion: $INGEST_SUMMARY"
fi

# --- 2. time to first event ---------------------------------------------------------------
TTFE_LINES=()
if ! skipped ttfe; then
    per_run=$((RATE * DURATION))
    sessions=$(( 2 * ROUNDS * (per_run / 5 + 1) ))
    log "opening $sessions widget sessions"
    python3 "$BENCH_PY" sessions --port "$GATEWAY_PORT" --slugs "$SLUG" --count "$sessions" --out "$TMP_DIR/ttfe-sessions.txt"
    for (( round = 1; round <= ROUNDS; round++ )); do
        for target in gateway direct; do
            port=$GATEWAY_PORT
            [[ $target == direct ]] && port=$CHAT_PORT
            # Each run takes its own sessions (five messages each at most).
            run_index=$(( (round - 1) * 2 ))
            [[ $target == direct ]] && run_index=$((run_index + 1))
            offset=$(( run_index * (per_run / 5 + 1) ))
            sed -n "$((offset + 1)),$((offset + per_run / 5 + 1))p" "$TMP_DIR/ttfe-sessions.txt" >"$TMP_DIR/ttfe-run.txt"
            log "time to first event, $target (round $round): $RATE streams/s for ${DURATION}s"
            run_interruptible python3 "$BENCH_PY" ttfe --port "$port" --label "$target" --rate "$RATE" --duration "$DURATION" \
                --sessions "$TMP_DIR/ttfe-run.txt" --out "$(raw "ttfe-$target-$round.json")" >/dev/null \
                || die "ttfe $target round $round had errors: see $(raw "ttfe-$target-$round.json")"
            TTFE_LINES+=("$(python3 - "$(raw "ttfe-$target-$round.json")" "$round" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
f, d, h, late = r["first_event_ms"], r["first_delta_ms"], r["head_ms"], r["client_lateness_ms"]
print(f"   {r['target']:<8} round {sys.argv[2]}: {r['ok']}/{r['streams']} ok; first event (message.started) p50 {f['p50']} p90 {f['p90']} p99 {f['p99']} max {f['max']} ms;"
      f" first text.delta p50 {d['p50']} p90 {d['p90']} p99 {d['p99']} max {d['max']} ms;"
      f" head p50 {h['p50']} p99 {h['p99']} ms ({r['head_before_first_event']} heads sent before the first event);"
      f" client lateness p99 {late['p99']} ms")
PY
)")
        done
    done
fi

# --- 3. retrieval ---------------------------------------------------------------------------
RETRIEVAL_LINES=()
if ! skipped retrieval; then
    log "retrieval: writing $SEED_CHUNKS chunks for $SEED_TENANTS tenants"
    python3 "$BENCH_PY" seed --dir "$TMP_DIR" --tenants "$SEED_TENANTS" --chunks "$SEED_CHUNKS" --questions-per-tenant "$QUESTIONS_PER_TENANT"
    log "retrieval: copying them into chat's tables (tsvectors, GIN entries and the per-tenant lexeme counts are built on the way in)"
    seed_started=$SECONDS
    pg chat -c "\\copy knowledge_documents (id, tenant_id, filename, content_type, size_bytes, sha256, storage_key, status, chunk_count) FROM '$TMP_DIR/documents.tsv'" \
        -c "\\copy knowledge_chunks (id, tenant_id, document_id, position, content, search_config) FROM '$TMP_DIR/chunks.tsv'" \
        -c "ANALYZE knowledge_chunks" -c "ANALYZE knowledge_documents" -c "ANALYZE knowledge_lexemes" -c "ANALYZE knowledge_search_configs"
    log "retrieval: seeded in $((SECONDS - seed_started)) s; timing the builtin responder's retrieval"
    CHAT_DATABASE_URL="postgres://postgres@$HOST:$PG_PORT/chat" run_interruptible "$SUITE_BIN" chat-retrieval-time "$TMP_DIR/questions.tsv" \
        "$RETRIEVAL_ROUNDS" >"$(raw retrieval.json)"
    mapfile -t RETRIEVAL_LINES < <(python3 - "$(raw retrieval.json)" "$(raw retrieval-plans.txt)" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
s = sorted(r["seconds"])
pick = lambda p: s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))] * 1000
found = r["found"]
open(sys.argv[2], "w").write("\n\n".join(r["plans"]) + "\n")
print(f"   {len(s)} searches: p50 {pick(50):.2f} ms, p90 {pick(90):.2f} ms, p99 {pick(99):.2f} ms, max {s[-1] * 1000:.2f} ms;"
      f" {sum(1 for n in found if n > 0) * 100 // len(found)} % found something")
indexes = sorted(set(re.findall(r"Index (?:Only )?Scan (?:using|on) (\w+)", "\n".join(r["plans"]))))
seq = "Seq Scan on knowledge_chunks" in "\n".join(r["plans"])
print(f"   plan: indexes {', '.join(indexes) or 'none'}{'; a sequential scan of knowledge_chunks' if seq else ''} (plans in {sys.argv[2]})")
PY
)
fi

# --- 4. open streams ----------------------------------------------------------------------------
STREAM_LINES=()
if ! skipped streams; then
    read -r STREAM_TENANT STREAM_SLUG STREAM_TOKEN <<<"$(register streams)"
    [[ -n "${STREAM_TOKEN:-}" ]] || die "could not register the streams tenant"
    code="$(curl -sS -o "$TMP_DIR/agent.json" -w '%{http_code}' -X PUT -H "Authorization: Bearer $STREAM_TOKEN" \
        -H 'Content-Type: application/json' --data '{"responder":"openai"}' "$GATEWAY/api/admin/tenants/$STREAM_TENANT/agent-config")"
    [[ "$code" == 200 ]] || die "agent-config answered $code: $(head -c 300 "$TMP_DIR/agent.json")"
    log "streams: opening $STREAMS widget sessions"
    python3 "$BENCH_PY" sessions --port "$GATEWAY_PORT" --slugs "$STREAM_SLUG" --count "$STREAMS" --out "$TMP_DIR/stream-sessions.txt"
    sleep 6   # chat's cache of the agent configuration (at most AGENT_CONFIG_CACHE_SECONDS=5) takes the openai responder
    log "streams: $STREAMS streams at $STREAM_RAMP/s, a token a second for $STREAM_TOKENS s each"
    run_interruptible python3 "$BENCH_PY" streams --port "$CHAT_PORT" --sessions "$TMP_DIR/stream-sessions.txt" --count "$STREAMS" \
        --ramp "$STREAM_RAMP" --pid "$SUITE_PID" --checkpoints "$STREAM_CHECKPOINTS" --timeout "$((STREAMS / STREAM_RAMP + STREAM_TOKENS + 90))" \
        --out "$(raw streams.json)" >/dev/null
    mapfile -t STREAM_LINES < <(python3 - "$(raw streams.json)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"   {r['streams']} streams: {r['got_an_event']} got an event, {r['completed_ok']} ended with message.completed and [DONE],"
      f" {r['errors']} did not {r['first_errors'] if r['errors'] else ''}; first event p50 {r['first_event_ms']['p50']} ms p99 {r['first_event_ms']['p99']} ms")
for s in r["samples_kib"]:
    label = "after all ended" if s.get("after") else ("before" if s["open"] == 0 else f"{s['open']} open")
    print(f"   {label:>16}: VmRSS {s['VmRSS'] / 1024:.1f} MiB, VmHWM {s['VmHWM'] / 1024:.1f} MiB, {s.get('Threads')} threads, {s.get('fds')} fds")
if r["missed_checkpoints"]:
    print(f"   NOT reached: {r['missed_checkpoints']} open streams at once")
PY
)
fi

# --- summary ----------------------------------------------------------------------------------
out "chat benchmark $STAMP: $(nproc) cores, $(basename "$(dirname "$SUITE_BIN")") suite, builtin responder pausing ${TOKEN_DELAY_MS} ms between words; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
out "1. ingestion (goal: a figure): $INGEST_SUMMARY"
out "2. time to first SSE event (message.started, before retrieval) and to the first text.delta (after it) of POST /chatkit, builtin responder, $RATE streams/s open loop, ${DURATION}s runs (goal: first event p99 < 20 ms through the gateway):"
for line in "${TTFE_LINES[@]}"; do out "$line"; done
out "3. retrieval, $SEED_CHUNKS chunks across $SEED_TENANTS tenants, one search at a time (goal p99 < 10 ms):"
for line in "${RETRIEVAL_LINES[@]}"; do out "$line"; done
out "4. open streams on one chat (the suite process; goal >= 5,000 with < 1 GiB):"
for line in "${STREAM_LINES[@]}"; do out "$line"; done
log "summary saved to $SUMMARY; raw outputs in $OUT_DIR/$STAMP-chat-*"
