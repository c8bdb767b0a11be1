#!/usr/bin/env bash
#
# tests/fleet/test_fleet_serve_cache.sh: the gateway's response cache in
# Redis (limits.cache_backend: redis). Two llmux-serve replicas in front of
# one llmux-mock and one redis-server: an answer one replica kept is a hit
# on the other (x-llmux-cache, the mock's request count unchanged, the
# same body), a stream too (replayed as SSE); /metrics counts no backend
# error; two llmux chat processes share it too; Redis killed: still answered (a miss), the error counted; bad
# cache_backend entries are refused naming the key.
#
# usage: test_fleet_serve_cache.sh PATH/TO/llmux-serve PATH/TO/llmux-mock
#        [PATH/TO/llmux]
# LLMUX_PLUGIN_PATH must name the directory holding the openai plugin.
# Exits 77 (skipped) without redis-server, curl or python3.

set -u

SERVE=${1:?usage: test_fleet_serve_cache.sh LLMUX_SERVE LLMUX_MOCK}
MOCK=${2:?usage: test_fleet_serve_cache.sh LLMUX_SERVE LLMUX_MOCK [LLMUX]}
CLI=${3:-}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
T_NAME=fleet-serve-cache
if ! command -v redis-server >/dev/null; then
    echo "skip: redis-server not found (Debian: apt-get install redis-server)"
    exit 77
fi
# shellcheck source=../serve/serve_lib.sh
. "$SRC/tests/serve/serve_lib.sh"
# shellcheck source=fleet_lib.sh
. "$SRC/tests/fleet/fleet_lib.sh"
CHECK="$SRC/tests/serve/check_metrics.py"

# metric URL NAME: a sample's value in a fresh scrape of URL's /metrics.
metric() {
    curl -s -S -m 20 -o "$TMP/metrics" "$1/metrics" 2>"$TMP/err"
    "$PY" "$CHECK" value "$TMP/metrics" "$2"
}
# sse URL N: a stream:true chat on URL into $TMP/sseN, its headers in
# $TMP/headers.
sse() {
    printf '%s' "$SBODY" >"$TMP/sreq.json"
    curl -s -S -N -m 20 -o "$TMP/sse$2" -D "$TMP/headers" \
        --data-binary "@$TMP/sreq.json" "$1/v1/chat/completions" 2>"$TMP/err"
}

# wait_keys N [PREFIX]: until N entries are under PREFIX:cache: (gwc by
# default; a replica sends its store after the answer), at most 10 s;
# without redis-cli, a second.
wait_keys() {
    local i
    if ! command -v redis-cli >/dev/null; then
        sleep 1
        return
    fi
    for i in $(seq 100); do
        [ "$(redis-cli -s "$TMP/r.sock" --scan --pattern "${2:-gwc}:cache:*" |
            grep -c .)" -ge "$1" ] && return
        sleep 0.1
    done
}

start_redis
start_mock --quiet
cat >"$TMP/gw.yaml" <<EOC
routes:
  cached:
    models: "openai/gpt-4o-mini;base_url=$MOCK_URL/v1;api_key=sk-upstream-secret"
    cache: 5m
limits:
  cache_backend: redis
redis:
  url: unix://$TMP/r.sock
  prefix: gwc
EOC
start_serve "$TMP/gw.yaml" "$TMP/a.err"
A_URL=$SURL A_PID=$SPID
start_serve "$TMP/gw.yaml" "$TMP/b.err"
B_URL=$SURL B_PID=$SPID
BODY='{"model":"cached","messages":[{"role":"user","content":"share me"}]}'
SBODY='{"model":"cached","stream":true,"messages":[{"role":"user","content":"stream me"}]}'

SURL=$A_URL chat "$BODY"
expect "replica A answers" 200 'j["choices"][0]["message"]["content"]' \
    "Mock reply to: share me"
check "replica A: x-llmux-cache miss" "$(cache_header)" miss
cp "$TMP/body" "$TMP/first.json"
wait_keys 1
SURL=$B_URL chat "$BODY"
expect "replica B answers" 200 'j["choices"][0]["message"]["content"]' \
    "Mock reply to: share me"
check "replica B: x-llmux-cache hit" "$(cache_header)" hit
check "replica B's hit did not reach the mock" "$(mock_requests)" 1
if cmp -s "$TMP/first.json" "$TMP/body"; then
    ok "replica B's hit is replica A's answer, byte for byte"
else
    bad "replica B's hit is replica A's answer" \
        "A: $(head -c 300 "$TMP/first.json")" "B: $(head -c 300 "$TMP/body")"
fi

sse "$A_URL" 1
check "stream on replica A: miss" "$(cache_header)" miss
wait_keys 2
sse "$B_URL" 2
check "stream on replica B: hit" "$(cache_header)" hit
check "the stream is answered" "$(sse_summary "$TMP/sse1")" \
    "Mock reply to: stream me|chat.completion.chunk|[DONE]"
check "replica B replays the same stream" "$(sse_summary "$TMP/sse2")" \
    "$(sse_summary "$TMP/sse1")"
check "... with as many events" \
    "$(grep -c '^data: ' "$TMP/sse2")" "$(grep -c '^data: ' "$TMP/sse1")"
check "the replay did not reach the mock" "$(mock_requests)" 2

keys=$(redis-cli -s "$TMP/r.sock" --scan --pattern 'gwc:cache:*' 2>/dev/null)
if [ -z "$keys" ] && ! command -v redis-cli >/dev/null; then
    skip "the Redis keys (no redis-cli)"
elif [ "$(echo "$keys" | grep -c '^gwc:cache:[0-9a-f]\{64\}$')" = 2 ]; then
    ok "two entries under gwc:cache:<SHA-256>"
else
    bad "the Redis keys" "got: $keys"
fi
check "/metrics on B: llmux_cache_hits_total" \
    "$(metric "$B_URL" llmux_cache_hits_total)" 2
check "/metrics on B: llmux_cache_backend_errors_total" \
    "$(metric "$B_URL" llmux_cache_backend_errors_total)" 0

# the CLI: two processes, the second answered from what the first kept
if [ -n "$CLI" ]; then
    SPEC="openai/gpt-4o-mini;base_url=$MOCK_URL/v1;api_key=sk-upstream-secret;cache=60;cache_backend=unix://$TMP/r.sock;limits_prefix=cli"
    before=$(mock_requests)
    "$CLI" chat -v -m "$SPEC" "from the CLI" >"$TMP/cli1" 2>"$TMP/cli1.err"
    wait_keys 1 cli
    "$CLI" chat -v -m "$SPEC" "from the CLI" >"$TMP/cli2" 2>"$TMP/cli2.err"
    if grep -q "answered from the response cache" "$TMP/cli2.err" &&
        ! grep -q "answered from the response cache" "$TMP/cli1.err" &&
        cmp -s "$TMP/cli1" "$TMP/cli2" && [ -s "$TMP/cli1" ]; then
        ok "llmux chat: a second process is answered from Redis"
    else
        bad "llmux chat: a second process is answered from Redis" \
            "first: $(cat "$TMP/cli1" "$TMP/cli1.err")" \
            "second: $(cat "$TMP/cli2" "$TMP/cli2.err")"
    fi
    check "... without asking the provider" "$(mock_requests)" $((before + 1))
else
    skip "llmux chat sharing the cache (no CLI given)"
fi

# Redis gone: answered all the same, a miss, counted
stop_redis
sleep 0.2
t0=$(date +%s%N)
SURL=$B_URL chat "$BODY"
ms=$((($(date +%s%N) - t0) / 1000000))
expect "Redis down: still answered" 200 \
    'j["choices"][0]["message"]["content"]' "Mock reply to: share me"
check "Redis down: x-llmux-cache miss" "$(cache_header)" miss
if [ "$ms" -lt 3000 ]; then
    ok "... at once ($ms ms)"
else
    bad "... at once" "$ms ms"
fi
errors=$(metric "$B_URL" llmux_cache_backend_errors_total)
if [ "$errors" -ge 1 ] 2>/dev/null; then
    ok "/metrics counts the cache's Redis failures ($errors)"
else
    bad "/metrics counts the cache's Redis failures" "got '$errors'"
fi
end_replicas sk-upstream

# bad cache_backend entries
printf 'routes:\n  fast: "openai/gpt-4o-mini"\nlimits:\n  cache_backend: redis\n' \
    >"$TMP/bad.yaml"
bad_config "cache_backend: redis without redis:" \
    "key 'limits\.cache_backend': redis wants the redis: entry"
printf 'routes:\n  fast: "openai/gpt-4o-mini"\nlimits:\n  cache_backend: memcached\n' \
    >"$TMP/bad.yaml"
bad_config "cache_backend: an unknown store" \
    "bad\.yaml:4: key 'limits\.cache_backend': want lru .* or redis"

summary
