#!/usr/bin/env bash
# Instruction counts (valgrind callgrind) for the floor and llmux on the same
# workload: repeatable where CPU seconds on a shared VM are not.
#   bench/callgrind.sh [N_PLAIN] [N_STREAM]     (defaults 3000 300)
# Uses the floor binaries, nginx config and port that bench/run.sh (through
# ../shared/bench-peers/run.sh) left in $BENCH_WORK (default
# /tmp/llmux-bench-peers): run bench/run.sh once first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
work=${BENCH_WORK:-/tmp/llmux-bench-peers}
bin=${LLMUX_BENCH_BIN:-$root/build/bin/llmux-bench}
NP=${1:-3000}; NS=${2:-300}
for f in "$work/floor" "$work/floor_stream" "$work/nginx.conf" "$bin"; do
  [ -e "$f" ] || { echo "bench/callgrind.sh: missing $f (run bench/run.sh first)" >&2; exit 2; }
done
command -v valgrind >/dev/null || { echo "bench/callgrind.sh: needs valgrind" >&2; exit 2; }
# (the library finds the plugins of its own tree: lib/llmux/plugins.d)
port=$(sed -n 's/.*listen 127.0.0.1:\([0-9]*\).*/\1/p' "$work/nginx.conf")
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
"$NGINX" -c "$work/nginx.conf"
trap '"$NGINX" -c "$work/nginx.conf" -s stop 2>/dev/null || true' EXIT
sleep 0.3
base="http://127.0.0.1:$port"
count() { # prints the instructions of one run
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
fp=$(count "$work/floor" "$NP" 64 "$base/v1/chat/completions")
lp=$(count "$bin" "$NP" 64 "$base/v1")
fs=$(count "$work/floor_stream" "$NS" 16 "$base/v1s/chat/completions")
ls=$(count "$bin" --stream "$NS" 16 "$base/v1s")
awk -v fp="$fp" -v lp="$lp" -v fs="$fs" -v ls="$ls" -v np="$NP" -v ns="$NS" 'BEGIN {
  printf "%-8s %-7s %6s  %14s  %12s\n", "name", "mode", "n", "instructions", "per request"
  printf "%-8s %-7s %6d  %14.0f  %12.0f\n", "floor", "plain", np, fp, fp / np
  printf "%-8s %-7s %6d  %14.0f  %12.0f\n", "llmux", "plain", np, lp, lp / np
  printf "%-8s %-7s %6d  %14.0f  %12.0f\n", "floor", "stream", ns, fs, fs / ns
  printf "%-8s %-7s %6d  %14.0f  %12.0f\n", "llmux", "stream", ns, ls, ls / ns
  printf "llmux/floor plain  instructions x%.2f\n", lp / fp
  printf "llmux/floor stream instructions x%.2f\n", ls / fs
}'
