#!/usr/bin/env bash
# tests/install/install.sh: llmux installed as a user or a packager would,
# with nothing of the build tree left.
#
#   install.sh prefix   configure and build a fresh tree (static libraries
#                       on), install it to a temporary prefix, delete the
#                       build tree, then: no build path in the installed
#                       library; the installed CLI finds its plugins and
#                       answers against the installed llmux-mock with no
#                       LD_LIBRARY_PATH or LLMUX_PLUGIN_PATH; the README's
#                       example builds with pkg-config and with
#                       find_package(llmux), and statically with the
#                       in-tree providers linked in, and runs; the
#                       template plugin builds out of tree against the
#                       installed headers and loads; then the prefix is
#                       moved and all of it runs again.
#   install.sh deb      build the Debian packages with CPack (prefix /usr,
#                       no RUNPATH), check their contents and dependencies,
#                       unpack them into a scratch root and run
#                       `llmux providers` and a chat from there; lintian's
#                       findings are printed when lintian is installed,
#                       never failing the test.
#
# Environment: LLMUX_SRC (the source tree; default: this script's ../..),
# JOBS (build parallelism), KEEP=1 keeps the work directory.
set -euo pipefail
mode=${1:-prefix}
src=$(cd "${LLMUX_SRC:-$(dirname "$0")/../..}" && pwd)
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
work=$(mktemp -d /tmp/llmux-install.XXXXXX)
mock_pid=
fails=0

cleanup() {
  [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null && wait "$mock_pid" 2>/dev/null
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
check() { # check "what" cmd...: runs cmd, its output on failure
  local what=$1; shift
  if out=$("$@" 2>&1); then ok "$what"; else bad "$what"; echo "$out" | tail -20 >&2; fi
}
# runs with the environment a fresh shell would have: nothing pointing
# into a build tree or a plugin directory
clean_env() {
  env -u LD_LIBRARY_PATH -u LLMUX_PLUGIN_PATH -u PKG_CONFIG_PATH \
    -u CMAKE_PREFIX_PATH "$@"
}

build_tree() { # build_tree DIR cmake-args...
  local dir=$1; shift
  cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLLMUX_BUILD_TESTS=OFF -DLLMUX_BUILD_EXAMPLES=OFF -DLLMUX_BUILD_BENCH=OFF \
    "$@" >"$work/cmake.log" || { cat "$work/cmake.log" >&2; exit 1; }
  cmake --build "$dir" -j "$jobs" >"$work/build.log" 2>&1 ||
    { tail -40 "$work/build.log" >&2; exit 1; }
}

start_mock() { # start_mock BIN: sets mock_pid, port
  local pf=$work/mock.port
  rm -f "$pf"
  "$1" --port 0 --port-file "$pf" --quiet >"$work/mock.log" 2>&1 &
  mock_pid=$!
  for _ in $(seq 100); do [ -s "$pf" ] && break; sleep 0.05; done
  [ -s "$pf" ] || { echo "llmux-mock did not start" >&2; cat "$work/mock.log" >&2; exit 1; }
  port=$(cat "$pf")
}

# The README's example, word for word (the C block after "## Using the
# library"), so the README cannot drift from what builds.
readme_example() {
  awk '/^## Using the library/{f=1} f&&/^```c$/{p=1;next} p&&/^```$/{exit} p' \
    "$src/README.md" >"$1"
  grep -q 'llmux_run' "$1" || { echo "no example found in README.md" >&2; exit 1; }
}

# ---- prefix ---------------------------------------------------------------

no_build_paths() { # no_build_paths FILE...: neither tree's path inside
  local f hit=0
  for f in "$@"; do
    if strings -a "$f" | grep -F -e "$src" -e "$work/build" >/dev/null; then
      bad "$f contains a build or source path:"
      strings -a "$f" | grep -F -e "$src" -e "$work/build" | head -5 >&2
      hit=1
    fi
  done
  if [ $hit = 0 ]; then ok "no build or source path in $(basename "$1") ($# files)"; fi
}

# serve_smoke TAG [VAR=VALUE...] LLMUX: the installed LLMUX, run with
# clean_env's environment and the VARs, serves a chat completion from the mock through `llmux serve` and exits 0
# on SIGTERM. Skipped, saying so, when llmux was built without the gateway.
serve_smoke() {
  local tag=$1 pid i sport body; shift
  # env, not the clean_env function: run in the background, the pid is
  # then llmux's own, which the SIGTERM below must reach
  set -- env -u LD_LIBRARY_PATH -u LLMUX_PLUGIN_PATH -u PKG_CONFIG_PATH \
    -u CMAKE_PREFIX_PATH "$@"
  if "$@" serve --config /dev/null 2>&1 | grep -q 'built without the gateway'; then
    echo "skip: $tag: llmux serve (built without libh2o/libyaml)"
    serve_built=0
    return 0
  fi
  serve_built=1
  printf 'routes:\n  fast: "openai/gpt-4o-mini;base_url=http://127.0.0.1:%s/v1"\n' \
    "$port" >"$work/gw.yaml"
  rm -f "$work/gw.port"
  "$@" serve --config "$work/gw.yaml" --listen 127.0.0.1:0 \
    --port-file "$work/gw.port" 2>"$work/gw.log" &
  pid=$!
  for i in $(seq 200); do [ -s "$work/gw.port" ] && break; sleep 0.05; done
  sport=$(cat "$work/gw.port" 2>/dev/null)
  body=$(curl -s -m 20 -H 'Content-Type: application/json' --data-binary \
    '{"model":"fast","messages":[{"role":"user","content":"Say hello."}]}' \
    "http://127.0.0.1:$sport/v1/chat/completions" 2>&1)
  if echo "$body" | grep -q '"object":"chat.completion"'; then
    ok "$tag: installed llmux serve answers a chat completion"
  else
    bad "$tag: installed llmux serve: $body $(cat "$work/gw.log")"
  fi
  kill -TERM "$pid" 2>/dev/null
  if wait "$pid"; then ok "$tag: llmux serve exits 0 on SIGTERM"
  else bad "$tag: llmux serve exit status $? on SIGTERM"; fi
}

# every check that needs only the installed tree at $1
installed_checks() {
  local p=$1 libdir=$1/$2 tag=$3
  export OPENAI_API_KEY=sk-install-test OPENAI_BASE_URL=http://127.0.0.1:$port/v1
  local pv
  pv=$(clean_env "$p/bin/llmux" providers 2>&1) || { bad "$tag: llmux providers: $pv"; }
  if echo "$pv" | grep -q "openai" && echo "$pv" | grep -q "groq"; then
    ok "$tag: installed llmux lists its plugins and descriptors"
  else
    bad "$tag: llmux providers does not list openai and groq: $pv"
  fi
  if echo "$pv" | grep -q "$libdir/llmux/plugins.d"; then
    ok "$tag: plugins come from the installed tree"
  else
    bad "$tag: plugins not from $libdir/llmux/plugins.d: $pv"
  fi
  if command -v man >/dev/null; then
    check "$tag: man llmux finds the installed page" sh -c \
      "MANPATH='$p/share/man' MANWIDTH=80 man llmux 2>/dev/null | grep -q 'providers'"
  fi
  check "$tag: installed llmux chats with the mock" \
    clean_env "$p/bin/llmux" chat -m openai/gpt-4o-mini "Say hello."
  serve_smoke "$tag" "$p/bin/llmux"

  # the README example with pkg-config (rpath: the prefix is not a system
  # directory, so the program is told where the library is)
  local pc="env PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config"
  # shellcheck disable=SC2046
  check "$tag: README example builds with pkg-config" \
    cc -Wall -o "$work/hello-pc" "$work/hello.c" $($pc --cflags --libs llmux) \
    -Wl,-rpath,"$($pc --variable=libdir llmux)"
  check "$tag: pkg-config example runs" clean_env "$work/hello-pc"
  if [ "$($pc --variable=plugindir llmux)" -ef "$libdir/llmux/plugins.d" ]; then
    ok "$tag: pkg-config's plugindir is the installed one"
  else
    bad "$tag: plugindir $($pc --variable=plugindir llmux)"
  fi
  if $pc --static --libs llmux >"$work/pcout" && grep -q -- -lltdl "$work/pcout"; then
    ok "$tag: pkg-config --static has -lltdl"
  else
    bad "$tag: pkg-config --static --libs llmux lacks -lltdl"
  fi

  # the same with CMake's find_package and llmux::llmux
  mkdir -p "$work/cm-$tag"
  cat >"$work/cm-$tag/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.16)
project(hello C)
find_package(llmux 0.1 REQUIRED)
add_executable(hello "$work/hello.c")
target_link_libraries(hello PRIVATE llmux::llmux)
EOF
  check "$tag: README example builds with find_package(llmux)" sh -c "
    cmake -S '$work/cm-$tag' -B '$work/cm-$tag/b' -DCMAKE_PREFIX_PATH='$p' &&
    cmake --build '$work/cm-$tag/b'"
  check "$tag: find_package example runs" clean_env "$work/cm-$tag/b/hello"

  # statically linked, with the in-tree providers: no plugin file needed
  sed 's|#include <llmux/llmux.h>|#include <llmux/llmux.h>\n#include <llmux/builtin.h>|;
       s|    int rc = llmux_request_new|    int rc = llmux_register_builtin_providers();\n    if (rc == 0) rc = llmux_request_new|' \
    "$work/hello.c" >"$work/hello-static.c"
  # shellcheck disable=SC2046
  check "$tag: static example links libllmux.a and libllmux-providers.a" \
    cc -Wall -o "$work/hello-static" "$work/hello-static.c" \
    $($pc --cflags llmux-providers) "$libdir/libllmux-providers.a" \
    "$libdir/libllmux.a" $($pc --libs libcurl libuv json-c hiredis libcrypto) \
    $($pc --static --libs-only-l llmux | tr ' ' '\n' | grep -x -e -lltdl -e -lpthread)
  if [ ! -x "$work/hello-static" ] || ! readelf -d "$work/hello-static" >"$work/dyn" ||
    grep -q 'libllmux' "$work/dyn"; then
    bad "$tag: the static example depends on libllmux.so"
  else
    ok "$tag: the static example does not need libllmux.so"
  fi
  # no plugin directory at all: the built-in providers answer
  check "$tag: static example runs with no plugin directory" \
    clean_env LLMUX_PLUGIN_PATH= "$work/hello-static"

  # the template plugin, built out of tree as its comment says
  mkdir -p "$work/plug-$tag"
  # shellcheck disable=SC2046
  check "$tag: template plugin builds against the installed headers" \
    cc -shared -fPIC -fvisibility=hidden -Wall -o "$work/plug-$tag/myprov.so" \
    "$($pc --variable=templatedir llmux)/template.c" $($pc --cflags llmux) \
    $(pkg-config --cflags --libs json-c)
  check "$tag: the installed CLI loads it" sh -c "
    LLMUX_PLUGIN_PATH='$work/plug-$tag' '$p/bin/llmux' providers | grep -q '^myprov '"
  check "$tag: and chats through it" env -u LD_LIBRARY_PATH \
    LLMUX_PLUGIN_PATH="$work/plug-$tag" "$p/bin/llmux" chat \
    -m "myprov/m;base_url=http://127.0.0.1:$port/v1;api_key=t" "Say hello."
}

run_prefix() {
  local p1=$work/prefix p2=$work/moved libdir rel
  build_tree "$work/build" -DLLMUX_STATIC=ON -DCMAKE_INSTALL_PREFIX=/opt/unused
  rel=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$work/build/CMakeCache.txt")
  cmake --install "$work/build" --prefix "$p1" >"$work/install.log"
  rm -rf "$work/build"
  ok "installed to a temporary prefix; build tree deleted"
  libdir=$p1/$rel

  # nothing of either tree compiled in
  no_build_paths "$libdir"/libllmux.so.* "$p1/bin/llmux" \
    "$libdir"/llmux/plugins.d/*.so "$libdir/libllmux.a"
  local st=0
  grep -rlF -e "$work/build" -e "$src" "$libdir/pkgconfig" "$libdir/cmake" \
    "$p1/share" "$p1/include" || st=$?
  case $st in
    1) ok "pkg-config, CMake, headers, docs and man pages do not name the build or source tree" ;;
    0) bad "the files above name the build or source tree" ;;
    *) bad "grep over the installed files failed ($st)" ;;
  esac
  if readelf -d "$p1/bin/llmux" >"$work/dyn" && grep -q 'RUNPATH.*\$ORIGIN/\.\./' "$work/dyn"; then
    ok "installed llmux has a relative RUNPATH"
  else
    bad "installed llmux RUNPATH: $(readelf -d "$p1/bin/llmux" | grep -i path)"
  fi
  for f in include/llmux/llmux.h include/llmux/builtin.h "$rel/pkgconfig/llmux.pc" \
    share/man/man7/llmux-plugin.7 share/man/man1/llmux-mock.1 share/man/man1/llmux.1 \
    share/bash-completion/completions/llmux share/zsh/vendor-completions/_llmux \
    share/doc/llmux/html/index.html \
    "$rel/cmake/llmux/llmux-config.cmake" share/llmux/template/template.c \
    share/doc/llmux/LICENSE share/doc/llmux/examples/basic.c bin/llmux-mock \
    share/doc/llmux/examples/gateway.yaml; do
    [ -e "$p1/$f" ] && ok "installed $f" || bad "not installed: $f"
  done
  if grep -q "build tree" "$p1/include/llmux/llmux.h"; then
    bad "installed llmux.h speaks of the build tree"
  fi

  readme_example "$work/hello.c"
  start_mock "$p1/bin/llmux-mock"
  installed_checks "$p1" "$rel" installed

  # the whole tree moved elsewhere keeps working (the programs built
  # above linked the old libdir by rpath: they are built again)
  mv "$p1" "$p2"
  rm -rf "$work/hello-pc" "$work/hello-static" "$work/plug-moved" "$work/cm-moved"
  installed_checks "$p2" "$rel" moved
}

# ---- deb ------------------------------------------------------------------

run_deb() {
  local b=$work/build root=$work/root arch multi deb version
  command -v dpkg-deb >/dev/null && command -v dpkg-shlibdeps >/dev/null ||
    { echo "install.sh deb: needs dpkg-dev" >&2; exit 1; }
  build_tree "$b" -DCMAKE_INSTALL_PREFIX=/usr -DLLMUX_INSTALL_RPATH=OFF -DLLMUX_STATIC=ON \
    -DLLMUX_DEBIAN_FILES=ON
  (cd "$b" && cpack -G DEB >"$work/cpack.log" 2>&1) ||
    { tail -30 "$work/cpack.log" >&2; exit 1; }
  arch=$(dpkg --print-architecture)
  version=$(sed -n 's/^project(llmux VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
  multi=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$b/CMakeCache.txt")
  ls "$b"/*.deb | sed 's|.*/|built |'
  for pkg in libllmux0 libllmux-dev llmux llmux-mock llmux-doc; do
    deb=$(ls "$b"/${pkg}_*.deb 2>/dev/null | head -1) || true
    [ -n "$deb" ] || { bad "no package $pkg"; continue; }
    case $(basename "$deb") in
      ${pkg}_${version}-1_${arch}.deb | ${pkg}_${version}-1_all.deb) ok "package $(basename "$deb")" ;;
      *) bad "package file name $(basename "$deb")" ;;
    esac
    dpkg-deb -x "$deb" "$root"
  done
  [ "$multi" = "lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "${multi#lib/}")" ] &&
    ok "libdir is the multiarch $multi" || bad "libdir $multi is not multiarch"
  # plugins in /usr/lib/<multiarch>/llmux/plugins.d
  dpkg-deb -c "$b"/libllmux0_*.deb >"$work/contents"
  grep -q "\./usr/$multi/llmux/plugins.d/openai.so" "$work/contents" &&
    ok "libllmux0 has /usr/$multi/llmux/plugins.d/openai.so" ||
    bad "libllmux0 lacks /usr/$multi/llmux/plugins.d/openai.so"
  for f in usr/share/man/man1/llmux.1.gz usr/share/bash-completion/completions/llmux; do
    [ -f "$root/$f" ] && ok "llmux has /$f" || bad "no /$f in the packages"
  done
  local dep
  dep=$(dpkg-deb -f "$b"/libllmux0_*.deb Depends)
  echo "libllmux0 Depends: $dep"
  for lib in libcurl libuv1 libjson-c libltdl7 libhiredis libssl libc6; do
    echo "$dep" | grep -q "$lib" && ok "libllmux0 depends on $lib" ||
      bad "libllmux0 Depends lacks $lib: $dep"
  done
  dep=$(dpkg-deb -f "$b"/llmux_*.deb Depends)
  echo "$dep" | grep -q "libllmux0" && ok "llmux depends on libllmux0" ||
    bad "llmux Depends lacks libllmux0: $dep"
  if ! readelf -d "$root/usr/bin/llmux" >"$work/dyn" || grep -qi 'rpath\|runpath' "$work/dyn"; then
    bad "the packaged llmux has a RUNPATH"
  else
    ok "the packaged llmux has no RUNPATH"
  fi
  no_build_paths "$root/usr/$multi"/libllmux.so.* "$root/usr/bin/llmux"
  # run from the scratch root: the library finds the root's plugins
  local pv
  pv=$(clean_env LD_LIBRARY_PATH="$root/usr/$multi" "$root/usr/bin/llmux" providers 2>&1) ||
    bad "llmux providers from the scratch root: $pv"
  echo "$pv" | grep -q "$root/usr/$multi/llmux/plugins.d/openai.so" &&
    ok "llmux providers from the scratch root lists its plugins" ||
    bad "llmux providers from the scratch root: $pv"
  start_mock "$root/usr/bin/llmux-mock"
  check "a chat from the scratch root" clean_env LD_LIBRARY_PATH="$root/usr/$multi" \
    OPENAI_API_KEY=k OPENAI_BASE_URL="http://127.0.0.1:$port/v1" \
    "$root/usr/bin/llmux" chat -m openai/gpt-4o-mini "Say hello."
  serve_smoke deb LD_LIBRARY_PATH="$root/usr/$multi" OPENAI_API_KEY=k \
    "$root/usr/bin/llmux"
  if [ "$serve_built" = 0 ]; then
    :
  elif [ -x "$root/usr/bin/llmux-serve" ]; then
    ok "the llmux package has /usr/bin/llmux-serve"
  else
    bad "no /usr/bin/llmux-serve in the packages"
  fi
  if command -v lintian >/dev/null; then
    echo "lintian (informational):"
    lintian --tag-display-limit 0 "$b"/*.deb 2>&1 | sed 's/^/  /' || true
  fi
}

case $mode in
  prefix) run_prefix ;;
  deb) run_deb ;;
  *) echo "usage: install.sh prefix|deb" >&2; exit 2 ;;
esac
if [ $fails -gt 0 ]; then
  echo "install.sh $mode: $fails check(s) failed" >&2
  exit 1
fi
echo "install.sh $mode: all checks passed"
