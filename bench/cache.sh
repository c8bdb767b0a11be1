#!/usr/bin/env bash
# bench/cache.sh: what an answer from the shared response cache costs
# against asking the provider: N identical chat requests, C in flight,
# against llmux-mock (on loopback, so the "provider" is as fast as a
# provider gets) without the cache, then with cache_backend= a Redis on a
# unix socket after one process stored the answer (every request a hit:
# one GET, the stored answer decoded again). Prints requests/s for each.
#
#   bench/cache.sh [BUILD-DIR [N [C]]]    (default build 20000 64)
#
# Needs redis-server; BUILD-DIR holds bin/llmux-mock and
# tests/fleet/fleet_driver.
set -eu
build=${1:-build}
n=${2:-20000}
c=${3:-64}
. "$(dirname "$0")/redis_mock.sh"
base="openai/gpt-4o-mini;base_url=http://127.0.0.1:$port/v1;api_key=sk-bench"
shared="$base;cache=600;cache_backend=unix://$tmp/r.sock"
"$build/tests/fleet/fleet_driver" "$shared" 1 10000 >/dev/null # stores it
stats() { curl -s "http://127.0.0.1:$port/_mock/stats" | sed 's/.*"requests":\([0-9]*\).*/\1/'; }
for run in provider redis-hit; do
    spec=$base
    [ "$run" = redis-hit ] && spec=$shared
    before=$(stats)
    out=$("$build/tests/fleet/fleet_driver" "$spec" "$n" 600000 "$c")
    ms=${out##* ms }
    ok=$(echo "$out" | sed 's/^ok \([0-9]*\).*/\1/')
    printf '%-9s %6d ok in %6d ms: %7.0f requests/s, %6d reached the mock\n' \
        "$run" "$ok" "$ms" "$(echo "$ok * 1000 / $ms" | bc -l)" \
        "$(( $(stats) - before ))"
done
