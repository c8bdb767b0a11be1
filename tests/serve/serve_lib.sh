# shellcheck shell=bash
# tests/serve/serve_lib.sh: what the gateway's shell tests share (source
# it; bash). Before sourcing, set T_NAME, SERVE (llmux-serve), MOCK
# (llmux-mock) and SRC (the source tree). Exits 77 (skipped) without curl
# or python3. Besides tests/lib.sh's helpers it provides:
#   start_serve CONFIG [ERRFILE [ARG...]]
#                          llmux-serve on a free port: SPORT, SPID, SURL
#                          (${SCHEME:-http}://127.0.0.1:SPORT)
#   http NAME METHOD PATH [BODY-FILE]
#                          body in $TMP/body, status in CODE, type in CTYPE,
#                          HTTP version (1.1, 2) in VERSION, headers in
#                          $TMP/headers;
#                          the array CURL_EXTRA adds curl arguments (headers)
#   stop_serve NAME        SIGTERM to it; checks that it exits 0
#   chat BODY              POST /v1/chat/completions with the JSON text BODY
#   jget EXPR              a Python expression on the JSON body (as j)
#   expect NAME STATUS EXPR WANT, expect_error NAME STATUS CODE
#   bad_config NAME REGEX  llmux-serve on $TMP/bad.yaml: exit 2, stderr
#                          matching REGEX
#   sse_summary FILE [PIECE]  an SSE answer as "TEXT|OBJECT-KINDS|LAST-EVENT"
#   stream_check NAME URL VERSION [CURL-ARG...]   a stream:true chat
#   leave_stream NAME BODY SECONDS
#                          a stream read for SECONDS, then dropped
#   check NAME GOT WANT    ok when GOT is WANT
#   mock_requests          the requests the mock answered so far
#   cache_header           the last answer's x-llmux-cache, or "none"
PY=${PYTHON:-python3}
CURL_EXTRA=()

for tool in curl "$PY"; do
    if ! command -v "$tool" >/dev/null; then
        echo "skip: $tool not found"
        exit 77
    fi
done

# shellcheck source=../lib.sh
. "$SRC/tests/lib.sh"

SERVE_PIDS=()
# stop_serves: the gateways start_serve started (t_cleanup's; a test that
# defines its own t_cleanup calls it).
stop_serves() {
    local p
    for p in "${SERVE_PIDS[@]}"; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
}
t_cleanup() {
    stop_serves
}

# start_serve CONFIG [ERRFILE [ARG...]]: starts llmux-serve on a free port
# (ARGs replace "--listen 127.0.0.1:0"; "-": the config's listen); sets
# SPORT, SURL and SPID; its stderr goes to ERRFILE ($TMP/serve.err).
start_serve() {
    local cfg=$1 errf=${2:-$TMP/serve.err}
    local args=(--listen 127.0.0.1:0)
    if [ $# -gt 2 ]; then
        args=("${@:3}")
        [ "$3" = - ] && args=()
    fi
    rm -f "$TMP/sport"
    "$SERVE" --config "$cfg" "${args[@]}" --port-file "$TMP/sport" \
        2>"$errf" &
    SPID=$!
    SERVE_PIDS+=("$SPID")
    if wait_port "$TMP/sport" "$SPID"; then
        SPORT=$(cat "$TMP/sport")
        SURL="${SCHEME:-http}://127.0.0.1:$SPORT"
        return 0
    fi
    echo "cannot start llmux-serve:"
    cat "$errf"
    exit 1
}

# stop_serve NAME: SIGTERM to the llmux-serve of start_serve; a check
# NAME that it exits 0.
stop_serve() {
    kill -TERM "$SPID"
    wait "$SPID"
    RC=$?
    if [ "$RC" -eq 0 ]; then
        ok "$1"
    else
        bad "$1" "exit status $RC" "stderr: $(cat "$TMP/serve.err")"
    fi
    SERVE_PIDS=()
}

# http NAME METHOD PATH [BODY-FILE]: the answer's body in $TMP/body, its
# status in CODE, its content type in CTYPE, its HTTP version in VERSION;
# curl gets the array CURL_EXTRA too.
http() {
    local args=(-s -S -m 20 -o "$TMP/body" -D "$TMP/headers"
        -w '%{http_code} %{http_version} %{content_type}' -X "$2"
        "${CURL_EXTRA[@]}")
    if [ $# -ge 4 ]; then
        args+=(-H 'Content-Type: application/json' --data-binary "@$4")
    fi
    local out
    out=$(curl "${args[@]}" "$SURL$3" 2>"$TMP/err")
    CODE=${out%% *}
    out=${out#* }
    VERSION=${out%% *}
    CTYPE=${out#* }
}

# chat BODY: POSTs the JSON text BODY to /v1/chat/completions, as http.
chat() {
    printf '%s' "$1" >"$TMP/req.json"
    http chat POST /v1/chat/completions "$TMP/req.json"
}

# jget EXPR: evaluates the Python expression EXPR on the JSON in $TMP/body
# (as `j`); prints the result, or "<not JSON>".
jget() {
    "$PY" -c 'import json,sys
try:
    j = json.load(open(sys.argv[1]))
except Exception:
    print("<not JSON>"); sys.exit(0)
try:
    print(eval(sys.argv[2]))
except Exception as e:
    print("<%s>" % type(e).__name__)' "$TMP/body" "$1"
}

# expect NAME WANT-STATUS EXPR WANT: the status, a JSON content type, and
# EXPR on the body printing WANT.
expect() {
    local got
    got=$(jget "$3")
    if [ "$CODE" != "$2" ]; then
        bad "$1" "status $CODE, want $2" "body: $(head -c 300 "$TMP/body")"
    elif [ "${CTYPE%%;*}" != application/json ]; then
        bad "$1" "content type '$CTYPE', want application/json"
    elif [ "$got" != "$4" ]; then
        bad "$1" "$3 is '$got', want '$4'" "body: $(head -c 300 "$TMP/body")"
    else
        ok "$1"
    fi
}

# expect_error NAME STATUS CODE: an OpenAI error object with STATUS and
# error.code CODE (message a non-empty string, type and param present).
expect_error() {
    expect "$1" "$2" \
        '"%s %s %s" % (j["error"]["code"], isinstance(j["error"]["message"], str) and len(j["error"]["message"]) > 0, "type" in j["error"] and "param" in j["error"])' \
        "$3 True True"
}

# sse_summary FILE [PIECE]: the server-sent events in FILE as
# "TEXT|KINDS|LAST": the choices' PIECE (a Python expression on a choice
# `c`; default: a chat delta's content) joined, their distinct "object"s,
# the last event.
sse_summary() {
    local piece='(c.get("delta") or {}).get("content") or ""'
    [ $# -ge 2 ] && piece=$2
    "$PY" -c 'import json,sys
ev = [l[6:] for l in open(sys.argv[1]).read().split("\n") if l.startswith("data: ")]
text = "".join(eval(sys.argv[2]) for e in ev[:-1] for c in json.loads(e)["choices"])
kinds = set(json.loads(e)["object"] for e in ev[:-1])
print("%s|%s|%s" % (text, ",".join(sorted(kinds)), ev[-1] if ev else ""))' \
        "$1" "$piece" 2>&1
}

# stream_check NAME URL VERSION [CURL-ARG...]: a stream:true chat on the
# gateway at URL (curl with CURL-ARGs) is a 200 text/event-stream over
# HTTP VERSION (1.1, 2), every chunk, then [DONE].
stream_check() {
    local name=$1 url=$2 version=$3 out got
    shift 3
    printf '%s' '{"model":"fast","stream":true,"messages":[{"role":"user","content":"stream me"}]}' >"$TMP/req.json"
    out=$(curl -s -S -N -m 20 -o "$TMP/sse" \
        -w '%{http_code} %{http_version} %{content_type}' "$@" \
        --data-binary "@$TMP/req.json" "$url/v1/chat/completions" 2>"$TMP/err")
    got=$(sse_summary "$TMP/sse")
    if [ "${out%%;*}" != "200 $version text/event-stream" ]; then
        bad "$name" "status, version and type '$out'"
    elif [ "$got" != "Mock reply to: stream me|chat.completion.chunk|[DONE]" ]; then
        bad "$name" "got '$got'"
    else
        ok "$name"
    fi
}

# bad_config NAME WANT-REGEX: runs llmux-serve on $TMP/bad.yaml.
bad_config() {
    run timeout 10 "$SERVE" --config "$TMP/bad.yaml" --listen 127.0.0.1:0
    if [ "$RC" -ne 2 ]; then
        bad "$1" "exit status $RC, want 2"
    elif ! grep -qE "$2" "$TMP/err"; then
        bad "$1" "stderr does not match /$2/"
    else
        ok "$1"
    fi
}

# leave_stream NAME BODY SECONDS: POSTs the JSON text BODY (a stream:true
# chat) and leaves after SECONDS; passes when part of the stream arrived
# and not its end. The events read are in $TMP/sse.
leave_stream() {
    printf '%s' "$2" >"$TMP/req.json"
    curl -s -N -m "$3" -o "$TMP/sse" --data-binary "@$TMP/req.json" \
        "$SURL/v1/chat/completions" 2>/dev/null
    if grep -q '^data: {' "$TMP/sse" && ! grep -q '^data: \[DONE\]' "$TMP/sse"; then
        ok "$1"
    else
        bad "$1" "$(head -c 300 "$TMP/sse")"
    fi
}

# check NAME GOT WANT
check() {
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "got '$2', want '$3'"; fi
}

# mock_requests: the requests the mock answered so far.
mock_requests() {
    curl -s -m 10 "$MOCK_URL/_mock/stats" |
        "$PY" -c 'import json,sys; print(json.load(sys.stdin)["requests"])'
}

# cache_header: the x-llmux-cache header of the last answer, or "none".
cache_header() {
    local v
    v=$(tr -d '\r' <"$TMP/headers" | awk -F': ' 'tolower($1) == "x-llmux-cache" { print $2 }')
    echo "${v:-none}"
}
