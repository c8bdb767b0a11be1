#!/usr/bin/env bash
#
# tests/serve/test_serve.sh: llmux-serve, the OpenAI-compatible gateway,
# in front of llmux-mock, driven with curl: /health, /v1/models, a chat
# completion (and one through a fallback), a stream (stream:true, and a
# reader that leaves mid-stream), the OpenAI error object with
# its status for an unknown model, a model with ';' options, bad JSON, a
# body too large, an unreachable upstream, a bad config file (exit 2,
# naming the line and the key), and a clean exit 0 on SIGTERM.
#
# usage: test_serve.sh PATH/TO/llmux-serve PATH/TO/llmux-mock
# LLMUX_PLUGIN_PATH must name the directory holding the openai plugin.
# Exits 77 (skipped) without curl or python3.

set -u

SERVE=${1:?usage: test_serve.sh LLMUX_SERVE LLMUX_MOCK}
MOCK=${2:?usage: test_serve.sh LLMUX_SERVE LLMUX_MOCK}
SRC=$(cd "$(dirname "$0")/../.." && pwd)

T_NAME=serve-test
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve/serve_lib.sh"

start_mock --quiet --chunk-delay 200
SLOW="base_url=$MOCK_URL/v1;api_key=sk-test"
start_mock --quiet
UP="base_url=$MOCK_URL/v1;api_key=sk-test"
cat >"$TMP/serve.yaml" <<EOF
# the gateway's routes, all on llmux-mock
listen: 127.0.0.1:9
routes:
  fast: "openai/gpt-4o-mini;$UP"
  backup:
    - "openai/gpt-4o-mini;base_url=http://127.0.0.1:1/v1;api_key=sk-test;max_retries=0"
    - "openai/gpt-4o-mini;$UP"
  down: ["openai/gpt-4o-mini;base_url=http://127.0.0.1:1/v1;api_key=sk-test;max_retries=0"]
  slow: "openai/gpt-4o-mini;$SLOW"
limits:
  max_body: 4MiB                # under the default 8 MiB: the setting applies
EOF
start_serve "$TMP/serve.yaml"

if grep -qx "llmux serve: listening on $SURL" "$TMP/serve.err"; then
    ok "listening line on stderr"
else
    bad "listening line on stderr" "stderr: $(cat "$TMP/serve.err")"
fi

http health GET /health
expect "GET /health" 200 'j["status"]' ok

http models GET /v1/models
expect "GET /v1/models lists the routes" 200 \
    '"%s %s" % (j["object"], ",".join(m["id"] + ":" + m["object"] for m in j["data"]))' \
    "list fast:model,backup:model,down:model,slow:model"

chat '{"model":"fast","messages":[{"role":"user","content":"hello gateway"}]}'
expect "chat completion" 200 \
    '"%s|%s|%s" % (j["object"], j["choices"][0]["message"]["content"], j["choices"][0]["finish_reason"])' \
    "chat.completion|Mock reply to: hello gateway|stop"
expect "chat completion usage" 200 'j["usage"]["total_tokens"] > 0' True

chat '{"model":"backup","messages":[{"role":"user","content":"via fallback"}]}'
expect "route falls back to its second config string" 200 \
    'j["choices"][0]["message"]["content"]' "Mock reply to: via fallback"

chat '{"model":"down","messages":[{"role":"user","content":"x"}]}'
expect_error "unreachable upstream is 502" 502 LLMUX_ETRANSPORT

chat '{"model":"nosuch","messages":[{"role":"user","content":"x"}]}'
expect_error "unknown model is 404" 404 model_not_found
expect "unknown model names param" 404 'j["error"]["param"]' model

chat '{"model":"fast;base_url=http://127.0.0.1:1/v1","messages":[{"role":"user","content":"x"}]}'
expect_error "model with ';' options is 400" 400 invalid_model

chat '{"model":"openai/gpt-4o-mini;api_key_env=HOME","messages":[]}'
expect_error "config string as model is 400" 400 invalid_model

chat '{"model": "fast", "messages": ['
expect_error "bad JSON is 400" 400 invalid_json

chat '{"model":"fast","messages":"not a list"}'
expect_error "bad field is 400" 400 LLMUX_EINVAL

# stream:true: server-sent events, each an OpenAI chunk, then [DONE]
stream_check "stream: SSE chunks, then [DONE]" "$SURL" 1.1

chat '{"model":"down","stream":true,"messages":[{"role":"user","content":"x"}]}'
expect_error "stream failing before any chunk is a JSON 502" 502 LLMUX_ETRANSPORT

# a reader that leaves mid-stream (the slow route's chunks come every
# 200 ms): the gateway stops writing to it and goes on serving
leave_stream "stream: a reader leaving mid-stream got part of it" \
    '{"model":"slow","stream":true,"messages":[{"role":"user","content":"a b c d e f g h"}]}' 0.5

"$PY" -c 'import sys
sys.stdout.write("{\"model\":\"fast\",\"messages\":[{\"role\":\"user\",\"content\":\"" + "a" * (5 << 20) + "\"}]}")' >"$TMP/big.json"
http big POST /v1/chat/completions "$TMP/big.json"
expect_error "body over limits.max_body (4 MiB) is 413" 413 request_too_large

http notfound GET /v1/nothing
expect_error "unknown path is a JSON 404" 404 not_found

http method GET /v1/chat/completions
expect_error "wrong method is a JSON 405" 405 method_not_allowed

http health GET /health
expect "still healthy after the errors" 200 'j["status"]' ok

stop_serve "SIGTERM: exit 0"

# bad configs: exit 2, one line naming the file's line and the key
printf 'listen: 127.0.0.1:0\nroutes:\n  fast: openai/gpt-4o-mini\nbogus:\n  - key: sk-a\n' >"$TMP/bad.yaml"
bad_config "config: unknown key names line and key" \
    "^llmux serve: .*bad\.yaml:4: key 'bogus'"
printf 'routes:\n  fast: openai/gpt-4o-mini\nlimits:\n  max_body: 8 potatoes\n' >"$TMP/bad.yaml"
bad_config "config: a bad size names limits.max_body" \
    "^llmux serve: .*bad\.yaml:4: key 'limits\.max_body': want a size"
printf 'routes:\n  fast: openai/gpt-4o-mini\nlimits: {drain_timeout: -3s}\n' >"$TMP/bad.yaml"
bad_config "config: a bad duration names limits.drain_timeout" \
    "^llmux serve: .*bad\.yaml:3: key 'limits\.drain_timeout': want a duration"
printf 'routes:\n  fast: openai/gpt-4o-mini\nlimits: {max_bodies: 1MiB}\n' >"$TMP/bad.yaml"
bad_config "config: an unknown limit is refused by name" \
    "^llmux serve: .*bad\.yaml:3: key 'limits\.max_bodies': unknown"
printf 'listen: 127.0.0.1:0\nroutes:\n  fast: "openai/gpt-4o-mini;max_retries=abc"\n' >"$TMP/bad.yaml"
bad_config "config: bad config string names line and route" \
    "^llmux serve: .*bad\.yaml:3: key 'routes\.fast'"
printf 'listen: 127.0.0.1:0\nroutes:\n  fast: [openai/gpt-4o-mini\n' >"$TMP/bad.yaml"
bad_config "config: YAML syntax error names the line" \
    "^llmux serve: .*bad\.yaml:[0-9]+: YAML"
printf 'listen: 127.0.0.1:0\nroutes:\n  fast: {a: b}\n' >"$TMP/bad.yaml"
bad_config "config: a route that is a mapping" \
    "^llmux serve: .*bad\.yaml:3: key 'routes\.fast'"
printf 'listen: 127.0.0.1:0\n' >"$TMP/bad.yaml"
bad_config "config: no routes" "key 'routes': missing or empty"
# the shipped example config loads (its providers' keys are not needed
# until a request)
start_serve "$SRC/examples/gateway.yaml"
http example GET /v1/models
expect "examples/gateway.yaml loads and lists its routes" 200 \
    '",".join(m["id"] for m in j["data"])' "fast,smart,local,embed"
kill -TERM "$SPID"
wait "$SPID"
SERVE_PIDS=()

run timeout 10 "$SERVE" --config "$TMP/nosuchfile.yaml"
expect_rc_2() { if [ "$RC" -eq 2 ]; then ok "$1"; else bad "$1" "exit status $RC, want 2"; fi; }
expect_rc_2 "config: missing file is exit 2"
run timeout 10 "$SERVE"
expect_rc_2 "no --config is exit 2"

summary
