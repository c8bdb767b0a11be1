# bench/redis_mock.sh: sourced by the Redis benchmarks (limits.sh,
# cache.sh) after they set `build`: starts a redis-server on the unix
# socket $tmp/r.sock and llmux-mock on a free port ($port), both stopped
# with $tmp removed when the script exits, and points LLMUX_PLUGIN_PATH at
# the build's plugins.
command -v redis-server >/dev/null || { echo "needs redis-server" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
redis-server --port 0 --unixsocket "$tmp/r.sock" --save '' --appendonly no \
    --daemonize no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=($!)
"$build/bin/llmux-mock" --port 0 --port-file "$tmp/port" --quiet \
    >"$tmp/mock.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    [ -S "$tmp/r.sock" ] && [ -s "$tmp/port" ] && break
    sleep 0.05
done
port=$(cat "$tmp/port")
export LLMUX_PLUGIN_PATH=${LLMUX_PLUGIN_PATH:-$(ls -d "$build"/lib*/llmux/plugins.d | head -1)}
