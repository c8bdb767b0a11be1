#!/usr/bin/env bash
#
# tests/serve/test_serve_keys.sh: llmux-serve's virtual keys and its own
# limits, in front of llmux-mock, driven with curl and python3:
# - keys: a missing, unknown or malformed key is a 401 (keys of other
#   lengths and a prefix of a real key too, the key never echoed), a key
#   as `Authorization: Bearer` or `api-key`, one from key_env, a model
#   outside the key's models: list is a 403, GET /v1/models lists only the
#   key's routes, rpm and tpm are 429 with Retry-After (tpm counted with
#   the answer's usage), and no key value appears on the server's stderr;
# - limits: max_in_flight (a 503 naming the limit while requests are held
#   by a slow upstream), max_header (a JSON 431), max_connections (a
#   connection beyond it waits, and is served once another closes);
# - config: no keys on a non-loopback listen address is refused (exit 2)
#   before binding; bad keys: entries name the line and the key.
#
# usage: test_serve_keys.sh PATH/TO/llmux-serve PATH/TO/llmux-mock
# LLMUX_PLUGIN_PATH must name the directory holding the openai plugin.
# Exits 77 (skipped) without curl or python3.

set -u

SERVE=${1:?usage: test_serve_keys.sh LLMUX_SERVE LLMUX_MOCK}
MOCK=${2:?usage: test_serve_keys.sh LLMUX_SERVE LLMUX_MOCK}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
T_NAME=serve-keys
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve/serve_lib.sh"

KEY_A=sk-alpha-0123456789abcdef
export LLMUX_TEST_KEY_B=sk-beta-from-the-environment
KEY_R=sk-rpm-limited-key
KEY_T=sk-tpm-limited-key

start_mock --quiet --latency 4000
SLOW="base_url=$MOCK_URL/v1;api_key=sk-test;timeout=60"
SLOW_URL=$MOCK_URL
start_mock --quiet
UP="base_url=$MOCK_URL/v1;api_key=sk-test"
cat >"$TMP/keys.yaml" <<EOC
keys:                     # before routes: read after them all the same
  - key: $KEY_A
    name: alpha
  - key_env: LLMUX_TEST_KEY_B
    name: beta
    models: [fast]
  - {key: $KEY_R, name: limited, rpm: 2}
  - {key: $KEY_T, name: tokens, tpm: 100}
routes:
  fast: "openai/gpt-4o-mini;$UP"
  other: "openai/gpt-4o-mini;$UP"
  slow: "openai/gpt-4o-mini;$SLOW"
limits: {max_in_flight: 2, max_header: 4KiB}
EOC
start_serve "$TMP/keys.yaml"

# as KEY: the curl arguments of an Authorization: Bearer KEY header
as() { CURL_EXTRA=(-H "Authorization: Bearer $1"); }
HELLO='{"model":"fast","messages":[{"role":"user","content":"hello"}]}'

# ---- 401: no key, unknown keys ----
CURL_EXTRA=()
chat "$HELLO"
expect_error "no key is 401" 401 invalid_api_key
http models GET /v1/models
expect_error "GET /v1/models without a key is 401" 401 invalid_api_key
http metrics GET /metrics
expect_error "GET /metrics without a key is 401 when there are keys" 401 \
    invalid_api_key
http health GET /health
expect "GET /health needs no key" 200 'j["status"]' ok

LONG=$(printf 'sk-%02000d' 7) # under limits.max_header
for k in sk-nope "${KEY_A:0:12}" "${KEY_A}x" "${KEY_A:1}" "$LONG" "$LONG$KEY_A"; do
    as "$k"
    chat "$HELLO"
    expect_error "unknown key (${#k} bytes) is 401" 401 invalid_api_key
    if grep -qF -- "${k:3}" "$TMP/body"; then
        bad "401 does not echo the key (${#k} bytes)" "body: $(head -c 300 "$TMP/body")"
    fi
done
CURL_EXTRA=(-H "Authorization: Basic $KEY_A")
chat "$HELLO"
expect_error "a key not as Bearer is 401" 401 invalid_api_key
CURL_EXTRA=(-H "Authorization: Bearer ")
chat "$HELLO"
expect_error "an empty Bearer is 401" 401 invalid_api_key

# ---- keys that work ----
as "$KEY_A"
chat "$HELLO"
expect "Authorization: Bearer KEY" 200 'j["choices"][0]["message"]["content"]' \
    "Mock reply to: hello"
CURL_EXTRA=(-H "authorization: bearer $KEY_A")
chat "$HELLO"
expect "bearer in lower case" 200 'j["object"]' chat.completion
CURL_EXTRA=(-H "api-key: $KEY_A")
chat "$HELLO"
expect "api-key: KEY (Azure's SDK)" 200 'j["object"]' chat.completion
http models GET /v1/models
expect "GET /v1/models: a key without models: lists all routes" 200 \
    '",".join(m["id"] for m in j["data"])' "fast,other,slow"
http metrics GET /metrics
if [ "$CODE" = 200 ] && grep -q '^llmux_serve_requests_total' "$TMP/body"; then
    ok "GET /metrics with a key"
else
    bad "GET /metrics with a key" "status $CODE"
fi

as "$LLMUX_TEST_KEY_B"
chat "$HELLO"
expect "key_env: the key from the environment" 200 'j["object"]' chat.completion
chat '{"model":"other","messages":[{"role":"user","content":"hello"}]}'
expect_error "a model outside the key's models: is 403" 403 model_not_allowed
expect "403 names the model param" 403 'j["error"]["param"]' model
chat '{"model":"nosuch","messages":[{"role":"user","content":"hello"}]}'
expect_error "an unknown model is still 404 with a key" 404 model_not_found
http models GET /v1/models
expect "GET /v1/models lists only the key's routes" 200 \
    '",".join(m["id"] for m in j["data"])' "fast"

# retry_after: the Retry-After header of the last answer (empty: none)
retry_after() {
    tr -d '\r' <"$TMP/headers" | sed -n 's/^[Rr]etry-[Aa]fter: *//p'
}
# expect_429 NAME TYPE: a 429 rate_limit_exceeded of TYPE with a
# Retry-After of whole seconds (at least 1).
expect_429() {
    local ra
    ra=$(retry_after)
    expect_error "$1" 429 rate_limit_exceeded
    expect "$1: type $2" 429 'j["error"]["type"]' "$2"
    if [[ "$ra" =~ ^[1-9][0-9]*$ ]]; then
        ok "$1: Retry-After $ra"
    else
        bad "$1: Retry-After" "got '$ra'"
    fi
}

# ---- rpm: 2 a minute ----
as "$KEY_R"
chat "$HELLO"
expect "rpm 2: first request" 200 'j["object"]' chat.completion
chat "$HELLO"
expect "rpm 2: second request" 200 'j["object"]' chat.completion
chat "$HELLO"
expect_429 "rpm 2: third request is 429" requests
as "$KEY_A"
chat "$HELLO"
expect "another key is not limited by it" 200 'j["object"]' chat.completion

# ---- tpm: 100 a minute ----
# The mock counts words: 40 words in, "Mock reply to: " + 40 out, 83 in
# all. Admission reserves the body's bytes / 4 (about 32) and the end
# charges the 83 reported: 17 left, under the next request's 32 (without
# the correction 68 would be left, and the second request would pass);
# refilling 100/min, 15 more take 9 s.
W40=$(printf 'w %.0s' $(seq 40))
TPM_BODY="{\"model\":\"fast\",\"messages\":[{\"role\":\"user\",\"content\":\"${W40% }\"}]}"
as "$KEY_T"
chat "$TPM_BODY"
expect "tpm 100: first request" 200 'j["usage"]["total_tokens"]' 83
chat "$TPM_BODY"
expect_429 "tpm 100: the next is 429 after the usage is counted" tokens

# ---- limits.max_header: 4 KiB ----
as "$KEY_A"
CURL_EXTRA+=(-H "X-Padding: $(printf 'p%.0s' $(seq 3000))")
http header GET /v1/models
expect "headers under limits.max_header" 200 'j["object"]' list
as "$KEY_A"
CURL_EXTRA+=(-H "X-Padding: $(printf 'p%.0s' $(seq 5000))")
http header GET /v1/models
expect_error "headers over limits.max_header are a JSON 431" 431 \
    request_header_too_large
# above h2o's own bound (H2O_MAX_REQLEN, 408 KiB, fixed when h2o was
# built), or with more than 100 header lines, h2o answers by itself
# before the gateway sees the request: a plain-text 400, then it closes
got=$("$PY" - "$SPORT" <<'EOP' 2>&1
import socket, sys
def ask(head):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head + b"\r\n")
    d = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        d += b
    return d.split(b"\r\n")[0].decode()
print(ask(b"X-Padding: " + b"p" * 450000 + b"\r\n"))
print(ask(b"".join(b"X-H%d: v\r\n" % i for i in range(120))))
EOP
)
if [ "$got" = "HTTP/1.1 400 Bad Request
HTTP/1.1 400 Bad Request" ]; then
    ok "headers over h2o's own bounds: h2o's 400, then close (no hang)"
else
    bad "headers over h2o's own bounds" "$got"
fi

# ---- limits.max_in_flight: 2 ----
# two requests held by the slow upstream (4 s), then one more is a 503
as "$KEY_A"
SLOW_BODY='{"model":"slow","messages":[{"role":"user","content":"held"}]}'
for n in 1 2; do
    curl -s -m 60 -o "$TMP/held-$n" -w '%{http_code}' -H "Authorization: Bearer $KEY_A" \
        --data-binary "$SLOW_BODY" "$SURL/v1/chat/completions" >"$TMP/held-$n.code" &
    HELD[n]=$!
done
# until the slow mock holds both (its in_flight), then one more request
for _ in $(seq 1 400); do
    n=$(curl -s -m 5 "$SLOW_URL/_mock/stats" |
        "$PY" -c 'import json,sys; print(json.load(sys.stdin)["in_flight"])' 2>/dev/null)
    [ "$n" = 2 ] && break
    sleep 0.05
done
chat "$HELLO"
expect_error "over limits.max_in_flight is 503" 503 max_in_flight
expect "503 names limits.max_in_flight" 503 \
    '"limits.max_in_flight" in j["error"]["message"]' True
if [[ "$(retry_after)" =~ ^[1-9][0-9]*$ ]]; then
    ok "max_in_flight: Retry-After"
else
    bad "max_in_flight: Retry-After" "got '$(retry_after)'"
fi
wait "${HELD[1]}" "${HELD[2]}"
if [ "$(cat "$TMP/held-1.code" "$TMP/held-2.code")" = 200200 ]; then
    ok "the held requests complete"
else
    bad "the held requests complete" "$(cat "$TMP/held-1.code") $(cat "$TMP/held-2.code")"
fi
chat "$HELLO"
expect "in flight again once they are done" 200 'j["object"]' chat.completion

for k in "$KEY_A" "$LLMUX_TEST_KEY_B" "$KEY_R" "$KEY_T"; do
    if grep -qF -- "$k" "$TMP/serve.err"; then
        bad "no key on the server's stderr" "found one"
    fi
done
ok "no key on the server's stderr (checked)"
stop_serve "SIGTERM: exit 0"

# ---- limits.max_connections: 2 ----
cat >"$TMP/conns.yaml" <<EOC
routes:
  fast: "openai/gpt-4o-mini;$UP"
limits: {max_connections: 2}
EOC
start_serve "$TMP/conns.yaml"
got=$("$PY" - "$SPORT" <<'EOP' 2>&1
import socket, sys, time
port = int(sys.argv[1])
REQ = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(REQ)
    return s
def answered(s, timeout):
    s.settimeout(timeout)
    try:
        return s.recv(4096).startswith(b"HTTP/1.1 200")
    except socket.timeout:
        return None
a, b = conn(), conn()
print("first two:", answered(a, 20), answered(b, 20))
c = conn()  # the kernel completes the handshake; the gateway holds it
print("third while two are open:", answered(c, 1.5))
a.close()
print("third once one closed:", answered(c, 20))
EOP
)
want="first two: True True
third while two are open: None
third once one closed: True"
if [ "$got" = "$want" ]; then
    ok "max_connections: a connection beyond it waits, then is served"
else
    bad "max_connections: a connection beyond it waits, then is served" "$got"
fi
stop_serve "SIGTERM with a held connection: exit 0"

# ---- no keys on a non-loopback address ----
printf 'routes:\n  fast: "openai/gpt-4o-mini;%s"\n' "$UP" >"$TMP/open.yaml"
for addr in 0.0.0.0:0 "[::]:0"; do
    rm -f "$TMP/open-port"
    run timeout 10 "$SERVE" --config "$TMP/open.yaml" --listen "$addr" \
        --port-file "$TMP/open-port"
    if [ "$RC" -ne 2 ]; then
        bad "no keys on $addr is refused" "exit status $RC, want 2"
    elif ! grep -q "refusing to listen on .* without keys" "$TMP/err"; then
        bad "no keys on $addr is refused" "stderr says not why"
    elif [ -e "$TMP/open-port" ] || grep -q listening "$TMP/err"; then
        bad "no keys on $addr is refused" "it listened first"
    else
        ok "no keys on $addr is refused before binding (exit 2)"
    fi
done
printf 'listen: 0.0.0.0:0\nroutes:\n  fast: "openai/gpt-4o-mini;%s"\nkeys: [{key: %s, name: a}]\n' \
    "$UP" "$KEY_A" >"$TMP/open.yaml"
"$SERVE" --config "$TMP/open.yaml" --port-file "$TMP/open-port" 2>"$TMP/serve.err" &
SPID=$!
SERVE_PIDS+=("$SPID")
if wait_port "$TMP/open-port" "$SPID"; then
    ok "with keys it listens on 0.0.0.0"
else
    bad "with keys it listens on 0.0.0.0" "$(cat "$TMP/serve.err")"
fi

# ---- bad keys: entries ----
# bad_keys NAME YAML-KEYS WANT-REGEX: a config with those keys: lines
bad_keys() {
    printf 'routes:\n  fast: openai/gpt-4o-mini\nkeys:\n%s\n' "$2" >"$TMP/bad.yaml"
    bad_config "$1" "$3"
    if grep -qF "$KEY_A" "$TMP/err"; then
        bad "$1: the key is not printed"
    fi
}
unset LLMUX_TEST_UNSET_KEY
bad_keys "keys: key_env naming an unset variable" \
    "  - {name: a, key_env: LLMUX_TEST_UNSET_KEY}" \
    "bad\.yaml:4: key 'keys\[0\]\.key_env': variable LLMUX_TEST_UNSET_KEY is not set"
bad_keys "keys: the same name twice" \
    "  - {name: a, key: sk-1}
  - {name: a, key: sk-2}" "bad\.yaml:5: key 'keys\[1\]\.name': 'a' is also"
bad_keys "keys: the same key twice (not printed)" \
    "  - {name: a, key: $KEY_A}
  - {name: b, key: $KEY_A}" "bad\.yaml:5: key 'keys\[1\]' \(b\): the same key as keys\[0\] \(a\)"
bad_keys "keys: an unknown field" "  - {name: a, key: sk-1, rps: 3}" \
    "bad\.yaml:4: key 'keys\[0\]\.rps': unknown"
bad_keys "keys: a bad rpm" "  - {name: a, key: sk-1, rpm: -5}" \
    "bad\.yaml:4: key 'keys\[0\]\.rpm': want a whole number"
bad_keys "keys: a bad tpm" "  - name: a
    key: $KEY_A
    tpm: lots" "bad\.yaml:6: key 'keys\[0\]\.tpm': want a whole number"
bad_keys "keys: a model that is no route" "  - {name: a, key: sk-1, models: [fast, slwo]}" \
    "bad\.yaml:4: key 'keys\[0\]\.models': 'slwo' is not a route"
bad_keys "keys: no key" "  - {name: a}" "bad\.yaml:4: key 'keys\[0\]': key or key_env is required"
bad_keys "keys: key and key_env" "  - {name: a, key: $KEY_A, key_env: HOME}" \
    "bad\.yaml:4: key 'keys\[0\]\.key_env': give one of key and key_env"
bad_keys "keys: no name" "  - {key: $KEY_A}" "bad\.yaml:4: key 'keys\[0\]\.name': required"
bad_keys "keys: not a list" "  a: b" "bad\.yaml:4: key 'keys': want a list"

summary
