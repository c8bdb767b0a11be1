#!/usr/bin/env bash
#
# tests/serve/test_serve.sh: llmux-serve, the OpenAI-compatible gateway,
# in front of llmux-mock, driven with curl: /health, /v1/models, a chat
# completion (and one through a fallback), a stream (stream:true, and a
# reader that leaves mid-stream), the OpenAI error object with
# its status for an unknown model, a model with ';' options, bad JSON, a
# body too large, an unreachable upstream, a bad config file (exit 2,
# naming the line and the key), and a clean exit 0 on SIGTERM.
# /v1/completions (plain and streamed) and /v1/embeddings (a string, an
# array, base64) answer what llmux-mock answers directly, and refuse bad
# fields by name; passthrough: true takes a plain "provider/model",
# passthrough off (the default) gives it a 404.
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

# chat BODY: POSTs the JSON text BODY to /v1/chat/completions, as http;
# post PATH BODY to another path.
post() {
    printf '%s' "$2" >"$TMP/req.json"
    http post POST "$1" "$TMP/req.json"
}
chat() {
    post /v1/chat/completions "$1"
}

# expect_sse NAME PATH BODY PIECE WANT: POSTs BODY to PATH with curl -N;
# wants 200 server-sent events whose choices' PIECE (a Python expression
# on a choice `c`) concatenate to the text, their object types and the
# last event: WANT is "TEXT|TYPES|[DONE]".
expect_sse() {
    local out got
    printf '%s' "$3" >"$TMP/req.json"
    out=$(curl -s -S -N -m 20 -o "$TMP/sse" -w '%{http_code} %{content_type}' \
        --data-binary "@$TMP/req.json" "$SURL$2" 2>"$TMP/err")
    got=$(sse_summary "$TMP/sse" "$4")
    if [ "${out%%;*}" != "200 text/event-stream" ]; then
        bad "$1" "status and type '$out'"
    elif [ "$got" != "$5" ]; then
        bad "$1" "got '$got'"
    else
        ok "$1"
    fi
}

# same_as_direct NAME PATH BODY MODEL: the gateway's answer to BODY on PATH
# equals llmux-mock's own to BODY with "model" MODEL, but for ids and
# created (where the gateway and a direct call disagree, the gateway is
# wrong).
same_as_direct() {
    post "$2" "$3"
    cp "$TMP/body" "$TMP/via.json"
    local via=$CODE direct
    printf '%s' "$3" | "$PY" -c 'import json,sys
j = json.load(sys.stdin); j["model"] = sys.argv[1]; print(json.dumps(j))' "$4" \
        >"$TMP/direct.req.json"
    direct=$(curl -s -S -m 20 -o "$TMP/direct.json" -w '%{http_code}' \
        -H 'Authorization: Bearer sk-test' --data-binary "@$TMP/direct.req.json" \
        "$MOCK_URL/v1${2#/v1}" 2>"$TMP/err")
    local diff
    diff=$("$PY" -c 'import json,sys
def norm(o):
    if isinstance(o, dict):
        return {k: norm(v) for k, v in o.items() if k not in ("id", "created")}
    if isinstance(o, list):
        return [norm(v) for v in o]
    return o
a, b = (norm(json.load(open(f))) for f in sys.argv[1:3])
print("same" if a == b else "via %s\ndirect %s" % (json.dumps(a), json.dumps(b)))' \
        "$TMP/via.json" "$TMP/direct.json" 2>&1)
    if [ "$via" != 200 ] || [ "$direct" != 200 ]; then
        bad "$1" "status $via via the gateway, $direct direct" "$(head -c 300 "$TMP/via.json")"
    elif [ "$diff" != same ]; then
        bad "$1" "the gateway and llmux-mock differ" "$diff"
    else
        ok "$1"
    fi
}


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
  emb: "openai/text-embedding-3-small;$UP"
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
    "list fast:model,backup:model,down:model,slow:model,emb:model"

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

# what the gateway writes is valid UTF-8: a body that is not is refused
printf '{"model":"nope\377\376","messages":[]}' >"$TMP/req.json"
http badutf8 POST /v1/chat/completions "$TMP/req.json"
expect_error "invalid UTF-8 in the body is 400" 400 invalid_json
chat '{"model":"fast\u0000;api_key_env=HOME","messages":[]}'
expect_error "a model with a NUL is 400" 400 invalid_model

# a browser on another site: its POST carries an Origin that is not the
# gateway's; without keys, a Host that is not loopback (DNS rebinding)
CURL_EXTRA=(-H 'Origin: http://evil.example')
chat '{"model":"fast","messages":[{"role":"user","content":"hi"}]}'
expect_error "a POST from another origin is 403" 403 cross_origin
CURL_EXTRA=(-H "Origin: $SURL")
chat '{"model":"fast","messages":[{"role":"user","content":"hi"}]}'
expect "a POST from the gateway's own origin (its page) is answered" 200 \
    'j["object"]' chat.completion
CURL_EXTRA=(-H 'Host: evil.example')
http rebind GET /v1/models
expect_error "without keys a Host that is not loopback is 403" 403 \
    host_not_allowed
CURL_EXTRA=(-H "Host: localhost:$SPORT")
http localhost GET /v1/models
expect "without keys Host: localhost is answered" 200 'j["object"]' list
CURL_EXTRA=()

# stream:true: server-sent events, each an OpenAI chunk, then [DONE]
stream_check "stream: SSE chunks, then [DONE]" "$SURL" 1.1

chat '{"model":"down","stream":true,"messages":[{"role":"user","content":"x"}]}'
expect_error "stream failing before any chunk is a JSON 502" 502 LLMUX_ETRANSPORT

# a reader that leaves mid-stream (the slow route's chunks come every
# 200 ms): the gateway stops writing to it and goes on serving
leave_stream "stream: a reader leaving mid-stream got part of it" \
    '{"model":"slow","stream":true,"messages":[{"role":"user","content":"a b c d e f g h"}]}' 0.5

# /v1/completions and /v1/embeddings: the same answers as llmux-mock's
same_as_direct "completion: as llmux-mock answers" /v1/completions \
    '{"model":"fast","prompt":"complete me","max_tokens":2,"suffix":"!","user":"u"}' gpt-4o-mini
post /v1/completions '{"model":"fast","prompt":["one prompt"],"temperature":0.2}'
expect "completion: a prompt array of one" 200 \
    '"%s|%s" % (j["object"], j["choices"][0]["text"])' \
    "text_completion|Mock completion of: one prompt"
expect_sse "completion stream: SSE chunks, then [DONE]" /v1/completions \
    '{"model":"fast","stream":true,"prompt":"stream this"}' 'c["text"]' \
    "Mock completion of: stream this|text_completion|[DONE]"
post /v1/completions '{"model":"fast"}'
expect_error "completion without a prompt is 400" 400 LLMUX_EINVAL
post /v1/completions '{"model":"fast","prompt":["a","b"]}'
expect_error "completion with two prompts is 400" 400 LLMUX_ENOTSUP
post /v1/completions '{"model":"fast","prompt":"p","messages":[]}'
expect "completion refuses a chat field by name" 400 \
    '"\"messages\" does not apply" in j["error"]["message"]' True
post /v1/completions '{"model":"nosuch","prompt":"p"}'
expect_error "completion: unknown model is 404" 404 model_not_found
post /v1/completions '{"model":"down","prompt":"p"}'
expect_error "completion: unreachable upstream is 502" 502 LLMUX_ETRANSPORT

same_as_direct "embeddings of a string: as llmux-mock answers" /v1/embeddings \
    '{"model":"emb","input":"embed me"}' text-embedding-3-small
same_as_direct "embeddings of an array: as llmux-mock answers" /v1/embeddings \
    '{"model":"emb","input":["one","two","three"],"encoding_format":"float"}' \
    text-embedding-3-small
cp "$TMP/body" "$TMP/float.json"
post /v1/embeddings '{"model":"emb","input":["one","two","three"],"encoding_format":"base64"}'
b64floats='[list(__import__("struct").unpack("<%df" % (len(b) // 4), b)) for b in (__import__("base64").b64decode(d["embedding"]) for d in j["data"])]'
floats='[d["embedding"] for d in json.load(open(sys.argv[1].replace("body", "float.json")))["data"]]'
expect "embeddings as base64: float32 of the same numbers" 200 \
    "all(len(a) == len(b) == 8 and all(abs(x - y) < 1e-6 for x, y in zip(a, b)) for a, b in zip($b64floats, $floats)) and len($floats) == 3" True
post /v1/embeddings '{"model":"emb","input":[[1,2,3]]}'
expect_error "embeddings of token ids is 400" 400 LLMUX_ENOTSUP
post /v1/embeddings '{"model":"emb","input":"x","stream":true}'
expect_error "embeddings never stream: stream is 400" 400 LLMUX_EINVAL
post /v1/embeddings '{"model":"emb","input":"x","encoding_format":"int8"}'
expect_error "embeddings: a bad encoding_format is 400" 400 LLMUX_EINVAL
post /v1/embeddings '{"model":"emb"}'
expect_error "embeddings without input is 400" 400 LLMUX_EINVAL
post /v1/embeddings '{"model":"emb;base_url=http://127.0.0.1:1/v1","input":"x"}'
expect_error "embeddings: a model with ';' options is 400" 400 invalid_model
http embget GET /v1/embeddings
expect_error "embeddings: wrong method is a JSON 405" 405 method_not_allowed

# passthrough off (the default): a plain provider/model is no route
chat '{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"x"}]}'
expect_error "passthrough off: provider/model is 404" 404 model_not_found

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

# passthrough: true: a plain provider/model reaches the provider (its
# base URL and key from the environment), never with ';' options
printf 'routes:\n  fast: "openai/gpt-4o-mini;%s"\npassthrough: true\n' "$UP" >"$TMP/pt.yaml"
OPENAI_BASE_URL=$MOCK_URL/v1 OPENAI_API_KEY=sk-test start_serve "$TMP/pt.yaml"
chat '{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"passed through"}]}'
expect "passthrough on: provider/model answers" 200 \
    'j["choices"][0]["message"]["content"]' "Mock reply to: passed through"
post /v1/embeddings '{"model":"openai/text-embedding-3-small","input":["a","b"]}'
expect "passthrough on: embeddings too" 200 'len(j["data"])' 2
chat '{"model":"openai/gpt-4o-mini;base_url=http://127.0.0.1:1/v1","messages":[]}'
expect_error "passthrough on: ';' options still 400" 400 invalid_model
chat '{"model":"nosuchprovider/m","messages":[{"role":"user","content":"x"}]}'
expect_error "passthrough on: unknown provider is 400" 400 LLMUX_ENOPROVIDER
expect "passthrough on: the error names no server path" 400 \
    '"/" in j["error"]["message"].replace("nosuchprovider/m", "")' False
chat '{"model":"nosuch","messages":[{"role":"user","content":"x"}]}'
expect_error "passthrough on: a name without provider is 404" 404 model_not_found
kill -TERM "$SPID"
wait "$SPID"
SERVE_PIDS=()

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
printf 'routes:\n  fast: "openai/gpt-4o;api_key=sk-SUPERSECRET;timeout={30"\n' >"$TMP/bad.yaml"
bad_config "config: a bad config string's error names the route" \
    "^llmux serve: .*bad\.yaml:2: key 'routes\.fast': bad config string"
if grep -q SUPERSECRET "$TMP/err"; then
    bad "config: a bad config string's error never shows its api_key"
else
    ok "config: a bad config string's error never shows its api_key"
fi
printf 'routes:\n  fast: openai/gpt-4o-mini\nlimits: {max_body: 1MiB}\nlimits: {max_body: 2MiB}\n' >"$TMP/bad.yaml"
bad_config "config: a key given twice is refused" \
    "^llmux serve: .*bad\.yaml:4: key 'limits': given twice \(first on line 3\)"
printf 'routes:\n  fast: openai/gpt-4o-mini\n---\nroutes:\n  slow: openai/gpt-4o-mini\n' >"$TMP/bad.yaml"
bad_config "config: a second YAML document is refused" \
    "^llmux serve: .*bad\.yaml:4: a second YAML document"
# the shipped example config loads (its providers' keys are not needed
# until a request)
start_serve "$SRC/examples/gateway.yaml"
http example GET /v1/models
expect "examples/gateway.yaml loads and lists its routes" 200 \
    '",".join(m["id"] for m in j["data"])' "fast,smart,local,embed,faq"
kill -TERM "$SPID"
wait "$SPID"
SERVE_PIDS=()

printf 'routes:\n  fast: openai/gpt-4o-mini\npassthrough: maybe\n' >"$TMP/bad.yaml"
bad_config "config: passthrough not a boolean" \
    "^llmux serve: .*bad\.yaml:3: key 'passthrough': want true or false"
run timeout 10 "$SERVE" --config "$TMP/nosuchfile.yaml"
expect_rc_2() { if [ "$RC" -eq 2 ]; then ok "$1"; else bad "$1" "exit status $RC, want 2"; fi; }
expect_rc_2 "config: missing file is exit 2"
run timeout 10 "$SERVE"
expect_rc_2 "no --config is exit 2"

summary
