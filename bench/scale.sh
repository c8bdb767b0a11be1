#!/usr/bin/env bash
# Scale runs for issue 4 (see bench/RESULTS.md), against the nginx of
# ../shared/bench-peers (the config bench/run.sh leaves in $BENCH_WORK,
# default /tmp/llmux-bench-peers: run bench/run.sh once first) or llmux-mock.
#   bench/scale.sh queue [REPS] [SIZES]   plain 20000 (floor, llmux) and
#       llmux --queue with all N submitted at once, 64 in flight, for each N
#       of SIZES (default "25000 50000 100000"); REPS rounds (default 3)
#   bench/scale.sh many [REPS] [SIZES]    floor_stream and llmux with N
#       streams all in flight on /v1slow (12 events over about 4.5 s), for
#       each N of SIZES (default "10 2500 5000 10000"): peak RSS per stream
#       from the slope, wall time; llmux also reports the loop's worst stall
#   bench/scale.sh mock [N] [DELAY_MS]    floor_stream and llmux --stream
#       N N against llmux-mock --chunk-delay DELAY_MS (defaults 10000 and
#       100): 12 events per stream, one every DELAY_MS
#   bench/scale.sh callgrind [SIZES]      instructions per request of llmux
#       --queue for each N of SIZES (default "5000 10000 20000 40000")
# Rows: name mode n cpu_s us_per_req wall_s maxrss_mib, then llmux's own
# lines (llmux-stats, llmux-stall, llmux-mem) indented.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
work=${BENCH_WORK:-/tmp/llmux-bench-peers}
bin=${LLMUX_BENCH_BIN:-$root/build/bin/llmux-bench}
bindir=$(cd "$(dirname "$bin")" && pwd)
C=${BENCH_C:-64}
what=${1:-queue}
tmp=$(mktemp -d)
cleanup() {
  [ -n "${stop_server:-}" ] && eval "$stop_server"
  rm -rf "$tmp"
}
trap cleanup EXIT

start_nginx() {
  for f in "$work/floor" "$work/floor_stream" "$work/nginx.conf" "$bin"; do
    [ -e "$f" ] || { echo "bench/scale.sh: missing $f (run bench/run.sh first)" >&2; exit 2; }
  done
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
  port=$(sed -n 's/.*listen 127.0.0.1:\([0-9]*\).*/\1/p' "$work/nginx.conf")
  "$NGINX" -c "$work/nginx.conf"
  # shellcheck disable=SC2016 # expanded later by eval
  stop_server='"$NGINX" -c "$work/nginx.conf" -s stop 2>/dev/null || true'
  sleep 0.3
  base="http://127.0.0.1:$port"
}

row() { # name mode n cmd...: one row, then the command's llmux-* lines
  local name=$1 mode=$2 n=$3; shift 3
  if ! /usr/bin/time -o "$tmp/time" -f '%U %S %e %M' "$@" >/dev/null 2>"$tmp/err"; then
    echo "bench/scale.sh: failed: $*" >&2; cat "$tmp/err" >&2; exit 1
  fi
  read -r u s e m <"$tmp/time"
  awk -v nm="$name" -v md="$mode" -v n="$n" -v u="$u" -v s="$s" -v e="$e" -v m="$m" \
    'BEGIN { printf "%-8s %-7s %7d  cpu_s %7.3f  us_per_req %6.1f  wall_s %7.3f  maxrss_mib %7.1f\n",
             nm, md, n, u+s, (u+s)*1e6/n, e, m/1024 }'
  sed -n 's/^llmux-/    llmux-/p' "$tmp/err"
}

case $what in
queue)
  reps=${2:-3}; sizes=${3:-"25000 50000 100000"}
  start_nginx
  for r in $(seq "$reps"); do
    echo "# round $r"
    row floor plain 20000 "$work/floor" 20000 "$C" "$base/v1/chat/completions"
    row llmux plain 20000 "$bin" 20000 "$C" "$base/v1"
    for n in $sizes; do
      row llmux queue "$n" "$bin" --queue --stats "$n" "$C" "$base/v1"
    done
  done ;;
many)
  reps=${2:-1}; sizes=${3:-"10 2500 5000 10000"}
  start_nginx
  for r in $(seq "$reps"); do
    echo "# round $r"
    for n in $sizes; do
      row floor many "$n" "$work/floor_stream" "$n" "$n" "$base/v1slow/chat/completions"
      row llmux many "$n" "$bin" --stream "$n" "$n" "$base/v1slow"
      row llmux+m many "$n" "$bin" --stream --stall --mem --stats "$n" "$n" "$base/v1slow"
    done
  done ;;
mock)
  n=${2:-10000}; delay=${3:-100}
  mock=$bindir/llmux-mock
  "$mock" --port 0 --chunk-delay "$delay" --quiet --port-file "$tmp/port" >/dev/null &
  stop_server="kill $!; wait $! 2>/dev/null || true"
  for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
  base="http://127.0.0.1:$(cat "$tmp/port")"
  # the mock answers "Mock reply to: Prompt N: what is the capital of
  # France?" one word per event: 12 events, DELAY_MS apart
  [ -x "$work/floor_stream" ] &&
    row floor mock "$n" "$work/floor_stream" "$n" "$n" "$base/v1/chat/completions"
  row llmux mock "$n" "$bin" --stream "$n" "$n" "$base/v1"
  row llmux+m mock "$n" "$bin" --stream --stall --mem --stats "$n" "$n" "$base/v1" ;;
callgrind)
  sizes=${2:-"5000 10000 20000 40000"}
  command -v valgrind >/dev/null || { echo "bench/scale.sh: needs valgrind" >&2; exit 2; }
  start_nginx
  printf '%-8s %-7s %7s  %14s  %12s\n' name mode n instructions "per request"
  for n in $sizes; do
    for m in plain queue; do
      flag=; [ "$m" = queue ] && flag=--queue
      i=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
            "$bin" $flag "$n" "$C" "$base/v1" 2>&1 >/dev/null |
          sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
      awk -v m="$m" -v n="$n" -v i="$i" \
        'BEGIN { printf "%-8s %-7s %7d  %14.0f  %12.0f\n", "llmux", m, n, i, i / n }'
    done
  done ;;
*)
  echo "usage: bench/scale.sh queue|many|mock|callgrind [...]" >&2; exit 2 ;;
esac
