#!/usr/bin/env bash
#
# tests/serve/test_serve_metrics.sh: llmux-serve's GET /metrics and JSON
# access log, in front of llmux-mock. After a known mix of requests (plain
# and streamed answers, a route name that needs escaping, an unknown model,
# an unreachable upstream, a fallback, an unknown path (and one of raw
# bytes, logged as printable ASCII), a body over
# limits.max_body, a reader leaving mid-stream), /metrics is parsed
# (check_metrics.py): the exposition format, histograms cumulative with
# _count matching, exact counter values (tokens as the answers reported
# them), requests in flight back to 0; the access log file holds one valid
# JSON line per request with the expected fields; the upstream key and
# the prompt appear in neither. Then the log.access settings: stderr (the
# default), off, a file that cannot be opened (exit 1, naming it), an
# unknown log key (exit 2).
#
# usage: test_serve_metrics.sh PATH/TO/llmux-serve PATH/TO/llmux-mock
# LLMUX_PLUGIN_PATH must name the directory holding the openai plugin.
# Exits 77 (skipped) without curl or python3.

set -u

SERVE=${1:?usage: test_serve_metrics.sh LLMUX_SERVE LLMUX_MOCK}
MOCK=${2:?usage: test_serve_metrics.sh LLMUX_SERVE LLMUX_MOCK}
PY=${PYTHON:-python3}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CHECK="$SRC/tests/serve/check_metrics.py"

T_NAME=serve-metrics
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve/serve_lib.sh"

# pycheck ARGS...: runs check_metrics.py; its "ok NAME" and "bad NAME"
# lines become checks (anything else, a traceback, fails).
pycheck() {
    local line
    while IFS= read -r line; do
        case "$line" in
        "ok "*) ok "${line#ok }" ;;
        "bad "*) bad "${line#bad }" ;;
        *) bad "check_metrics.py: $line" ;;
        esac
    done < <("$PY" "$CHECK" "$@" 2>&1)
}

# scrape: GET /metrics into $TMP/metrics.
scrape() {
    curl -s -S -m 20 -o "$TMP/metrics" "$SURL/metrics" 2>"$TMP/err"
}

# metric NAME [LABEL=VALUE...]: a sample's value in $TMP/metrics.
metric() {
    "$PY" "$CHECK" value "$TMP/metrics" "$@"
}

KEY=sk-mock-SECRET-4711
PROMPT=zebra-prompt-7
start_mock --quiet --chunk-delay 200
SLOW="base_url=$MOCK_URL/v1;api_key=$KEY"
start_mock --quiet
UP="base_url=$MOCK_URL/v1;api_key=$KEY"
DOWN="openai/gpt-4o-mini;base_url=http://127.0.0.1:1/v1;api_key=$KEY;max_retries=0"
cat >"$TMP/serve.yaml" <<EOF
routes:
  fast: "openai/gpt-4o-mini;$UP"
  'q"uo\\te': "openai/gpt-4o-mini;$UP"
  backup: ["$DOWN", "openai/gpt-4o-mini;$UP"]
  down: "$DOWN"
  slow: "openai/gpt-4o-mini;$SLOW"
limits: {max_body: 1KiB}
log:
  access: $TMP/access.log
EOF
start_serve "$TMP/serve.yaml"

# the mix; the tokens each answer reported add up in TOK_*
TOK_IN=0
TOK_OUT=0
add_usage() {
    TOK_IN=$((TOK_IN + $(jget 'j["usage"]["prompt_tokens"]')))
    TOK_OUT=$((TOK_OUT + $(jget 'j["usage"]["completion_tokens"]')))
}
chat "{\"model\":\"fast\",\"messages\":[{\"role\":\"user\",\"content\":\"hello $PROMPT\"}]}"
expect "fast: 200" 200 'j["object"]' chat.completion
add_usage
chat "{\"model\":\"fast\",\"messages\":[{\"role\":\"user\",\"content\":\"one two $PROMPT\"}]}"
expect "fast again: 200" 200 'j["object"]' chat.completion
add_usage
printf '%s' "{\"model\":\"fast\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"stream $PROMPT\"}]}" >"$TMP/req.json"
curl -s -S -N -m 20 -o "$TMP/sse" --data-binary "@$TMP/req.json" \
    "$SURL/v1/chat/completions" 2>"$TMP/err"
# the stream's usage, when its last chunk carries one
read -r SIN SOUT < <("$PY" -c 'import json,sys
ev = [json.loads(l[6:]) for l in open(sys.argv[1]).read().split("\n")
      if l.startswith("data: {")]
u = [e["usage"] for e in ev if e.get("usage")]
print(u[-1]["prompt_tokens"], u[-1]["completion_tokens"]) if u else print(0, 0)' "$TMP/sse")
if grep -q '^data: \[DONE\]' "$TMP/sse"; then
    ok "fast stream: [DONE]"
else
    bad "fast stream: [DONE]" "$(head -c 300 "$TMP/sse")"
fi
TOK_IN=$((TOK_IN + SIN))
TOK_OUT=$((TOK_OUT + SOUT))

chat "{\"model\":\"q\\\"uo\\\\te\",\"messages\":[{\"role\":\"user\",\"content\":\"x y $PROMPT\"}]}"
expect "a route name with a quote and a backslash: 200" 200 'j["object"]' chat.completion
Q_IN=$(jget 'j["usage"]["prompt_tokens"]')
chat "{\"model\":\"backup\",\"messages\":[{\"role\":\"user\",\"content\":\"$PROMPT\"}]}"
expect "backup: 200 through its fallback" 200 'j["object"]' chat.completion
B_OUT=$(jget 'j["usage"]["completion_tokens"]')
chat "{\"model\":\"down\",\"messages\":[{\"role\":\"user\",\"content\":\"$PROMPT\"}]}"
expect_error "down: 502" 502 LLMUX_ETRANSPORT
chat "{\"model\":\"nosuch\",\"messages\":[{\"role\":\"user\",\"content\":\"$PROMPT\"}]}"
expect_error "unknown model: 404" 404 model_not_found
http nothing GET "/v1/nothing?api_key=$KEY"
expect_error "unknown path: 404" 404 not_found
# raw bytes in the path: the log line stays valid JSON (printable ASCII)
printf 'GET /v1/\377"x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' |
    "$PY" -c 'import socket,sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(sys.stdin.buffer.read())
while s.recv(65536):
    pass' "$SPORT"
"$PY" -c 'import sys
sys.stdout.write("{\"model\":\"fast\",\"messages\":[{\"role\":\"user\",\"content\":\"" + "a" * 1500 + "\"}]}")' >"$TMP/big.json"
http big POST /v1/chat/completions "$TMP/big.json"
expect_error "body over limits.max_body: 413" 413 request_too_large
http models GET /v1/models
expect "models: 200" 200 'j["object"]' list
http health GET /health
expect "health: 200" 200 'j["status"]' ok
# a reader leaving mid-stream (a chunk every 200 ms, 30 words): the
# gateway cancels upstream, and the call ends
leave_stream "slow stream: the reader left after part of it" \
    "{\"model\":\"slow\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"$(printf 'w%s ' $(seq 1 30))\"}]}" 2

# every call ends (the slow one once its upstream is canceled): wait for
# nothing in flight, here and in the client
settled=
for _ in $(seq 1 200); do
    scrape
    if [ "$(metric llmux_serve_requests_in_flight)" = 0 ] &&
        [ "$(metric llmux_client_in_flight)" = 0 ] &&
        [ "$(metric llmux_client_canceled_total)" = 1 ]; then
        settled=1
        break
    fi
    sleep 0.1
done
if [ -n "$settled" ]; then
    ok "requests in flight back to 0, the left stream canceled upstream"
else
    bad "requests in flight back to 0" "$(grep -E 'in_flight|canceled' "$TMP/metrics")"
fi

C=/v1/chat/completions
cat >"$TMP/expect.json" <<EOF
{"samples": [
 ["llmux_serve_requests_total", {"endpoint": "$C", "route": "fast", "provider": "openai", "status": "200"}, 3],
 ["llmux_serve_requests_total", {"endpoint": "$C", "route": "q\"uo\\\\te", "provider": "openai", "status": "200"}, 1],
 ["llmux_serve_requests_total", {"endpoint": "$C", "route": "backup", "provider": "openai", "status": "200"}, 1],
 ["llmux_serve_requests_total", {"endpoint": "$C", "route": "down", "provider": "openai", "status": "502"}, 1],
 ["llmux_serve_requests_total", {"endpoint": "$C", "route": "slow", "provider": "openai", "status": "200"}, 1],
 ["llmux_serve_requests_total", {"endpoint": "$C", "route": "", "provider": "", "status": "404"}, 1],
 ["llmux_serve_requests_total", {"endpoint": "$C", "route": "", "provider": "", "status": "413"}, 1],
 ["llmux_serve_requests_total", {"endpoint": "other", "route": "", "provider": "", "status": "404"}, 2],
 ["llmux_serve_requests_total", {"endpoint": "/v1/models", "route": "", "provider": "", "status": "200"}, 1],
 ["llmux_serve_requests_total", {"endpoint": "/health", "route": "", "provider": "", "status": "200"}, 1],
 ["llmux_serve_errors_total", {"type": "invalid_request_error", "code": "model_not_found"}, 1],
 ["llmux_serve_errors_total", {"type": "invalid_request_error", "code": "not_found"}, 2],
 ["llmux_serve_errors_total", {"type": "invalid_request_error", "code": "request_too_large"}, 1],
 ["llmux_serve_errors_total", {"type": "api_error", "code": "LLMUX_ETRANSPORT"}, 1],
 ["llmux_serve_errors_total", {"type": "api_error", "code": "LLMUX_ECANCELED"}, 1],
 ["llmux_serve_tokens_total", {"route": "fast", "provider": "openai", "type": "prompt"}, $TOK_IN],
 ["llmux_serve_tokens_total", {"route": "fast", "provider": "openai", "type": "completion"}, $TOK_OUT],
 ["llmux_serve_tokens_total", {"route": "q\"uo\\\\te", "provider": "openai", "type": "prompt"}, $Q_IN],
 ["llmux_serve_tokens_total", {"route": "backup", "provider": "openai", "type": "completion"}, $B_OUT],
 ["llmux_serve_fallbacks_total", {"route": "backup", "provider": "openai"}, 1],
 ["llmux_serve_request_duration_seconds_count", {"endpoint": "$C", "route": "fast"}, 3],
 ["llmux_serve_time_to_first_token_seconds_count", {"route": "fast"}, 1],
 ["llmux_serve_time_to_first_token_seconds_count", {"route": "slow"}, 1],
 ["llmux_serve_rejected_total", {"limit": "max_body"}, 1],
 ["llmux_serve_requests_in_flight", {}, 0],
 ["llmux_client_requests_total", {}, 7],
 ["llmux_client_succeeded_total", {}, 5],
 ["llmux_client_failed_total", {}, 1],
 ["llmux_client_canceled_total", {}, 1],
 ["llmux_client_queued", {}, 0]
],
"only": [
 ["llmux_serve_requests_total", {"endpoint": "$C"}, [
  {"endpoint": "$C", "route": "fast", "provider": "openai", "status": "200"},
  {"endpoint": "$C", "route": "q\"uo\\\\te", "provider": "openai", "status": "200"},
  {"endpoint": "$C", "route": "backup", "provider": "openai", "status": "200"},
  {"endpoint": "$C", "route": "down", "provider": "openai", "status": "502"},
  {"endpoint": "$C", "route": "slow", "provider": "openai", "status": "200"},
  {"endpoint": "$C", "route": "", "provider": "", "status": "404"},
  {"endpoint": "$C", "route": "", "provider": "", "status": "413"}]],
 ["llmux_serve_fallbacks_total", {}, [{"route": "backup", "provider": "openai"}]],
 ["llmux_serve_errors_total", {}, [
  {"type": "invalid_request_error", "code": "model_not_found"},
  {"type": "invalid_request_error", "code": "not_found"},
  {"type": "invalid_request_error", "code": "request_too_large"},
  {"type": "api_error", "code": "LLMUX_ETRANSPORT"},
  {"type": "api_error", "code": "LLMUX_ECANCELED"}]]
]}
EOF
pycheck metrics "$TMP/metrics" "$TMP/expect.json"
if grep -q '^llmux_serve_requests_total{.*route="q\\"uo\\\\te"' "$TMP/metrics"; then
    ok "metrics: a label value's quote and backslash are escaped"
else
    bad "metrics: a label value's quote and backslash are escaped" \
        "$(grep 'uo' "$TMP/metrics" | head -3)"
fi
out=$(curl -s -S -m 20 -o /dev/null -w '%{http_code} %{content_type}' \
    "$SURL/metrics" 2>"$TMP/err")
if [ "$out" = "200 text/plain; version=0.0.4; charset=utf-8" ]; then
    ok "metrics: Prometheus text 0.0.4"
else
    bad "metrics: Prometheus text 0.0.4" "got '$out'"
fi
http metrics POST /metrics
expect_error "metrics: POST is a JSON 405" 405 method_not_allowed

# the log: 13 requests, less /health; the /metrics scrapes are not logged
cat >"$TMP/expect.json" <<EOF
{"lines": 12, "match": [
 [{"path": "/v1/%FF\"x"}, {"status": 404, "method": "GET"}],
 [{"route": "backup"}, {"status": 200, "provider": "openai", "model": "gpt-4o-mini", "fallback": 1, "error": null, "key": "-", "tokens_out": $B_OUT}],
 [{"route": "down"}, {"status": 502, "provider": "openai", "model": "gpt-4o-mini", "fallback": null, "error": "LLMUX_ETRANSPORT", "retries": 0, "tokens_in": null}],
 [{"route": "slow"}, {"status": 200, "ttft_ms": "<number>", "error": "LLMUX_ECANCELED"}],
 [{"route": "fast", "ttft_ms": "<number>"}, {"status": 200, "method": "POST", "path": "$C"}],
 [{"status": 404, "path": "$C"}, {"route": null, "provider": null, "model": null, "error": "model_not_found", "retries": null}],
 [{"path": "/v1/nothing"}, {"method": "GET", "status": 404, "error": "not_found"}],
 [{"status": 413}, {"error": "request_too_large", "route": null}],
 [{"path": "/v1/models"}, {"status": 200, "error": null, "ttft_ms": null}]
]}
EOF
pycheck log "$TMP/access.log" "$TMP/expect.json"
for f in access.log metrics serve.err; do
    if grep -q -e "$KEY" -e "$PROMPT" "$TMP/$f"; then
        bad "$f holds neither the upstream key nor the prompt" \
            "$(grep -e "$KEY" -e "$PROMPT" "$TMP/$f" | head -c 300)"
    else
        ok "$f holds neither the upstream key nor the prompt"
    fi
done

kill -TERM "$SPID"
wait "$SPID"
RC=$?
if [ "$RC" -eq 0 ]; then ok "SIGTERM: exit 0"; else bad "SIGTERM: exit 0" "exit $RC"; fi
SERVE_PIDS=()

# log.access: stderr by default, off, and errors
printf 'routes:\n  fast: "openai/gpt-4o-mini;%s"\n' "$UP" >"$TMP/plain.yaml"
start_serve "$TMP/plain.yaml"
http models GET /v1/models
kill -TERM "$SPID"
wait "$SPID"
SERVE_PIDS=()
if grep '^{' "$TMP/serve.err" >"$TMP/access.log" &&
    [ "$(wc -l <"$TMP/access.log")" -eq 1 ] &&
    grep -q '"path":"/v1/models"' "$TMP/access.log"; then
    ok "log: stderr by default, one JSON line"
else
    bad "log: stderr by default, one JSON line" "$(cat "$TMP/serve.err")"
fi
printf 'log: {access: "off"}\n' >>"$TMP/plain.yaml"
start_serve "$TMP/plain.yaml"
http models GET /v1/models
kill -TERM "$SPID"
wait "$SPID"
SERVE_PIDS=()
if [ "$CODE" = 200 ] && ! grep -q '^{' "$TMP/serve.err"; then
    ok "log: access: off writes nothing"
else
    bad "log: access: off writes nothing" "$CODE $(cat "$TMP/serve.err")"
fi
printf 'routes:\n  fast: openai/gpt-4o-mini\nlog: {access: %s/no/such/dir/a.log}\n' \
    "$TMP" >"$TMP/bad.yaml"
run timeout 10 "$SERVE" --config "$TMP/bad.yaml" --listen 127.0.0.1:0
if [ "$RC" -eq 1 ] && grep -q "no/such/dir/a.log (log.access)" "$TMP/err"; then
    ok "log: a file that cannot be opened: exit 1, naming it"
else
    bad "log: a file that cannot be opened: exit 1, naming it" "exit $RC"
fi
printf 'routes:\n  fast: openai/gpt-4o-mini\nlog:\n  acess: stderr\n' >"$TMP/bad.yaml"
run timeout 10 "$SERVE" --config "$TMP/bad.yaml" --listen 127.0.0.1:0
if [ "$RC" -eq 2 ] && grep -q "bad\.yaml:4: key 'log.acess': unknown" "$TMP/err"; then
    ok "log: an unknown key: exit 2, naming line and key"
else
    bad "log: an unknown key: exit 2, naming line and key" "exit $RC"
fi

summary
