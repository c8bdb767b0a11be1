#!/usr/bin/env bash
#
# tests/cli/test_batch_pipeline.sh: `llmux batch` as a pipeline, against
# llmux-mock: the OpenAI Batch format round trip and its per-line errors,
# -o (whole lines), SIGINT mid-run then --resume (every custom_id exactly
# once, nothing sent twice), a second signal, a cut last line, --shard
# over 3 shards (each line exactly once, by FNV-1a 64), --ordered and the
# default completion order, input from a pipe that waits, the progress
# line (only on a terminal) and the summary.
#
# usage: test_batch_pipeline.sh PATH/TO/llmux PATH/TO/llmux-mock
# LLMUX_PLUGIN_PATH must name the directory holding the openai plugin.

set -u

CLI=${1:?usage: test_batch_pipeline.sh LLMUX LLMUX_MOCK}
MOCK=${2:?usage: test_batch_pipeline.sh LLMUX LLMUX_MOCK}
PY=${PYTHON:-python3}
SRC=$(cd "$(dirname "$0")/../.." && pwd)

T_NAME=batch-pipeline
# shellcheck source=../lib.sh
. "$SRC/tests/lib.sh"

export LC_ALL=C
unset OPENAI_BASE_URL OPENAI_API_BASE
export OPENAI_API_KEY=sk-test
M=openai/gpt-4o-mini

# A batch run in the background: its pid in BG.
BG=
t_cleanup() {
    if [ -n "$BG" ]; then
        kill -KILL "$BG" 2>/dev/null
        wait "$BG" 2>/dev/null
    fi
    exec 3>&- 2>/dev/null
}

# expect_rc NAME STATUS: the exit status is STATUS.
expect_rc() {
    if [ "$RC" -eq "$2" ]; then
        ok "$1"
    else
        bad "$1" "exit status $RC, want $2"
    fi
}

# check NAME SCRIPT [ARGS...]: a Python check; `out` is $TMP/out, `err`
# $TMP/err, `rows` the JSON lines of `out` (the script fails on a line
# that is not JSON); raises or calls fail(msg) on error.
check() {
    local name=$1 script=$2 msg
    shift 2
    if msg=$("$PY" - "$TMP/out" "$TMP/err" "$@" 2>&1 <<EOF
import collections, json, re, sys
out = open(sys.argv[1], encoding="utf-8").read()
err = open(sys.argv[2], encoding="utf-8", errors="replace", newline="").read()
args = sys.argv[3:]
def fail(m):
    print(str(m)[:1500])
    sys.exit(1)
rows = [json.loads(l) for l in out.splitlines()]
def fnv1a64(s):
    h = 14695981039346656037
    for b in s.encode():
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h
$script
EOF
    ); then
        ok "$name"
    else
        bad "$name" "$msg"
    fi
}

# gen N FILE: N OpenAI Batch chat lines, custom_ids r0..r(N-1).
gen() {
    "$PY" - "$1" >"$2" <<'EOF'
import json, sys
for i in range(int(sys.argv[1])):
    print(json.dumps({"custom_id": "r%d" % i, "method": "POST",
                      "url": "/v1/chat/completions",
                      "body": {"messages": [{"role": "user",
                                             "content": "p%d" % i}]}}))
EOF
}

# wait_lines FILE N: waits up to 20 s until FILE has N lines or more.
wait_lines() {
    local i
    for i in $(seq 1 400); do
        if [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# stop_bg SIGNAL...: sends each signal to the background run, then waits
# for it (up to 30 s); RC its status.
stop_bg() {
    local s i
    for s in "$@"; do
        kill "-$s" "$BG"
        sleep 0.05
    done
    for i in $(seq 1 600); do
        kill -0 "$BG" 2>/dev/null || break
        sleep 0.05
    done
    wait "$BG"
    RC=$?
    BG=
}

# ---- OpenAI Batch format round trip ----------------------------------------

start_mock --quiet
MSPEC="$M;base_url=$MOCK_URL/v1"
cat >"$TMP/in.jsonl" <<'EOF'
{"custom_id":"chat-1","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}}
{"custom_id":"emb-1","method":"POST","url":"/v1/embeddings","body":{"input":"some text"}}

{"custom_id":"cmp-1","method":"POST","url":"/v1/completions","body":{"prompt":"Once"}}
{"method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"no id"}]}}
EOF
run "$CLI" batch -m "$MSPEC" "$TMP/in.jsonl" </dev/null
check "OpenAI Batch lines: an output line per input line, by custom_id" '
if len(rows) != 4: fail(rows)
by = {r["custom_id"]: r for r in rows}
if sorted(by) != ["5", "chat-1", "cmp-1", "emb-1"]: fail(sorted(by))
for r in rows:
    if set(r) != {"id", "custom_id", "response", "error"}: fail(r)
    if r["error"] is not None or r["response"]["status_code"] != 200: fail(r)
    if not r["id"].startswith("batch_req_"): fail(r)
    if "request_id" not in r["response"]: fail(r)
if len({r["id"] for r in rows}) != 4: fail("ids not unique")
b = by["chat-1"]["response"]["body"]
if b["object"] != "chat.completion" or b["choices"][0]["message"]["content"] != "Mock reply to: hello": fail(b)
if b["model"] != "gpt-4o": fail("body.model did not pick the model: %r" % b["model"])
if by["5"]["response"]["body"]["model"] != "gpt-4o-mini": fail(by["5"])
if by["emb-1"]["response"]["body"]["object"] != "list": fail(by["emb-1"])
if len(by["emb-1"]["response"]["body"]["data"][0]["embedding"]) != 8: fail(by["emb-1"])
if by["cmp-1"]["response"]["body"]["object"] != "text_completion": fail(by["cmp-1"])
if "Mock completion of: Once" != by["cmp-1"]["response"]["body"]["choices"][0]["text"]: fail(by["cmp-1"])
'
expect_rc "OpenAI Batch lines: exit 0" 0
check "the summary: one line on stderr (not a terminal: no progress)" '
lines = err.split("\n")
if len(lines) != 2 or lines[1] != "": fail(repr(err))
if "\r" in err or "\033" in err: fail(repr(err))
if not lines[0].startswith("llmux: batch: 4 done (4 ok, 0 failed), "): fail(lines[0])
if " tokens, $" not in lines[0]: fail(lines[0])
'

# per-line refusals: each gets its error line, the others run; a body's
# model is a model name for -m's provider ("ollama/llama3" is a model to
# openai here, as such names are to OpenAI-compatible servers)
start_mock --quiet
MSPEC="$M;base_url=$MOCK_URL/v1"
cat >"$TMP/bad.jsonl" <<'EOF'
{"custom_id":"ok-1","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"a"}]}}
{"custom_id":"opts","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o;base_url=http://127.0.0.1:9/v1","messages":[{"role":"user","content":"b"}]}}
{"custom_id":"prov","method":"POST","url":"/v1/chat/completions","body":{"model":"ollama/llama3","messages":[{"role":"user","content":"b"}]}}
{"custom_id":"url","method":"POST","url":"/v1/images/generations","body":{"prompt":"c"}}
{"custom_id":"get","method":"GET","url":"/v1/chat/completions","body":{"messages":[]}}
this is not JSON at all
{"custom_id":7,"method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"d"}]}}
{"messages":[{"role":"user","content":"a chat request, not a Batch line"}]}
{"custom_id":"nomsg","method":"POST","url":"/v1/chat/completions","body":{"temperature":0.5}}
{"custom_id":"ok-2","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"e"}]}}
EOF
run "$CLI" batch -m "$MSPEC" --ordered "$TMP/bad.jsonl" </dev/null
expect_rc "bad Batch lines: exit 2 (the first failure's)" 2
RC=0 check "bad Batch lines: each refused on its line, the others run" '
if len(rows) != 10: fail(rows)
want = [("ok-1", None), ("opts", "invalid_model"), ("prov", None),
        ("url", "invalid_url"), ("get", "invalid_method"),
        ("6", "invalid_json_line"), ("7", "invalid_custom_id"),
        ("8", "invalid_json_line"), ("nomsg", "LLMUX_EINVAL"), ("ok-2", None)]
got = [(r["custom_id"], r["error"] and r["error"]["code"]) for r in rows]
if got != want: fail(got)
for r in rows:
    if r["error"] is not None:
        if r["response"] is not None or not r["error"]["message"]: fail(r)
if "line 6" not in rows[5]["error"]["message"]: fail(rows[5])
if "line 8" not in rows[7]["error"]["message"]: fail(rows[7])
if "/v1/images/generations" not in rows[3]["error"]["message"]: fail(rows[3])
if rows[2]["response"]["body"]["model"] != "ollama/llama3": fail(rows[2])
'
mockcheck_n() { # mockcheck_n NAME PORT N: the mock saw N requests
    if "$PY" -c 'import json, sys, urllib.request
o = json.load(urllib.request.urlopen(sys.argv[1] + "/_mock/stats"))
sys.exit(0 if o["requests"] == int(sys.argv[2]) else 1)' \
        "http://127.0.0.1:$2" "$3"; then
        ok "$1"
    else
        bad "$1" "requests: $("$PY" -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1] + "/_mock/stats").read().decode())' \
            "http://127.0.0.1:$2")"
    fi
}
mockcheck_n "bad Batch lines: the mock saw exactly the requests of good lines" \
    "$PORT" 3

# a provider's HTTP error: its status_code and its error body
start_mock --quiet --fault 'status=400;message=bad thing'
run "$CLI" batch -m "$M;base_url=$MOCK_URL/v1" -j 1 --retries 0 --ordered \
    "$TMP/in.jsonl" </dev/null
expect_rc "a provider's 400: exit 1" 1
RC=0 check "a provider's 400: status_code 400, the error body, error null" '
r = rows[0]
if r["custom_id"] != "chat-1" or r["error"] is not None: fail(r)
if r["response"]["status_code"] != 400: fail(r)
e = r["response"]["body"]["error"]
if e["message"] != "bad thing" or e["type"] != "invalid_request_error": fail(e)
if [x["response"]["status_code"] for x in rows[1:]] != [200] * 3: fail(rows)
'
# a transport failure: response null, error with the llmux code
CLOSED=$("$PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
run "$CLI" batch -m "$M;base_url=http://127.0.0.1:$CLOSED/v1" --retries 0 \
    "$TMP/in.jsonl" </dev/null
expect_rc "no server: exit 3" 3
RC=0 check "no server: response null, error LLMUX_ETRANSPORT" '
if len(rows) != 4: fail(rows)
for r in rows:
    if r["response"] is not None or r["error"]["code"] != "LLMUX_ETRANSPORT": fail(r)
'

# a Batch line in a file of prompts / of --jsonl requests: that line's error
printf 'a prompt\n%s\nanother\n' \
    '{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{"messages":[]}}' \
    >"$TMP/mixed.txt"
run "$CLI" batch -m "$MSPEC" --ordered -q "$TMP/mixed.txt" </dev/null
RC=0 check "a Batch line among prompts: its error line names the line" '
if [r["status"] for r in rows] != ["ok", "error", "ok"]: fail(rows)
if "line 2" not in rows[1]["error"]["message"]: fail(rows[1])
'

# ---- -o, SIGINT, --resume ----------------------------------------------------

start_mock --quiet --latency 300
SLOW=$PORT
MS="$M;base_url=http://127.0.0.1:$SLOW/v1"
N=200 # at 8 in flight, 300 ms each: 7.5 s to stop it in the middle of
gen $N "$TMP/job.jsonl"
"$CLI" batch -m "$MS" -j 8 -o "$TMP/res.jsonl" "$TMP/job.jsonl" \
    </dev/null >"$TMP/out" 2>"$TMP/err" &
BG=$!
if wait_lines "$TMP/res.jsonl" 16; then
    whole=1
    for _ in 1 2 3 4 5 6 7 8; do # -o: every line whole whenever it is read
        if [ -s "$TMP/res.jsonl" ] && [ "$(tail -c 1 "$TMP/res.jsonl" | od -An -c | tr -d ' ')" != '\n' ]; then
            whole=0
        fi
        sleep 0.03
    done
    if [ $whole = 1 ]; then
        ok "-o: the file always ends with a whole line"
    else
        bad "-o: the file always ends with a whole line"
    fi
    stop_bg INT
    expect_rc "SIGINT mid-run: exit 130" 130
    check "SIGINT mid-run: the summary says interrupted, nothing cancelled" '
if not re.search(r"^llmux: batch: \d+ done \(\d+ ok, 0 failed\).*interrupted", err): fail(err)
if "cancelled" in err: fail(err)
'
    N1=$(wc -l <"$TMP/res.jsonl")
    if [ "$N1" -ge 16 ] && [ "$N1" -lt $N ]; then
        ok "SIGINT mid-run: the lines that finished are written ($N1)"
    else
        bad "SIGINT mid-run: the lines that finished are written" "$N1 lines"
    fi
else
    bad "SIGINT mid-run: the run started writing"
    stop_bg KILL
fi
run "$CLI" batch -m "$MS" -j 8 -o "$TMP/res.jsonl" --resume \
    "$TMP/job.jsonl" </dev/null
expect_rc "--resume: exit 0" 0
cp "$TMP/res.jsonl" "$TMP/out"
check "--resume: every custom_id exactly once, each a success" '
ids = collections.Counter(r["custom_id"] for r in rows)
if sorted(ids) != sorted("r%d" % i for i in range(int(args[0]))): fail(sorted(ids))
if max(ids.values()) != 1: fail([k for k, v in ids.items() if v > 1])
if any(r["response"]["status_code"] != 200 for r in rows): fail(rows)
' "$N"
check "--resume: the summary counts those already done" '
m = re.search(r"(\d+) done \(\d+ ok, 0 failed\), (\d+) already done", err)
if not m or int(m.group(1)) + int(m.group(2)) != int(args[0]): fail(err)
' "$N"
mockcheck_n "SIGINT then --resume: each request sent once in all" "$SLOW" $N

# a second signal cancels what is in flight at once: no line for those
rm -f "$TMP/res2.jsonl"
start_mock --quiet --latency 5000
MV="$M;base_url=$MOCK_URL/v1"
"$CLI" batch -m "$MV" -j 4 -o "$TMP/res2.jsonl" "$TMP/job.jsonl" \
    </dev/null >"$TMP/out" 2>"$TMP/err" &
BG=$!
# once the four are in flight at the mock
for _ in $(seq 1 400); do
    "$PY" -c 'import json, sys, urllib.request
o = json.load(urllib.request.urlopen(sys.argv[1] + "/_mock/stats"))
sys.exit(0 if o["in_flight"] >= 4 else 1)' "$MOCK_URL" && break
    sleep 0.05
done
stop_bg INT TERM
expect_rc "a second signal: exit 130" 130
check "a second signal: the in-flight requests cancelled, no line for them" '
if not re.search(r"0 done \(0 ok, 0 failed\), 4 cancelled,", err): fail(err)
if open(args[0]).read() != "": fail("lines written")
' "$TMP/res2.jsonl"

# a cut last line (a crash in a write) is removed, then resumed
head -n 50 "$TMP/res.jsonl" >"$TMP/res3.jsonl"
printf '{"id":"batch_req_x","custom_id":"r%d","respo' $((N - 1)) >>"$TMP/res3.jsonl"
# and a failure recorded: run again
"$PY" - "$TMP/res3.jsonl" <<'EOF'
import json, sys
p = sys.argv[1]
lines = open(p).read().split("\n")
r = json.loads(lines[0])
r["response"] = None
r["error"] = {"code": "LLMUX_ETIMEDOUT", "message": "timeout"}
lines[0] = json.dumps(r)
open(p, "w").write("\n".join(lines))
EOF
FAILED_ID=$("$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["custom_id"])' "$TMP/res3.jsonl")
start_mock --quiet
run "$CLI" batch -m "$M;base_url=$MOCK_URL/v1" -j 16 -o "$TMP/res3.jsonl" \
    --resume "$TMP/job.jsonl" </dev/null
expect_rc "--resume after a cut line: exit 0" 0
cp "$TMP/res3.jsonl" "$TMP/out"
check "--resume after a cut line: whole lines, failures retried, each id once ok" '
ok_ids = collections.Counter(r["custom_id"] for r in rows if r["error"] is None)
n = int(args[1])
if sorted(ok_ids) != sorted("r%d" % i for i in range(n)): fail(len(ok_ids))
if max(ok_ids.values()) != 1: fail("duplicates")
if len(rows) != n + 1: fail(len(rows))
if [r["custom_id"] for r in rows if r["error"]] != [args[0]]: fail(rows[0])
' "$FAILED_ID" "$N"
mockcheck_n "--resume after a cut line: the mock ran the missing and failed" \
    "$PORT" $((N - 49))

# today's formats resume by line number
printf 'one\ntwo\n\nthree\n' >"$TMP/p.txt"
printf '%s\n' '{"index":1,"line":2,"status":"ok","response":{}}' >"$TMP/p.out"
run "$CLI" batch -m "$M;base_url=$MOCK_URL/v1" -o "$TMP/p.out" --resume -q \
    --ordered "$TMP/p.txt" </dev/null
cp "$TMP/p.out" "$TMP/out"
RC=0 check "--resume of prompts: by line number" '
if [r["line"] for r in rows] != [2, 1, 4]: fail(rows)
if [r["index"] for r in rows] != [1, 0, 2]: fail(rows)
'

# ---- --shard ---------------------------------------------------------------

gen 60 "$TMP/sh.jsonl"
printf '%s\n' '{"method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"no id"}]}}' \
    'garbage line' >>"$TMP/sh.jsonl"
: >"$TMP/all"
for i in 0 1 2; do
    run "$CLI" batch -m "$M;base_url=$MOCK_URL/v1" --shard "$i/3" -j 8 \
        -o "$TMP/sh.$i" "$TMP/sh.jsonl" </dev/null
    cp "$TMP/sh.$i" "$TMP/out"
    RC=0 check "--shard $i/3: the lines whose id FNV-1a 64 mod 3 is $i" '
i = int(args[0])
for r in rows:
    if fnv1a64(r["custom_id"]) % 3 != i: fail(r["custom_id"])
m = re.search(r"(\d+) done .*, (\d+) in other shards", err)
if not m or int(m.group(1)) != len(rows) or int(m.group(2)) != 62 - len(rows): fail(err)
' "$i"
    cat "$TMP/sh.$i" >>"$TMP/all"
done
cp "$TMP/all" "$TMP/out"
check "--shard over 3 shards: each line exactly once" '
ids = collections.Counter(r["custom_id"] for r in rows)
want = ["r%d" % i for i in range(60)] + ["61", "62"]
if sorted(ids) != sorted(want) or max(ids.values()) != 1: fail(ids)
if [r["custom_id"] for r in rows if r["error"]] != ["62"]: fail("garbage")
'
run "$CLI" batch -m "$M" --shard 3/3 "$TMP/sh.jsonl" </dev/null
expect_rc "--shard 3/3: a usage error" 2
run "$CLI" batch -m "$M" --shard x "$TMP/sh.jsonl" </dev/null
expect_rc "--shard x: a usage error" 2
run "$CLI" batch -m "$M" --resume "$TMP/sh.jsonl" </dev/null
expect_rc "--resume without -o: a usage error" 2

# ---- order -----------------------------------------------------------------

# the first line is slow: only it takes -m's model, whose mock directive
# delays the answer; the others name a plain model of their own
"$PY" - >"$TMP/order.jsonl" <<'EOF'
import json
for i in range(4):
    body = {"messages": [{"role": "user", "content": "o%d" % i}]}
    if i:
        body["model"] = "gpt-4o-mini"
    print(json.dumps({"custom_id": "o%d" % i, "method": "POST",
                      "url": "/v1/chat/completions", "body": body}))
EOF
start_mock --quiet
for mode in default ordered; do
    args=()
    [ $mode = ordered ] && args=(--ordered)
    run "$CLI" batch -m "$M#delay_ms=800;base_url=$MOCK_URL/v1" -j 4 \
        "${args[@]}" "$TMP/order.jsonl" </dev/null
    check "order ($mode): $([ $mode = ordered ] && echo 'input order' || echo 'the slow first line last')" '
got = [r["custom_id"] for r in rows]
if args[0] == "ordered":
    if got != ["o0", "o1", "o2", "o3"]: fail(got)
elif got[-1] != "o0" or sorted(got) != ["o0", "o1", "o2", "o3"]: fail(got)
' "$mode"
done

# ---- input from a pipe that waits ----------------------------------------------

mkfifo "$TMP/fifo"
start_mock --quiet
"$CLI" batch -m "$M;base_url=$MOCK_URL/v1" <"$TMP/fifo" >"$TMP/out" \
    2>"$TMP/err" &
BG=$!
exec 3>"$TMP/fifo"
printf 'first\nsecond\n' >&3
if wait_lines "$TMP/out" 2; then
    ok "a pipe: lines run as they come, before the input ends"
else
    bad "a pipe: lines run as they come, before the input ends"
fi
stop_bg INT
exec 3>&-
expect_rc "a pipe: SIGINT while waiting for input: exit 130" 130

# ---- progress on a terminal -----------------------------------------------------

if command -v script >/dev/null 2>&1; then
    start_mock --quiet --latency 150
    gen 12 "$TMP/p.jsonl"
    # stderr on a pseudo-terminal; stdout to a file
    script -qec "'$CLI' batch -m '$M;base_url=$MOCK_URL/v1' -j 1 -o '$TMP/pp' '$TMP/p.jsonl'" \
        /dev/null >"$TMP/tty" 2>&1 </dev/null
    cp "$TMP/tty" "$TMP/err"
    : >"$TMP/out"
    check "a terminal: a progress line redrawn in place, then the summary" '
if "\r" not in err or "/12 lines, " not in err: fail(repr(err[:500]))
if "ETA" not in err and "in flight" not in err: fail(repr(err[:500]))
last = err.replace("\r\n", "\n").rstrip("\n").split("\r")[-1]
if "12 done (12 ok, 0 failed)" not in last: fail(repr(last))
'
    script -qec "'$CLI' batch -q -m '$M;base_url=$MOCK_URL/v1' -j 4 -o '$TMP/pq' '$TMP/p.jsonl'" \
        /dev/null >"$TMP/tty" 2>&1 </dev/null
    if [ ! -s "$TMP/tty" ] && [ "$(wc -l <"$TMP/pq")" -eq 12 ]; then
        ok "a terminal with --quiet: no progress, no summary"
    else
        bad "a terminal with --quiet: no progress, no summary" \
            "$(od -c "$TMP/tty" | head -3)"
    fi
else
    skip "progress on a terminal: script(1) is not installed"
fi

summary
