#!/usr/bin/env bash
#
# tests/serve/test_serve_life.sh: llmux-serve's life in front of
# llmux-mock, with raw-socket Python clients (life_client.py): a slow
# reader (bounded RSS, the upstream paused), a client leaving a stream and
# a plain request (the mock sees the cut at once), 1,000 concurrent
# streams, SIGHUP reload (a new route on a kept connection, a bad config
# refused), heartbeat comments on an idle stream and request_timeout (a
# 504, a stream's error event), idle_timeout, and the graceful drain on SIGTERM (a stream
# and a pipelined chat in flight finish, /health is 503, no new
# connections, exit 0), a short drain_timeout (an error event, a 503, and a
# reader that does not read cut) and a second signal (canceled at once).
#
# usage: test_serve_life.sh PATH/TO/llmux-serve PATH/TO/llmux-mock
# LLMUX_PLUGIN_PATH must name the directory holding the openai plugin.
# Exits 77 (skipped) without curl or python3.

set -u

SERVE=${1:?usage: test_serve_life.sh LLMUX_SERVE LLMUX_MOCK}
MOCK=${2:?usage: test_serve_life.sh LLMUX_SERVE LLMUX_MOCK}
PY=${PYTHON:-python3}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CLIENT="$SRC/tests/serve/life_client.py"

T_NAME=serve-life
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve/serve_lib.sh"

# 1,000 streams need 2,000 descriptors in the gateway
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null

# count_checks NAME FILE: counts the checks life_client.py wrote to FILE.
count_checks() {
    local kind name detail
    while IFS=$'\t' read -r kind name detail; do
        if [ "$kind" = ok ]; then
            ok "$name"
        else
            bad "$name" "$detail"
        fi
    done <"$2"
    if [ ! -s "$2" ]; then
        bad "life_client.py $1 ran" "no output"
    fi
}

# client CMD ARG...: runs life_client.py and counts its checks.
client() {
    "$PY" "$CLIENT" "$@" >"$TMP/client.out" 2>"$TMP/err"
    count_checks "$1" "$TMP/client.out"
}

# wait_exit PID SECONDS: waits for a background server to exit; its status
# in RC (124 when it did not, and it is then killed).
wait_exit() {
    for _ in $(seq 1 $(($2 * 20))); do
        if ! kill -0 "$1" 2>/dev/null; then
            wait "$1"
            RC=$?
            return
        fi
        sleep 0.05
    done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    RC=124
}

# wait_file FILE: up to 30 s for FILE to exist.
wait_file() {
    for _ in $(seq 1 600); do
        [ -s "$1" ] && return 0
        sleep 0.05
    done
    return 1
}

# mock_busy URL: up to 30 s for the mock at URL to have a request in flight.
mock_busy() {
    for _ in $(seq 1 600); do
        curl -s -m 5 "$1/_mock/stats" | grep -q '"in_flight":[1-9]' && return 0
        sleep 0.05
    done
    return 1
}

# wait_line FILE TEXT: up to 30 s for a line holding TEXT in FILE.
wait_line() {
    for _ in $(seq 1 600); do
        grep -q "$2" "$1" && return 0
        sleep 0.05
    done
    return 1
}

# stream_end NAME FILE PATTERN SECONDS ERRFILE: the last server exited 0
# (RC) less than SECONDS after T0, and sse_ends FILE matches PATTERN.
stream_end() {
    local got took=$(($(date +%s) - T0))
    got=$(sse_ends "$2")
    # shellcheck disable=SC2053 # PATTERN is a glob
    if [ "$RC" -eq 0 ] && [[ "$got" == $3 ]] && [ "$took" -lt "$4" ]; then
        ok "$1 ($took s)"
    else
        bad "$1" "exit $RC after $took s, stream: $got" "$(tail -3 "$5")"
    fi
}

# sse_ends FILE: the status and the last event of a stream life_client.py
# read ("200 [DONE]", "200 error:CODE", ...).
sse_ends() {
    "$PY" -c 'import json,sys
t = open(sys.argv[1]).read()
st, body = t.split("\n", 1)
ev = [l[6:] for l in body.split("\n") if l.startswith("data: ")]
last = ev[-1] if ev else "<none>"
if last.startswith("{"):
    last = "error:%s" % json.loads(last).get("error", {}).get("code")
print(st, "events=%d" % len(ev) if len(ev) > 1 else "events<2", last)' "$1"
}

key="api_key=sk-test"
start_mock --quiet
FAST="base_url=$MOCK_URL/v1;$key"
start_mock --quiet
BIG_URL=$MOCK_URL
start_mock --quiet --chunk-delay 200
LEAVE_URL=$MOCK_URL
start_mock --quiet --chunk-delay 200
SLOW="base_url=$MOCK_URL/v1;$key"
start_mock --quiet
D_URL=$MOCK_URL

# ---- one gateway: slow reader, clients leaving, many streams, reload ------
cat >"$TMP/g1.yaml" <<EOF
listen: 127.0.0.1:0 # from the config, so that a reload can change it
routes:
  fast: "openai/gpt-4o-mini;$FAST"
  big: "openai/gpt-4o-mini#events=300000;base_url=$BIG_URL/v1;$key"
  slowstream: "openai/gpt-4o-mini;base_url=$LEAVE_URL/v1;$key"
  slowplain: "openai/gpt-4o-mini#delay_ms=30000;base_url=$LEAVE_URL/v1;$key;timeout=60"
EOF
# ASan keeps freed memory in quarantine (256 MiB by default), which a
# stream of 300,000 chunks fills: RSS would measure that, not the relay
ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=4" \
    start_serve "$TMP/g1.yaml" "$TMP/g1.err" -
client slowread "$SPORT" "$BIG_URL" "$SPID" big
client leave "$SPORT" "$LEAVE_URL" slowstream stream
client leave "$SPORT" "$LEAVE_URL" slowplain plain
client many "$SPORT" fast 1000

cp "$TMP/g1.yaml" "$TMP/g1-new.yaml"
printf '  extra: "openai/gpt-4o-mini;%s"\n' "$FAST" >>"$TMP/g1-new.yaml"
sed -i 's/^listen: .*/listen: 127.0.0.1:1/' "$TMP/g1-new.yaml"
printf 'routes:\n  fast: openai/gpt-4o-mini\nlimits: {heartbeat: soon}\n' \
    >"$TMP/g1-bad.yaml"
client reload "$SPORT" "$SPID" "$TMP/g1.yaml" "$TMP/g1-new.yaml" \
    "$TMP/g1-bad.yaml" "$TMP/g1.err"
if grep -q "listen changed to 127.0.0.1:1; that needs a restart" "$TMP/g1.err"; then
    ok "reload: a changed listen is logged as needing a restart"
else
    bad "reload: a changed listen is logged as needing a restart" "$(tail -3 "$TMP/g1.err")"
fi
kill -TERM "$SPID"
wait_exit "$SPID" 30
if [ "$RC" -eq 0 ]; then ok "SIGTERM after all that: exit 0"; else bad "SIGTERM after all that: exit 0" "status $RC" "$(tail -5 "$TMP/g1.err")"; fi

# ---- a reader that stops for good: cut after idle_timeout ------------------
cat >"$TMP/g5.yaml" <<EOF
routes:
  big: "openai/gpt-4o-mini#events=300000;base_url=$BIG_URL/v1;$key"
limits: {idle_timeout: 2s}
EOF
start_serve "$TMP/g5.yaml" "$TMP/g5.err" -
client stopread "$SPORT" "$BIG_URL" big
kill -TERM "$SPID"
wait_exit "$SPID" 30
if [ "$RC" -eq 0 ]; then ok "stopped reader: then SIGTERM, exit 0"; else bad "stopped reader: then SIGTERM, exit 0" "status $RC" "$(tail -5 "$TMP/g5.err")"; fi

# ---- heartbeat and request_timeout ----------------------------------------
cat >"$TMP/g2.yaml" <<EOF
routes:
  stall: "openai/gpt-4o-mini#stall_after=2;$FAST;timeout=60"
  delayed: "openai/gpt-4o-mini#delay_ms=30000;$FAST;timeout=60"
limits: {heartbeat: 300ms, request_timeout: 3s, idle_timeout: 1s}
EOF
start_serve "$TMP/g2.yaml" "$TMP/g2.err"
client heartbeat "$SPORT" stall
client idle "$SPORT" 1
chat '{"model":"delayed","messages":[{"role":"user","content":"x"}]}'
expect_error "request_timeout: a plain request gets a 504" 504 request_timeout
kill -TERM "$SPID"
wait_exit "$SPID" 30
[ "$RC" -eq 0 ] || bad "timers gateway: exit 0" "status $RC"

# ---- graceful drain: in-flight work finishes ------------------------------
cat >"$TMP/g3.yaml" <<EOF
routes:
  slow: "openai/gpt-4o-mini;$SLOW"
  wait2s: "openai/gpt-4o-mini#delay_ms=2000;base_url=$D_URL/v1;$key"
limits: {drain_timeout: 30s}
EOF
start_serve "$TMP/g3.yaml" "$TMP/g3.err"
"$PY" "$CLIENT" sse "$SPORT" slow "$TMP/s3" "$TMP/s3.ready" &
SSE_PID=$!
"$PY" "$CLIENT" pipelined "$SPORT" wait2s "$TMP/p3.ready" "$D_URL" >"$TMP/p3.out" 2>&1 &
PIPE_PID=$!
wait_file "$TMP/s3.ready" && wait_file "$TMP/p3.ready"
kill -TERM "$SPID"
T0=$(date +%s)
# the listener is closed before that line is written
wait_line "$TMP/g3.err" draining
if curl -s -m 5 -o /dev/null "$SURL/health" 2>/dev/null; then
    bad "drain: no new connections after SIGTERM"
else
    ok "drain: no new connections after SIGTERM"
fi
wait_exit "$SPID" 30
wait "$SSE_PID" "$PIPE_PID"
stream_end "drain: a stream in flight at SIGTERM completes, exit 0" \
    "$TMP/s3" "200 events=* \\[DONE\\]" 30 "$TMP/g3.err"
count_checks pipelined "$TMP/p3.out"

# ---- a short drain_timeout: what is left is canceled with an error --------
cat >"$TMP/g4.yaml" <<EOF
routes:
  slow: "openai/gpt-4o-mini#events=100;$SLOW" # 20 s of events
  waitlong: "openai/gpt-4o-mini#delay_ms=30000;base_url=$D_URL/v1;$key;timeout=60"
  big: "openai/gpt-4o-mini#events=300000;base_url=$BIG_URL/v1;$key"
limits: {drain_timeout: 500ms}
EOF
start_serve "$TMP/g4.yaml" "$TMP/g4.err"
rm -f "$TMP/s4.ready" "$TMP/st4.ready"
# a reader that never reads: its last event cannot be written, and its
# connection is cut a second after the cancel
"$PY" "$CLIENT" stall "$SPORT" big "$TMP/st4.ready" &
STALL_PID=$!
"$PY" "$CLIENT" sse "$SPORT" slow "$TMP/s4" "$TMP/s4.ready" &
SSE_PID=$!
printf '%s' '{"model":"waitlong","messages":[{"role":"user","content":"x"}]}' >"$TMP/req4.json"
curl -s -m 30 -o "$TMP/body" -w '%{http_code} %{content_type}' \
    --data-binary "@$TMP/req4.json" "$SURL/v1/chat/completions" >"$TMP/plain4" 2>/dev/null &
CURL_PID=$!
wait_file "$TMP/s4.ready" && wait_file "$TMP/st4.ready" && mock_busy "$D_URL"
kill -TERM "$SPID"
T0=$(date +%s)
wait_exit "$SPID" 20
kill "$STALL_PID" 2>/dev/null
wait "$SSE_PID" "$CURL_PID" "$STALL_PID" 2>/dev/null
stream_end "drain_timeout: a stream still running ends with an error event, a reader that does not read is cut, exit 0" \
    "$TMP/s4" "200 events=* error:shutting_down" 10 "$TMP/g4.err"
out=$(cat "$TMP/plain4")
CODE=${out%% *}
CTYPE=${out#* }
expect_error "drain_timeout: a plain request still running gets a 503" 503 shutting_down

# ---- a second signal cancels at once --------------------------------------
sed 's/drain_timeout: 500ms/drain_timeout: 60s/' "$TMP/g4.yaml" >"$TMP/g5.yaml"
start_serve "$TMP/g5.yaml" "$TMP/g5.err"
rm -f "$TMP/s5.ready"
"$PY" "$CLIENT" sse "$SPORT" slow "$TMP/s5" "$TMP/s5.ready" &
SSE_PID=$!
wait_file "$TMP/s5.ready"
kill -TERM "$SPID"
wait_line "$TMP/g5.err" draining
kill -INT "$SPID"
T0=$(date +%s)
wait_exit "$SPID" 20
wait "$SSE_PID"
# the stream had 20 s to go and the drain 60 s
stream_end "second signal: the stream is canceled at once with an error event, exit 0" \
    "$TMP/s5" "200 events=* error:shutting_down" 10 "$TMP/g5.err"
SERVE_PIDS=()

summary
