#!/usr/bin/env bash
# Runs ../shared/bench-peers/run.sh with llmux-bench added as the "llmux"
# row, and prints the table plus llmux's ratio to the floor for each mode.
#   bench/run.sh [N] [C] [N_STREAM] [N_MANY]     (defaults 20000 64 2000 0)
# Needs a built tree (./build.sh builds it into build/).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
peers=${BENCH_PEERS:-$root/../shared/bench-peers}
bin=${LLMUX_BENCH_BIN:-$root/build/bin/llmux-bench}
[ -x "$bin" ] || { echo "bench/run.sh: build first (missing $bin)" >&2; exit 2; }
[ -f "$peers/run.sh" ] || { echo "bench/run.sh: no bench-peers at $peers" >&2; exit 2; }
# (the library finds the plugins of its own tree: lib/llmux/plugins.d)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
LLMUX_BENCH_CMD="$bin" LLMUX_BENCH_STREAM_CMD="$bin --stream" \
  bash "$peers/run.sh" "$@" | tee "$out"
echo
awk '
  { name=$1; mode=$2; cpu[name" "mode]=$5; wall[name" "mode]=$7; rss[name" "mode]=$9 }
  END {
    n = split("plain stream many", modes, " ")
    for (i = 1; i <= n; i++) {
      m = modes[i]
      if (("llmux " m) in cpu && ("floor " m) in cpu && cpu["floor " m] > 0)
        printf "llmux/floor %-7s cpu x%.2f  wall x%.2f  maxrss %+.1f MiB\n", m,
          cpu["llmux " m] / cpu["floor " m], wall["llmux " m] / wall["floor " m],
          rss["llmux " m] - rss["floor " m]
    }
  }' "$out"
