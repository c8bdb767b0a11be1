#!/usr/bin/env bash
# tests/fuzz/smoke.sh BUILD_DIR [TARGET...]
#
# A short fuzzing run of every fuzz target (or of those named) of a build
# configured with -DCMAKE_C_COMPILER=clang -DLLMUX_FUZZ=ON: each target in
# turn, one process, over a scratch copy of its committed corpus with its
# dictionary. Prints one line per target (executions, coverage, corpus
# size) and exits non-zero if any target crashed, timed out, ran out of
# memory or leaked; the reproducer is kept under
# BUILD_DIR/fuzz-artifacts/<target>/ (commit it to corpus/<target>/ with
# the fix, as a regression input).
#
# Environment: FUZZ_TIME seconds per target (default 30), FUZZ_ARGS extra
# libFuzzer flags. UBSAN_OPTIONS defaults to halt_on_error=1 so that any
# undefined behaviour fails; ubsan.supp beside this script, when present,
# holds back known issues that are being fixed elsewhere.
set -u

if [ $# -lt 1 ]; then
    echo "usage: $0 BUILD_DIR [TARGET...]" >&2
    exit 2
fi
build=$(cd "$1" && pwd) || exit 2
shift
here=$(cd "$(dirname "$0")" && pwd)
time=${FUZZ_TIME:-30}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for d in "$here"/corpus/*/; do
        targets+=("$(basename "$d")")
    done
fi

ubsan=halt_on_error=1:print_stacktrace=1
if [ -f "$here/ubsan.supp" ]; then
    ubsan=$ubsan:suppressions=$here/ubsan.supp
fi
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-$ubsan}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=0
for t in "${targets[@]}"; do
    bin=$build/tests/fuzz/fuzz_$t
    if [ ! -x "$bin" ]; then
        echo "fuzz_$t: FAILED: $bin not built" >&2
        failed=1
        continue
    fi
    if ! grep -q LLVMFuzzerRunDriver "$bin" 2>/dev/null; then
        echo "fuzz_$t: FAILED: not a libFuzzer build (configure with" \
            "-DCMAKE_C_COMPILER=clang -DLLMUX_FUZZ=ON)" >&2
        failed=1
        continue
    fi
    work=$scratch/$t
    arts=$build/fuzz-artifacts/$t
    mkdir -p "$work" "$arts"
    cp "$here/corpus/$t/"* "$work/" 2>/dev/null
    before=$(ls "$work" | wc -l)
    dict=()
    [ -f "$here/dict/$t.dict" ] && dict=(-dict="$here/dict/$t.dict")
    log=$scratch/$t.log
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$time" -timeout=5 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$arts/" "${dict[@]}" \
        ${FUZZ_ARGS:-} "$work" >"$log" 2>&1
    rc=$?
    stats=$(grep -E '^#[0-9]+' "$log" | tail -1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(echo "$stats" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$stats" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    after=$(ls "$work" | wc -l)
    line="fuzz_$t: ${execs:-?} execs, cov ${cov:-?}, ft ${ft:-?}, corpus $before -> $after"
    if [ $rc -ne 0 ] || grep -qE '^==[0-9]+==ERROR|^SUMMARY: |runtime error:' "$log"; then
        echo "$line: FAILED (exit $rc)"
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written|check failed' "$log" | head -8
        echo "  log: $arts/smoke.log"
        cp "$log" "$arts/smoke.log"
        failed=1
    else
        echo "$line: ok"
    fi
done
exit $failed
