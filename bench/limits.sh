#!/usr/bin/env bash
# bench/limits.sh: the admission overhead of the shared limits backend:
# N requests through one lane (one endpoint and key) against llmux-mock,
# C in flight, with rpm high enough never to wait, counted in this process
# (limits=local) and in Redis (limits=unix://...: one Lua script call per
# admission, one in flight per lane). Prints requests/s for each.
#
#   bench/limits.sh [BUILD-DIR [N [C]]]    (default build 20000 64)
#
# Needs redis-server; BUILD-DIR holds bin/llmux-mock and
# tests/fleet/fleet_driver.
set -eu
build=${1:-build}
n=${2:-20000}
c=${3:-64}
. "$(dirname "$0")/redis_mock.sh"
for backend in local "unix://$tmp/r.sock"; do
    spec="openai/gpt-4o-mini;base_url=http://127.0.0.1:$port/v1;api_key=sk-bench;rpm=100000000;limits=$backend"
    out=$("$build/tests/fleet/fleet_driver" "$spec" "$n" 600000 "$c")
    ms=${out##* ms }
    ok=$(echo "$out" | sed 's/^ok \([0-9]*\).*/\1/')
    printf '%-7s %6d ok in %6d ms: %7.0f requests/s\n' \
        "$([ "$backend" = local ] && echo local || echo redis)" "$ok" "$ms" \
        "$(echo "$ok * 1000 / $ms" | bc -l)"
done
