#!/usr/bin/env bash
#
# tests/serve/test_page.sh: llmux-serve's browser page (GET /) in a real
# browser. Starts llmux-mock (one slow, with --chunk-delay) and
# llmux-serve in front of it, then page_test.mjs drives Debian's chromium
# through puppeteer-core: the page's headers (CSP with the build's hashes,
# nosniff, no-cache), /?route=R&prompt=P streaming into #answer token by
# token until #status is done (the text the gateway answers unstreamed,
# kept as text, never markup), error: on a failing and an unknown route,
# ?key= refused and the key field in sessionStorage, and Stop on a slow
# stream bringing the mock's in_flight back to 0 (the gateway cancels
# upstream); HEAD / and a JSON 405 for POST /. Saves a screenshot as
# BUILD-DIR/page.png.
#
# usage: test_page.sh LLMUX_SERVE LLMUX_MOCK BUILD-DIR
# LLMUX_PLUGIN_PATH must name the directory holding the openai plugin.
# Needs chromium, node and npm: installs chromium (and nodejs, npm) with
# apt-get when run as root, and puppeteer-core into BUILD-DIR/node-cache;
# exits 77 (skipped), saying why, when it cannot. CHROMIUM overrides the
# browser (default /usr/bin/chromium).

set -u

SERVE=${1:?usage: test_page.sh LLMUX_SERVE LLMUX_MOCK BUILD_DIR}
MOCK=${2:?usage: test_page.sh LLMUX_SERVE LLMUX_MOCK BUILD_DIR}
BUILD=${3:?usage: test_page.sh LLMUX_SERVE LLMUX_MOCK BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
# 24.x: the last line that runs on Debian 12's Node 20 (25 needs Node 22)
PUPPETEER=puppeteer-core@24.40.0
CACHE=$BUILD/node-cache

skip_all() {
    echo "skip: $*"
    exit 77
}

# what is missing of the browser, node and npm, as Debian package names
missing=()
[ -x "$CHROMIUM" ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        skip_all "${missing[*]} not installed (and not root with apt-get to install it)"
    fi
    echo "# installing ${missing[*]} with apt-get"
    # the lock timeout: another apt-get (a parallel build) may hold it
    if ! DEBIAN_FRONTEND=noninteractive timeout 600 apt-get \
        -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends \
        "${missing[@]}" >"$BUILD/apt.log" 2>&1; then
        skip_all "apt-get install ${missing[*]} failed (see $BUILD/apt.log)"
    fi
    [ -x "$CHROMIUM" ] || skip_all "$CHROMIUM missing after installing chromium"
fi

if [ ! -f "$CACHE/node_modules/puppeteer-core/package.json" ] ||
    ! grep -q "\"version\": \"${PUPPETEER#*@}\"" \
        "$CACHE/node_modules/puppeteer-core/package.json"; then
    echo "# installing $PUPPETEER into $CACHE"
    mkdir -p "$CACHE"
    [ -f "$CACHE/package.json" ] || echo '{"private": true}' >"$CACHE/package.json"
    if ! timeout 300 npm install --prefix "$CACHE" --no-audit --no-fund \
        --silent "$PUPPETEER" >"$CACHE/npm.log" 2>&1; then
        skip_all "npm could not install $PUPPETEER (offline? see $CACHE/npm.log)"
    fi
fi

T_NAME=page-test
# shellcheck source=../lib.sh
. "$SRC/tests/lib.sh"

SERVE_PID=
t_cleanup() {
    if [ -n "$SERVE_PID" ]; then
        kill "$SERVE_PID" 2>/dev/null
        wait "$SERVE_PID" 2>/dev/null
    fi
}

# 150 ms a word: long enough to see the answer grow and to Stop it part
# way on a loaded machine, short enough for a quick test
start_mock --quiet --chunk-delay 150
SLOW_MOCK=$MOCK_URL
cat >"$TMP/serve.yaml" <<EOF
routes:
  slow: "openai/gpt-4o-mini;base_url=$SLOW_MOCK/v1;api_key=sk-test"
  down: ["openai/gpt-4o-mini;base_url=http://127.0.0.1:1/v1;api_key=sk-test;max_retries=0"]
EOF
"$SERVE" --config "$TMP/serve.yaml" --listen 127.0.0.1:0 \
    --port-file "$TMP/sport" 2>"$TMP/serve.err" &
SERVE_PID=$!
if ! wait_port "$TMP/sport" "$SERVE_PID"; then
    echo "cannot start llmux-serve:"
    cat "$TMP/serve.err"
    exit 1
fi

PAGE_CACHE=$CACHE CHROMIUM=$CHROMIUM SLOW_MOCK=$SLOW_MOCK \
    GATEWAY="http://127.0.0.1:$(cat "$TMP/sport")" SCREENSHOT="$BUILD/page.png" \
    node "$HERE/page_test.mjs"
RC=$?

# the gateway must still be up and exit cleanly after the browser left
kill -TERM "$SERVE_PID"
wait "$SERVE_PID"
SRC_RC=$?
SERVE_PID=
if [ "$SRC_RC" -ne 0 ]; then
    echo "FAIL - llmux-serve exits 0 on SIGTERM after the browser test"
    echo "       exit status $SRC_RC; stderr: $(head -c 600 "$TMP/serve.err")"
    RC=1
fi
exit "$RC"
