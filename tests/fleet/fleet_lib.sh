# shellcheck shell=bash
# tests/fleet/fleet_lib.sh: what the fleet's gateway tests share (source it
# after tests/serve/serve_lib.sh): a redis-server on a unix socket in $TMP,
# stopped by t_cleanup with the gateways.
#   start_redis            starts it on $TMP/r.sock (again after stop_redis)
#   stop_redis             SIGKILLs it
#   end_replicas SECRET    two replicas (A_PID, B_PID; stderr in $TMP/a.err,
#                          $TMP/b.err): neither printed SECRET, and both
#                          exit 0 on SIGTERM
RPID=
start_redis() {
    rm -f "$TMP/r.sock"
    redis-server --port 0 --unixsocket "$TMP/r.sock" --save '' \
        --appendonly no --daemonize no --dir "$TMP" >"$TMP/redis.log" 2>&1 &
    RPID=$!
    local i
    for i in $(seq 100); do
        [ -S "$TMP/r.sock" ] && return 0
        sleep 0.05
    done
    echo "redis-server did not start:"
    cat "$TMP/redis.log"
    exit 1
}
stop_redis() {
    [ -n "$RPID" ] || return 0
    kill -KILL "$RPID" 2>/dev/null
    wait "$RPID" 2>/dev/null
    RPID=
}
t_cleanup() {
    stop_serves
    stop_redis
}

end_replicas() {
    if grep -q "$1" "$TMP/a.err" "$TMP/b.err"; then
        bad "no key on stderr"
    else
        ok "no key on stderr"
    fi
    SPID=$B_PID
    stop_serve "replica B exits 0 on SIGTERM"
    SPID=$A_PID
    SERVE_PIDS=("$A_PID")
    stop_serve "replica A exits 0 on SIGTERM"
}
