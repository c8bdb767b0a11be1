#!/usr/bin/env bash
# The gateway benchmark of issue 12 in one command: builds what it needs
# (release, no sanitizers), runs ../shared/bench-peers/gateway.sh with
# LLMUX_CLI set (nginx as a proxy, Portkey, llmux serve: plain and stream
# rows), then the llmux-specific rows:
#   stream   N_STREAM streams of 102 chunks, C in flight, through llmux serve
#   many     N_MANY trickled streams all in flight at once, through llmux
#            serve and, for the RSS ratio, through the library (llmux-bench)
#   latency  time to first byte through the gateway minus direct, p50 and
#            p99, open loop (bench/openloop.c) at each rate of RATES
#   ceiling  the highest rate of the ladder with no error and on schedule
#
#   bench/gateway.sh [N] [C] [N_STREAM] [N_MANY] [RATES]
#        defaults  20000 64 2000 10000 "1000 5000"
#   BENCH_SECS       seconds per open-loop run (default 10, after 1 s warm-up)
#   BENCH_CEILING    the ceiling's rates (default 1000 2000 ... 20000)
#   BENCH_NO_PEERS=1 skips gateway.sh (the llmux rows only)
#   LLMUX_BENCH_BUILD the build directory (default build-bench)
#
# Worst loop stall: stall_ms is the gateway's own measure (LLMUX_SERVE_STALL=1:
# the longest loop iteration, minus its wait in the poll); probe_ms is seen
# from outside, by a probe (llmux-openloop -g, 100 GETs of /health a second
# on one connection) during the load: its worst round trip (write to first
# byte), an upper bound (the probe and the load share the 2 cores). Not
# the time from due: on one connection, once round trips pass 10 ms the
# probe's own requests queue behind each other and that time only grows.
# On schedule: a rate holds when no request failed and the 99th percentile
# of (first byte - due time) stays under BENCH_SCHED_US (default 20000):
# past the ceiling requests queue and that number grows with the run.
set -euo pipefail
N=${1:-20000}; C=${2:-64}; NS=${3:-2000}; NM=${4:-10000}; RATES=${5:-1000 5000}
SECS=${BENCH_SECS:-10}
CEILING=${BENCH_CEILING:-1000 2000 3000 4000 5000 6000 7000 8000 10000 12000 15000 20000}
SCHED_US=${BENCH_SCHED_US:-20000}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
peers=${BENCH_PEERS:-$root/../shared/bench-peers}
work=${BENCH_WORK:-/tmp/llmux-bench-peers}
build=${LLMUX_BENCH_BUILD:-$root/build-bench}
[ -f "$peers/gateway.sh" ] || { echo "bench/gateway.sh: no bench-peers at $peers" >&2; exit 2; }

# ---- build: numbers from a sanitizer build would be meaningless
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLLMUX_BUILD_DOCS=OFF -DLLMUX_BUILD_MANPAGES=OFF \
    -DLLMUX_BUILD_EXAMPLES=OFF -DLLMUX_BUILD_TESTS=OFF >/dev/null
fi
if grep -Eq '^LLMUX_ENABLE_(ASAN|UBSAN|TSAN)[^=]*=(ON|1|TRUE)' "$build/CMakeCache.txt"; then
  echo "bench/gateway.sh: $build has sanitizers on; use another LLMUX_BENCH_BUILD" >&2; exit 2
fi
cmake --build "$build" -j2 --target llmux-serve llmux-bench llmux-openloop \
  llmux-cli llmux_provider_openai >/dev/null
bin=$build/bin
ol=$bin/llmux-openloop

cli=$bin/llmux # `llmux serve`
echo "# $(date -u '+%F %T UTC'), $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)"
echo "# llmux serve as: $cli serve   (commit $(git -C "$root" rev-parse --short HEAD))"

# the canned streams come from run.sh's generator
[ -f "$work/sse.txt" ] || BENCH_WORK=$work bash "$peers/run.sh" 1 1 1 0 >/dev/null

if [ -z "${BENCH_NO_PEERS:-}" ]; then
  echo "## peers: gateway.sh $N $C $NS"
  LLMUX_CLI=$cli BENCH_WORK=$work bash "$peers/gateway.sh" "$N" "$C" "$NS"
fi

# ---- the llmux rows: our own upstream (same nginx config) and gateway
x=$work/gwx
mkdir -p "$x"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
freeport() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP=$(freeport)
sed -e "s#@DIR@#$work#g" -e "s#@PORT@#$UP#g" -e "s#pid $work/nginx.pid#pid $x/upstream.pid#" \
  "$peers/nginx.conf.in" >"$x/upstream.conf"
"$NGINX" -c "$x/upstream.conf"
GW=
PROBE=
cleanup() { # every step, whatever failed before it
  set +e
  [ -n "$PROBE" ] && kill "$PROBE" 2>/dev/null
  [ -n "$GW" ] && kill "$GW" 2>/dev/null
  "$NGINX" -c "$x/upstream.conf" -s stop 2>/dev/null
}
trap cleanup EXIT
# (a signal, e.g. SIGPIPE from "| head", would skip the EXIT trap)
trap 'exit 130' INT TERM HUP PIPE
up=http://127.0.0.1:$UP
# the many mode's streams all at once, past the gateway's default limits
# (4096 connections, 10000 in flight); the rest is the defaults (the access
# log on, into llmux.err)
lim_c=$((NM + 256 > 4096 ? NM + 256 : 4096)); lim_f=$((NM + 256 > 10000 ? NM + 256 : 10000))
cat >"$x/llmux.yaml" <<EOF
listen: 127.0.0.1:0
routes:
  gpt-4o-mini: "openai/gpt-4o-mini;base_url=$up/v1;api_key=sk-upstream"
  gpt-4o-mini-s: "openai/gpt-4o-mini;base_url=$up/v1s;api_key=sk-upstream"
  gpt-4o-mini-slow: "openai/gpt-4o-mini;base_url=$up/v1slow;api_key=sk-upstream"
limits: {max_connections: $lim_c, max_in_flight: $lim_f}
EOF
gw_start() { # a fresh gateway, so that its peak RSS is this load's
  rm -f "$x/port"
  LLMUX_SERVE_STALL=1 "$cli" serve --config "$x/llmux.yaml" --port-file "$x/port" 2>"$x/llmux.err" &
  GW=$!
  for _ in $(seq 300); do [ -s "$x/port" ] && break; sleep 0.1; done
  [ -s "$x/port" ] || { echo "bench/gateway.sh: llmux serve did not start:" >&2; cat "$x/llmux.err" >&2; exit 1; }
  gw=http://127.0.0.1:$(cat "$x/port")
  GW_RSS0=$(awk '/VmRSS/ {print $2}' "/proc/$GW/status")
}
gw_stop() {
  kill -TERM "$GW"
  wait "$GW" || echo "bench/gateway.sh: llmux serve exited $?" >&2
  GW=
}
probe_start() {
  "$ol" -g -c 1 -r 100 -d 3600 -w 0 -l probe "$gw/health" >"$x/probe.out" 2>&1 &
  PROBE=$!
  # the load starts once the probe is connected (its first request out)
  for _ in $(seq 200); do
    [ -n "$(ss -Htn state established "( dport = :${gw##*:} )" 2>/dev/null)" ] && break
    sleep 0.05
  done
}
probe_stop() { # sets PROBE_MS: the probe's worst round trip
  kill -TERM "$PROBE"
  wait "$PROBE" || true # (not in a subshell: only the parent can wait)
  PROBE=
  PROBE_MS=$(awk '/^probe/ { for (i = 1; i < NF; i++) if ($i == "ttfb_max_us") printf "%.1f", $(i + 1) / 1000 }' "$x/probe.out")
}
field() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }'; }
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
# through the gateway: N streams, K in flight, route R; one row
stream_row() { # mode n k route
  local mode=$1 n=$2 k=$3 route=$4 c0 c1 t0 t1 out hwm stall ok chunks
  gw_start
  probe_start
  c0=$(cpu_of "$GW"); t0=$(date +%s.%N)
  out=$(BENCH_MODEL=$route "$work/floor_stream" "$n" "$k" "$gw/v1/chat/completions" 2>"$x/client.err" || true)
  t1=$(date +%s.%N); c1=$(cpu_of "$GW")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$GW/status")
  probe_stop
  gw_stop
  stall=$(sed -n 's/.*loop stall worst_ms \([0-9.]*\).*/\1/p' "$x/llmux.err")
  ok=$(sed -n 's/.*ok=\([0-9]*\).*/\1/p' <<<"$out"); ok=${ok:-0}
  chunks=$(sed -n 's/.*chunks=\([0-9]*\).*/\1/p' <<<"$out"); chunks=${chunks:-0}
  awk -v md="$mode" -v n="$n" -v c=$((c1 - c0)) -v tk="$tck" -v w="$(echo "$t1 - $t0" | bc)" \
      -v h="$hwm" -v r0="$GW_RSS0" -v ok="$ok" -v ch="$chunks" -v st="${stall:-?}" -v pr="${PROBE_MS:-?}" \
    'BEGIN { printf "llmux-serve  %-6s %6d  proxy_cpu_s %7.3f  us_per_req %7.1f  wall_s %7.3f  proxy_maxrss_mib %6.1f  kib_per_stream %5.1f  lost %d  chunks_per_stream %.1f  stall_ms %s  probe_ms %s\n",
             md, n, c / tk, c / tk / n * 1e6, w, h / 1024, (h - r0) / n, n - ok, ok ? ch / ok : 0, st, pr }'
  [ "$ok" = "$n" ] || { echo "  client: $(head -3 "$x/client.err")"; }
}

echo "## llmux serve: streams"
stream_row stream "$NS" "$C" gpt-4o-mini-s
# each stream through the gateway holds two sockets (client, upstream)
lim=$(ulimit -n)
if [ $((2 * NM + 256)) -gt "$lim" ]; then
  ulimit -n $((2 * NM + 256)) 2>/dev/null || {
    NM=$(((lim - 256) / 2))
    echo "# ulimit -n is $lim and cannot be raised: many mode with $NM streams (2 sockets each)"
  }
fi
if [ "$NM" -gt 0 ]; then
  stream_row many "$NM" "$NM" gpt-4o-mini-slow >"$x/many.row"
  cat "$x/many.row"
  # the library's own, same streams: peak RSS over one stream's, per stream
  lib_rss() { { /usr/bin/time -f '%M' "$bin/llmux-bench" --stream "$1" "$1" "$up/v1slow" >/dev/null; } 2>&1 | tail -1; }
  r1=$(lib_rss 1); rn=$(lib_rss "$NM")
  awk -v n="$NM" -v r1="$r1" -v rn="$rn" \
    'BEGIN { printf "library      many   %6d  maxrss_mib %6.1f  kib_per_stream %5.1f\n", n, rn / 1024, (rn - r1) / n }' \
    >"$x/lib.row"
  cat "$x/lib.row"
  awk '/^llmux-serve  many/ { for (i = 1; i < NF; i++) if ($i == "kib_per_stream") g = $(i + 1) }
       /^library/ { for (i = 1; i < NF; i++) if ($i == "kib_per_stream") l = $(i + 1) }
       END { if (l > 0) printf "ratio        many   rss_per_stream gateway/library x%.2f\n", g / l }' \
    "$x/many.row" "$x/lib.row"
fi

echo "## latency: time to first byte, gateway minus direct, open loop ${SECS}s per rate"
gw_start
ol_run() { "$ol" -r "$1" -d "$SECS" -w 1 -l "$2" "$3/chat/completions" 2>"$x/ol.err" || true; }
for r in $RATES; do
  d=$(ol_run "$r" direct "$up/v1"); g=$(ol_run "$r" gateway "$gw/v1")
  echo "  $d"; echo "  $g"
  awk -v r="$r" -v d50="$(field ttfb_p50_us <<<"$d")" -v d99="$(field ttfb_p99_us <<<"$d")" \
      -v g50="$(field ttfb_p50_us <<<"$g")" -v g99="$(field ttfb_p99_us <<<"$g")" \
      -v e="$(( $(field err <<<"$d" | grep . || echo 1) + $(field err <<<"$g" | grep . || echo 1) ))" \
    'BEGIN { printf "latency  rate %6d  direct_p50_us %6d  direct_p99_us %6d  gateway_p50_us %6d  gateway_p99_us %6d  added_p50_us %6d  added_p99_us %6d  err %d\n",
             r, d50, d99, g50, g99, g50 - d50, g99 - d99, e }'
done
echo "## ceiling: highest rate with no error and sched p99 under ${SCHED_US} us"
best=0
for r in $CEILING; do
  g=$(ol_run "$r" gateway "$gw/v1"); echo "  $g"
  e=$(field err <<<"$g"); s=$(field sched_p99_us <<<"$g")
  if [ "${e:-1}" != 0 ] || [ "${s:-999999999}" -gt "$SCHED_US" ]; then break; fi
  best=$r
done
gw_stop
echo "ceiling  rate $best"
