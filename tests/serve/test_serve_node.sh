#!/usr/bin/env bash
#
# tests/serve/test_serve_node.sh: real clients against llmux-serve in front
# of llmux-mock. The official OpenAI Node SDK (the version pinned in
# ../shared/bench-peers/run.sh) runs openai_node.mjs: chat, its stream
# helper, a tool call round trip, completions, embeddings (its base64
# default and float), the models list, typed errors with their status, and
# an abort mid-stream that must cancel the upstream request (llmux-mock's
# /_mock/stats in_flight back to 0 long before the stream would end); each
# answer compared with the same call sent straight to llmux-mock. Then
# `curl -N`: a stream's events arrive one by one, before it ends.
#
# usage: test_serve_node.sh LLMUX_SERVE LLMUX_MOCK NODE_CACHE_DIR
# The SDK is installed with npm into NODE_CACHE_DIR once and reused.
# Exits 77 (skipped), saying why, without node, npm, curl or python3, or
# when the npm registry cannot be reached.

set -u

SERVE=${1:?usage: test_serve_node.sh LLMUX_SERVE LLMUX_MOCK NODE_CACHE_DIR}
MOCK=${2:?usage: test_serve_node.sh LLMUX_SERVE LLMUX_MOCK NODE_CACHE_DIR}
NODE_DIR=${3:?usage: test_serve_node.sh LLMUX_SERVE LLMUX_MOCK NODE_CACHE_DIR}
PY=${PYTHON:-python3}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
# the SDK version the peers' benchmark runs (../shared/bench-peers/run.sh)
OPENAI_NODE_VERSION=7.57.0

for tool in node npm curl "$PY"; do
    if ! command -v "$tool" >/dev/null; then
        echo "skip: $tool not found (build.sh installs nodejs and npm)"
        exit 77
    fi
done

if [ "$(cd "$NODE_DIR" 2>/dev/null &&
    node -p 'require("./node_modules/openai/package.json").version' 2>/dev/null)" \
    != "$OPENAI_NODE_VERSION" ]; then
    mkdir -p "$NODE_DIR" || exit 1
    if ! (cd "$NODE_DIR" && { [ -f package.json ] || npm init -y >/dev/null; } &&
        timeout 300 npm install --no-audit --no-fund --silent \
            "openai@$OPENAI_NODE_VERSION" >npm.log 2>&1); then
        echo "skip: cannot install openai@$OPENAI_NODE_VERSION with npm (registry unreachable?):"
        tail -5 "$NODE_DIR/npm.log"
        exit 77
    fi
fi

T_NAME=serve-node
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve/serve_lib.sh"

start_mock --quiet --chunk-delay 300
SLOW_MOCK=$MOCK_URL
start_mock --quiet
cat >"$TMP/serve.yaml" <<EOF
routes:
  fast: "openai/gpt-4o-mini;base_url=$MOCK_URL/v1;api_key=sk-test"
  emb: "openai/text-embedding-3-small;base_url=$MOCK_URL/v1;api_key=sk-test"
  slow: "openai/gpt-4o-mini;base_url=$SLOW_MOCK/v1;api_key=sk-test"
  mistral: "mistral/mistral-small-latest;base_url=$MOCK_URL/mistral;api_key=sk-test"
  ollama: "ollama/llama3.2;base_url=$MOCK_URL/ollama"
  alephalpha: "alephalpha/llama-3.1-8b-instruct;base_url=$MOCK_URL/aleph;api_key=sk-test"
EOF
start_serve "$TMP/serve.yaml"

# the SDK: one "ok NAME" / "FAIL NAME: why" line per check
OPENAI_DIR=$NODE_DIR GATEWAY=$SURL DIRECT=$MOCK_URL SLOW_MOCK=$SLOW_MOCK \
    timeout 120 node "$SRC/tests/serve/openai_node.mjs" >"$TMP/node.out" 2>&1
NODE_RC=$?
while IFS= read -r line; do
    case $line in
    "ok "*) ok "node: ${line#ok }" ;;
    "FAIL "*) bad "node: ${line#FAIL }" ;;
    *) echo "       $line" ;;
    esac
done <"$TMP/node.out"
if [ "$NODE_RC" -ne 0 ] && ! grep -q '^FAIL ' "$TMP/node.out"; then
    bad "node: the SDK script ran" "exit status $NODE_RC"
fi

# curl -N: each event as it comes. The slow route sends a word every
# 300 ms, so a relay that buffered the stream would deliver everything at
# once; here the first event must come well before [DONE].
printf '%s' '{"model":"slow","stream":true,"messages":[{"role":"user","content":"one two three four five six"}]}' >"$TMP/req.json"
curl -s -S -N -m 60 --data-binary "@$TMP/req.json" "$SURL/v1/chat/completions" \
    2>"$TMP/err" | "$PY" -c 'import sys, time
t0 = time.monotonic()
for line in sys.stdin:
    if line.startswith("data: "):
        print("%.3f %s" % (time.monotonic() - t0, line[6:].strip()[:20]), flush=True)' \
    >"$TMP/times"
got=$("$PY" -c 'import sys
ev = [l.split(" ", 1) for l in open(sys.argv[1]).read().splitlines()]
first, last = float(ev[0][0]), float(ev[-1][0])
print("%s %s" % (ev[-1][1], last - first > 1.0 and len(ev) > 8))' "$TMP/times" 2>&1)
if [ "$got" = "[DONE] True" ]; then
    ok "curl -N: events arrive as they come, then [DONE]"
else
    bad "curl -N: events arrive as they come, then [DONE]" "got '$got'" \
        "$(head -c 600 "$TMP/times")"
fi

summary
