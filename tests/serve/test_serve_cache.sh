#!/usr/bin/env bash
#
# tests/serve/test_serve_cache.sh: llmux-serve's response cache, in front
# of llmux-mock. A route with `cache:` answers the second identical
# request from the cache (the mock's request count unchanged, x-llmux-cache
# hit, the same answer), a stream is replayed as SSE with the same text
# (x-llmux-cache miss, then hit);
# a route without it, a changed parameter and a client's Cache-Control:
# no-cache go to the provider; /metrics counts hits, misses and stores;
# after a SIGHUP reload that turns the route's cache off, the route asks
# the provider again; hits charge no virtual key's tpm; limits'
# cache_max_entries bounds it (a reload says a resize needs a restart). A
# bad cache: value is refused naming it.
#
# usage: test_serve_cache.sh PATH/TO/llmux-serve PATH/TO/llmux-mock
# LLMUX_PLUGIN_PATH must name the directory holding the openai plugin.
# Exits 77 (skipped) without curl or python3.

set -u

SERVE=${1:?usage: test_serve_cache.sh LLMUX_SERVE LLMUX_MOCK}
MOCK=${2:?usage: test_serve_cache.sh LLMUX_SERVE LLMUX_MOCK}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CHECK="$SRC/tests/serve/check_metrics.py"

T_NAME=serve-cache
# shellcheck source=serve_lib.sh
. "$SRC/tests/serve/serve_lib.sh"

start_mock --quiet
UP="base_url=$MOCK_URL/v1;api_key=sk-mock-cache-key"

# metric NAME: a sample's value in a fresh scrape of /metrics.
metric() {
    curl -s -S -m 20 -o "$TMP/metrics" "$SURL/metrics" 2>"$TMP/err"
    "$PY" "$CHECK" value "$TMP/metrics" "$1"
}

write_config() { # write_config CACHE-OF-ROUTE-cached
    cat >"$TMP/gw.yaml" <<YAML
routes:
  cached:
    models: openai/gpt-4o-mini;$UP
    cache: $1
  plain: openai/gpt-4o-mini;$UP
YAML
}
write_config 5m
start_serve "$TMP/gw.yaml"

BODY='{"model":"cached","messages":[{"role":"user","content":"cache me"}]}'
chat "$BODY"
expect "first request answered" 200 'j["choices"][0]["message"]["content"]' \
    "Mock reply to: cache me"
cp "$TMP/body" "$TMP/first.json"
USED=$(jget 'j["usage"]["completion_tokens"]')
check "first request: x-llmux-cache miss" "$(cache_header)" miss
check "first request reached the mock" "$(mock_requests)" 1
tokens() { # the completion tokens /metrics counted on route cached
    curl -s -S -m 20 -o "$TMP/metrics" "$SURL/metrics" 2>"$TMP/err"
    "$PY" "$CHECK" value "$TMP/metrics" llmux_serve_tokens_total \
        route=cached provider=openai type=completion
}
T1=$(tokens)
check "/metrics: the miss's tokens counted" "$T1" "$USED"
chat "$BODY"
expect "second request answered" 200 'j["choices"][0]["message"]["content"]' \
    "Mock reply to: cache me"
check "second request: x-llmux-cache hit" "$(cache_header)" hit
check "second request did not reach the mock" "$(mock_requests)" 1
check "/metrics: the hit counts no tokens again" "$(tokens)" "$T1"
if cmp -s "$TMP/first.json" "$TMP/body"; then
    ok "the hit is the same answer, byte for byte"
else
    bad "the hit is the same answer, byte for byte" \
        "first: $(head -c 300 "$TMP/first.json")" "hit: $(head -c 300 "$TMP/body")"
fi

chat '{"model":"cached","temperature":0.5,"messages":[{"role":"user","content":"cache me"}]}'
check "a changed parameter is a miss" "$(cache_header) $(mock_requests)" "miss 2"
CURL_EXTRA=(-H 'Cache-Control: no-cache')
chat "$BODY"
CURL_EXTRA=()
check "Cache-Control: no-cache bypasses the cache" \
    "$CODE $(cache_header) $(mock_requests)" "200 none 3"
chat '{"model":"plain","messages":[{"role":"user","content":"cache me"}]}'
chat '{"model":"plain","messages":[{"role":"user","content":"cache me"}]}'
check "a route without cache: is not cached" \
    "$CODE $(cache_header) $(mock_requests)" "200 none 5"

# streams: kept as their events, replayed as SSE
SBODY='{"model":"cached","stream":true,"messages":[{"role":"user","content":"stream me"}]}'
printf '%s' "$SBODY" >"$TMP/sreq.json"
for i in 1 2; do
    curl -s -S -N -m 20 -o "$TMP/sse$i" -D "$TMP/headers" \
        --data-binary "@$TMP/sreq.json" "$SURL/v1/chat/completions" 2>"$TMP/err"
    check "stream $i: x-llmux-cache" "$(cache_header)" \
        "$([ "$i" = 1 ] && echo miss || echo hit)"
done
check "a stream is answered" "$(sse_summary "$TMP/sse1")" \
    "Mock reply to: stream me|chat.completion.chunk|[DONE]"
check "its replay is the same stream" "$(sse_summary "$TMP/sse2")" \
    "$(sse_summary "$TMP/sse1")"
check "the replay did not reach the mock" "$(mock_requests)" 6
check "its replay has as many events" \
    "$(grep -c '^data: ' "$TMP/sse2")" "$(grep -c '^data: ' "$TMP/sse1")"

check "/metrics: llmux_cache_hits_total" "$(metric llmux_cache_hits_total)" 2
check "/metrics: llmux_cache_misses_total" "$(metric llmux_cache_misses_total)" 3
check "/metrics: llmux_cache_stores_total" "$(metric llmux_cache_stores_total)" 3

# reload: the route's cache turned off; the entry is not used any more
write_config no
kill -HUP "$SPID"
for _ in $(seq 1 100); do
    grep -q reloaded "$TMP/serve.err" && break
    sleep 0.1
done
chat "$BODY"
check "after a reload with cache: no, the route asks the provider" \
    "$CODE $(cache_header) $(mock_requests)" "200 none 7"
write_config 5m
kill -HUP "$SPID"
for _ in $(seq 1 100); do
    [ "$(grep -c reloaded "$TMP/serve.err")" -ge 2 ] && break
    sleep 0.1
done
chat "$BODY"
check "after a reload with cache: 5m, the kept answer is a hit again" \
    "$CODE $(cache_header) $(mock_requests)" "200 hit 7"
stop_serve "the gateway stops cleanly"

# a hit spends no tokens of a virtual key's tpm: with 60 a minute, a miss
# (max_tokens 20 reserved, its usage charged) leaves room for a few more
# reservations; charging each hit its usage refuses one within eight
cat >"$TMP/keys.yaml" <<YAML
routes:
  cached:
    models: openai/gpt-4o-mini;$UP
    cache: 5m
keys:
  - key: sk-team-cache-4711
    name: team
    tpm: 60
YAML
start_serve "$TMP/keys.yaml"
CURL_EXTRA=(-H 'Authorization: Bearer sk-team-cache-4711')
TBODY='{"model":"cached","max_tokens":20,"messages":[{"role":"user","content":"tpm"}]}'
codes=""
for _ in 1 2 3 4 5 6 7 8; do
    chat "$TBODY"
    codes="$codes$CODE $(cache_header);"
done
CURL_EXTRA=()
check "tpm: one miss, then hits that charge no tokens" "$codes" \
    "200 miss;200 hit;200 hit;200 hit;200 hit;200 hit;200 hit;200 hit;"
stop_serve "the gateway with keys stops cleanly"

# limits.cache_max_entries bounds the cache: with 1, a second answer
# evicts the first; a reload cannot resize it and says so
write_limits() { # write_limits ENTRIES
    cat >"$TMP/small.yaml" <<YAML
routes:
  cached:
    models: openai/gpt-4o-mini;$UP
    cache: 5m
limits:
  cache_max_entries: $1
YAML
}
write_limits 1
start_serve "$TMP/small.yaml"
N0=$(mock_requests)
for p in one two one; do
    chat '{"model":"cached","messages":[{"role":"user","content":"'$p'"}]}'
done
check "cache_max_entries 1: the second answer evicts the first" \
    "$CODE $(cache_header) $(($(mock_requests) - N0))" "200 miss 3"
write_limits 5
kill -HUP "$SPID"
for _ in $(seq 1 100); do
    grep -q "needs a restart" "$TMP/serve.err" && break
    sleep 0.1
done
if grep -q "cache_max_entries or cache_backend changed; that needs a restart" "$TMP/serve.err"; then
    ok "reload: a changed cache size is logged as needing a restart"
else
    bad "reload: a changed cache size is logged as needing a restart" \
        "$(tail -3 "$TMP/serve.err")"
fi
stop_serve "the gateway with a small cache stops cleanly"

cat >"$TMP/bad.yaml" <<YAML
routes:
  cached:
    models: openai/gpt-4o-mini;$UP
    cache: forever
YAML
bad_config "a bad cache: value is refused, naming it" "routes.cached.cache"
cat >"$TMP/bad.yaml" <<YAML
routes:
  cached:
    cache: 1m
YAML
bad_config "a route mapping without models is refused" "routes.cached.*models"
cat >"$TMP/bad.yaml" <<YAML
routes:
  cached:
    models: openai/gpt-4o-mini;$UP
    cache: 1m
    cache: no
YAML
bad_config "a route's key given twice is refused" \
    "key 'routes.cached.cache': given twice \\(first on line 4\\)"
printf 'routes: {a: openai/x}\nlimits: {cache_max_entries: 0}\n' >"$TMP/bad.yaml"
bad_config "limits.cache_max_entries 0 is refused, naming it" \
    "limits.cache_max_entries"

summary
