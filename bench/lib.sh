# Shared by the scripts in bench/: a work directory that goes away on exit, wrk when it is
# missing, a built opsboard started in the background and waited for, a login, and wrk's
# figures. Source it after `cd` to the repository; every function reports through stdout.

WORK="${BENCH_WORK:-$(mktemp -d)}"
SERVER_PID=
bench_cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    [ -n "${BENCH_WORK:-}" ] || rm -rf "$WORK"
}
trap bench_cleanup EXIT

# wrk from Debian's packages, when it is not installed yet.
bench_need_wrk() {
    if ! command -v wrk >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    fi
}

# Starts `"$@"` (the opsboard binary and its arguments) with the environment the caller
# exported, logging to $WORK/server.log, and waits until /health answers on $PORT; sets
# SERVER_PID and BASE.
bench_start() {
    "$@" > "$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    BASE="http://127.0.0.1:$PORT"
    for _ in $(seq 1 100); do
        curl -fs "$BASE/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "opsboard did not start:" >&2
    cat "$WORK/server.log" >&2
    return 1
}

# The access token of EMAIL with PASSWORD.
bench_token() {
    curl -fs "$BASE/api/v1/auth/login" -H 'Content-Type: application/json' \
        -d "{\"email\":\"$1\",\"password\":\"$2\"}" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# The server's resident memory, e.g. `91364 kB`; with `peak`, its high-water mark.
bench_rss() {
    local field=VmRSS
    [ "${1:-}" = peak ] && field=VmHWM
    awk -v f="$field:" '$1 == f {print $2 " " $3}' "/proc/$SERVER_PID/status"
}

# `req/s, p50 …, p99 …` from wrk's --latency output in $1.
bench_figures() {
    printf '%s req/s, p50 %s, p99 %s' "$(awk '/Requests\/sec/ {print $2}' <<<"$1")" \
        "$(awk '$1 == "50%" {print $2}' <<<"$1")" "$(awk '$1 == "99%" {print $2}' <<<"$1")"
}

# A random JWT secret that production would accept too.
bench_secret() {
    head -c 48 /dev/urandom | base64 | tr -d '\n'
}
