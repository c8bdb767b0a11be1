# tests/serve/serve_lib.sh: sourced by the gateway's tests after
# tests/lib.sh; needs SERVE (the llmux-serve program). It provides:
#   start_serve CONFIG   starts llmux-serve on a free port; sets SPORT, SURL
#                        and SPID; its stderr goes to $TMP/serve.err;
#                        stopped at exit (t_cleanup)

SERVE_PIDS=()
t_cleanup() {
    local p
    for p in "${SERVE_PIDS[@]}"; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
}

# start_serve CONFIG: starts llmux-serve on a free port; sets SPORT, SURL
# and SPID; its stderr goes to $TMP/serve.err.
start_serve() {
    rm -f "$TMP/sport"
    "$SERVE" --config "$1" --listen 127.0.0.1:0 --port-file "$TMP/sport" \
        2>"$TMP/serve.err" &
    SPID=$!
    SERVE_PIDS+=("$SPID")
    if wait_port "$TMP/sport" "$SPID"; then
        SPORT=$(cat "$TMP/sport")
        SURL="http://127.0.0.1:$SPORT"
        return 0
    fi
    echo "cannot start llmux-serve:"
    cat "$TMP/serve.err"
    exit 1
}

