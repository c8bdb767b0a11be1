#!/usr/bin/env bash
# bench/batch.sh: `llmux batch` on a huge input: generates N OpenAI Batch
# input lines (or prompts), runs `llmux batch -j C` on them against
# llmux-mock on loopback, and prints the batch process's peak RSS and its
# throughput. The pipeline's target: 1,000,000 lines at 64 in flight in
# under 64 MiB.
#   bench/batch.sh [N] [C]               (defaults 1000000 64)
#   BENCH_FORMAT=prompt bench/batch.sh   (a prompt per line instead)
#   BENCH_ARGS="--ordered" bench/batch.sh  (more llmux batch options)
#   BENCH_RESUME=1 bench/batch.sh        (the results to a file, then a
#       second run with --resume over it: the memory of a million done ids)
# Needs a built tree without sanitizers (LLMUX_BUILD, default build/).
# Results go to stdout; the output lines to /dev/null (BENCH_RESUME: to
# a file in TMPDIR, about 500 bytes a line).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${LLMUX_BUILD:-$root/build}
n=${1:-1000000}
c=${2:-64}
fmt=${BENCH_FORMAT:-openai}
cli=$build/bin/llmux
mock=$build/bin/llmux-mock
for b in "$cli" "$mock"; do
  [ -x "$b" ] || { echo "bench/batch.sh: build first (missing $b)" >&2; exit 2; }
done
if grep -qE '^LLMUX_ENABLE_(ASAN|UBSAN|TSAN):BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  echo "bench/batch.sh: $build is a sanitizer build: its memory says nothing" >&2
  exit 2
fi
[ -x /usr/bin/time ] || { echo "bench/batch.sh: needs /usr/bin/time (GNU time)" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/llmux-bench-batch.XXXXXX")
mock_pid=
cleanup() {
  [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null && wait "$mock_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# the input: awk, so generating it costs seconds, not minutes
if [ "$fmt" = prompt ]; then
  awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++)
    printf "Prompt %d: what is the capital of France?\n", i }' >"$tmp/in"
else
  awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++)
    printf "{\"custom_id\":\"req-%d\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"messages\":[{\"role\":\"user\",\"content\":\"Prompt %d: what is the capital of France?\"}],\"max_tokens\":64}}\n", i, i }' >"$tmp/in"
fi

"$mock" --port 0 --port-file "$tmp/port" --quiet >/dev/null 2>"$tmp/mock.err" &
mock_pid=$!
for _ in $(seq 1 200); do
  [ -s "$tmp/port" ] && break
  sleep 0.05
done
[ -s "$tmp/port" ] || { echo "bench/batch.sh: llmux-mock did not start" >&2; cat "$tmp/mock.err" >&2; exit 1; }
port=$(cat "$tmp/port")

export OPENAI_API_KEY=sk-bench
out_args=()
[ -n "${BENCH_RESUME:-}" ] && out_args=(-o "$tmp/out")

# run_batch NAME [ARGS...]: one timed run, and its figures
run_batch() {
  local name=$1 rss_kb wall user sys secs
  shift
  # shellcheck disable=SC2086
  /usr/bin/time -v -o "$tmp/time" "$cli" batch \
    -m "openai/gpt-4o-mini;base_url=http://127.0.0.1:$port/v1" -j "$c" \
    ${BENCH_ARGS:-} "$@" "$tmp/in" >/dev/null 2>"$tmp/err" || {
    echo "bench/batch.sh: llmux batch failed:" >&2
    tail -5 "$tmp/err" >&2
    exit 1
  }
  rss_kb=$(sed -nE 's/^\s*Maximum resident set size \(kbytes\): ([0-9]+)/\1/p' "$tmp/time")
  wall=$(sed -nE 's/^\s*Elapsed \(wall clock\) time.*: (.*)$/\1/p' "$tmp/time")
  user=$(sed -nE 's/^\s*User time \(seconds\): (.*)$/\1/p' "$tmp/time")
  sys=$(sed -nE 's/^\s*System time \(seconds\): (.*)$/\1/p' "$tmp/time")
  secs=$(awk -v w="$wall" 'BEGIN { n = split(w, p, ":"); s = 0
    for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }')
  echo "$name"
  echo "  summary:    $(tail -1 "$tmp/err")"
  echo "  wall:       $wall ($(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }') lines/s)"
  echo "  cpu:        user ${user} s, sys ${sys} s"
  echo "  max RSS:    $(awk -v k="$rss_kb" 'BEGIN { printf "%.1f MiB", k / 1024 }') (target: under 64 MiB)"
}

echo "llmux batch: $n $fmt lines, $c in flight, $(nproc) CPUs ($(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -1))"
run_batch "run:" "${out_args[@]}"
if [ -n "${BENCH_RESUME:-}" ]; then
  echo "  output:     $(wc -l <"$tmp/out") lines, $(du -m "$tmp/out" | cut -f1) MiB"
  run_batch "--resume over it (every id done):" -o "$tmp/out" --resume
fi
