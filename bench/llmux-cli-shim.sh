#!/usr/bin/env sh
# Stands in for the `llmux` CLI in ../shared/bench-peers/gateway.sh, which
# runs "$LLMUX_CLI serve --config ...", until `llmux serve` is a CLI
# command: "serve ARGS" runs llmux-serve ARGS (same code, same options).
# bench/gateway.sh uses the real CLI instead once `llmux serve --help` works.
[ "${1:-}" = serve ] || { echo "llmux-cli-shim: only 'serve' is known" >&2; exit 2; }
shift
exec "${LLMUX_SERVE_BIN:?set LLMUX_SERVE_BIN to build/bin/llmux-serve}" "$@"
