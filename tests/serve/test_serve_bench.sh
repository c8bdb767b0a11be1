#!/usr/bin/env bash
#
# tests/serve/test_serve_bench.sh: the gateway benchmark's own parts work
# (bench/gateway.sh relies on them; the benchmark itself is not a test):
# llmux-openloop against llmux-serve in front of llmux-mock (every request
# answered and counted, its output fields; a 404 and a closed port make it
# fail), the probe's stop on SIGTERM, LLMUX_SERVE_STALL=1's line on exit
# (and no line without it).
#
# usage: test_serve_bench.sh LLMUX_SERVE LLMUX_MOCK LLMUX_OPENLOOP
# LLMUX_PLUGIN_PATH must name the directory holding the openai plugin.
# Exits 77 (skipped) without curl or python3.

set -u

SERVE=${1:?usage: test_serve_bench.sh LLMUX_SERVE LLMUX_MOCK LLMUX_OPENLOOP}
MOCK=${2:?usage: test_serve_bench.sh LLMUX_SERVE LLMUX_MOCK LLMUX_OPENLOOP}
OPENLOOP=${3:?usage: test_serve_bench.sh LLMUX_SERVE LLMUX_MOCK LLMUX_OPENLOOP}
SRC=$(cd "$(dirname "$0")/../.." && pwd)

T_NAME=serve-bench-test
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve/serve_lib.sh"

# field KEY: the value after KEY in openloop's line in $TMP/out
field() {
    awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' "$TMP/out"
}

start_mock --quiet
cat >"$TMP/serve.yaml" <<EOF
listen: 127.0.0.1:9
routes:
  m: "openai/gpt-4o-mini;base_url=$MOCK_URL/v1;api_key=sk-test"
EOF

LLMUX_SERVE_STALL=1 start_serve "$TMP/serve.yaml"

# 200 a second for 1.25 s, the first 0.25 s not recorded: 250 requests
run timeout 60 "$OPENLOOP" -r 200 -d 1 -w 0.25 -m m -l t \
    "$SURL/v1/chat/completions"
if [ "$RC" -ne 0 ]; then
    bad "openloop: all answered" "exit status $RC" "out: $(cat "$TMP/out")"
elif [ "$(field sent)" != 250 ] || [ "$(field ok)" != 250 ] ||
    [ "$(field err)" != 0 ]; then
    bad "openloop: all answered" "want sent 250 ok 250 err 0" \
        "out: $(cat "$TMP/out")"
elif ! [ "$(field ttfb_p50_us)" -gt 0 ] 2>/dev/null ||
    ! [ "$(field ttfb_p99_us)" -ge "$(field ttfb_p50_us)" ] ||
    ! [ "$(field sched_max_us)" -ge "$(field ttfb_p50_us)" ]; then
    bad "openloop: all answered" "percentiles out of order" \
        "out: $(cat "$TMP/out")"
else
    ok "openloop: 250 requests at 200/s, all answered, percentiles in order"
fi

# an unknown model: every answer a 404, so the run fails
run timeout 60 "$OPENLOOP" -r 100 -d 0.5 -w 0 -m nosuch -l t \
    "$SURL/v1/chat/completions"
if [ "$RC" -eq 1 ] && [ "$(field err)" = 50 ] && [ "$(field ok)" = 0 ] &&
    grep -q "status 404" "$TMP/err"; then
    ok "openloop: 404s are errors, exit 1"
else
    bad "openloop: 404s are errors, exit 1" "exit status $RC" \
        "out: $(cat "$TMP/out")"
fi

# the probe: GET /health until SIGTERM, then its line
"$OPENLOOP" -g -c 1 -r 100 -d 3600 -w 0 -l probe "$SURL/health" \
    >"$TMP/out" 2>"$TMP/err" &
PROBE=$!
# until its connection is up (its first request started), 20 s at most;
# without ss, a second
if command -v ss >/dev/null; then
    for _ in $(seq 1 400); do
        [ -n "$(ss -Htn state established "( dport = :$SPORT )" 2>/dev/null)" ] && break
        sleep 0.05
    done
else
    sleep 1
fi
kill -TERM "$PROBE"
wait "$PROBE"
RC=$?
if [ "$RC" -eq 0 ] && [ "$(field err)" = 0 ] &&
    [ "$(field ok)" -gt 0 ] 2>/dev/null &&
    [ "$(field ok)" = "$(field sent)" ]; then
    ok "openloop probe: stops on SIGTERM with every request answered"
else
    bad "openloop probe: stops on SIGTERM with every request answered" \
        "exit status $RC" "out: $(cat "$TMP/out")"
fi

stop_serve "LLMUX_SERVE_STALL=1: exit 0 on SIGTERM"
if grep -qE '^llmux serve: loop stall worst_ms [0-9.]+ over_100ms [0-9]+ iterations [1-9][0-9]*$' \
    "$TMP/serve.err"; then
    ok "LLMUX_SERVE_STALL=1: the worst stall on exit"
else
    bad "LLMUX_SERVE_STALL=1: the worst stall on exit" \
        "stderr: $(cat "$TMP/serve.err")"
fi

start_serve "$TMP/serve.yaml"
stop_serve "without LLMUX_SERVE_STALL: exit 0 on SIGTERM"
if grep -q "loop stall" "$TMP/serve.err"; then
    bad "without LLMUX_SERVE_STALL: no stall line" \
        "stderr: $(cat "$TMP/serve.err")"
else
    ok "without LLMUX_SERVE_STALL: no stall line"
fi

# nothing listening: connection errors, exit 1
run timeout 60 "$OPENLOOP" -r 100 -d 0.2 -w 0 "$SURL/v1/chat/completions"
if [ "$RC" -eq 1 ] && [ "$(field err)" = 20 ]; then
    ok "openloop: a closed port fails every request, exit 1"
else
    bad "openloop: a closed port fails every request, exit 1" \
        "exit status $RC" "out: $(cat "$TMP/out")"
fi

summary
