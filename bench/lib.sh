# shellcheck shell=bash
# Shell helpers shared by the bench scripts (sourced, not run). The sourcing script defines
# log() and sets CHILD_PID="" before using them.

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
