#!/usr/bin/env bash
#
# tests/online/test_online.sh: the real providers, for a maintainer with
# keys. Off unless LLMUX_ONLINE=1 (exit 77, skipped); then each provider
# whose key (or, for Ollama, whose host) is set answers a chat, a stream
# and an embedding through the built CLI, and a bad key is refused with
# exit 2 or 1 and the provider's message. Costs a few cents of tokens.
#
#   OPENAI_API_KEY       openai: gpt-4o-mini, text-embedding-3-small
#   MISTRAL_API_KEY      mistral: mistral-small-latest, mistral-embed
#   AA_TOKEN             alephalpha: llama-3.1-8b-instruct, luminous-base
#   OLLAMA_HOST          ollama: $LLMUX_ONLINE_OLLAMA_MODEL (default
#                        llama3.2), embeddings with the same model
# Models can be overridden with LLMUX_ONLINE_<PROVIDER>_MODEL and
# LLMUX_ONLINE_<PROVIDER>_EMBED (upper-case provider name).
#
# usage: LLMUX_ONLINE=1 test_online.sh PATH/TO/llmux

set -u
CLI=${1:?usage: test_online.sh LLMUX}
if [ "${LLMUX_ONLINE:-0}" != 1 ]; then
    echo "skip: set LLMUX_ONLINE=1 (and provider keys) to run"
    exit 77
fi

T_NAME=online
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
RAN=0

# cli ARG...: the CLI with no stdin, through lib.sh's run
cli() {
    run "$CLI" "$@" </dev/null
}
setting() { # setting PROVIDER KIND DEFAULT
    local var
    var="LLMUX_ONLINE_$(echo "$1" | tr '[:lower:]' '[:upper:]')_$2"
    echo "${!var:-$3}"
}

provider() { # provider NAME MODEL EMBED_MODEL
    local p=$1 model embed
    model=$(setting "$p" MODEL "$2")
    embed=$(setting "$p" EMBED "$3")
    RAN=$((RAN + 1))
    cli chat -m "$p/$model" --max-tokens 20 --timeout 60 \
        "Reply with the single word: pong"
    if [ "$RC" -eq 0 ] && [ -s "$TMP/out" ]; then
        ok "$p chat: $(head -c 60 "$TMP/out" | tr '\n' ' ')"
    else
        bad "$p chat" "exit $RC"
    fi
    cli chat -m "$p/$model" --max-tokens 20 --timeout 60 --stream \
        "Count from 1 to 5, digits only."
    if [ "$RC" -eq 0 ] && grep -q '[0-9]' "$TMP/out"; then
        ok "$p --stream: $(head -c 60 "$TMP/out" | tr '\n' ' ')"
    else
        bad "$p --stream" "exit $RC"
    fi
    cli chat -m "$p/$model" --json --max-tokens 5 --timeout 60 hi
    if [ "$RC" -eq 0 ] && grep -q '"usage"' "$TMP/out"; then
        ok "$p --json: usage reported"
    else
        bad "$p --json" "exit $RC"
    fi
    cli embed -m "$p/$embed" --timeout 60 "llmux online test"
    if [ "$RC" -eq 0 ] && [ "$(wc -w <"$TMP/out")" -gt 10 ]; then
        ok "$p embed: $(wc -w <"$TMP/out") floats"
    else
        bad "$p embed" "exit $RC"
    fi
}

if [ -n "${OPENAI_API_KEY:-}" ]; then
    provider openai gpt-4o-mini text-embedding-3-small
    cli chat -m "openai/gpt-4o-mini;api_key=sk-not-a-real-key" hi
    if [ "$RC" -eq 2 ] || [ "$RC" -eq 1 ]; then
        ok "openai with a bad key: refused (exit $RC)"
    else
        bad "openai with a bad key: refused" "exit $RC"
    fi
fi
[ -n "${MISTRAL_API_KEY:-}" ] &&
    provider mistral mistral-small-latest mistral-embed
[ -n "${AA_TOKEN:-}" ] &&
    provider alephalpha llama-3.1-8b-instruct luminous-base
[ -n "${OLLAMA_HOST:-}" ] &&
    provider ollama llama3.2 "$(setting ollama MODEL llama3.2)"

if [ "$RAN" -eq 0 ]; then
    echo "skip: no provider key set"
    exit 77
fi
summary
