#!/usr/bin/env bash
# llmux developer entry point. On a fresh Debian machine:
#   ./build.sh demo    install what is missing, build, start llmux-mock, run the demo
#   ./build.sh test    install what is missing, build, run the whole test suite,
#                      install to a temporary prefix and as .deb packages and test that,
#                      then again under AddressSanitizer + UndefinedBehaviorSanitizer,
#                      the thread tests under ThreadSanitizer,
#                      then under valgrind memcheck, then fuzz each target briefly
#   ./build.sh build   install what is missing and build (into build/)
#   ./build.sh package build the Debian packages (CPack) into build-pkg/
#   ./build.sh bench   build, then bench/run.sh (needs nginx-light, python3-aiohttp, npm)
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

# Debian packages the build and tests need.
PKGS="build-essential dpkg-dev cmake pkg-config libcurl4-openssl-dev libuv1-dev \
libjson-c-dev libltdl-dev libcmocka-dev libhttp-parser-dev python3 locales scdoc \
libh2o-dev libyaml-dev libssl-dev libhiredis-dev"
# libhiredis-dev: the shared limits backend's Redis client (core/redis.c),
# asynchronous on the client's libuv loop; libssl-dev's libcrypto hashes
# API keys into its Redis keys too.
# What `test` needs beyond the build: valgrind memcheck, clang with its
# libFuzzer runtime for the fuzz targets' smoke run, abigail-tools for the
# ABI check (label abi), doxygen for the API reference and its check
# (label docs), curl for the gateway tests (label serve), openssl for the
# gateway TLS test's throwaway CA, chromium, nodejs and npm for the
# gateway's browser-page test (label serve: puppeteer-core drives
# chromium). scdoc, in PKGS, builds the man pages; libh2o-dev, libyaml-dev
# and libssl-dev (h2o's TLS; serve_tls.c builds the SSL_CTX), in PKGS,
# llmux-serve. redis-server: the fleet tests (label fleet) share limits
# between processes through a real server they start on a unix socket.
TEST_PKGS="valgrind clang libclang-rt-14-dev abigail-tools doxygen curl \
openssl chromium nodejs redis-server"
# For the HTTPS/HTTP2 test only (tests/tls, skipped without them).
TLS_PKGS="nginx-light openssl"

missing_of() { # prints the packages of "$@" that are not installed
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
      || echo "$p"
  done
}

deps() {
  local missing=() optional=()
  # shellcheck disable=SC2086 # word splitting wanted
  mapfile -t missing < <(missing_of $PKGS $([ "${1:-}" = test ] && echo $TEST_PKGS))
  # shellcheck disable=SC2086
  [ "${1:-}" = test ] && mapfile -t optional < <(missing_of $TLS_PKGS)
  # npm (the gateway's Node SDK and browser tests): Debian's nodejs needs
  # the npm package, NodeSource's bundles npm and conflicts with it; so
  # the package only when the command is missing
  if [ "${1:-}" = test ] && ! command -v npm >/dev/null; then missing+=(npm); fi
  [ ${#missing[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    if [ ${#missing[@]} -gt 0 ]; then
      echo "build.sh: installing ${missing[*]}" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if [ ${#optional[@]} -gt 0 ]; then
      echo "build.sh: installing ${optional[*]} (the HTTPS test)" >&2
      # never start nginx as a service; a failure only skips that test
      DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq \
        --no-install-recommends "${optional[@]}" >/dev/null ||
        echo "build.sh: could not install ${optional[*]}; test_tls is skipped" >&2
    fi
  elif [ ${#missing[@]} -gt 0 ]; then
    echo "build.sh: missing packages; run:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  else
    echo "build.sh: ${optional[*]} missing: test_tls is skipped" >&2
  fi
}

# The locale tests (a decimal comma must change nothing) need de_DE.UTF-8;
# without it they are skipped.
test_locale() {
  locale -a 2>/dev/null | grep -qix 'de_DE.utf-\{0,1\}8' && return 0
  if [ "$(id -u)" = 0 ]; then
    localedef -i de_DE -f UTF-8 de_DE.UTF-8 2>/dev/null ||
      echo "build.sh: cannot generate de_DE.UTF-8; the locale tests are skipped" >&2
  else
    echo "build.sh: de_DE.UTF-8 missing: the locale tests are skipped" >&2
  fi
}

build() { # build DIR [cmake args...]
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

start_mock() { # start_mock DIR -> sets MOCK_PID, MOCK_PORT
  local pf; pf=$(mktemp)
  rm -f "$pf"
  "$1/bin/llmux-mock" --port 0 --port-file "$pf" --quiet >/dev/null &
  MOCK_PID=$!
  for _ in $(seq 100); do [ -s "$pf" ] && break; sleep 0.05; done
  MOCK_PORT=$(cat "$pf"); rm -f "$pf"
}

case "${1:-}" in
  build)
    deps; build build ;;
  demo)
    deps; build build
    start_mock build
    trap 'kill $MOCK_PID 2>/dev/null || true' EXIT
    LLMUX_DEMO_BASE_URL="http://127.0.0.1:$MOCK_PORT" build/examples/demo ;;
  test)
    deps test
    test_locale
    build build -DLLMUX_VALGRIND_TESTS=ON
    (cd build && ctest --output-on-failure -j "$jobs" -LE valgrind)
    # installed to a temporary prefix and moved, then as Debian packages
    # unpacked into a scratch root: nothing from the build tree
    JOBS=$jobs tests/install/install.sh prefix
    JOBS=$jobs tests/install/install.sh deb
    build build-asan -DLLMUX_ENABLE_ASAN=ON -DLLMUX_ENABLE_UBSAN=ON \
      -DLLMUX_BUILD_BENCH=OFF -DLLMUX_BUILD_DOCS=OFF -DLLMUX_BUILD_MANPAGES=OFF
    (cd build-asan && export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 &&
      ctest --output-on-failure -j "$jobs" &&
      # the examples race a timer against the stream: 20 runs in a row
      ctest --output-on-failure -R '^test_examples$' --repeat until-fail:20)
    # ThreadSanitizer over the tests of threads: clients on threads, and
    # 8 threads submitting to one client (only what they need is built)
    cmake -S "$root" -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DLLMUX_ENABLE_TSAN=ON -DLLMUX_BUILD_BENCH=OFF -DLLMUX_BUILD_DOCS=OFF \
      -DLLMUX_BUILD_MANPAGES=OFF -DLLMUX_BUILD_EXAMPLES=OFF >/dev/null
    cmake --build build-tsan -j "$jobs" --target test_threads llmux_provider_openai \
      llmux_provider_mistral llmux_provider_ollama llmux_provider_alephalpha
    (cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
      ctest --output-on-failure -R '^test_threads$' --repeat until-fail:3)
    # valgrind memcheck over the unit, plugin, mock, fault and adversarial
    # tests (label valgrind)
    (cd build && ctest --output-on-failure -j "$jobs" -L valgrind)
    # every fuzz target: libFuzzer for FUZZ_TIME (30) s each over its corpus
    build build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
      -DLLMUX_FUZZ=ON -DLLMUX_BUILD_DOCS=OFF -DLLMUX_BUILD_MANPAGES=OFF
    tests/fuzz/smoke.sh build-fuzz ;;
  package)
    deps
    build build-pkg -DCMAKE_INSTALL_PREFIX=/usr -DLLMUX_INSTALL_RPATH=OFF \
      -DLLMUX_STATIC=ON -DLLMUX_DEBIAN_FILES=ON -DLLMUX_BUILD_TESTS=OFF \
      -DLLMUX_BUILD_EXAMPLES=OFF \
      -DLLMUX_BUILD_BENCH=OFF
    (cd build-pkg && cpack -G DEB) ;;
  bench)
    deps; build build
    shift; exec bench/run.sh "$@" ;;
  *)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
