# tests/lib.sh: what the shell tests share (source it; bash).
#
# Before sourcing, set T_NAME (names the temporary directory) and, for
# start_mock, MOCK (the llmux-mock program). It provides:
#   TMP                  a temporary directory, removed at exit
#   PASS FAIL SKIP       the counts; summary prints them and sets the status
#   ok NAME              a passed check
#   bad NAME [LINE...]   a failed check, with detail lines and the start of
#                        $TMP/err
#   skip NAME            a check that could not run here
#   run CMD...           runs CMD; stdout in $TMP/out, stderr in $TMP/err,
#                        status in RC (stdin as the caller gives it)
#   wait_port FILE PID   waits for a server started in the background to
#                        write its port to FILE (fails if PID exits)
#   start_mock [ARG...]  starts llmux-mock on a free port; sets PORT and
#                        MOCK_URL (http://127.0.0.1:PORT); its output goes to
#                        $TMP/mock-N.out and .err; stopped at exit
#   make_certs           throwaway certificates in TMP (needs openssl):
#                        ca.pem (a CA), srv.pem and srv.key (127.0.0.1,
#                        signed by it), other.pem (an unrelated CA)
#   summary              "# N skipped" (when any), "P passed, F failed",
#                        and a status of 0 only when nothing failed
# A test that starts more (a web server) defines t_cleanup, which runs at
# exit before the mocks are stopped and TMP is removed.

TMP=$(mktemp -d "${TMPDIR:-/tmp}/llmux-${T_NAME:-test}.XXXXXX")
MOCK_PIDS=()
PASS=0
FAIL=0
SKIP=0
RC=0

t_exit() {
    local p
    if declare -F t_cleanup >/dev/null; then
        t_cleanup
    fi
    for p in "${MOCK_PIDS[@]}"; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap t_exit EXIT
trap 'exit 130' INT TERM

ok() {
    PASS=$((PASS + 1))
    echo "ok   - $1"
}

bad() {
    local l
    FAIL=$((FAIL + 1))
    echo "FAIL - $1"
    shift
    for l in "$@"; do
        printf '       %s\n' "$l"
    done
    if [ -s "$TMP/err" ]; then
        printf '       stderr: %s\n' "$(head -c 600 "$TMP/err")"
    fi
}

skip() {
    SKIP=$((SKIP + 1))
    echo "skip - $1"
}

run() {
    "$@" >"$TMP/out" 2>"$TMP/err"
    RC=$?
}

# wait_port FILE PID: waits up to 10 s for a server (PID) to write its
# port to FILE; fails when it exits first or the time is up.
wait_port() {
    for _ in $(seq 1 200); do
        if [ -s "$1" ] && grep -qE '^[0-9]+$' "$1"; then
            return 0
        fi
        if ! kill -0 "$2" 2>/dev/null; then
            return 1
        fi
        sleep 0.05
    done
    return 1
}

start_mock() {
    local n=${#MOCK_PIDS[@]} pf="$TMP/port-${#MOCK_PIDS[@]}"
    "${MOCK:?start_mock needs MOCK}" --port 0 --port-file "$pf" "$@" \
        >"$TMP/mock-$n.out" 2>"$TMP/mock-$n.err" &
    MOCK_PIDS+=($!)
    if wait_port "$pf" "${MOCK_PIDS[$n]}"; then
        PORT=$(cat "$pf")
        MOCK_URL="http://127.0.0.1:$PORT"
        return 0
    fi
    echo "cannot start llmux-mock:"
    cat "$TMP/mock-$n.err"
    exit 1
}

# make_certs: a CA, a certificate for 127.0.0.1 it signs, and another CA,
# all made now (keys are never committed); exits 1 when openssl fails.
make_certs() {
    _cert() { # _cert NAME SUBJECT [openssl req args...]
        local name=$1 subj=$2
        shift 2
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$TMP/$name.key" -subj "$subj" "$@" 2>>"$TMP/openssl.log"
    }
    printf 'subjectAltName=IP:127.0.0.1\n' >"$TMP/ext"
    if ! { _cert ca "/CN=llmux test CA" -x509 -days 2 -out "$TMP/ca.pem" &&
        _cert other "/CN=some other CA" -x509 -days 2 -out "$TMP/other.pem" &&
        _cert srv "/CN=127.0.0.1" -out "$TMP/srv.csr" &&
        openssl x509 -req -in "$TMP/srv.csr" -CA "$TMP/ca.pem" \
            -CAkey "$TMP/ca.key" -CAcreateserial -days 2 -extfile "$TMP/ext" \
            -out "$TMP/srv.pem" 2>>"$TMP/openssl.log"; }; then
        echo "cannot make the certificates:"
        cat "$TMP/openssl.log"
        exit 1
    fi
}

summary() {
    if [ "$SKIP" -gt 0 ]; then
        echo "# $SKIP skipped"
    fi
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
}
