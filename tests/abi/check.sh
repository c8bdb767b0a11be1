#!/bin/sh
# tests/abi/check.sh: compares the ABI of a built libllmux.so with the
# baseline of the last release, abi/libllmux.abi (docs/ABI.md).
#
#   tests/abi/check.sh LIB            check (LIB: build/lib/libllmux.so.0.x.y)
#   tests/abi/check.sh --update LIB   rewrite the baseline from LIB (at a release)
#   tests/abi/check.sh --dump LIB OUT write LIB's dump to OUT, compare nothing
#
# The dump holds the exported functions with their symbol versions and the
# types of the public headers (include/llmux of this source tree, which
# must be the one LIB was built from) that they reach, and no path of the
# source or build tree: two builds of the same source give the same file.
#
# abidiff's exit status is a bit mask, but its bit 4 (ABI_CHANGE) covers
# a reordered struct or a changed parameter as well as an added function,
# so the check decides itself:
#   1, 2 (tool or usage error)                           fail
#   incompatible: bit 8 (removed function, changed enumerator...), or
#     any change left, other than an addition, once the structs that may
#     grow at their end (appendable.suppr) are allowed to   fail, unless
#     LIB's SONAME differs from the baseline's (a SOVERSION bump)
#   compatible only (added functions, types, enumerators, members
#     appended to those structs)                            pass; refresh
#     the baseline at the next release
# Exit status: 0 pass, 1 fail, 77 skipped (LIB has no debug info).
# Environment: LLMUX_ABI_BASELINE overrides the baseline file,
# LLMUX_ABI_HEADERS the public headers' directory (tests/abi/selftest.sh),
# ABIDW and ABIDIFF the tools.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
baseline=${LLMUX_ABI_BASELINE:-$root/abi/libllmux.abi}
headers=${LLMUX_ABI_HEADERS:-$root/include/llmux}
scope=$here/public-types.suppr
appendable=$here/appendable.suppr
abidw=${ABIDW:-abidw}
abidiff=${ABIDIFF:-abidiff}

usage() {
  sed -n '5,7p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

mode=check
case "${1:-}" in
  --update) mode=update; shift ;;
  --dump) mode=dump; shift ;;
  -*|'') usage ;;
esac
[ $# -eq 1 ] || { [ $mode = dump ] && [ $# -eq 2 ]; } || usage
lib=$1
[ -f "$lib" ] || { echo "check.sh: $lib: no such file" >&2; exit 1; }

# Without DWARF abidw sees symbols only and no type change would show.
if ! readelf -S --wide "$lib" 2>/dev/null | grep -q '\.debug_info'; then
  echo "check.sh: $lib has no debug info (build with -g, e.g." \
    "RelWithDebInfo): skipped" >&2
  exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

dump() { # dump LIB OUT
  # --no-corpus-path, --no-comp-dir-path, --no-show-locs, --short-locs:
  # no path at all in the file (translation units are named by base
  # name); --type-id-style hash: ids that do not renumber when a type is
  # added, so a refreshed baseline diffs readably.
  if ! LC_ALL=C "$abidw" --headers-dir "$headers" \
      --drop-private-types --suppressions "$scope" --drop-undefined-syms --no-elf-needed --no-corpus-path \
      --no-comp-dir-path --no-show-locs --short-locs --type-id-style hash \
      --out-file "$2" "$1" >"$tmp/abidw.log" 2>&1; then
    cat "$tmp/abidw.log" >&2
    echo "check.sh: FAIL: abidw could not read $1" >&2
    exit 1
  fi
}

soname_of() { # the soname attribute of an ABI dump
  sed -n "1,3s/.*<abi-corpus [^>]*soname='\([^']*\)'.*/\1/p" "$1" | head -n 1
}

case $mode in
  dump)
    dump "$lib" "$2"
    exit 0 ;;
  update)
    mkdir -p "$(dirname "$baseline")"
    dump "$lib" "$tmp/new.abi"
    mv "$tmp/new.abi" "$baseline"
    echo "check.sh: wrote $baseline from $lib (SONAME $(soname_of "$baseline"))"
    exit 0 ;;
esac

if [ ! -f "$baseline" ]; then
  echo "check.sh: FAIL: no baseline $baseline (create it with" \
    "tests/abi/check.sh --update LIB)" >&2
  exit 1
fi
dump "$lib" "$tmp/new.abi"
old_soname=$(soname_of "$baseline")
new_soname=$(soname_of "$tmp/new.abi")

# Nothing suppressed for the report: no default suppression file
# (~/.abignore and the like) may hide a change.
set +e
LC_ALL=C "$abidiff" --no-default-suppression "$baseline" "$tmp/new.abi" \
  >"$tmp/report" 2>&1
rc=$?
LC_ALL=C "$abidiff" --no-default-suppression --suppressions "$appendable" \
  "$baseline" "$tmp/new.abi" >"$tmp/policy" 2>&1
prc=$?
set -e

echo "check.sh: baseline $baseline (SONAME $old_soname)"
echo "check.sh: library  $lib (SONAME $new_soname)"
echo "check.sh: abidiff exit status $rc ($prc with appendable.suppr)"
[ $rc -eq 0 ] || cat "$tmp/report"

if [ $((rc & 3)) -ne 0 ] || [ $((prc & 3)) -ne 0 ]; then
  [ $rc -ne 0 ] || cat "$tmp/policy"
  echo "check.sh: FAIL: abidiff failed (status $rc, $prc)" >&2
  exit 1
fi
# What is left once appends to appendable structs are allowed: anything
# removed or changed (the summary lines' counts) is incompatible. The
# suppression would also hide a member moved within such a struct that
# grew: appendable.py compares their members.
incompatible=
if [ $((prc & 8)) -ne 0 ]; then
  incompatible=yes
elif [ $((prc & 4)) -ne 0 ] &&
    grep -Eq '(^|[^0-9])[1-9][0-9]* ([Rr]emoved|[Cc]hanged)' "$tmp/policy"; then
  incompatible=yes
fi
if ! python3 "$here/appendable.py" "$appendable" "$baseline" "$tmp/new.abi" \
    >"$tmp/members"; then
  incompatible=yes
  cat "$tmp/members" >>"$tmp/policy"
fi
if [ -n "$incompatible" ]; then
  if [ "$old_soname" != "$new_soname" ]; then
    echo "check.sh: PASS: incompatible ABI changes with a new SONAME" \
      "($old_soname -> $new_soname). At the release, refresh the" \
      "baseline: tests/abi/check.sh --update $lib"
    exit 0
  fi
  echo "check.sh: what docs/ABI.md does not allow within a SONAME:"
  awk '/summary:/ { on = 1 } on || /^appendable.py:/' "$tmp/policy"
  echo "check.sh: FAIL: incompatible ABI change under the same SONAME" \
    "$new_soname (report above). Undo it, make it compatible (see" \
    "docs/ABI.md), or bump SOVERSION." >&2
  exit 1
fi
if [ $rc -ne 0 ]; then
  echo "check.sh: PASS: compatible ABI changes only (report above). At the" \
    "next release, refresh the baseline: tests/abi/check.sh --update $lib"
  exit 0
fi
if [ "$old_soname" != "$new_soname" ]; then
  echo "check.sh: PASS: no ABI change but a new SONAME ($old_soname ->" \
    "$new_soname). Refresh the baseline: tests/abi/check.sh --update $lib"
  exit 0
fi
echo "check.sh: PASS: no ABI change from the baseline"
