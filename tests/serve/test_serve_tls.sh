#!/usr/bin/env bash
#
# tests/serve/test_serve_tls.sh: llmux-serve over TLS and HTTP/2, in front
# of llmux-mock, with a throwaway CA made now by openssl and driven with
# curl: HTTPS with HTTP/1.1 and with HTTP/2 (ALPN h2), a chat, an error
# and a stream over h2, ten streams multiplexed on one h2 connection, a
# client resetting one stream (RST_STREAM) while another goes on on the
# same connection (the upstream request is canceled: llmux-mock's
# in_flight drops to 0), a slow reader (upstream paused and resumed)
# getting a 4 MB stream whole, cleartext HTTP/2 (prior knowledge and Upgrade:
# h2c), a client without the CA refused, tls.min_version, SIGTERM with an
# idle h2 connection and an h2 stream open (GOAWAY, exit 0), and bad tls:
# settings refused at start naming the line and the key (exit 2).
#
# usage: test_serve_tls.sh PATH/TO/llmux-serve PATH/TO/llmux-mock
# LLMUX_PLUGIN_PATH must name the directory holding the openai plugin.
# Exits 77 (skipped) without curl (with HTTP/2), python3 or openssl.

set -u

SERVE=${1:?usage: test_serve_tls.sh LLMUX_SERVE LLMUX_MOCK}
MOCK=${2:?usage: test_serve_tls.sh LLMUX_SERVE LLMUX_MOCK}
PY=${PYTHON:-python3}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
H2_IDLE="$SRC/tests/serve/h2_idle.py"

for tool in curl "$PY" openssl; do
    if ! command -v "$tool" >/dev/null; then
        echo "skip: $tool not found"
        exit 77
    fi
done
if ! curl -V | grep -q '^Features:.* HTTP2'; then
    echo "skip: this curl has no HTTP/2"
    exit 77
fi

T_NAME=serve-tls-test
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve/serve_lib.sh"

make_certs

# mock_in_flight URL: llmux-mock's requests in flight.
mock_in_flight() {
    curl -s -m 10 "$1/_mock/stats" |
        "$PY" -c 'import json,sys; print(json.load(sys.stdin)["in_flight"])' 2>&1
}

# wait_in_flight URL N: waits up to 10 s (by the clock: each poll takes
# time of its own) for the mock's in_flight to be N.
wait_in_flight() {
    local end=$((SECONDS + 10))
    while [ $SECONDS -le $end ]; do
        [ "$(mock_in_flight "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# words N: "w1 w2 ... wN", a prompt the mock echoes one word a chunk.
words() {
    local i out=
    for i in $(seq 1 "$1"); do out+="w$i "; done
    echo "${out% }"
}

start_mock --quiet --chunk-delay 200
SLOW_URL=$MOCK_URL
SLOW="base_url=$MOCK_URL/v1;api_key=sk-test"
start_mock --quiet
UP="base_url=$MOCK_URL/v1;api_key=sk-test"
routes="routes:
  fast: \"openai/gpt-4o-mini;$UP\"
  slow: \"openai/gpt-4o-mini;$SLOW\""
# a short drain at SIGTERM: the stream still running then gets the
# shutting_down error event (shutdown_check)
drain="limits: {drain_timeout: 1s}"
printf '%s\ntls:\n  cert: %s\n  key: %s\n%s\n' "$routes" "$TMP/srv.pem" \
    "$TMP/srv.key" "$drain" >"$TMP/tls.yaml"
printf '%s\n%s\n' "$routes" "$drain" >"$TMP/plain.yaml"

SCHEME=https start_serve "$TMP/tls.yaml"
TLS_PID=$SPID
TLS_URL=$SURL
if grep -qx "llmux serve: listening on $SURL" "$TMP/serve.err"; then
    ok "listening line says https://"
else
    bad "listening line says https://" "stderr: $(cat "$TMP/serve.err")"
fi

# ---- HTTPS: HTTP/1.1 and HTTP/2 through ALPN -------------------------------
CURL_EXTRA=(--cacert "$TMP/ca.pem" --http1.1)
http health GET /health
expect "HTTPS + HTTP/1.1: GET /health" 200 'j["status"]' ok
[ "$VERSION" = 1.1 ] && ok "HTTPS + HTTP/1.1: version 1.1" ||
    bad "HTTPS + HTTP/1.1: version 1.1" "version '$VERSION'"

CURL_EXTRA=(--cacert "$TMP/ca.pem" --http2)
http health GET /health
expect "HTTPS + HTTP/2: GET /health" 200 'j["status"]' ok
[ "$VERSION" = 2 ] && ok "HTTPS + HTTP/2: ALPN picks h2" ||
    bad "HTTPS + HTTP/2: ALPN picks h2" "version '$VERSION'"

http models GET /v1/models
expect "h2: GET /v1/models" 200 \
    '",".join(m["id"] for m in j["data"])' "fast,slow"

chat '{"model":"fast","messages":[{"role":"user","content":"hello h2"}]}'
expect "h2: chat completion" 200 \
    '"%s|%s" % (j["choices"][0]["message"]["content"], j["choices"][0]["finish_reason"])' \
    "Mock reply to: hello h2|stop"
[ "$VERSION" = 2 ] && ok "h2: the chat went over HTTP/2" ||
    bad "h2: the chat went over HTTP/2" "version '$VERSION'"

chat '{"model":"nosuch","messages":[{"role":"user","content":"x"}]}'
expect_error "h2: unknown model is a JSON 404" 404 model_not_found

stream_check "h2: stream, SSE chunks then [DONE]" "$TLS_URL" 2 \
    --http2 --cacert "$TMP/ca.pem"

# ---- many streams multiplexed on one h2 connection --------------------
# (no --parallel-immediate: that makes curl open a connection per transfer)
N=10
curl -s -m 10 -X POST "$SLOW_URL/_mock/reset" >/dev/null
printf '%s' "{\"model\":\"slow\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"$(words 8)\"}]}" >"$TMP/req.json"
: >"$TMP/par.cfg"
for i in $(seq 1 $N); do
    printf 'url = "%s/v1/chat/completions"\noutput = "%s/par%d.sse"\n' \
        "$TLS_URL" "$TMP" "$i" >>"$TMP/par.cfg"
done
curl -s -S --no-progress-meter -m 60 --http2 --cacert "$TMP/ca.pem" --parallel --parallel-max $N \
    -K "$TMP/par.cfg" --data-binary "@$TMP/req.json" \
    -w '%{http_version} %{local_port}\n' >"$TMP/par.out" 2>"$TMP/err"
want="Mock reply to: $(words 8)|chat.completion.chunk|[DONE]"
complete=0
for i in $(seq 1 $N); do
    [ "$(sse_summary "$TMP/par$i.sse")" = "$want" ] && complete=$((complete + 1))
done
conns=$(sort -u "$TMP/par.out" | wc -l)
maxc=$(curl -s -m 10 "$SLOW_URL/_mock/stats" |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["max_concurrent"])' 2>&1)
if [ "$complete" != $N ]; then
    bad "h2: $N streams at once" "$complete complete" "$(cat "$TMP/par.out")"
elif [ "$conns" != 1 ] || ! grep -q '^2 ' "$TMP/par.out"; then
    bad "h2: $N streams on one connection" "$(sort "$TMP/par.out" | uniq -c)"
elif [ "$maxc" -lt 2 ] 2>/dev/null || [ "$maxc" = "" ]; then
    bad "h2: $N streams multiplexed" "upstream max_concurrent '$maxc'"
else
    ok "h2: $N streams multiplexed on one connection, all complete (upstream concurrency $maxc)"
fi

# ---- a client resetting one stream mid-way -----------------------------
# Two streams on one connection: the first (400 words, 80 s upstream) is
# cut after 3 s (curl resets the stream, RST_STREAM, and keeps the
# connection for the second, 40 words). Its upstream request must be
# canceled: the mock's in_flight is back to 0 long before 80 s.
curl -s -m 10 -X POST "$SLOW_URL/_mock/reset" >/dev/null
printf '%s' "{\"model\":\"slow\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"$(words 400)\"}]}" >"$TMP/long.json"
printf '%s' "{\"model\":\"slow\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"$(words 40)\"}]}" >"$TMP/req.json"
curl -s --no-progress-meter --http2 --cacert "$TMP/ca.pem" --parallel \
    -m 3 -o "$TMP/cut.sse" -w 'cut %{local_port}\n' \
    --data-binary "@$TMP/long.json" "$TLS_URL/v1/chat/completions" \
    --next -m 60 -o "$TMP/full.sse" -w 'full %{local_port}\n' \
    --http2 --cacert "$TMP/ca.pem" \
    --data-binary "@$TMP/req.json" "$TLS_URL/v1/chat/completions" \
    >"$TMP/rst.out" 2>"$TMP/err"
ports=$(awk '{print $2}' "$TMP/rst.out" | sort -u | wc -l)
if ! grep -q '^data: {' "$TMP/cut.sse" || grep -q 'DONE' "$TMP/cut.sse"; then
    bad "h2: reset stream got part of it" "$(head -c 300 "$TMP/cut.sse")"
elif [ "$(sse_summary "$TMP/full.sse")" != "Mock reply to: $(words 40)|chat.completion.chunk|[DONE]" ]; then
    bad "h2: the other stream on the connection completes" \
        "$(sse_summary "$TMP/full.sse" | head -c 300)"
elif [ "$ports" != 1 ]; then
    bad "h2: both streams on one connection" "$(cat "$TMP/rst.out")"
elif ! wait_in_flight "$SLOW_URL" 0; then
    bad "h2: RST_STREAM cancels upstream" \
        "in_flight still $(mock_in_flight "$SLOW_URL")"
else
    ok "h2: RST_STREAM mid-stream cancels upstream, the connection goes on"
fi

# ---- a slow reader over h2 ---------------------------------------------
# 20000 chunks (4 MB of events) from a fast upstream to a client reading
# at 1 MB/s: h2o's proceed comes late, the gateway pauses the upstream
# past 1 MiB waiting and resumes it as the client drains; every chunk
# arrives, in order, then [DONE].
"$PY" -c 'import json; print(json.dumps({"model": "fast", "stream": True,
    "messages": [{"role": "user", "content": " ".join("w%d" % i for i in range(20000))}]}))' >"$TMP/big.json"
out=$(curl -s -S -m 120 --http2 --cacert "$TMP/ca.pem" --limit-rate 1M \
    -o "$TMP/big.sse" -w '%{http_code} %{http_version}' \
    --data-binary "@$TMP/big.json" "$TLS_URL/v1/chat/completions" 2>"$TMP/err")
want="Mock reply to: $("$PY" -c 'print(" ".join("w%d" % i for i in range(20000)))')|chat.completion.chunk|[DONE]"
if [ "$out" != "200 2" ]; then
    bad "h2: a slow reader gets the whole stream" "status and version '$out'"
elif [ "$(sse_summary "$TMP/big.sse")" != "$want" ]; then
    bad "h2: a slow reader gets the whole stream" \
        "got $(grep -c '^data: {' "$TMP/big.sse") events, ends: $(tail -c 200 "$TMP/big.sse")"
else
    ok "h2: a slow reader gets all 20000 chunks in order, then [DONE]"
fi

# ---- TLS checks -----------------------------------------------------------
for ca in none other; do
    args=()
    [ $ca = other ] && args=(--cacert "$TMP/other.pem")
    run curl -s -S -m 20 "${args[@]}" "$TLS_URL/health"
    if [ "$RC" = 60 ]; then
        ok "client without the CA ($ca) fails verification"
    else
        bad "client without the CA ($ca) fails verification" "curl exit $RC"
    fi
done
run curl -s -S -m 20 --cacert "$TMP/ca.pem" --tls-max 1.2 "$TLS_URL/health"
[ "$RC" = 0 ] && ok "TLS 1.2 accepted by default" ||
    bad "TLS 1.2 accepted by default" "curl exit $RC"

# ---- cleartext HTTP/2 -----------------------------------------------------
start_serve "$TMP/plain.yaml"
PLAIN_PID=$SPID
CURL_EXTRA=(--http2-prior-knowledge)
http health GET /health
expect "h2c, prior knowledge: GET /health" 200 'j["status"]' ok
[ "$VERSION" = 2 ] && ok "h2c, prior knowledge: version 2" ||
    bad "h2c, prior knowledge: version 2" "version '$VERSION'"
CURL_EXTRA=(--http2)
chat '{"model":"fast","messages":[{"role":"user","content":"upgrade"}]}'
expect "h2c, Upgrade: chat completion" 200 \
    'j["choices"][0]["message"]["content"]' "Mock reply to: upgrade"
[ "$VERSION" = 2 ] && ok "h2c, Upgrade: h2c: version 2" ||
    bad "h2c, Upgrade: h2c: version 2" "version '$VERSION'"
stream_check "h2c: stream, SSE chunks then [DONE]" "$SURL" 2 \
    --http2-prior-knowledge
CURL_EXTRA=()

# ---- SIGTERM with h2 connections open --------------------------------------
# shutdown_check NAME PID URL H2_IDLE-ARGS...: an idle h2 connection
# (h2_idle.py) and an h2 stream in flight; SIGTERM: the idle connection
# gets h2o's graceful GOAWAY and is closed, the stream ends with an error
# event once limits.drain_timeout passes, and the server exits 0 (under
# ASan: no leak, no assertion).
shutdown_check() {
    local name=$1 pid=$2 url=$3 ipid cpid rc
    shift 3
    "$PY" "$H2_IDLE" "$@" >"$TMP/idle.out" 2>&1 &
    ipid=$!
    curl -s -N -m 60 "${CURL_EXTRA[@]}" --data-binary "@$TMP/long.json" \
        -o "$TMP/term.sse" "$url/v1/chat/completions" 2>/dev/null &
    cpid=$!
    for _ in $(seq 1 150); do
        grep -q '^open' "$TMP/idle.out" && grep -q '^data: {' "$TMP/term.sse" \
            2>/dev/null && break
        sleep 0.1
    done
    kill -TERM "$pid"
    wait "$pid"
    rc=$?
    wait "$ipid" "$cpid"
    if [ "$rc" != 0 ]; then
        bad "$name: exit 0" "exit status $rc" "stderr: $(cat "$TMP/serve.err")"
    elif ! grep -q '^goaway 0 graceful shutdown' "$TMP/idle.out" ||
        ! grep -q '^closed' "$TMP/idle.out"; then
        bad "$name: idle h2 connection gets GOAWAY" "$(cat "$TMP/idle.out")"
    elif ! grep -q '"code":"shutting_down"' "$TMP/term.sse"; then
        bad "$name: h2 stream ends with an error event" \
            "$(tail -c 300 "$TMP/term.sse")"
    else
        ok "$name: GOAWAY to idle h2, error event to the stream, exit 0"
    fi
}
CURL_EXTRA=(--http2-prior-knowledge)
shutdown_check "SIGTERM (h2c)" "$PLAIN_PID" "$SURL" 127.0.0.1 "$SPORT"
CURL_EXTRA=(--http2 --cacert "$TMP/ca.pem")
shutdown_check "SIGTERM (h2 over TLS)" "$TLS_PID" "$TLS_URL" 127.0.0.1 \
    "${TLS_URL##*:}" "$TMP/ca.pem"
SERVE_PIDS=()

# ---- tls.min_version: TLS1.3 ------------------------------------------
printf '%s\ntls: {cert: %s, key: %s, min_version: TLS1.3}\n' "$routes" \
    "$TMP/srv.pem" "$TMP/srv.key" >"$TMP/tls13.yaml"
SCHEME=https start_serve "$TMP/tls13.yaml"
run curl -s -S -m 20 --cacert "$TMP/ca.pem" --tls-max 1.2 "$SURL/health"
if [ "$RC" = 35 ]; then
    ok "min_version TLS1.3 refuses a TLS 1.2 client"
else
    bad "min_version TLS1.3 refuses a TLS 1.2 client" "curl exit $RC"
fi
CURL_EXTRA=(--cacert "$TMP/ca.pem")
http health GET /health
expect "min_version TLS1.3 serves TLS 1.3" 200 'j["status"]' ok

# ---- bad tls: settings, refused at start ------------------------------
tls_bad() { # tls_bad NAME TLS-YAML WANT-REGEX
    printf '%s\n%s\n' "$routes" "$2" >"$TMP/bad.yaml"
    bad_config "$1" "$3"
}
tls_bad "tls: a missing cert file names tls.cert" \
    "tls: {cert: $TMP/nosuch.pem, key: $TMP/srv.key}" \
    "^llmux serve: .*bad\.yaml:4: key 'tls\.cert': cannot read .*nosuch\.pem"
tls_bad "tls: a missing key file names tls.key" \
    "tls:
  cert: $TMP/srv.pem
  key: $TMP/nosuch.key" \
    "^llmux serve: .*bad\.yaml:6: key 'tls\.key': cannot read"
tls_bad "tls: a key for another certificate names tls.key" \
    "tls:
  cert: $TMP/srv.pem
  key: $TMP/other.key" \
    "^llmux serve: .*bad\.yaml:6: key 'tls\.key': .*does not match"
tls_bad "tls: a cert that is not PEM names tls.cert" \
    "tls: {cert: $TMP/ext, key: $TMP/srv.key}" \
    "^llmux serve: .*bad\.yaml:4: key 'tls\.cert': .*not a PEM"
tls_bad "tls: a key that is a certificate names tls.key" \
    "tls: {cert: $TMP/srv.pem, key: $TMP/srv.pem}" \
    "^llmux serve: .*bad\.yaml:4: key 'tls\.key': .*not an unencrypted PEM"
tls_bad "tls: no key" "tls: {cert: $TMP/srv.pem}" \
    "^llmux serve: .*bad\.yaml:4: key 'tls\.key': missing"
tls_bad "tls: an unknown key is refused" \
    "tls: {cert: $TMP/srv.pem, key: $TMP/srv.key, ciphers: ALL}" \
    "^llmux serve: .*bad\.yaml:4: key 'tls\.ciphers': unknown"
tls_bad "tls: a bad min_version" \
    "tls: {cert: $TMP/srv.pem, key: $TMP/srv.key, min_version: SSL3}" \
    "^llmux serve: .*bad\.yaml:4: key 'tls\.min_version': want TLS1\.2 or TLS1\.3"

summary
