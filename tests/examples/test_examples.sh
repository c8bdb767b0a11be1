#!/usr/bin/env bash
#
# tests/examples/test_examples.sh: every program in examples/ runs against
# llmux-mock as the README says, and prints what it promises.
#
# usage: test_examples.sh EXAMPLES_DIR PATH/TO/llmux-mock
# LLMUX_PLUGIN_PATH must name the directory holding the plugins.

set -u
EX=${1:?usage: test_examples.sh EXAMPLES_DIR LLMUX_MOCK}
MOCK=${2:?usage: test_examples.sh EXAMPLES_DIR LLMUX_MOCK}
T_NAME=examples
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
unset OPENAI_API_KEY MISTRAL_API_KEY AA_TOKEN OLLAMA_HOST OPENAI_BASE_URL

# show_err FILE: a sanitizer's report first (its runtime-error or ERROR
# line and the frames after it), then the end of the rest.
show_err() {
    local at
    at=$(grep -n -m 1 -E 'runtime error:|ERROR: [A-Za-z]+Sanitizer|WARNING: [A-Za-z]+Sanitizer' "$1" | cut -d: -f1)
    if [ -n "$at" ]; then
        printf '       sanitizer (stderr line %s):\n' "$at"
        sed -n "${at},$((at + 7))p" "$1" | sed 's/^/         /'
    fi
    printf '       err: %s\n' "$(tail -c 400 "$1")"
}

# check NAME REGEX CMD...: exit 0 and stdout matches the extended REGEX
check() {
    local name=$1 re=$2 rc
    shift 2
    timeout 60 "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -eq 0 ] && grep -qE "$re" "$TMP/out"; then
        ok "$name"
    else
        FAIL=$((FAIL + 1))
        echo "FAIL - $name (exit $rc)"
        printf '       out: %s\n' "$(tail -c 400 "$TMP/out")"
        show_err "$TMP/err"
    fi
}

start_mock --quiet
SPEC="openai/gpt-4o-mini;base_url=$MOCK_URL/v1;api_key=sk-test"
check "basic: the blocking call" '^Mock reply to: Say hello\.$' \
    "$EX/basic" "$SPEC" "Say hello."
check "stream: deltas, then finish and usage" \
    '^\[stop, [0-9]+ prompt \+ [0-9]+ completion tokens\]$' \
    "$EX/stream" "$SPEC" "Count to five."
export LLMUX_DEMO_BASE_URL=$MOCK_URL
check "demo: four providers at once" '^4 request\(s\) in ' "$EX/demo"
check "gather: 200 prompts, 40 at a time" \
    '^200 prompts, 40 at a time: 200 succeeded, 0 failed' \
    "$EX/gather" 200 40
check "as_completed: every answer, as it comes" '^8 of 8 answered$' \
    "$EX/as_completed" 3
check "timeouts: each call ends as expected" \
    'each ended as expected$' "$EX/timeouts"
check "relay: bounded by the pause (at most 256 + one chunk waiting)" \
    '^\[relayed 1289 bytes; at most 2[5-6][0-9] waiting \(pause at 256\); paused [1-9][0-9]* time' \
    "$EX/relay"
start_mock --quiet --fault 'status=503;retry_after=0'
SPEC="openai/gpt-4o-mini;base_url=$MOCK_URL/v1;api_key=sk-test"
timeout 60 "$EX/trace" "$SPEC" "Say hello." >"$TMP/out" 2>"$TMP/trace"
RC=$?
if [ "$RC" -eq 0 ] && python3 - "$TMP/trace" "$TMP/out" <<'EOF'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
want = [("attempt_end", 503, "retry", False), ("attempt_end", 200, None, False),
        ("request_end", 200, None, False), ("attempt_end", 200, None, True),
        ("request_end", 200, None, True)]
got = [(e["event"], e["http.response.status_code"], e["llmux.next"],
        e["gen_ai.request.stream"]) for e in ev]
assert got == want, got
assert ev[1]["gen_ai.usage.input_tokens"] == 2, ev[1]
assert ev[1]["gen_ai.response.finish_reasons"] == ["stop"], ev[1]
assert ev[0]["error.type"] == "LLMUX_EPROVIDER", ev[0]
assert "gen_ai.response.time_to_first_chunk" in ev[3], ev[3]
assert open(sys.argv[2]).read() == "Mock reply to: Say hello.\n" * 2
EOF
then
    ok "trace: a JSON line per attempt and request, OTel names"
else
    FAIL=$((FAIL + 1))
    echo "FAIL - trace: a JSON line per attempt and request (exit $RC)"
    printf '       err: %s\n' "$(tail -c 600 "$TMP/trace")"
fi
start_mock --quiet --fault 'status=429;retry_after=1' \
    --fault 'status=429;retry_after=1'
LLMUX_DEMO_BASE_URL=$MOCK_URL check "retries: through two 429s" \
    '^answer after 3 attempt\(s\)' "$EX/retries"

summary
