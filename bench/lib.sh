# shellcheck shell=bash
# Shell helpers shared by the bench scripts (sourced, not run). The sourcing script defines
# log() and die(), sets CHILD_PID="" and the arrays BG_NAMES, BG_PIDS and BG_LOGS (the background
# processes its cleanup stops) before using them.

# True while the process exists and is not a zombie.
proc_running() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]]
}

# stop_process PID NAME TIMEOUT_SECONDS [SIGNAL]: signal (TERM), wait (bounded), SIGKILL (children too), reap.
stop_process() {
    local pid="$1" name="$2" timeout="$3" signal="${4:-TERM}" i
    if proc_running "$pid"; then
        log "stopping $name (pid $pid)"
        kill "-$signal" "$pid" 2>/dev/null || true
        for (( i = 0; i < timeout * 10; i++ )); do
            proc_running "$pid" || break
            sleep 0.1
        done
        if proc_running "$pid"; then
            log "$name did not stop within ${timeout}s, sending SIGKILL"
            pkill -KILL -P "$pid" 2>/dev/null || true
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

# build_release PRODUCT...: release builds as the Dockerfile makes what is deployed, with the Swift
# runtime linked in (--static-swift-stdlib), so a benchmark measures the binaries that run in
# production. Linked in, the runtime's calls (swift_retain, swift_release, the exclusivity checks'
# thread-local lookups) skip the shared library's indirections: the gateway forwarded ~14 % more
# requests per second at ~20 % less user CPU per request than the same code linked to
# libswiftCore.so (bench/README.md). The build goes to .build/release like a plain
# `swift build -c release`, which it replaces (changing the flag rebuilds everything once).
build_release() {
    local product
    for product in "$@"; do
        log "building: swift build -c release --static-swift-stdlib --product $product"
        run_interruptible swift build -c release --static-swift-stdlib --product "$product"
    done
}

# Runs a long command in the background and waits for it: bash runs the INT/TERM traps only after a
# foreground command ends, but interrupts `wait` at once (Ctrl-C then stops the whole script).
run_interruptible() {
    local rc=0
    "$@" &
    CHILD_PID=$!
    wait "$CHILD_PID" || rc=$?
    CHILD_PID=""
    return "$rc"
}

# Fails if something already listens on the port (we would measure it instead).
port_free() {
    ! (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# postmaster_pid DATA_DIR: the PostgreSQL postmaster of the suite whose DATA_DIR this is (started
# through pg_ctl, so not our child), only if it really is that cluster's.
postmaster_pid() {
    local dir="$1" file pid
    [[ -n "$dir" ]] || return 1
    file="$dir/postgres/data/postmaster.pid"
    [[ -r "$file" ]] || return 1
    pid="$(head -n 1 "$file" 2>/dev/null)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    grep -qF -- "$dir/postgres/data" "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

# start_bg NAME LOG_FILE COMMAND...: starts COMMAND in the background and registers it for cleanup.
# Prints nothing; the pid is in LAST_PID.
start_bg() {
    local name="$1" logfile="$2"
    shift 2
    "$@" >"$logfile" 2>&1 &
    LAST_PID=$!
    BG_NAMES+=("$name")
    BG_PIDS+=("$LAST_PID")
    BG_LOGS+=("$logfile")
}

# wait_for_port PORT PID NAME TIMEOUT_SECONDS
wait_for_port() {
    local port="$1" pid="$2" name="$3" timeout="$4" deadline=$((SECONDS + $4))
    while port_free "$port"; do
        proc_running "$pid" || die "$name exited before listening on port $port"
        (( SECONDS < deadline )) || die "$name not listening on port $port after ${timeout}s"
        sleep 0.2
    done
}

# wait_for_http URL PID NAME TIMEOUT_SECONDS: until URL answers 2xx.
wait_for_http() {
    local url="$1" pid="$2" name="$3" timeout="$4" deadline=$((SECONDS + $4))
    until curl -fsS --max-time 10 -o /dev/null "$url" 2>/dev/null; do
        proc_running "$pid" || die "$name exited during start-up"
        (( SECONDS < deadline )) || die "$name did not answer $url within ${timeout}s"
        sleep 0.5
    done
}

# nginx_common DIR WORKERS: the lines every nginx instance here needs (all files under DIR).
# These nginx helpers use NGINX_BIN and HOST.
nginx_common() {
    local dir="$1" workers="$2"
    # Workers would otherwise run as nobody and could not use the 0700 temp dir.
    if (( EUID == 0 )); then echo "user root;"; fi
    cat <<EOF
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/error.log warn;

events {
    worker_connections 4096;
}
EOF
}

nginx_temp_paths() {
    local dir="$1"
    cat <<EOF
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
EOF
}

# start_nginx NAME DIR PORT...: checks DIR/nginx.conf, starts nginx, waits for the ports.
start_nginx() {
    local name="$1" dir="$2" pid port
    shift 2
    local args=(-p "$dir/" -c "$dir/nginx.conf")
    # -e (nginx >= 1.19.5) keeps start-up messages out of /var/log/nginx.
    if "$NGINX_BIN" -h 2>&1 | grep -q -- '-e filename'; then
        args+=(-e "$dir/error.log")
    fi
    "$NGINX_BIN" "${args[@]}" -t -q || die "nginx rejected $dir/nginx.conf"
    start_bg "$name" "$dir/stderr.log" "$NGINX_BIN" "${args[@]}" -g 'daemon off;'
    pid=$LAST_PID
    for port in "$@"; do
        wait_for_port "$port" "$pid" "$name" 10
    done
}

# The EXIT handler of a benchmark that keeps its state in BG_NAMES/BG_PIDS/BG_LOGS, SUITE_PID,
# CHILD_PID, TMP_DIR and DATA_DIR: stops the current step, then the background processes newest
# first (the suite gets 60 s to drain, the others BG_STOP_SECONDS), then a PostgreSQL the suite
# left behind; after a failed run keeps their logs as $OUT_DIR/$STAMP-$BENCH_NAME-<name>.log;
# removes the temporary directories. Install with `trap bench_cleanup EXIT`.
bench_cleanup() {
    local rc=$? i pg
    trap - EXIT INT TERM
    set +e
    [[ -n "$CHILD_PID" ]] && stop_process "$CHILD_PID" "current step" 10
    for (( i = ${#BG_PIDS[@]} - 1; i >= 0; i-- )); do
        stop_process "${BG_PIDS[$i]}" "${BG_NAMES[$i]}" "$([[ ${BG_PIDS[$i]} == "$SUITE_PID" ]] && echo 60 || echo "${BG_STOP_SECONDS:-10}")"
        if (( rc != 0 )) && [[ -s "${BG_LOGS[$i]}" ]]; then
            mkdir -p "$OUT_DIR"
            cp "${BG_LOGS[$i]}" "$OUT_DIR/$STAMP-$BENCH_NAME-${BG_NAMES[$i]}.log"
        fi
    done
    if pg="$(postmaster_pid "$DATA_DIR")" && proc_running "$pg"; then stop_process "$pg" "PostgreSQL postmaster" 30 INT; fi
    (( rc == 0 )) || log "logs kept in $OUT_DIR/$STAMP-$BENCH_NAME-*.log"
    [[ -n "$TMP_DIR" ]] && rm -rf "$TMP_DIR"
    [[ -n "$DATA_DIR" ]] && rm -rf "$DATA_DIR"
    exit "$rc"
}
