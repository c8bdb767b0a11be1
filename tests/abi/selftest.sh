#!/bin/sh
# tests/abi/selftest.sh: shows that tests/abi/check.sh fails and passes
# when it should, on a tiny library built in versions: a baseline, then
# one change at a time, each compared with the baseline.
#   CC (default cc), ABIDW, ABIDIFF as for check.sh.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$tmp/include/llmux"
export LLMUX_ABI_HEADERS="$tmp/include/llmux"
export LLMUX_ABI_BASELINE="$tmp/baseline.abi"

# build VARIANT SOVERSION [CFLAGS...]: the library of one variant. The
# header's parts change with -D flags: the same text for all versions.
cat >"$tmp/include/llmux/t.h" <<'EOF'
#include <stddef.h>
/* caller-allocated, no size: fixed layout */
typedef struct llmux_provider_info {
#ifdef SWAP
    long b;
    int a;
#else
    int a;
    long b;
#endif
} llmux_provider_info;
/* size-versioned (tests/abi/appendable.suppr) */
typedef struct llmux_client_options {
    unsigned version;
#ifdef OPT_SWAP
    long y;
    int x;
#else
    int x;
    long y;
#endif
#ifdef OPT_APPEND
    int z;
#endif
} llmux_client_options;
int llmux_t_probe(llmux_provider_info *info);
int llmux_t_new(const llmux_client_options *o);
#ifdef ADD_FN
int llmux_t_added(int v);
#endif
#ifndef DEL_FN
int llmux_t_gone(void);
#endif
#ifdef SIG
int llmux_t_sig(long v, int w);
#else
int llmux_t_sig(int v);
#endif
EOF
cat >"$tmp/t.c" <<'EOF'
#include "llmux/t.h"
int llmux_t_probe(llmux_provider_info *info) { return info->a; }
int llmux_t_new(const llmux_client_options *o) { return o->x; }
#ifdef ADD_FN
int llmux_t_added(int v) { return v; }
#endif
#ifndef DEL_FN
int llmux_t_gone(void) { return 0; }
#endif
#ifdef SIG
int llmux_t_sig(long v, int w) { return (int)v + w; }
#else
int llmux_t_sig(int v) { return v; }
#endif
EOF

build() { # build NAME SOVERSION [CFLAGS...]
  name=$1 so=$2
  shift 2
  "$cc" -shared -fPIC -g -O0 -I"$tmp/include" "$@" \
    -Wl,-soname,libt.so.$so -o "$tmp/$name.so" "$tmp/t.c"
}

fails=0
expect() { # expect STATUS NAME: check.sh on NAME must exit STATUS
  want=$1 name=$2
  set +e
  sh "$here/check.sh" "$tmp/$name.so" >"$tmp/$name.log" 2>&1
  got=$?
  set -e
  verdict=$(grep -E '(PASS|FAIL):|skipped' "$tmp/$name.log" | tail -n 1 |
    sed 's/^check.sh: //' | cut -c1-72)
  if [ "$got" -eq "$want" ]; then
    echo "ok   $name: exit $got: $verdict"
  else
    echo "FAIL $name: exit $got, expected $want"
    sed 's/^/     /' "$tmp/$name.log"
    fails=$((fails + 1))
  fi
}

build base 0
sh "$here/check.sh" --update "$tmp/base.so" >/dev/null
build same 0;                    expect 0 same
build added_function 0 -DADD_FN; expect 0 added_function
build appended_member 0 -DOPT_APPEND
expect 0 appended_member
build reordered_struct 0 -DSWAP; expect 1 reordered_struct
build changed_signature 0 -DSIG; expect 1 changed_signature
build removed_function 0 -DDEL_FN
expect 1 removed_function
build appended_and_moved 0 -DOPT_APPEND -DOPT_SWAP
expect 1 appended_and_moved
build reordered_new_soname 1 -DSWAP
expect 0 reordered_new_soname
"$cc" -shared -fPIC -g0 -I"$tmp/include" -Wl,-soname,libt.so.0 \
  -o "$tmp/no_debug_info.so" "$tmp/t.c"
expect 77 no_debug_info
# a tool error (here an unreadable baseline) fails
cp "$tmp/same.so" "$tmp/broken_baseline.so"
echo '<abi-corpus' >"$tmp/baseline.abi"
expect 1 broken_baseline

if [ $fails -ne 0 ]; then
  echo "selftest.sh: $fails of the cases above went wrong"
  exit 1
fi
echo "selftest.sh: check.sh decided every case as expected"
