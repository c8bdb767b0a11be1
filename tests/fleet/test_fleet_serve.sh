#!/usr/bin/env bash
#
# tests/fleet/test_fleet_serve.sh: the gateway's redis: entry. Two
# llmux-serve replicas in front of one llmux-mock share a route's rpm
# through one redis-server (a request on one empties the bucket for the
# other); the Redis keys hold no API key; Redis killed: fallback closed
# answers 503 at once, counted in /metrics; restarted: served again;
# SIGHUP with a changed redis: keeps the running one and says so; a
# virtual key's budget_usd crossed through one replica is refused by the
# other (429 insufficient_quota); bad
# redis: entries are refused naming the key, a password never shown.
#
# usage: test_fleet_serve.sh PATH/TO/llmux-serve PATH/TO/llmux-mock
# LLMUX_PLUGIN_PATH must name the directory holding the openai plugin.
# Exits 77 (skipped) without redis-server, curl or python3.

set -u

SERVE=${1:?usage: test_fleet_serve.sh LLMUX_SERVE LLMUX_MOCK}
MOCK=${2:?usage: test_fleet_serve.sh LLMUX_SERVE LLMUX_MOCK}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
T_NAME=fleet-serve
if ! command -v redis-server >/dev/null; then
    echo "skip: redis-server not found (Debian: apt-get install redis-server)"
    exit 77
fi
# shellcheck source=../serve/serve_lib.sh
. "$SRC/tests/serve/serve_lib.sh"
# shellcheck source=fleet_lib.sh
. "$SRC/tests/fleet/fleet_lib.sh"

# metric NAME: its value in $TMP/metrics.
metric() {
    sed -n "s/^$1 //p" "$TMP/metrics"
}
scrape() {
    curl -s -m 10 "$1/metrics" >"$TMP/metrics"
}

start_redis
start_mock --quiet
write_config() { # PREFIX
    cat >"$TMP/gw.yaml" <<EOC
routes:
  fast: "openai/gpt-4o-mini;base_url=$MOCK_URL/v1;api_key=sk-upstream-secret;rpm=60"
redis:
  url: unix://$TMP/r.sock
  prefix: $1
  fallback: closed
EOC
}
write_config gw
start_serve "$TMP/gw.yaml" "$TMP/a.err"
A_URL=$SURL A_PID=$SPID
start_serve "$TMP/gw.yaml" "$TMP/b.err"
B_URL=$SURL B_PID=$SPID
BODY='{"model":"fast","messages":[{"role":"user","content":"hi"}]}'

# 60 rpm: one second of burst is one request, then one a second
SURL=$A_URL chat "$BODY"
expect "replica A answers" 200 'j["object"]' chat.completion
t0=$(date +%s%N)
SURL=$B_URL chat "$BODY"
ms=$((($(date +%s%N) - t0) / 1000000))
expect "replica B answers" 200 'j["object"]' chat.completion
if [ "$ms" -ge 600 ]; then
    ok "replica B waited for the bucket replica A emptied ($ms ms)"
else
    bad "replica B waited for the shared bucket" "it answered in $ms ms"
fi
keys=$(redis-cli -s "$TMP/r.sock" --scan --pattern 'gw:*' 2>/dev/null)
if [ -z "$keys" ] && ! command -v redis-cli >/dev/null; then
    skip "the Redis keys (no redis-cli)"
elif echo "$keys" | grep -q '^gw:openai:http://127\.0\.0\.1:[0-9]*:[0-9a-f]\{64\}$' &&
    ! echo "$keys" | grep -q 'sk-upstream'; then
    ok "the Redis key names the provider, the endpoint and the key's SHA-256"
else
    bad "the Redis keys" "got: $keys"
fi
scrape "$A_URL"
if [ "$(metric llmux_client_limits_backend_errors_total)" = 0 ] &&
    [ "$(metric llmux_client_limits_fallbacks_total)" = 0 ]; then
    ok "/metrics: no Redis errors, no fallbacks"
else
    bad "/metrics: the shared limits' counters" "$(grep limits "$TMP/metrics")"
fi

# Redis gone: fallback closed fails at once
stop_redis
sleep 0.2
t0=$(date +%s%N)
SURL=$A_URL chat "$BODY"
ms=$((($(date +%s%N) - t0) / 1000000))
expect "Redis down, fallback closed: 503" 503 \
    '"shared limits unavailable" in j["error"]["message"]' True
if [ "$ms" -lt 3000 ]; then
    ok "... at once ($ms ms)"
else
    bad "... at once" "$ms ms"
fi
scrape "$A_URL"
if [ "$(metric llmux_client_limits_backend_errors_total)" -ge 1 ] 2>/dev/null; then
    ok "/metrics counts the Redis outage"
else
    bad "/metrics counts the Redis outage" "$(grep limits "$TMP/metrics")"
fi

# back: it reconnects by itself
start_redis
served=0
for i in $(seq 50); do
    SURL=$A_URL chat "$BODY"
    if [ "$CODE" = 200 ]; then
        served=1
        break
    fi
    sleep 0.2
done
if [ $served = 1 ]; then
    ok "Redis back: served again without a restart"
else
    bad "Redis back: served again" "last status $CODE: $(head -c 300 "$TMP/body")"
fi

# a reload cannot move the client to another Redis: it says so
write_config other
SPID=$A_PID
kill -HUP "$A_PID"
for i in $(seq 50); do
    grep -q "redis changed" "$TMP/a.err" && break
    sleep 0.1
done
if grep -q "llmux serve: reload: redis changed; that needs a restart" "$TMP/a.err"; then
    ok "SIGHUP: a changed redis: needs a restart, and says so"
else
    bad "SIGHUP: a changed redis: says so" "stderr: $(cat "$TMP/a.err")"
fi
SURL=$A_URL chat "$BODY"
expect "after the reload it still answers" 200 'j["object"]' chat.completion
end_replicas sk-upstream

# a virtual key's budget_usd, shared by the replicas through redis: the
# first answer spends team-a's $0.000001 (gpt-4o-mini's own price), after
# which both replicas refuse it with OpenAI's 429 insufficient_quota
# (replica B never read the total before: it asks Redis first); team-b,
# without a budget, goes on
cat >"$TMP/budget.yaml" <<EOC
routes:
  fast: "openai/gpt-4o-mini;base_url=$MOCK_URL/v1;api_key=sk-upstream-secret"
keys:
  - key: sk-team-a
    name: team-a
    budget_usd: 0.000001
    budget_window: 1d
  - key: sk-team-b
    name: team-b
redis:
  url: unix://$TMP/r.sock
  prefix: gwb
EOC
start_serve "$TMP/budget.yaml" "$TMP/a.err"
A_URL=$SURL A_PID=$SPID
start_serve "$TMP/budget.yaml" "$TMP/b.err"
B_URL=$SURL B_PID=$SPID
CURL_EXTRA=(-H 'Authorization: Bearer sk-team-a')
SURL=$A_URL chat "$BODY"
expect "budget: team-a's first request is answered" 200 'j["object"]' \
    chat.completion
sleep 0.3 # what replica A's answer cost reaches Redis (a loaded machine)
for r in A B; do
    u=A_URL
    [ $r = B ] && u=B_URL
    SURL=${!u} chat "$BODY"
    expect "budget: spent through replica A, replica $r refuses team-a" 429 \
        '"%s %s %s" % (j["error"]["type"], j["error"]["code"], "key:team-a" in j["error"]["message"])' \
        "insufficient_quota insufficient_quota True"
done
if grep -q "sk-team-a" "$TMP/body"; then
    bad "budget: the refusal does not show the key"
fi
CURL_EXTRA=(-H 'Authorization: Bearer sk-team-b')
SURL=$B_URL chat "$BODY"
expect "budget: team-b has no budget and is answered" 200 'j["object"]' \
    chat.completion
CURL_EXTRA=()
if command -v redis-cli >/dev/null; then
    spent=$(redis-cli -s "$TMP/r.sock" GET \
        "gwb:budget:name:key:team-a:$(($(date +%s) / 86400))")
    if [ -n "$spent" ] && "$PY" -c "import sys; sys.exit(0 if float('$spent') > 0.000001 else 1)"; then
        ok "budget: Redis holds team-a's total (\$$spent)"
    else
        bad "budget: Redis holds team-a's total" "got '$spent'"
    fi
else
    skip "budget: the Redis total (no redis-cli)"
fi
SPID=$B_PID
stop_serve "budget: replica B exits 0 on SIGTERM"
SPID=$A_PID
SERVE_PIDS=("$A_PID")
stop_serve "budget: replica A exits 0 on SIGTERM"
printf 'routes:\n  fast: "openai/gpt-4o-mini"\nkeys:\n  - key: k\n    name: n\n    budget_usd: %s\n' \
    nothing >"$TMP/bad.yaml"
bad_config "keys: a bad budget_usd" \
    "bad\.yaml:6: key 'keys\[0\]\.budget_usd': want an amount in USD above 0"
printf 'routes:\n  fast: "openai/gpt-4o-mini"\nkeys:\n  - key: k\n    name: two words\n    budget_usd: 5\n' \
    >"$TMP/bad.yaml"
bad_config "keys: a budget needs a name without spaces" \
    "key 'keys\[0\]\.name': a key with budget_usd needs a name"
printf 'routes:\n  fast: "openai/gpt-4o-mini"\nkeys:\n  - key: k\n    name: n\n    budget_usd: 5\n    budget_window: 2y\n' \
    >"$TMP/bad.yaml"
bad_config "keys: a bad budget_window" \
    "bad\.yaml:7: key 'keys\[0\]\.budget_window': want a duration from 1s to 366d"
printf 'routes:\n  fast: "openai/gpt-4o-mini"\nkeys:\n  - key: k\n    name: n\n    budget_window: 1d\n' \
    >"$TMP/bad.yaml"
bad_config "keys: a budget_window without budget_usd" \
    "key 'keys\[0\]\.budget_window': wants budget_usd too"

# bad redis: entries
bad_redis() { # NAME ENTRY REGEX
    printf 'routes:\n  fast: "openai/gpt-4o-mini"\nredis:\n%s\n' "$2" \
        >"$TMP/bad.yaml"
    bad_config "$1" "$3"
    if grep -q hunter2 "$TMP/err"; then
        bad "$1: the password is not printed"
    fi
}
bad_redis "redis: a URL of another scheme" "  url: ftp://h" \
    "bad\.yaml:4: key 'redis\.url': wants local or a Redis URL"
bad_redis "redis: a bad port, the password masked" \
    "  url: redis://:hunter2@h:99999" "key 'redis\.url': wants .*got \"redis://\*\*\*@h:99999\""
bad_redis "redis: a bad fallback" "  url: redis://h
  fallback: open" "bad\.yaml:5: key 'redis\.fallback': wants closed or local"
bad_redis "redis: a bad prefix" "  url: redis://h
  prefix: a b" "key 'redis\.prefix': wants letters"
bad_redis "redis: an unknown key" "  url: redis://h
  db: 3" "bad\.yaml:5: key 'redis\.db': unknown \(url, prefix, fallback\)"
bad_redis "redis: no url" "  prefix: x" "key 'redis\.url': missing"

summary
