#!/usr/bin/env bash
#
# tests/cli/test_cli_pbatch.sh: `llmux batch submit|status|fetch|cancel`
# (the providers' Batch APIs) against llmux-mock's OpenAI and Mistral
# batch endpoints: the id on stdout, polling to completed, the results as
# one OpenAI Batch output line per custom_id, cancel, the usage errors,
# and a provider without a batch API naming the local runner.
#
# usage: test_cli_pbatch.sh PATH/TO/llmux PATH/TO/llmux-mock
# LLMUX_PLUGIN_PATH must name the directory holding the plugins.

set -u

CLI=${1:?usage: test_cli_pbatch.sh LLMUX LLMUX_MOCK}
MOCK=${2:?usage: test_cli_pbatch.sh LLMUX LLMUX_MOCK}
PY=${PYTHON:-python3}
SRC=$(cd "$(dirname "$0")/../.." && pwd)

T_NAME=cli-pbatch
# shellcheck source=../lib.sh
. "$SRC/tests/lib.sh"

if ! command -v "$PY" >/dev/null 2>&1; then
    echo "test_cli_pbatch: python3 not found, skipped" >&2
    exit 77
fi

start_mock --quiet --batch-seconds 0.3

# input N MODEL: N OpenAI Batch lines asking "question i"
input() {
    local i
    for ((i = 0; i < $1; i++)); do
        printf '{"custom_id":"q%d","method":"POST","url":"/v1/chat/completions","body":{"model":"%s","messages":[{"role":"user","content":"question %d"}]}}\n' "$i" "$2" "$i"
    done
}

# status_of ARGS...: the "status:" word of `batch status`
status_of() {
    "$CLI" batch status "$@" 2>"$TMP/err" | sed -n 's/^status: \([a-z_]*\) .*/\1/p'
}

flow() {
    local name=$1 prov=$2 model=$3 base=$4 id st i
    input 4 "$model" >"$TMP/in.jsonl"
    run "$CLI" batch submit --provider "$prov" --base-url "$base" \
        --api-key sk-test "$TMP/in.jsonl"
    id=$(cat "$TMP/out")
    if [ "$RC" -ne 0 ] || [ -z "$id" ] || [ -s "$TMP/err" ]; then
        bad "$name: submit prints the id" "status $RC, out '$id'"
        return
    fi
    ok "$name: submit prints the id"
    st=
    for ((i = 0; i < 200; i++)); do
        st=$(status_of --provider "$prov" --base-url "$base" --api-key sk-test "$id")
        case $st in completed | failed | cancelled | expired) break ;; esac
        sleep 0.05
    done
    if [ "$st" = completed ]; then
        ok "$name: status reaches completed"
    else
        bad "$name: status reaches completed" "last status '$st'"
    fi
    run "$CLI" batch status --provider "$prov" --base-url "$base" \
        --api-key sk-test "$id"
    if grep -qx 'requests: 4 total, 4 completed, 0 failed' "$TMP/out"; then
        ok "$name: status counts"
    else
        bad "$name: status counts" "$(cat "$TMP/out")"
    fi
    run "$CLI" batch fetch --provider "$prov" --base-url "$base" \
        --api-key sk-test "$id" -o "$TMP/res.jsonl"
    if [ "$RC" -eq 0 ] && "$PY" - "$TMP/res.jsonl" <<'PYEOF'; then
import json, sys
seen = {}
for line in open(sys.argv[1]):
    o = json.loads(line)
    r = o["response"]
    assert o["error"] is None and r["status_code"] == 200
    assert "request_id" in r
    text = r["body"]["choices"][0]["message"]["content"]
    i = int(o["custom_id"][1:])
    assert ("question %d" % i) in text, text
    seen[i] = seen.get(i, 0) + 1
assert seen == {0: 1, 1: 1, 2: 1, 3: 1}, seen
PYEOF
        ok "$name: fetch -o writes one answer per custom_id"
    else
        bad "$name: fetch -o writes one answer per custom_id" "status $RC"
    fi
    run "$CLI" batch fetch --provider "$prov" --base-url "$base" \
        --api-key sk-test --errors "$id"
    if [ "$RC" -eq 0 ] && [ ! -s "$TMP/out" ]; then
        ok "$name: fetch --errors: none"
    else
        bad "$name: fetch --errors: none" "status $RC"
    fi
}

flow openai openai gpt-4o-mini "$MOCK_URL/v1"
flow mistral mistral/mistral-small-latest mistral-small-latest "$MOCK_URL/mistral"

# -m works as --provider does
input 1 gpt-4o-mini >"$TMP/one.jsonl"
run "$CLI" batch submit -m openai --base-url "$MOCK_URL/v1" --api-key sk-test \
    "$TMP/one.jsonl"
if [ "$RC" -eq 0 ] && [ -s "$TMP/out" ]; then ok "submit -m"; else bad "submit -m" "status $RC"; fi

# cancel: a slow job, cancelled mid-run
start_mock --quiet --batch-seconds 30
input 3 gpt-4o-mini >"$TMP/in.jsonl"
id=$("$CLI" batch submit --provider openai --base-url "$MOCK_URL/v1" \
    --api-key sk-test "$TMP/in.jsonl")
run "$CLI" batch cancel --provider openai --base-url "$MOCK_URL/v1" \
    --api-key sk-test "$id"
if [ "$RC" -eq 0 ] && grep -qx 'status: cancelling (cancelling)' "$TMP/out"; then
    ok "cancel"
else
    bad "cancel" "status $RC: $(cat "$TMP/out")"
fi
st=$(status_of --provider openai --base-url "$MOCK_URL/v1" --api-key sk-test "$id")
if [ "$st" = cancelled ]; then ok "cancelled"; else bad "cancelled" "'$st'"; fi

# --json: the job as one object
run "$CLI" batch status --json --provider openai --base-url "$MOCK_URL/v1" \
    --api-key sk-test "$id"
if [ "$RC" -eq 0 ] && "$PY" - "$TMP/out" <<'PYEOF'; then
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1
o = json.loads(lines[0])
assert o["status"] == "cancelled" and o["status_raw"] == "cancelled", o
assert o["request_counts"]["total"] == 3, o
assert o["input_file_id"] and o["created_at"], o
PYEOF
    ok "status --json"
else
    bad "status --json" "status $RC"
fi
run "$CLI" batch -m openai/x --json "$TMP/in.jsonl"
if [ "$RC" -eq 2 ]; then ok "--json in the local runner: usage error"; else bad "--json in the local runner: usage error" "status $RC"; fi

# the key never shows
run "$CLI" batch status --provider openai --base-url "$MOCK_URL/v1" \
    --api-key sk-secret-123 batch-none
if [ "$RC" -ne 0 ] && ! grep -q sk-secret-123 "$TMP/err" "$TMP/out"; then
    ok "unknown id: an error without the key"
else
    bad "unknown id: an error without the key" "status $RC"
fi

# usage errors: exit 2
run "$CLI" batch status batch-1
if [ "$RC" -eq 2 ] && grep -q "the provider is required" "$TMP/err"; then
    ok "no provider: usage error"
else
    bad "no provider: usage error" "status $RC"
fi
run "$CLI" batch fetch --provider openai -m openai batch-1
if [ "$RC" -eq 2 ]; then ok "-m and --provider: usage error"; else bad "-m and --provider: usage error" "status $RC"; fi
run "$CLI" batch status --provider openai -o x batch-1
if [ "$RC" -eq 2 ] && grep -q -- "-o is an option of" "$TMP/err"; then
    ok "-o outside fetch: usage error"
else
    bad "-o outside fetch: usage error" "status $RC"
fi

# no batch API: non-zero, naming the local runner
run "$CLI" batch submit --provider ollama --base-url "$MOCK_URL/ollama" "$TMP/in.jsonl"
if [ "$RC" -ne 0 ] && grep -q "not supported" "$TMP/err" &&
    grep -q "llmux batch -m SPEC FILE" "$TMP/err"; then
    ok "ollama: no batch API, the local runner named"
else
    bad "ollama: no batch API, the local runner named" "status $RC"
fi

summary
