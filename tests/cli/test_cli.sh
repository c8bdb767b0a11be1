#!/usr/bin/env bash
#
# tests/cli/test_cli.sh: checks the `llmux` command-line contract against
# llmux-mock: output formats (text, --stream, --json, --json --stream),
# every command, --request-file, batch, exit statuses, the one-line error
# format, and retries, stage timeouts and fallbacks.
#
# usage: test_cli.sh PATH/TO/llmux PATH/TO/llmux-mock
# LLMUX_PLUGIN_PATH must name the directory holding the openai plugin.
# Prints one line per check and "N passed, M failed" last; exits non-zero
# when a check failed.

set -u

CLI=${1:?usage: test_cli.sh LLMUX LLMUX_MOCK}
MOCK=${2:?usage: test_cli.sh LLMUX LLMUX_MOCK}
PY=${PYTHON:-python3}
# the source tree: the CLI's tables, the man page, the completion files
SRC=$(cd "$(dirname "$0")/../.." && pwd)

T_NAME=cli-test
# shellcheck source=../lib.sh
. "$SRC/tests/lib.sh"

# run_in TEXT CMD...: the same with TEXT (printf %s) on stdin.
run_in() {
    local input=$1
    shift
    printf '%s' "$input" | "$@" >"$TMP/out" 2>"$TMP/err"
    RC=$?
}

# expect_out NAME EXPECTED: stdout is exactly EXPECTED (printf %b), the
# status 0 and stderr empty.
expect_out() {
    printf '%b' "$2" >"$TMP/want"
    if [ "$RC" -ne 0 ]; then
        bad "$1" "exit status $RC, want 0"
    elif ! cmp -s "$TMP/want" "$TMP/out"; then
        bad "$1" "stdout: $(od -c "$TMP/out" | head -5 | tr '\n' ' ')" \
            "want:   $(od -c "$TMP/want" | head -5 | tr '\n' ' ')"
    elif [ -s "$TMP/err" ]; then
        bad "$1" "stderr not empty"
    else
        ok "$1"
    fi
}

# expect_rc NAME STATUS: the exit status is STATUS.
expect_rc() {
    if [ "$RC" -eq "$2" ]; then
        ok "$1"
    else
        bad "$1" "exit status $RC, want $2"
    fi
}

# expect_err NAME STATUS REGEX: status, and stderr is exactly one line
# matching the extended REGEX (the whole line).
expect_err() {
    local lines
    lines=$(wc -l <"$TMP/err")
    if [ "$RC" -ne "$2" ]; then
        bad "$1" "exit status $RC, want $2"
    elif [ "$lines" -ne 1 ]; then
        bad "$1" "stderr has $lines lines, want 1"
    elif ! grep -qE "^($3)\$" "$TMP/err"; then
        bad "$1" "stderr does not match /^$3\$/"
    else
        ok "$1"
    fi
}

# expect_usage NAME [COMMAND]: status 2, nothing on stdout, and on stderr
# exactly two lines: "llmux: <what was wrong>", then where to read more:
# "try 'llmux COMMAND --help'" (COMMAND given), "try 'llmux --help'"
# (COMMAND given as ""), either (no COMMAND).
expect_usage() {
    local want="try 'llmux( [a-z]+)? --help'"
    if [ $# -ge 2 ] && [ -n "$2" ]; then
        want="try 'llmux $2 --help'"
    elif [ $# -ge 2 ]; then
        want="try 'llmux --help'"
    fi
    if [ "$RC" -ne 2 ]; then
        bad "$1" "exit status $RC, want 2"
    elif [ "$(wc -l <"$TMP/err")" -ne 2 ]; then
        bad "$1" "stderr has $(wc -l <"$TMP/err") lines, want 2"
    elif ! head -n1 "$TMP/err" | grep -qE '^llmux: .+'; then
        bad "$1" "first stderr line is not 'llmux: ...'"
    elif ! sed -n 2p "$TMP/err" | grep -qE "^$want\$"; then
        bad "$1" "second stderr line is not /$want/"
    elif [ -s "$TMP/out" ]; then
        bad "$1" "stdout not empty"
    else
        ok "$1"
    fi
}

# pycheck NAME SCRIPT [ARGS...]: runs a Python check on $TMP/out (as
# variable `out`, a str); the script raises or calls fail(msg) on error.
pycheck() {
    local name=$1 script=$2 msg
    shift 2
    if [ "$RC" -ne 0 ]; then
        bad "$name" "exit status $RC, want 0"
        return
    fi
    if msg=$("$PY" - "$TMP/out" "$@" 2>&1 <<EOF
import json, sys
out = open(sys.argv[1], encoding="utf-8").read()
args = sys.argv[2:]
def fail(m):
    print(m)
    sys.exit(1)
$script
EOF
    ); then
        ok "$name"
    else
        bad "$name" "$msg"
    fi
}

# LLMUX_TEST_LOCALE runs the whole contract under another locale (the
# suite runs it again under de_DE.UTF-8, whose decimal comma must change
# nothing); exit 77 (skipped) when that locale is not installed.
if [ -n "${LLMUX_TEST_LOCALE:-}" ]; then
    if ! locale -a 2>/dev/null | tr 'A-Z' 'a-z' | sed 's/utf-8/utf8/' |
        grep -qx "$(echo "$LLMUX_TEST_LOCALE" | tr 'A-Z' 'a-z' | sed 's/utf-8/utf8/')"; then
        echo "skip: locale $LLMUX_TEST_LOCALE is not installed"
        exit 77
    fi
    echo "# under LC_ALL=$LLMUX_TEST_LOCALE"
fi
export LC_ALL=${LLMUX_TEST_LOCALE:-C}
unset OPENAI_BASE_URL OPENAI_API_BASE
export OPENAI_API_KEY=sk-test

start_mock --quiet
P1=$PORT
BASE="http://127.0.0.1:$P1/v1"
URL=(--base-url "$BASE")
M=openai/gpt-4o-mini
MSPEC="openai/gpt-4o-mini;base_url=$BASE"

echo "# llmux: $CLI"
echo "# mock:  $BASE"

# ---- help and version ------------------------------------------------------

# The commands and options come from the CLI's own tables (cmd_defs and
# opt_defs in tools/cli/tool_cmds.c), so a command or option added there is
# checked here without editing this file.
CLI_SRC="$SRC/tools/cli/tool_cmds.c"
CMDS=$(sed -nE 's/^ *\{"([a-z]+)", CMD_[A-Z]+,.*/\1/p' "$CLI_SRC")
OPTS=$(sed -nE 's/^ *\{"([a-z][a-z-]*)", ('"'"'.'"'"'|0), .*/\1/p' "$CLI_SRC" |
    sort -u)
# short_of OPT: its one-letter form in the table, or nothing
short_of() {
    sed -nE 's/^ *\{"'"$1"'", '"'"'(.)'"'"', .*/\1/p' "$CLI_SRC" | head -n1
}
if [ "$(echo "$CMDS" | wc -w)" -ge 9 ] && [ "$(echo "$OPTS" | wc -w)" -ge 20 ]
then
    ok "the command and option tables read from tool_cmds.c ($(echo $CMDS))"
else
    bad "the command and option tables read from tool_cmds.c" \
        "commands: $(echo $CMDS)" "options: $(echo $OPTS)"
fi

run "$CLI" --help
cp "$TMP/out" "$TMP/overview"
if [ "$RC" -eq 0 ] && head -n1 "$TMP/out" | grep -q '^usage: llmux' &&
    grep -q '^exit status:' "$TMP/out" && grep -q '^environment:' "$TMP/out" &&
    [ ! -s "$TMP/err" ]; then
    ok "--help: the overview on stdout, exit 0"
else
    bad "--help: the overview on stdout, exit 0" "status $RC"
fi
missing=
for c in $CMDS help version; do
    grep -qE "^  $c( |$)" "$TMP/overview" || missing="$missing $c"
done
if [ -z "$missing" ]; then
    ok "--help lists every command"
else
    bad "--help lists every command" "missing:$missing"
fi
for h in help -h; do
    run "$CLI" $h
    if [ "$RC" -eq 0 ] && cmp -s "$TMP/out" "$TMP/overview"; then
        ok "$h: the same overview as --help"
    else
        bad "$h: the same overview as --help" "status $RC"
    fi
done

# each command's own help: usage, its options, an example; not the overview
wide=
for c in $CMDS; do
    run "$CLI" "$c" --help
    cp "$TMP/out" "$TMP/help-$c"
    if [ "$RC" -eq 0 ] && [ ! -s "$TMP/err" ] &&
        head -n1 "$TMP/out" | grep -q "^usage: llmux $c" &&
        grep -q '^options:' "$TMP/out" &&
        grep -qE "^  llmux $c( |$)" "$TMP/out" &&
        ! cmp -s "$TMP/out" "$TMP/overview"; then
        ok "$c --help: its usage, options and an example, exit 0"
    else
        bad "$c --help: its usage, options and an example, exit 0" \
            "status $RC: $(head -n1 "$TMP/out")"
    fi
    run "$CLI" "$c" -h
    if [ "$RC" -eq 0 ] && cmp -s "$TMP/out" "$TMP/help-$c"; then
        ok "$c -h: the same as $c --help"
    else
        bad "$c -h: the same as $c --help" "status $RC"
    fi
    run "$CLI" help "$c"
    if [ "$RC" -eq 0 ] && cmp -s "$TMP/out" "$TMP/help-$c"; then
        ok "help $c: the same as $c --help"
    else
        bad "help $c: the same as $c --help" "status $RC"
    fi
    if awk 'length > 80 { exit 1 }' "$TMP/help-$c"; then :; else
        wide="$wide $c"
    fi
done
awk 'length > 80 { exit 1 }' "$TMP/overview" || wide="$wide --help"
if [ -z "$wide" ]; then
    ok "every help fits 80 columns"
else
    bad "every help fits 80 columns" "wider:$wide"
fi
if grep -q 'tool_call <id> <name> <arguments>' "$TMP/help-chat"; then
    ok "chat --help documents the tool_call lines"
else
    bad "chat --help documents the tool_call lines"
fi

# Which options each command accepts, asked of the program itself: a
# refused option is "not an option of" that command. Then each command's
# help must list exactly those.
for c in $CMDS; do
    : >"$TMP/accepts-$c"
    for o in $OPTS; do
        "$CLI" "$c" "--$o" </dev/null >/dev/null 2>"$TMP/err"
        if grep -q 'is not an option of' "$TMP/err"; then
            continue
        elif grep -q 'unknown option' "$TMP/err"; then
            bad "$c --$o: an option of the table is known" \
                "$(head -n1 "$TMP/err")"
        else
            echo "$o" >>"$TMP/accepts-$c"
        fi
    done
    # the options part: from "options:" to the next blank line
    sed -n '/^options:$/,/^$/p' "$TMP/help-$c" >"$TMP/opts-$c"
    wrong=
    for o in $OPTS; do
        s=$(short_of "$o")
        if [ -n "$s" ]; then
            pat="^  -$s, --$o( |\$)"
        else
            pat="^      --$o( |\$)"
        fi
        if grep -qx "$o" "$TMP/accepts-$c"; then
            grep -qE "$pat" "$TMP/opts-$c" || wrong="$wrong missing:--$o"
        elif grep -qE "^ +(-., )?--$o( |\$)" "$TMP/opts-$c"; then
            wrong="$wrong refused-but-listed:--$o"
        fi
    done
    n=$(wc -l <"$TMP/accepts-$c")
    if [ -z "$wrong" ] && [ "$n" -ge 3 ]; then
        ok "$c --help lists exactly the $n options $c accepts"
    else
        bad "$c --help lists exactly the options $c accepts" \
            "accepted: $(tr '\n' ' ' <"$TMP/accepts-$c")" "${wrong:-too few}"
    fi
done

# the version of the library the program runs with
VERSION=$(sed -nE 's/^project\(llmux VERSION ([0-9.]+).*/\1/p' \
    "$SRC/CMakeLists.txt")
for v in --version -V version; do
    run "$CLI" $v
    if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = "llmux $VERSION" ] &&
        [ ! -s "$TMP/err" ]; then
        ok "$v: 'llmux $VERSION', exit 0"
    else
        bad "$v: 'llmux $VERSION', exit 0" "status $RC: $(cat "$TMP/out")"
    fi
done

# A usage error: its line, where to find help, nothing more.
run "$CLI" chat --no-such-flag hi </dev/null
expect_usage "usage error: one line, then try 'llmux chat --help'" chat
# a mistyped key option names the option, never the value after '='
for a in --api_key=sk-typo-SECRET-7 -ksk-typo-SECRET-7; do
    run "$CLI" chat -m openai/x "$a" hi </dev/null
    expect_usage "unknown $a: a usage error" chat
    if grep -q SECRET "$TMP/err"; then
        bad "unknown ${a%%sk-*}...: the value is not echoed" "$(head -1 "$TMP/err")"
    else
        ok "unknown ${a%%sk-*}...: the value is not echoed"
    fi
done
run "$CLI" models -m openai --stream </dev/null
expect_usage "an option of another command: names the command's help" models
if grep -qx 'llmux: --stream is not an option of "models"' "$TMP/err"; then
    ok "an option of another command: says which and whose"
else
    bad "an option of another command: says which and whose"
fi
run "$CLI" providers extra </dev/null
expect_usage "providers with an argument: try 'llmux providers --help'" \
    providers
for args in "" "frobnicate" "--frobnicate" "help frobnicate" "help chat x"; do
    run "$CLI" $args </dev/null
    expect_usage "'llmux${args:+ $args}': one line, then try 'llmux --help'" ""
done

# The variables the CLI and the library read, and those the in-tree
# providers and descriptors name: each in --help's environment section.
{
    grep -ohE 'getenv\("[A-Za-z_][A-Za-z0-9_]*"\)' "$SRC"/core/*.c \
        "$SRC"/tools/cli/*.c "$SRC"/providers/*/*.c |
        sed -E 's/getenv\("(.*)"\)/\1/'
    grep -ohE '"[A-Z][A-Z0-9_]*_(API_KEY|BASE_URL|ENDPOINT|HOST|TOKEN|KEY)"' \
        "$SRC"/providers/*/*.c | tr -d '"'
    sed -nE 's/^[[:space:]]*(api_key_env|base_url_env)[[:space:]]*=[[:space:]]*([A-Za-z0-9_]+).*/\2/p' \
        "$SRC"/plugins.d/*.conf
} | sort -u >"$TMP/env-vars"
: >"$TMP/err"
sed -n '/^environment:$/,$p' "$TMP/overview" >"$TMP/env-help"
missing=
while read -r v; do
    grep -qw -- "$v" "$TMP/env-help" || missing="$missing $v"
done <"$TMP/env-vars"
if [ -z "$missing" ] && [ "$(wc -l <"$TMP/env-vars")" -ge 10 ] &&
    grep -qx LLMUX_PLUGIN_PATH "$TMP/env-vars"; then
    ok "--help's environment names all $(wc -l <"$TMP/env-vars") variables"
else
    bad "--help's environment names every variable read" \
        "missing:${missing:- (too few found: $(tr '\n' ' ' <"$TMP/env-vars"))}"
fi

# ---- chat ------------------------------------------------------------------

run "$CLI" chat -m "$M" "${URL[@]}" hello world </dev/null
expect_out "chat: prompt words joined by spaces" \
    'Mock reply to: hello world\n'

run "$CLI" chat -m "$MSPEC" hello world </dev/null
expect_out "chat: base_url in the config string" \
    'Mock reply to: hello world\n'

run "$CLI" chat "${URL[@]}" hello -m "$M" world </dev/null
expect_out "chat: options after prompt words" \
    'Mock reply to: hello world\n'

run_in $'from stdin\n' "$CLI" chat -m "$M" "${URL[@]}"
expect_out "chat: no PROMPT reads stdin (trailing newline dropped)" \
    'Mock reply to: from stdin\n'

run_in 'dash input' "$CLI" chat -m "$M" "${URL[@]}" -
expect_out "chat: PROMPT '-' reads stdin" 'Mock reply to: dash input\n'

run_in $'line one\nline two\n' "$CLI" chat -m "$M" "${URL[@]}"
expect_out "chat: multi-line stdin kept whole" \
    'Mock reply to: line one\nline two\n'

run "$CLI" chat -m "$M" "${URL[@]}" -- --not-a-flag </dev/null
expect_out "chat: '--' ends the options" 'Mock reply to: --not-a-flag\n'

run "$CLI" chat -m "$M" "${URL[@]}" --max-tokens 50 --temperature 0.5 \
    --top-p 0.9 --stop END --stop=STOP --seed -7 --timeout 30 \
    --retries 1 hi </dev/null
expect_out "chat: every generation option accepted" 'Mock reply to: hi\n'

# -s: the mock counts prompt words over all messages, so a system prompt
# of three words raises prompt_tokens by three.
run "$CLI" chat -m "$M" "${URL[@]}" --json hi </dev/null
pycheck "chat --json without -s: one prompt token" '
o = json.loads(out)
if o["usage"]["prompt_tokens"] != 1: fail(o["usage"])'
run "$CLI" chat -m "$M" "${URL[@]}" -s "alpha beta gamma" --json hi \
    </dev/null
pycheck "chat -s: the system prompt is sent" '
o = json.loads(out)
if o["usage"]["prompt_tokens"] != 4: fail("usage %r" % o["usage"])
if o["choices"][0]["message"]["content"] != "Mock reply to: hi":
    fail("content %r" % o["choices"][0]["message"]["content"])'
run "$CLI" chat -m "$M" "${URL[@]}" --system "alpha beta" hi </dev/null
expect_out "chat --system: text output unchanged" 'Mock reply to: hi\n'

run "$CLI" chat -m "$M" "${URL[@]}" some words here </dev/null
cp "$TMP/out" "$TMP/plain"
run "$CLI" chat -m "$M" "${URL[@]}" --stream some words here </dev/null
if [ "$RC" -eq 0 ] && cmp -s "$TMP/plain" "$TMP/out" && [ -s "$TMP/out" ]; then
    ok "chat --stream: output equals the non-stream output"
else
    bad "chat --stream: output equals the non-stream output" \
        "status $RC, stream: $(cat "$TMP/out"), plain: $(cat "$TMP/plain")"
fi

run "$CLI" chat -m "$M" "${URL[@]}" --json some words here </dev/null
pycheck "chat --json: one chat.completion object" '
o = json.loads(out)
if not isinstance(o, dict): fail("not an object")
if o.get("object") != "chat.completion": fail("object %r" % o.get("object"))
c = o["choices"][0]
if c["message"]["role"] != "assistant": fail("role")
if c["message"]["content"] != "Mock reply to: some words here":
    fail("content %r" % c["message"]["content"])
if c["finish_reason"] != "stop": fail("finish_reason")
if o["usage"]["total_tokens"] <= 0: fail("usage")'

run "$CLI" chat -m "$M" "${URL[@]}" --json --stream some words here </dev/null
pycheck "chat --json --stream: chunks, usage, deltas = text" '
lines = out.splitlines()
if len(lines) < 2: fail("%d lines" % len(lines))
text, usage = "", 0
for l in lines:
    o = json.loads(l)
    if o.get("object") != "chat.completion.chunk":
        fail("object %r" % o.get("object"))
    for c in o.get("choices", []):
        text += c.get("delta", {}).get("content") or ""
    if o.get("usage"):
        usage += 1
        if o["usage"]["total_tokens"] <= 0: fail("usage %r" % o["usage"])
if usage != 1: fail("usage in %d chunks" % usage)
if text != "Mock reply to: some words here": fail("text %r" % text)'

# ---- complete --------------------------------------------------------------

CM=openai/gpt-3.5-turbo-instruct
run "$CLI" complete -m "$CM" "${URL[@]}" once upon </dev/null
expect_out "complete: text" 'Mock completion of: once upon\n'

run_in $'from stdin\n' "$CLI" complete -m "$CM" "${URL[@]}"
expect_out "complete: prompt from stdin" 'Mock completion of: from stdin\n'

run "$CLI" complete -m "$CM" "${URL[@]}" --stream once upon </dev/null
expect_out "complete --stream: same text" 'Mock completion of: once upon\n'

run "$CLI" complete -m "$CM" "${URL[@]}" --json once upon </dev/null
pycheck "complete --json: one text_completion object" '
o = json.loads(out)
if o.get("object") != "text_completion": fail("object %r" % o.get("object"))
if o["choices"][0]["text"] != "Mock completion of: once upon":
    fail("text %r" % o["choices"][0]["text"])'

run "$CLI" complete -m "$CM" "${URL[@]}" --json --stream once upon </dev/null
pycheck "complete --json --stream: text_completion chunks" '
text, usage = "", 0
lines = out.splitlines()
if len(lines) < 2: fail("%d lines" % len(lines))
for l in lines:
    o = json.loads(l)
    if o.get("object") != "text_completion":
        fail("object %r" % o.get("object"))
    for c in o.get("choices", []):
        if "text" not in c: fail("choice without text: %r" % c)
        text += c["text"] or ""
    if o.get("usage"): usage += 1
if usage != 1: fail("usage in %d chunks" % usage)
if text != "Mock completion of: once upon": fail("text %r" % text)'

# ---- embed -----------------------------------------------------------------

EM=openai/text-embedding-3-small
run "$CLI" embed -m "$EM" "${URL[@]}" "first input" second </dev/null
pycheck "embed: one line of 8 floats per input" '
lines = out.split("\n")
if lines[-1] != "": fail("no final newline")
lines = lines[:-1]
if len(lines) != 2: fail("%d lines" % len(lines))
for l in lines:
    v = l.split(" ")
    if len(v) != 8: fail("%d values: %r" % (len(v), l))
    for x in v:
        if "," in x: fail("comma in %r" % x)
        float(x)
if lines[0] == lines[1]: fail("both vectors equal")'
cp "$TMP/out" "$TMP/embed-c"

# A locale with ',' as decimal separator must not change the output (the
# check is only strong where such a locale is installed).
LOC=$(locale -a 2>/dev/null | grep -iE '^(de_DE|fr_FR)\.utf-?8$' | head -n1)
LOC=${LOC:-de_DE.UTF-8}
run env LC_ALL="$LOC" LC_NUMERIC="$LOC" "$CLI" embed -m "$EM" "${URL[@]}" \
    "first input" second </dev/null
if [ "$RC" -eq 0 ] && cmp -s "$TMP/out" "$TMP/embed-c"; then
    ok "embed under LC_ALL=$LOC: same output, '.' separator"
else
    bad "embed under LC_ALL=$LOC: same output, '.' separator" \
        "status $RC: $(head -c 200 "$TMP/out")"
fi

run_in $'first input\nsecond\n' "$CLI" embed -m "$EM" "${URL[@]}"
if [ "$RC" -eq 0 ] && cmp -s "$TMP/out" "$TMP/embed-c"; then
    ok "embed: no TEXT reads one input per stdin line"
else
    bad "embed: no TEXT reads one input per stdin line" "status $RC"
fi

run "$CLI" embed -m "$EM" "${URL[@]}" --json "first input" second </dev/null
pycheck "embed --json: a list with 2 embeddings" '
o = json.loads(out)
if o.get("object") != "list": fail("object %r" % o.get("object"))
d = o["data"]
if len(d) != 2: fail("%d items" % len(d))
for i, e in enumerate(d):
    if e.get("object") != "embedding": fail("item object")
    if e.get("index") != i: fail("index")
    if len(e["embedding"]) != 8: fail("dim")
plain = [[float(x) for x in l.split()]
         for l in open(args[0]).read().splitlines()]
for i in range(2):
    for a, b in zip(plain[i], d[i]["embedding"]):
        if abs(a - b) > 1e-6 * max(1, abs(a)): fail("text and JSON differ")' \
    "$TMP/embed-c"

# ---- models ----------------------------------------------------------------

run "$CLI" models -m openai "${URL[@]}" </dev/null
pycheck "models -m openai: one id per line" '
ids = out.split("\n")
if ids[-1] != "": fail("no final newline")
ids = ids[:-1]
if "gpt-4o-mini" not in ids: fail("ids %r" % ids)
for i in ids:
    if not i or " " in i: fail("bad line %r" % i)'
cp "$TMP/out" "$TMP/models"

run "$CLI" models -m "openai;base_url=$BASE" </dev/null
if [ "$RC" -eq 0 ] && cmp -s "$TMP/out" "$TMP/models"; then
    ok "models -m 'openai;base_url=...': same ids"
else
    bad "models -m 'openai;base_url=...': same ids" "status $RC"
fi
run "$CLI" models -m "$MSPEC" </dev/null
if [ "$RC" -eq 0 ] && cmp -s "$TMP/out" "$TMP/models"; then
    ok "models -m with a full spec: same ids"
else
    bad "models -m with a full spec: same ids" "status $RC"
fi

run "$CLI" models -m openai "${URL[@]}" --json </dev/null
pycheck "models --json: a list of model objects" '
o = json.loads(out)
if o.get("object") != "list": fail("object %r" % o.get("object"))
ids = [m["id"] for m in o["data"]]
if ids != open(args[0]).read().splitlines(): fail("ids differ: %r" % ids)' \
    "$TMP/models"

# ---- providers --------------------------------------------------------------

# TABLE_PY: reads the table in `out` by the header's column starts, which
# every line must share (the widths computed from the cells): rows() gives
# a dict per line, keyed by the header's words.
TABLE_PY='
import re
def rows(text):
    lines = text.splitlines()
    if not lines: fail("no output")
    cols = [(m.group(0), m.start()) for m in re.finditer(r"\S+", lines[0])]
    names = [c[0] for c in cols]
    widest = [0] * len(cols)
    res = []
    for l in lines[1:]:
        r = {}
        for i, (name, pos) in enumerate(cols):
            end = cols[i + 1][1] if i + 1 < len(cols) else None
            cell = l[pos:end] if end else l[pos:]
            if pos and l[pos - 1] != " ": fail("%s not aligned: %r" % (name, l))
            if not cell.strip() or cell[0] == " ":
                fail("%s not aligned: %r" % (name, l))
            if end and not cell.endswith("  "): fail("no gap: %r" % l)
            r[name] = cell.rstrip() if end else cell
            widest[i] = max(widest[i], len(r[name]), len(name))
        res.append(r)
    # each column as wide as its widest cell, then two spaces
    for i in range(len(cols) - 1):
        if cols[i + 1][1] - cols[i][1] != widest[i] + 2:
            fail("column %s: width %d, widest cell %d" %
                 (names[i], cols[i + 1][1] - cols[i][1] - 2, widest[i]))
    return names, res
'

run "$CLI" providers
pycheck "providers: a table NAME MODULE SOURCE CAPABILITIES, aligned" "$TABLE_PY"'
import os
names, rs = rows(out)
if names != ["NAME", "MODULE", "SOURCE", "CAPABILITIES"]: fail(names)
by = {r["NAME"]: r for r in rs}
o = by.get("openai")
if not o: fail("openai not listed: %r" % out)
caps = o["CAPABILITIES"].split(",")
for c in ("chat", "stream", "complete", "embed", "models", "tools"):
    if c not in caps: fail("caps %r" % o["CAPABILITIES"])
if o["MODULE"] != "openai": fail("module %r" % o["MODULE"])
if not o["SOURCE"].endswith("/openai.so") or not os.path.isfile(o["SOURCE"]):
    fail("source %r" % o["SOURCE"])
for r in rs:
    if r["SOURCE"].endswith(".conf"):
        if not os.path.isfile(r["SOURCE"]): fail("descriptor %r" % r)
        if r["MODULE"] == r["NAME"] and r["NAME"] + ".conf" not in r["SOURCE"]:
            fail("module of %r" % r)'
cp "$TMP/out" "$TMP/providers"

run "$CLI" providers --json
pycheck "providers --json: an object per provider, as the table" "$TABLE_PY"'
a = json.loads(out)
if not isinstance(a, list) or not a: fail("not a non-empty array")
keys = {"name", "module", "path", "descriptor", "version", "description",
        "base_url", "api_key_env", "caps", "status"}
for o in a:
    if not keys <= set(o): fail("keys %r" % sorted(o))
    if not isinstance(o["caps"], list) or \
       not all(isinstance(c, str) for c in o["caps"]): fail("caps %r" % o)
    if o["status"] != "ok": fail("status %r" % o)
_, rs = rows(open(args[0]).read())
if [o["name"] for o in a] != [r["NAME"] for r in rs]: fail("names differ")
for o, r in zip(a, rs):
    if ",".join(o["caps"]) != r["CAPABILITIES"]: fail("caps %r, %r" % (o, r))
    if (o["descriptor"] or o["path"]) != r["SOURCE"]: fail("source %r" % o)
o = [o for o in a if o["name"] == "openai"][0]
if o["api_key_env"] != "OPENAI_API_KEY" or o["module"] != "openai":
    fail("openai %r" % o)' "$TMP/providers"

# -v: the directories first, in search order, then API_KEY_ENV
mkdir -p "$TMP/plugins-empty"
run env LLMUX_PLUGIN_PATH="$TMP/no-such-dir:$TMP/plugins-empty:$LLMUX_PLUGIN_PATH" \
    "$CLI" providers -v
pycheck "providers -v: the directories in order, where from, which exist" '
import os
lines = out.split("\n\n", 1)[0].splitlines()
if lines[0] != "plugin directories, in search order:": fail(lines[0])
got = [l.split() for l in lines[1:]]
want = [["LLMUX_PLUGIN_PATH", args[0] + "/no-such-dir", "(does", "not",
         "exist)"],
        ["LLMUX_PLUGIN_PATH", args[0] + "/plugins-empty"]]
if got[:2] != want: fail("first directories %r" % got[:2])
srcs = [g[0] for g in got]
if "relative" not in srcs and not any(
        os.path.samefile(g[1], args[1]) for g in got if len(g) == 2):
    fail("no directory beside the library: %r" % got)
for g in got[2:]:
    if len(g) == 2 and not os.path.isdir(g[1]): fail("%r exists?" % g)
' "$TMP" "$LLMUX_PLUGIN_PATH"
pycheck "providers -v: the table with each provider's API_KEY_ENV" \
    "$TABLE_PY"'
names, rs = rows(out.split("\n\n", 1)[1])
if names != ["NAME", "MODULE", "API_KEY_ENV", "SOURCE", "CAPABILITIES"]:
    fail(names)
by = {r["NAME"]: r for r in rs}
if by["openai"]["API_KEY_ENV"] != "OPENAI_API_KEY": fail(by["openai"])
if "alephalpha" in by and by["alephalpha"]["API_KEY_ENV"] != "AA_TOKEN":
    fail(by["alephalpha"])
if "azure" in by and by["azure"]["API_KEY_ENV"] != "AZURE_OPENAI_API_KEY":
    fail(by["azure"])'

# No provider at all: the program and its library copied into a tree of
# their own, without plugins, the library's own directory missing there.
LIBFILE=$(ldd "$CLI" 2>/dev/null | sed -nE 's/^[[:space:]]*(libllmux[^ ]*) => (\/[^ ]+) .*/\1 \2/p')
if [ -n "$LIBFILE" ]; then
    mkdir -p "$TMP/bare/bin" "$TMP/bare/lib"
    cp "$CLI" "$TMP/bare/bin/llmux"
    cp -L "${LIBFILE#* }" "$TMP/bare/lib/${LIBFILE%% *}"
    BARE=(env -u LLMUX_PLUGIN_PATH LD_LIBRARY_PATH="$TMP/bare/lib"
        "$TMP/bare/bin/llmux")
    run "${BARE[@]}" providers -v
    if grep -qxE "  relative +$TMP/bare/lib/llmux/plugins.d \(does not exist\)" \
        "$TMP/out"; then
        run "${BARE[@]}" providers
        expect_err "providers, none found: exit 2, says so on stderr" 2 \
            'llmux: providers: no provider found.*'
        if [ -s "$TMP/out" ]; then
            bad "providers, none found: nothing on stdout" "$(cat "$TMP/out")"
        else
            ok "providers, none found: nothing on stdout"
        fi
        run "${BARE[@]}" providers --json
        if [ "$RC" -eq 2 ] && [ "$(tr -d ' \n' <"$TMP/out")" = "[]" ]; then
            ok "providers --json, none found: [], exit 2"
        else
            bad "providers --json, none found: [], exit 2" "status $RC"
        fi
    else
        skip "providers, none found (the copy runs another library: $(head -c 300 "$TMP/out"))"
    fi
else
    skip "providers, none found (ldd does not show libllmux)"
fi

# Bytes that are not UTF-8 in a file name and in a descriptor's
# description: the table and --json carry U+FFFD, and --json stays valid
mkdir -p "$TMP/u8"
printf 'module = openai\n' >"$TMP/u8/$(printf 'caf\351')x.conf"
printf 'module = openai\ndescription = caf\351 \377\n' >"$TMP/u8/u8desc.conf"
run env LLMUX_PLUGIN_PATH="$TMP/u8" "$CLI" providers --json
pycheck "providers --json: bytes that are not UTF-8 become U+FFFD" '
by = {o["name"]: o for o in json.loads(out)}
if "caf\ufffdx" not in by: fail("names: %r" % sorted(by))
if by["caf\ufffdx"]["status"] == "ok": fail(by["caf\ufffdx"])
if by["u8desc"].get("description") != "caf\ufffd \ufffd": fail(by["u8desc"])'

# Test modules from tests/plugins (built next to this build's bin/): a
# provider without complete/embed, and broken modules.
TESTMODS=$(cd "$(dirname "$CLI")/.." 2>/dev/null && pwd)/tests/plugins/broken
if [ -f "$TESTMODS/good.so" ]; then
    LLMUX_PLUGIN_PATH="$TESTMODS${LLMUX_PLUGIN_PATH:+:$LLMUX_PLUGIN_PATH}"
    export LLMUX_PLUGIN_PATH
    run "$CLI" providers
    pycheck "providers: broken plugins listed with their error" "$TABLE_PY"'
_, rs = rows(out)
by = {r["NAME"]: r for r in rs}
for n in ("bad_abi", "no_entry"):
    r = by.get(n)
    if not r: fail("%s not listed" % n)
    c = r["CAPABILITIES"]
    if not c.startswith("broken: ") or len(c) <= len("broken: "):
        fail("line %r" % r)
    if not r["SOURCE"].endswith("/%s.so" % n): fail("source %r" % r)
if by.get("good", {}).get("CAPABILITIES") != "chat,stream,models":
    fail("good: %r" % by.get("good"))
if "openai" not in by: fail("openai missing")'
    run "$CLI" providers --json
    pycheck "providers --json: broken plugins with status and error" '
by = {o["name"]: o for o in json.loads(out)}
for n in ("bad_abi", "no_entry"):
    o = by.get(n)
    if not o: fail("%s not listed" % n)
    if not o["status"].startswith("LLMUX_E") or not o.get("error"):
        fail("%r" % o)
    if o["caps"] != []: fail("caps of a broken one: %r" % o)
if by["good"]["status"] != "ok" or "error" in by["good"]: fail(by["good"])'

    run "$CLI" complete -m good/x hello </dev/null
    expect_err "complete on a provider without it: exit 2" 2 \
        'llmux: good: .*not supported.*'
    run "$CLI" embed -m good/x hello </dev/null
    expect_err "embed on a provider without it: exit 2" 2 \
        'llmux: good: .*not supported.*'
else
    skip "operation not supported (no test module at $TESTMODS)"
fi

# ---- --request-file ---------------------------------------------------------

cat >"$TMP/tools.json" <<'EOF'
{"model": "gpt-4o-mini",
 "messages": [{"role": "system", "content": "one two three four five"},
              {"role": "user", "content": "What is the weather in Paris?"}],
 "tools": [{"type": "function", "function": {"name": "get_weather",
            "description": "Current weather",
            "parameters": {"type": "object",
                           "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}}]}
EOF

run "$CLI" chat -m "$M" "${URL[@]}" --request-file "$TMP/tools.json" \
    --json </dev/null
pycheck "--request-file tools --json: OpenAI tool_calls, string args" '
o = json.loads(out)
if o.get("object") != "chat.completion": fail("object")
c = o["choices"][0]
if c["finish_reason"] != "tool_calls": fail("finish %r" % c["finish_reason"])
tc = c["message"]["tool_calls"]
if len(tc) != 1: fail("%d calls" % len(tc))
t = tc[0]
if t["type"] != "function" or t["function"]["name"] != "get_weather":
    fail("call %r" % t)
if not t.get("id"): fail("no id")
a = t["function"]["arguments"]
if not isinstance(a, str): fail("arguments not a string: %r" % a)
if not isinstance(json.loads(a), dict): fail("arguments not an object")
if o["usage"]["prompt_tokens"] != 11: fail("usage %r" % o["usage"])'
cp "$TMP/out" "$TMP/tools-json"

run "$CLI" chat -m "$M" "${URL[@]}" --request-file "$TMP/tools.json" \
    </dev/null
pycheck "--request-file tools: 'tool_call <id> <name> <arguments>' line" '
c = json.loads(open(args[0]).read())["choices"][0]["message"]["tool_calls"][0]
lines = out.splitlines()
if len(lines) != 1: fail("%d lines: %r" % (len(lines), out))
p = lines[0].split(" ", 3)
if p[:3] != ["tool_call", c["id"], "get_weather"]: fail("line %r" % lines[0])
if json.loads(p[3]) != json.loads(c["function"]["arguments"]):
    fail("arguments %r" % p[3])' "$TMP/tools-json"
cp "$TMP/out" "$TMP/tools-text"

run "$CLI" chat -m "$M" "${URL[@]}" --request-file "$TMP/tools.json" \
    --stream </dev/null
if [ "$RC" -eq 0 ] && cmp -s "$TMP/out" "$TMP/tools-text"; then
    ok "--request-file tools --stream: same tool_call line"
else
    bad "--request-file tools --stream: same tool_call line" \
        "status $RC: $(cat "$TMP/out")"
fi

run "$CLI" chat -m "$M" "${URL[@]}" --request-file "$TMP/tools.json" \
    --stream --json </dev/null
pycheck "--request-file tools --stream --json: tool-call deltas" '
args_text, name, n = "", None, 0
for l in out.splitlines():
    o = json.loads(l)
    if o.get("object") != "chat.completion.chunk": fail("object")
    for c in o.get("choices", []):
        for t in c.get("delta", {}).get("tool_calls", []) or []:
            n += 1
            f = t.get("function", {})
            name = f.get("name") or name
            a = f.get("arguments")
            if a is not None and not isinstance(a, str): fail("args type")
            args_text += a or ""
if name != "get_weather" or n < 2: fail("name %r, %d deltas" % (name, n))
if not isinstance(json.loads(args_text), dict): fail("args %r" % args_text)'

run "$CLI" chat -m "$M" "${URL[@]}" --request-file - --json \
    <"$TMP/tools.json"
pycheck "--request-file -: the request from stdin" '
o = json.loads(out)
if o["choices"][0]["finish_reason"] != "tool_calls": fail("finish")'

run "$CLI" chat -m "$M" "${URL[@]}" --request-file "$TMP/tools.json" \
    -s "x" --json </dev/null
pycheck "--request-file with -s: the flag overrides the system message" '
o = json.loads(out)
if o["usage"]["prompt_tokens"] != 7: fail("usage %r" % o["usage"])'

printf '{"model": "%s", "messages": [{"role": "user", "content": "hi"}]}' \
    "$MSPEC" >"$TMP/model.json"
run "$CLI" chat --request-file "$TMP/model.json" </dev/null
expect_out "--request-file without -m: the JSON's model is the spec" \
    'Mock reply to: hi\n'

run "$CLI" chat -m "$M" "${URL[@]}" --request-file "$TMP/model.json" \
    and more </dev/null
expect_out "--request-file with PROMPT words: appended as a user message" \
    'Mock reply to: and more\n'

# api_key_env names credential variables only, even from the user's own
# file: this request put $HOME on the wire as the Bearer token
printf '{"model": "%s;api_key_env=HOME", "messages": [{"role": "user", "content": "hi"}]}' \
    "$MSPEC" >"$TMP/home.json"
run "$CLI" chat --request-file "$TMP/home.json" </dev/null
expect_err "--request-file: api_key_env=HOME refused, exit 2" 2 \
    'llmux: openai: api_key_env=HOME does not name a credential variable .+'
if grep -qF "$HOME" "$TMP/err"; then
    bad "--request-file: the value of \$HOME is not printed"
else
    ok "--request-file: the value of \$HOME is not printed"
fi

printf '{"messages": [' >"$TMP/broken.json"
run "$CLI" chat -m "$M" "${URL[@]}" --request-file "$TMP/broken.json" \
    </dev/null
expect_err "--request-file with bad JSON: exit 2" 2 'llmux: .+'

run "$CLI" chat -m "$M" "${URL[@]}" --request-file "$TMP/nonexistent.json" \
    </dev/null
expect_err "--request-file missing: exit 2" 2 'llmux: .*nonexistent.*'

# ---- provider errors: exit 1 -----------------------------------------------

run "$CLI" chat -m "$M#status=500" "${URL[@]}" --retries 0 hi </dev/null
expect_err "HTTP 500: exit 1, 'llmux: openai: <message> (HTTP 500)'" 1 \
    'llmux: openai: [^ ].* \(HTTP 500\)'
if [ -s "$TMP/out" ]; then
    bad "HTTP 500: nothing on stdout"
else
    ok "HTTP 500: nothing on stdout"
fi

run "$CLI" chat -m "$M#status=500" "${URL[@]}" --json hi </dev/null
expect_err "HTTP 500 after retries with --json: exit 1, one line" 1 \
    'llmux: openai: [^ ].* \(HTTP 500\)'

run "$CLI" chat -m "$M" "${URL[@]}" --api-key bad-key hi </dev/null
expect_err "HTTP 401 (--api-key bad-key): exit 1" 1 \
    'llmux: openai: [^ ].* \(HTTP 401\)'
if grep -q 'bad-key' "$TMP/out" "$TMP/err"; then
    bad "HTTP 401: the --api-key value never printed"
else
    ok "HTTP 401: the --api-key value never printed"
fi

# ---- --key-cmd and --token-cmd -------------------------------------------

# The mock refuses "bad-key": the first run prints it, the 401 runs the
# command again with LLMUX_REFRESH=1, and the second key is answered.
rm -f "$TMP/kc.n" "$TMP/kc.log"
run "$CLI" chat -m "$M" "${URL[@]}" --key-cmd \
    'echo "$LLMUX_REFRESH $LLMUX_PROVIDER $LLMUX_MODEL" >>"'"$TMP"'/kc.log"
     if [ -e "'"$TMP"'/kc.n" ]; then echo sk-good; else
     touch "'"$TMP"'/kc.n"; echo bad-key; fi' hi </dev/null
expect_out "--key-cmd: refreshed after a 401" 'Mock reply to: hi\n'
if [ "$(cat "$TMP/kc.log")" = "$(printf '0 openai gpt-4o-mini\n1 openai gpt-4o-mini')" ]; then
    ok "--key-cmd: run twice, the second time with LLMUX_REFRESH=1"
else
    bad "--key-cmd: run twice, the second time with LLMUX_REFRESH=1" \
        "log: $(tr '\n' '|' <"$TMP/kc.log")"
fi

run "$CLI" chat -m "$M" "${URL[@]}" --key-cmd 'exit 3' hi </dev/null
expect_err "--key-cmd exiting 3: exit 1 naming it" 1 \
    'llmux: openai: --key-cmd: the command exited with status 3'
run "$CLI" chat -m "$M" "${URL[@]}" --token-cmd 'true' hi </dev/null
expect_err "--token-cmd printing nothing: exit 1" 1 \
    'llmux: openai: --token-cmd: the command printed no token'
run "$CLI" chat -m "$M" "${URL[@]}" --token-cmd 'printf "t\nsoon\n"' hi \
    </dev/null
expect_err "--token-cmd with a bad expiry line: exit 1" 1 \
    'llmux: openai: --token-cmd: .*not a Unix time in seconds'
run "$CLI" chat -m "$M" "${URL[@]}" --token-cmd 'echo bad-key' hi </dev/null
expect_err "--token-cmd refused twice: exit 1, HTTP 401" 1 \
    'llmux: openai: [^ ].* \(HTTP 401\)'
if grep -q 'bad-key' "$TMP/out" "$TMP/err"; then
    bad "--token-cmd: what it printed never printed"
else
    ok "--token-cmd: what it printed never printed"
fi
run "$CLI" chat -m "$M" "${URL[@]}" --token-cmd true --api-key k hi </dev/null
expect_usage "--token-cmd with --api-key: exit 2" chat
run "$CLI" chat -m "$M" "${URL[@]}" --token-cmd true --key-cmd true hi \
    </dev/null
expect_usage "--token-cmd with --key-cmd: exit 2" chat

# A token that lasts an hour is asked for once for a whole batch.
rm -f "$TMP/kc.log"
run_in $'a\nb\nc\n' "$CLI" batch -m "$M" "${URL[@]}" --token-cmd \
    'echo x >>"'"$TMP"'/kc.log"; echo tok; echo $(( $(date +%s) + 3600 ))'
expect_rc "batch --token-cmd: exit 0" 0
if [ "$(wc -l <"$TMP/kc.log")" -eq 1 ]; then
    ok "batch --token-cmd: run once for three requests"
else
    bad "batch --token-cmd: run once for three requests" \
        "runs: $(wc -l <"$TMP/kc.log")"
fi

run "$CLI" chat -m "$M#status=429" "${URL[@]}" --retries 0 \
    hi </dev/null
expect_err "HTTP 429: exit 1" 1 'llmux: openai: [^ ].* \(HTTP 429\)'

run "$CLI" chat -m "$M#stream_error_after=1" "${URL[@]}" --stream hi \
    </dev/null
expect_err "error inside a stream: exit 1" 1 'llmux: openai: [^ ].*'
if [ "$(tail -c 1 "$TMP/out" | od -An -c | tr -d ' ')" = '\n' ] ||
    [ ! -s "$TMP/out" ]; then
    ok "error inside a stream: partial text line ended"
else
    bad "error inside a stream: partial text line ended"
fi

run "$CLI" chat -m "$M#body=garbage" "${URL[@]}" hi </dev/null
expect_err "malformed answer: exit 1" 1 'llmux: openai: .+'

# ---- every choice and logprob ----------------------------------------------

run "$CLI" chat -m "$M" "${URL[@]}" --n 2 two words </dev/null
expect_out "--n 2: each choice, the second under its line" \
    'Mock reply to: two words\n--- choice 1 ---\nMock reply to: two words (choice 1)\n'
run "$CLI" chat -m "$M" "${URL[@]}" --n 3 --stream two words </dev/null
expect_out "--n 3 --stream: choice 0 as it arrives, then the others" \
    'Mock reply to: two words\n--- choice 1 ---\nMock reply to: two words (choice 1)\n--- choice 2 ---\nMock reply to: two words (choice 2)\n'
run "$CLI" chat -m "$M" "${URL[@]}" --top-logprobs 2 two words </dev/null
expect_out "--top-logprobs 2: each token, its logprob and alternatives" \
    'Mock reply to: two words\nlogprobs:\n   -0.1250 "Mock" (alternatives: "Mock" -0.1250, "alt1" -1.1250)\n   -0.2500 " reply" (alternatives: " reply" -0.2500, "alt1" -1.2500)\n   -0.3750 " to:" (alternatives: " to:" -0.3750, "alt1" -1.3750)\n   -0.5000 " two" (alternatives: " two" -0.5000, "alt1" -1.5000)\n   -0.6250 " words" (alternatives: " words" -0.6250, "alt1" -1.6250)\n'
run "$CLI" chat -m "$M" "${URL[@]}" --n 2 --logprobs --json two words </dev/null
pycheck "--n 2 --logprobs --json: every choice and logprob" '
o = json.loads(out)
cs = o["choices"]
if [c["index"] for c in cs] != [0, 1]: fail("indexes %r" % cs)
if cs[1]["message"]["content"] != "Mock reply to: two words (choice 1)":
    fail("choice 1 %r" % cs[1])
for c in cs:
    toks = "".join(t["token"] for t in c["logprobs"]["content"])
    if toks != c["message"]["content"]: fail("tokens %r" % toks)
    if c["logprobs"]["refusal"] is not None: fail("refusal %r" % c)
if o["usage"]["completion_tokens"] != 12: fail("usage %r" % o["usage"])'
run "$CLI" chat -m "$M" "${URL[@]}" --n 2 --logprobs --json --stream two words \
    </dev/null
pycheck "--n 2 --logprobs --json --stream: one choice per chunk, each token once" '
texts, toks = {}, {}
for l in out.splitlines():
    o = json.loads(l)
    cs = o["choices"]
    if len(cs) > 1: fail("chunk with %d choices" % len(cs))
    for c in cs:
        i = c["index"]
        texts[i] = texts.get(i, "") + (c["delta"].get("content") or "")
        for t in (c.get("logprobs") or {}).get("content") or []:
            toks[i] = toks.get(i, "") + t["token"]
if texts != toks: fail("%r != %r" % (texts, toks))
if texts.get(1) != "Mock reply to: two words (choice 1)": fail("%r" % texts)'

# ---- usage and configuration errors: exit 2 ---------------------------------

run "$CLI" chat -m nosuchprovider/model "${URL[@]}" hi </dev/null
expect_err "unknown provider: exit 2" 2 'llmux: nosuchprovider: .+'

env -u OPENAI_API_KEY "$CLI" chat -m "$M" "${URL[@]}" hi </dev/null \
    >"$TMP/out" 2>"$TMP/err"
RC=$?
expect_err "missing API key: exit 2" 2 'llmux: openai: .*OPENAI_API_KEY.*'

run "$CLI" chat -m "$M" "${URL[@]}" --no-such-flag hi </dev/null
expect_usage "unknown flag: usage on stderr, exit 2"
run "$CLI" chat -m "$M" "${URL[@]}" -x hi </dev/null
expect_usage "unknown short flag: usage on stderr, exit 2"
run "$CLI" chat "${URL[@]}" hi </dev/null
expect_usage "missing -m: usage on stderr, exit 2"
run "$CLI" chat -m </dev/null
expect_usage "-m without a value: exit 2"
run "$CLI" frobnicate </dev/null
expect_usage "unknown command: exit 2"
run "$CLI" </dev/null
expect_usage "no command: exit 2"
run "$CLI" embed -m "$EM" "${URL[@]}" --stream x </dev/null
expect_usage "embed --stream (not an embed option): exit 2"
run "$CLI" complete -m "$CM" "${URL[@]}" --request-file "$TMP/model.json" \
    </dev/null
expect_usage "complete --request-file (chat only): exit 2"

run "$CLI" chat -m "$M" "${URL[@]}" --max-tokens abc hi </dev/null
expect_err "--max-tokens abc: exit 2" 2 \
    'llmux: --max-tokens: not a non-negative integer'
run "$CLI" chat -m "$M" "${URL[@]}" --max-tokens -5 hi </dev/null
expect_err "--max-tokens -5: exit 2" 2 \
    'llmux: --max-tokens: not a non-negative integer'
run "$CLI" chat -m "$M" "${URL[@]}" --temperature 0,5 hi </dev/null
expect_err "--temperature 0,5: exit 2" 2 'llmux: --temperature: .+'
run "$CLI" chat -m "$M" "${URL[@]}" --temperature 99 hi </dev/null
expect_err "--temperature 99 (out of range): exit 2" 2 \
    'llmux: --temperature: .+'
run "$CLI" chat -m "$M" "${URL[@]}" --top-p abc hi </dev/null
expect_err "--top-p abc: exit 2" 2 'llmux: --top-p: .+'
run "$CLI" chat -m "$M" "${URL[@]}" --seed 1.5 hi </dev/null
expect_err "--seed 1.5: exit 2" 2 'llmux: --seed: .+'
run "$CLI" chat -m "$M;logprobs=true" "${URL[@]}" hi </dev/null
expect_err "a config-string key the provider does not read: exit 2, named" 2 \
    'llmux: openai: unknown option "logprobs" in the config string .+'
run "$CLI" chat -m "$M" "${URL[@]}" --field 'temperature=99' hi </dev/null
expect_err "--field temperature=99 (out of range): exit 2, names the field" 2 \
    'llmux: --field: .*temperature.*'
run "$CLI" chat -m "$M" "${URL[@]}" --field 'logit_bias={1:' hi </dev/null
expect_err "--field with a value that is not JSON: exit 2, names the field" 2 \
    'llmux: --field: .*logit_bias.*'
run "$CLI" chat -m "$M" "${URL[@]}" --field 'model="x"' hi </dev/null
expect_err "--field model=...: exit 2, refused" 2 'llmux: --field: .*model.*'
for a in 'logit_bias' '=1'; do
    run "$CLI" chat -m "$M" "${URL[@]}" --field "$a" hi </dev/null
    expect_err "--field '$a' (no KEY=JSON): exit 2" 2 \
        "llmux: --field: wants KEY=JSON .+"
done
run "$CLI" chat -m "$M" "${URL[@]}" --n 0 hi </dev/null
expect_err "--n 0: exit 2" 2 'llmux: --n: not a positive integer'
run "$CLI" chat -m "$M" "${URL[@]}" --top-logprobs -1 hi </dev/null
expect_err "--top-logprobs -1: exit 2" 2 'llmux: --top-logprobs: .+'
run "$CLI" chat -m "mistral/mistral-small-latest;api_key=m" \
    --base-url "http://127.0.0.1:$PORT/mistral/v1" --logprobs hi </dev/null
expect_err "--logprobs to Mistral (no logprobs): exit 2, names logprobs" 2 \
    'llmux: mistral: the request field "logprobs" is not supported .+'
run "$CLI" chat -m "ollama/llama3.2" --base-url "http://127.0.0.1:$PORT/ollama" \
    --n 2 hi </dev/null
expect_err "--n 2 to Ollama (one choice): exit 2, names n" 2 \
    'llmux: ollama: the request field "n" is not supported by Ollama.+'
run "$CLI" chat -m "$M" "${URL[@]}" --header 'no colon' hi </dev/null
expect_err "--header without a colon: exit 2" 2 'llmux: --header: .+'
run "$CLI" chat -m "$M" "${URL[@]}" --timeout soon hi </dev/null
expect_err "--timeout soon: exit 2" 2 'llmux: --timeout: .+'
run "$CLI" chat -m "$M" "${URL[@]}" --retries many hi </dev/null
expect_err "--retries many: exit 2" 2 'llmux: --retries: .+'
run "$CLI" chat -m "$M" --base-url ftp://example.com hi </dev/null
expect_err "--base-url not http(s): exit 2" 2 'llmux: .+'

run "$CLI" chat -m "openai/gpt-4o-mini;api_key=sk-SECRET-1234;timeout=x" hi \
    </dev/null
if [ "$RC" -eq 2 ] && ! grep -q 'SECRET' "$TMP/out" "$TMP/err"; then
    ok "bad config string: exit 2, its api_key not printed"
else
    bad "bad config string: exit 2, its api_key not printed" "status $RC"
fi

run "$CLI" chat -m openai "${URL[@]}" hi </dev/null
expect_err "chat -m with no model: exit 2" 2 'llmux: .+'

# ---- secrets: masked where a key can appear, never the provider's words ---

# A short "key" is an ordinary word: the provider's message stays whole.
AB="http://127.0.0.1:$P1/aleph"
run "$CLI" chat -m "alephalpha/luminous-base;base_url=$AB" --api-key t hi \
    </dev/null
expect_err "--api-key t: Aleph Alpha's message is not rewritten" 1 \
    'llmux: alephalpha: Sadly the model you chose does not provide that capability: .+'
start_mock --quiet \
    --fault 'status=404;message=model "x" not found, pull it first with ollama pull' \
    --fault 'status=400;message=provider "openai" refused: e' \
    --fault 'status=401;message=bad header Authorization: Bearer t' \
    --fault 'status=401;message=Incorrect API key provided: sk-LONGSECRET-1234.'
SP=$PORT
run "$CLI" chat -m "ollama/x;base_url=http://127.0.0.1:$SP/ollama;api_key=ollama" \
    --retries 0 hi </dev/null
expect_err "api_key=ollama: Ollama's advice keeps 'ollama pull'" 1 \
    'llmux: ollama: model "x" not found, pull it first with ollama pull \(HTTP 404\)'
run "$CLI" chat -m "openai/x;base_url=http://127.0.0.1:$SP/v1;api_key=e" \
    --retries 0 hi </dev/null
expect_err "api_key=e: the message keeps every e" 1 \
    'llmux: openai: provider "openai" refused: e \(HTTP 400\)'
run "$CLI" chat -m "openai/x;base_url=http://127.0.0.1:$SP/v1" --api-key t \
    --retries 0 hi </dev/null
expect_err "--api-key t: masked where it is a credential (Bearer t)" 1 \
    'llmux: openai: bad header Authorization: Bearer \*\*\* \(HTTP 401\)'
run "$CLI" chat -m "openai/x;base_url=http://127.0.0.1:$SP/v1" \
    --api-key sk-LONGSECRET-1234 --retries 0 hi </dev/null
expect_err "a long key echoed by the provider is masked" 1 \
    'llmux: openai: Incorrect API key provided: \*\*\*\. \(HTTP 401\)'

# batch prints the provider's type, code and param: masked too
start_mock --quiet \
    --fault 'status=401;code=Bearer sk-LONGSECRET-1234;message=no key sk-LONGSECRET-1234'
SP=$PORT
run_in $'one\n' "$CLI" batch -m "openai/x;base_url=http://127.0.0.1:$SP/v1" \
    --api-key sk-LONGSECRET-1234 --retries 0
RC=0 pycheck "batch: the key is masked in the error's message and code" '
if "LONGSECRET" in out: fail(out)
e = json.loads(out)["error"]
if e["provider_code"] != "Bearer ***" or e["message"] != "no key ***": fail(e)
'

# ---- transport errors: exit 3 ----------------------------------------------

# a port nobody listens on: bound for a moment, then released
CLOSED=$("$PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()')
run "$CLI" chat -m "$M" --base-url "http://127.0.0.1:$CLOSED/v1" \
    --retries 0 hi </dev/null
expect_err "connection refused: exit 3" 3 'llmux: openai: .+'

start=$(date +%s%N)
run "$CLI" chat -m "$M#stall_after=1" "${URL[@]}" --timeout 0.5 --stream hi \
    </dev/null
elapsed=$((($(date +%s%N) - start) / 1000000))
expect_err "stalled stream, --timeout 0.5: exit 3" 3 'llmux: openai: .+'
if [ "$elapsed" -lt 4000 ]; then
    ok "stalled stream: --timeout bounds the request (${elapsed} ms)"
else
    bad "stalled stream: --timeout bounds the request (${elapsed} ms)"
fi

start=$(date +%s%N)
run "$CLI" chat -m "$M#delay_ms=3000" "${URL[@]}" --timeout 0.5 hi </dev/null
elapsed=$((($(date +%s%N) - start) / 1000000))
expect_err "slow answer, --timeout 0.5: exit 3" 3 'llmux: openai: .+'
if [ "$elapsed" -lt 2500 ]; then
    ok "slow answer: fractional --timeout honoured (${elapsed} ms)"
else
    bad "slow answer: fractional --timeout honoured (${elapsed} ms)"
fi

start=$(date +%s%N)
run "$CLI" chat -m "$M#delay_ms=3000;timeout=60" "${URL[@]}" --timeout 0.5 \
    hi </dev/null
elapsed=$((($(date +%s%N) - start) / 1000000))
if [ "$RC" -eq 3 ] && [ "$elapsed" -lt 2500 ]; then
    ok "--timeout overrides the config string's timeout= (${elapsed} ms)"
else
    bad "--timeout overrides the config string's timeout= (${elapsed} ms)" \
        "status $RC"
fi

run "$CLI" chat -m "$M#cut_after=2" "${URL[@]}" --stream hi </dev/null
expect_err "stream cut off: exit 3" 3 'llmux: openai: .+'

run "$CLI" chat -m "$M#cut_after=2" "${URL[@]}" --stream --json hi </dev/null
expect_err "stream cut off with --json: exit 3" 3 'llmux: openai: .+'

# ---- --retries, against a mock that fails its first requests ---------------

start_mock --quiet --fault 'status=503;retry_after=0' \
    --fault 'status=503;retry_after=0'
RURL=(--base-url "http://127.0.0.1:$PORT/v1")
run "$CLI" chat -m "$M" "${RURL[@]}" --retries 0 hi </dev/null
expect_err "--retries 0: a 503 is final (exit 1)" 1 \
    'llmux: openai: .* \(HTTP 503\)'
run "$CLI" chat -m "$M;max_retries=0" "${RURL[@]}" --retries 1 hi </dev/null
expect_out "--retries 1 (over max_retries=0): a 503 then success" \
    'Mock reply to: hi\n'

# ---- resilience: retries, stage timeouts, fallbacks -------------------------
#
# Scripted faults each get a mock of their own, so no other check consumes
# (or adds to) their script; the mock's counters show what was sent.

# mockcheck NAME PORT PATH SCRIPT [ARGS...]: GETs PATH from the mock on
# PORT and runs a Python check on its JSON (as variable `o`).
mockcheck() {
    local name=$1 port=$2 path=$3 script=$4 msg
    shift 4
    if msg=$("$PY" - "http://127.0.0.1:$port$path" "$@" 2>&1 <<EOF
import json, sys, urllib.request
o = json.load(urllib.request.urlopen(sys.argv[1], timeout=10))
args = sys.argv[2:]
def fail(m):
    print(m)
    sys.exit(1)
$script
EOF
    ); then
        ok "$name"
    else
        bad "$name" "$msg"
    fi
}

# mark, then elapsed_ms: milliseconds since the mark.
mark() { T0=$(date +%s%N); }
elapsed_ms() { echo $((($(date +%s%N) - T0) / 1000000)); }

# ---- content parts -----------------------------------------------------------

printf '\x89PNG\r\n' >"$TMP/pic.png"
run "$CLI" chat -m "$M" --base-url "http://127.0.0.1:$P1/v1" --image "$TMP/pic.png" \
    --image https://x.test/b.jpg what is it </dev/null
expect_out "--image: the prompt's text answered" 'Mock reply to: what is it\n'
mockcheck "--image: a data: URL of the file, then the URL, after the text" \
    "$P1" /_mock/requests '
m = json.loads(o[-1]["body"])["messages"][-1]["content"]
want = [{"type": "text", "text": "what is it"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/b.jpg"}}]
if m != want: fail("content %r" % m)'
run "$CLI" chat -m "$M" --base-url "http://127.0.0.1:$P1/v1" --image "$TMP/notes.txt" hi </dev/null
expect_err "--image of a file that is no image: exit 2" 2 \
    'llmux: --image: .*not a png, jpg, gif or webp file name.*'
run "$CLI" chat -m "$M" --base-url "http://127.0.0.1:$P1/v1" --image "$TMP/missing.png" hi </dev/null
expect_err "--image of a missing file: exit 2" 2 'llmux: --image: .*missing.png.*'
run "$CLI" chat -m "ollama/llava" --base-url "http://127.0.0.1:$P1/ollama" \
    --image https://x.test/b.jpg hi </dev/null
expect_err "--image URL to Ollama (bytes only): exit 2, says so" 2 \
    'llmux: ollama: .*image by URL is not supported by Ollama.*'


start_mock --quiet --fault 'status=503;retry_after=0'
RP=$PORT
run "$CLI" chat -m "$M" --base-url "http://127.0.0.1:$RP/v1" --retries 1 hi \
    </dev/null
expect_out "--retries 1, one scripted 503 (Retry-After: 0): success" \
    'Mock reply to: hi\n'
mockcheck "--retries 1, one scripted 503: the mock saw 2 requests" "$RP" \
    /_mock/stats 'if o["requests"] != 2: fail("requests %r" % o)'

# ;cache=: a batch's repeated line is answered from the response cache
start_mock --quiet
RP=$PORT
run_in $'same\nsame\nsame\n' "$CLI" batch -m "$M;cache=60" \
    --base-url "http://127.0.0.1:$RP/v1" --concurrency 1
expect_rc "batch with ;cache=60: exit 0" 0
if [ "$(grep -c 'Mock reply to: same' "$TMP/out")" -eq 3 ]; then
    ok "batch with ;cache=60: three answers"
else
    bad "batch with ;cache=60: three answers" "$(head -c 300 "$TMP/out")"
fi
mockcheck "batch with ;cache=60: the mock saw 1 request for 3 lines" "$RP" \
    /_mock/stats 'if o["requests"] != 1: fail("requests %r" % o)'
run_in $'same\nsame\n' "$CLI" batch -m "$M;cache=no" \
    --base-url "http://127.0.0.1:$RP/v1" --concurrency 1
mockcheck "batch with ;cache=no: every line asked" "$RP" \
    /_mock/stats 'if o["requests"] != 3: fail("requests %r" % o)'

start_mock --quiet --fault 'status=503;retry_after=0'
RP=$PORT
run "$CLI" chat -m "$M" --base-url "http://127.0.0.1:$RP/v1" --retries 0 hi \
    </dev/null
expect_err "--retries 0, one scripted 503: exit 1" 1 \
    'llmux: openai: .* \(HTTP 503\)'
mockcheck "--retries 0, one scripted 503: the mock saw 1 request" "$RP" \
    /_mock/stats 'if o["requests"] != 1: fail("requests %r" % o)'

# --retries and --timeout on complete and embed too
start_mock --quiet --fault 'status=503;retry_after=0'
RP=$PORT
run "$CLI" complete -m "$CM" --base-url "http://127.0.0.1:$RP/v1" \
    --retries 1 once upon </dev/null
expect_out "complete --retries 1, a scripted 503: success" \
    'Mock completion of: once upon\n'
mockcheck "complete --retries 1, a scripted 503: the mock saw 2 requests" \
    "$RP" /_mock/stats 'if o["requests"] != 2: fail("requests %r" % o)'
start_mock --quiet --fault 'status=503;retry_after=0'
RP=$PORT
run "$CLI" embed -m "$EM" --base-url "http://127.0.0.1:$RP/v1" --retries 1 \
    "first input" second </dev/null
if [ "$RC" -eq 0 ] && cmp -s "$TMP/out" "$TMP/embed-c"; then
    ok "embed --retries 1, a scripted 503: success, same vectors"
else
    bad "embed --retries 1, a scripted 503: success, same vectors" \
        "status $RC"
fi
mockcheck "embed --retries 1, a scripted 503: the mock saw 2 requests" "$RP" \
    /_mock/stats 'if o["requests"] != 2: fail("requests %r" % o)'

mark
run "$CLI" complete -m "$CM#delay_ms=3000" "${URL[@]}" --timeout 0.5 \
    once upon </dev/null
el=$(elapsed_ms)
expect_err "complete --timeout 0.5 on a slow answer: exit 3, names timeout" \
    3 'llmux: openai: timeout: .*deadline.*'
if [ "$el" -lt 2500 ]; then
    ok "complete --timeout 0.5 on a slow answer: bounded (${el} ms)"
else
    bad "complete --timeout 0.5 on a slow answer: bounded (${el} ms)"
fi
mark
run "$CLI" embed -m "$EM#delay_ms=3000" "${URL[@]}" --timeout 0.5 x \
    </dev/null
el=$(elapsed_ms)
expect_err "embed --timeout 0.5 on a slow answer: exit 3, names timeout" \
    3 'llmux: openai: timeout: .*deadline.*'
if [ "$el" -lt 2500 ]; then
    ok "embed --timeout 0.5 on a slow answer: bounded (${el} ms)"
else
    bad "embed --timeout 0.5 on a slow answer: bounded (${el} ms)"
fi

# --idle-timeout: three events, then silence
mark
run "$CLI" chat -m "$M#stall_after=3" "${URL[@]}" --stream \
    --idle-timeout 0.5 hi </dev/null
el=$(elapsed_ms)
expect_err "--idle-timeout 0.5, stalled stream: exit 3, names idle_timeout" \
    3 'llmux: openai: .*idle_timeout.*'
if [ "$el" -lt 1500 ]; then
    ok "--idle-timeout 0.5, stalled stream: fires on time (${el} ms)"
else
    bad "--idle-timeout 0.5, stalled stream: fires on time (${el} ms)"
fi
if [ -s "$TMP/out" ] &&
    [ "$(tail -c 1 "$TMP/out" | od -An -c | tr -d ' ')" = '\n' ]; then
    ok "--idle-timeout, stalled stream: the partial text kept, line ended"
else
    bad "--idle-timeout, stalled stream: the partial text kept, line ended" \
        "stdout: $(head -c 100 "$TMP/out")"
fi

mark
run "$CLI" complete -m "$CM#stall_after=2" "${URL[@]}" --stream \
    --idle-timeout 0.5 once upon </dev/null
el=$(elapsed_ms)
if [ "$RC" -eq 3 ] && grep -q idle_timeout "$TMP/err" &&
    [ "$el" -lt 1500 ]; then
    ok "complete --idle-timeout 0.5, stalled stream: exit 3 (${el} ms)"
else
    bad "complete --idle-timeout 0.5, stalled stream: exit 3 (${el} ms)" \
        "status $RC"
fi

# --first-byte-timeout: the headers come after 3 s
mark
run "$CLI" chat -m "$M#delay_ms=3000" "${URL[@]}" --retries 0 \
    --first-byte-timeout 0.5 hi </dev/null
el=$(elapsed_ms)
expect_err "--first-byte-timeout 0.5, slow headers: exit 3, names it" 3 \
    'llmux: openai: .*first_byte_timeout.*'
if [ "$el" -lt 2000 ]; then
    ok "--first-byte-timeout 0.5, slow headers: fires on time (${el} ms)"
else
    bad "--first-byte-timeout 0.5, slow headers: fires on time (${el} ms)"
fi
run "$CLI" embed -m "$EM#delay_ms=3000" "${URL[@]}" --retries 0 \
    --first-byte-timeout 0.5 x </dev/null
expect_err "embed --first-byte-timeout 0.5, slow headers: exit 3" 3 \
    'llmux: openai: .*first_byte_timeout.*'

# the stage timeouts leave a normal answer alone
run "$CLI" chat -m "$M" "${URL[@]}" --connect-timeout 5 hi </dev/null
expect_out "--connect-timeout 5: accepted, a normal answer" \
    'Mock reply to: hi\n'
run "$CLI" chat -m "$M" "${URL[@]}" --stream --connect-timeout 2.5 \
    --first-byte-timeout 5 --idle-timeout 5 --timeout 30 some words here \
    </dev/null
expect_out "every timeout flag at once, --stream: a normal answer" \
    'Mock reply to: some words here\n'
run "$CLI" chat -m "$M#delay_ms=300;first_byte_timeout=0.1" "${URL[@]}" \
    --retries 0 --first-byte-timeout 0 hi </dev/null
expect_out "--first-byte-timeout 0 (none) overrides the SPEC's key" \
    'Mock reply to: hi\n'

run "$CLI" chat -m "$M" "${URL[@]}" --connect-timeout 0 hi </dev/null
expect_err "--connect-timeout 0: exit 2" 2 'llmux: --connect-timeout: .+'
run "$CLI" chat -m "$M" "${URL[@]}" --idle-timeout soon hi </dev/null
expect_err "--idle-timeout soon: exit 2" 2 'llmux: --idle-timeout: .+'
run "$CLI" chat -m "$M" "${URL[@]}" --first-byte-timeout -1 hi </dev/null
expect_err "--first-byte-timeout -1: exit 2" 2 \
    'llmux: --first-byte-timeout: .+'
run "$CLI" models -m openai "${URL[@]}" --idle-timeout 1 </dev/null
expect_usage "models --idle-timeout (not a models option): exit 2"

# --timeout on a slow but steady stream: the total deadline fires (not the
# idle timeout: an event comes every 100 ms)
start_mock --quiet --chunk-delay 100
SLOW=(--base-url "http://127.0.0.1:$PORT/v1")
mark
run "$CLI" chat -m "$M#events=50" "${SLOW[@]}" --stream --timeout 0.6 \
    --idle-timeout 1 hi </dev/null
el=$(elapsed_ms)
expect_err "--timeout 0.6 on a slow stream: exit 3, names the total timeout" \
    3 'llmux: openai: timeout: the total deadline.*'
if [ "$el" -lt 2000 ] && [ -s "$TMP/out" ]; then
    ok "--timeout 0.6 on a slow stream: bounded, partial text (${el} ms)"
else
    bad "--timeout 0.6 on a slow stream: bounded, partial text (${el} ms)"
fi

# --field and --header: what the server received
start_mock --quiet
XP=$PORT
XBASE="http://127.0.0.1:$XP/v1"
run "$CLI" chat -m "$M" --base-url "$XBASE" \
    --field 'logit_bias={"50256":-100}' --field 'temperature=0.25' \
    --field 'user="u-1"' --field 'user="u-42"' --field 'stop=["a","b"]' \
    --header 'X-Trace: t-1' hi </dev/null
expect_out "--field, --header: the answer as usual" 'Mock reply to: hi\n'
mockcheck "--field: each field in the body, the last one of a name wins" \
    "$XP" /_mock/requests '
b = json.loads(o[-1]["body"])
want = {"logit_bias": {"50256": -100}, "temperature": 0.25, "user": "u-42",
        "stop": ["a", "b"]}
for k, v in want.items():
    if b.get(k) != v: fail("%s: %r, want %r" % (k, b.get(k), v))'
mockcheck "--header: the header sent" "$XP" /_mock/requests '
h = {k.lower(): v for k, v in o[-1]["headers"].items()}
if h.get("x-trace") != "t-1": fail("headers %r" % h)'
run "$CLI" embed -m openai/text-embedding-3-small --base-url "$XBASE" \
    --field 'user="e-1"' --json hello </dev/null
mockcheck "embed --field: in the embeddings body" "$XP" /_mock/requests '
b = json.loads(o[-1]["body"])
if b.get("user") != "e-1": fail("body %r" % b)'

# --fallback: the primary answers 503 (no retries), the fallback answers
start_mock --quiet
FP=$PORT
FBASE="http://127.0.0.1:$FP/v1"
FB="openai/fallback-model;base_url=$FBASE"
run "$CLI" chat -m "$M#status=503" --base-url "$FBASE" --retries 0 \
    --fallback "$FB" hi </dev/null
expect_out "--fallback: the fallback answers, nothing extra (no -v)" \
    'Mock reply to: hi\n'
mockcheck "--fallback: the primary, then the fallback model were asked" \
    "$FP" /_mock/requests '
models = [json.loads(r["body"])["model"].split("#")[0] for r in o]
if models != ["gpt-4o-mini", "fallback-model"]: fail("models %r" % models)'

run "$CLI" chat -m "$M#status=503" --base-url "$FBASE" --retries 0 \
    --fallback "$FB" -v hi </dev/null
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = 'Mock reply to: hi' ] &&
    [ "$(cat "$TMP/err")" = 'llmux: answered by openai (fallback 1)
llmux: cost unknown: no price for openai fallback-model (data/prices.json)' ]; then
    ok "--fallback -v: same stdout, 'answered by openai (fallback 1)'"
else
    bad "--fallback -v: same stdout, 'answered by openai (fallback 1)'" \
        "status $RC, stdout: $(cat "$TMP/out")"
fi

run "$CLI" chat -m "$M" --base-url "$FBASE" --fallback "$FB" --verbose hi \
    </dev/null
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = 'Mock reply to: hi' ] &&
    [ "$(cat "$TMP/err")" = 'llmux: cost $0.000003 (openai gpt-4o-mini, 1 + 4 tokens)' ]; then
    ok "--fallback --verbose, the primary answers: only its cost on stderr"
else
    bad "--fallback --verbose, the primary answers: only its cost on stderr" \
        "status $RC, stderr: $(cat "$TMP/err")"
fi

run "$CLI" chat -m "$M#status=503" --base-url "$FBASE" --retries 0 \
    --fallback "openai/second#status=500;base_url=$FBASE" \
    --fallback "$FB" -v --stream hi </dev/null
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = 'Mock reply to: hi' ] &&
    [ "$(head -n 1 "$TMP/err")" = 'llmux: answered by openai (fallback 2)' ]; then
    ok "--fallback twice, --stream: tried in order, the second answers"
else
    bad "--fallback twice, --stream: tried in order, the second answers" \
        "status $RC, stdout: $(cat "$TMP/out")"
fi

run "$CLI" embed -m "$EM#status=503" --base-url "$FBASE" --retries 0 \
    --fallback "openai/text-embedding-3-small;base_url=$FBASE" -v \
    "first input" second </dev/null
if [ "$RC" -eq 0 ] && cmp -s "$TMP/out" "$TMP/embed-c" &&
    grep -qx 'llmux: answered by openai (fallback 1)' "$TMP/err"; then
    ok "embed --fallback: the fallback's vectors, -v line"
else
    bad "embed --fallback: the fallback's vectors, -v line" "status $RC"
fi

run "$CLI" complete -m "$CM#status=503" --base-url "$FBASE" --retries 0 \
    --fallback "openai/gpt-3.5-turbo-instruct;base_url=$FBASE" once upon \
    </dev/null
expect_out "complete --fallback: the fallback answers" \
    'Mock completion of: once upon\n'

run "$CLI" chat -m "$M#status=400" --base-url "$FBASE" --retries 0 \
    --fallback "$FB" hi </dev/null
expect_err "--fallback: a 400 is final, no fallback (exit 1)" 1 \
    'llmux: openai: .* \(HTTP 400\)'

run "$CLI" chat -m "$M#status=503" --base-url "$FBASE" --retries 0 \
    --fallback "openai/second#status=503;base_url=$FBASE" hi </dev/null
expect_err "--fallback that fails too: exit 1, its error" 1 \
    'llmux: openai: .* \(HTTP 503\)'

start_mock --quiet
BP=$PORT
for spec in "openai/x;timeout=abc" "nosuchprovider/x" "openai" ""; do
    run "$CLI" chat -m "$M" --base-url "http://127.0.0.1:$BP/v1" \
        --fallback "$spec" hi </dev/null
    expect_err "bad --fallback '$spec': exit 2" 2 'llmux: --fallback: .+'
done
run "$CLI" chat -m "$M" --base-url "http://127.0.0.1:$BP/v1" \
    --fallback "$FB" --fallback "openai/x;max_retries=lots" hi </dev/null
expect_err "bad second --fallback: exit 2, says which" 2 \
    'llmux: --fallback #2: .*max_retries.*'
mockcheck "bad --fallback: nothing was sent" "$BP" /_mock/stats \
    'if o["requests"] != 0: fail("requests %r" % o)'
run "$CLI" chat -m "$M" "${URL[@]}" \
    --fallback "openai/x;api_key=sk-FBSECRET-99;timeout=x" hi </dev/null
if [ "$RC" -eq 2 ] && ! grep -q 'FBSECRET' "$TMP/out" "$TMP/err"; then
    ok "bad --fallback: exit 2, its api_key not printed"
else
    bad "bad --fallback: exit 2, its api_key not printed" "status $RC"
fi
run "$CLI" models -m openai "${URL[@]}" --fallback "$FB" </dev/null
expect_usage "models --fallback (not a models option): exit 2"

# ---- batch -------------------------------------------------------------------

run_in $'one\n\ntwo\r\nthree' "$CLI" batch -m "$M" "${URL[@]}" --ordered
pycheck "batch --ordered: a JSON line per non-empty input line, in input order" '
rows = [json.loads(l) for l in out.splitlines()]
if [r["index"] for r in rows] != [0, 1, 2]: fail(rows)
if [r["line"] for r in rows] != [1, 3, 4]: fail(rows)
for r, p in zip(rows, ["one", "two", "three"]):
    if r["status"] != "ok": fail(r)
    c = r["response"]["choices"][0]["message"]["content"]
    if c != "Mock reply to: " + p: fail(c)
    if r["response"]["object"] != "chat.completion": fail(r)
'
printf 'alpha\nbeta\n' >"$TMP/prompts"
run "$CLI" batch -m "$M" "${URL[@]}" -s "Be brief." --ordered "$TMP/prompts" \
    </dev/null
pycheck "batch FILE: the prompts of the file" '
rows = [json.loads(l) for l in out.splitlines()]
got = [r["response"]["choices"][0]["message"]["content"] for r in rows]
if got != ["Mock reply to: alpha", "Mock reply to: beta"]: fail(got)
'
run_in '' "$CLI" batch -m "$M" "${URL[@]}" --quiet
expect_out "batch --quiet: no input, no output, exit 0" ''

run_in $'a\nb\n' "$CLI" batch -m "$M#status=400" "${URL[@]}"
expect_rc "batch: provider errors: exit 1" 1
RC=0 pycheck "batch: each error on its line (code, HTTP status, type)" '
rows = [json.loads(l) for l in out.splitlines()]
if len(rows) != 2: fail(rows)
for r in rows:
    e = r["error"]
    if r["status"] != "error" or e["code"] != "LLMUX_EPROVIDER": fail(r)
    if e["http_status"] != 400 or e["type"] != "invalid_request_error": fail(r)
'
# the errors go to stdout; stderr has the summary line only
if [ "$(wc -l <"$TMP/err")" -eq 1 ] &&
    grep -qE '^llmux: batch: 2 done \(0 ok, 2 failed\), ' "$TMP/err"; then
    ok "batch: errors go to stdout, stderr has the summary only"
else
    bad "batch: errors go to stdout, stderr has the summary only"
fi
run_in $'a\nb\n' "$CLI" batch -m "$M#status=400" "${URL[@]}" -q
if [ "$RC" -eq 1 ] && [ ! -s "$TMP/err" ] && [ "$(wc -l <"$TMP/out")" -eq 2 ]; then
    ok "batch -q: no summary, stderr empty"
else
    bad "batch -q: no summary, stderr empty" "status $RC"
fi

start_mock --quiet --fault 'status=503'
BP=$PORT
run_in $'a\nb\nc\nd\n' "$CLI" batch -m "$M" \
    --base-url "http://127.0.0.1:$BP/v1" --retries 0 --concurrency 1 \
    --fail-fast
expect_rc "batch --fail-fast: exit 1" 1
RC=0 pycheck "batch --fail-fast: the first fails, the rest are canceled" '
rows = [json.loads(l) for l in out.splitlines()]
codes = [r["error"]["code"] for r in rows]
if codes != ["LLMUX_EPROVIDER"] + ["LLMUX_ECANCELED"] * 3: fail(codes)
'
mockcheck "batch --fail-fast: the mock saw 1 request" "$BP" \
    /_mock/stats 'if o["requests"] != 1: fail("requests %r" % o)'

start_mock --quiet --latency 100
BP=$PORT
run_in "$(seq 1 6)" "$CLI" batch -m "$M" \
    --base-url "http://127.0.0.1:$BP/v1" --concurrency 2
pycheck "batch --concurrency 2: all six answered" '
rows = [json.loads(l) for l in out.splitlines()]
if [r["status"] for r in rows] != ["ok"] * 6: fail(rows)
'
mockcheck "batch --concurrency 2: at most 2 in flight at the mock" "$BP" \
    /_mock/stats 'if o["max_concurrent"] != 2 or o["requests"] != 6: fail(o)'

start_mock --quiet --fault 'delay_ms=600'
BP=$PORT
run_in $'slow\nfast1\nfast2\n' "$CLI" batch -m "$M" \
    --base-url "http://127.0.0.1:$BP/v1" --concurrency 3 --as-completed
# the mock delays the request that reaches it first (its answer's id is
# chatcmpl-mock-1), which need not be line 1's: three connections race
pycheck "batch --as-completed: results as they finish (the slow one last)" '
rows = [json.loads(l) for l in out.splitlines()]
ids = [r["response"]["id"] for r in rows]
if sorted(r["index"] for r in rows) != [0, 1, 2] or ids[2] != "chatcmpl-mock-1":
    fail(list(zip([r["index"] for r in rows], ids)))
'
start_mock --quiet --fault 'delay_ms=600'
BP=$PORT
run_in $'slow\nfast1\nfast2\n' "$CLI" batch -m "$M" \
    --base-url "http://127.0.0.1:$BP/v1" --concurrency 3 --ordered
pycheck "batch --ordered: input order even when the first finishes last" '
rows = [json.loads(l) for l in out.splitlines()]
if [r["index"] for r in rows] != [0, 1, 2]: fail(rows)
'

mark
run_in $'a\nb\nc\nd\n' "$CLI" batch -m "$M" "${URL[@]}" --rpm 120
T=$(elapsed_ms)
# two a second with two of burst: the fourth leaves at 1 s
if [ "$RC" -eq 0 ] && [ "$T" -ge 950 ]; then
    ok "batch --rpm 120: four requests take a second (${T} ms)"
else
    bad "batch --rpm 120: four requests take a second" "status $RC, ${T} ms"
fi

cat >"$TMP/requests.jsonl" <<'EOF'
{"model":"openai/gpt-4o-mini","messages":[{"role":"system","content":"Be."},{"role":"user","content":"first"}],"max_tokens":5}
not a request
{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"third"}]}
EOF
run "$CLI" batch --jsonl --ordered "${URL[@]}" "$TMP/requests.jsonl" </dev/null
expect_rc "batch --jsonl with a bad line: exit 2 (its error)" 2
RC=0 pycheck "batch --jsonl: each line a request; the bad one its error line" '
rows = [json.loads(l) for l in out.splitlines()]
if [r["status"] for r in rows] != ["ok", "error", "ok"]: fail(rows)
if rows[1]["error"]["code"] != "LLMUX_EINVAL": fail(rows[1])
got = [rows[i]["response"]["choices"][0]["message"]["content"] for i in (0, 2)]
if got != ["Mock reply to: first", "Mock reply to: third"]: fail(got)
'
# a line's "model" may not choose an endpoint or a key variable
printf '%s\n' \
    '{"model":"openai/gpt-4o-mini;base_url=http://127.0.0.1:9/v1","messages":[{"role":"user","content":"x"}]}' \
    '{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"y"}]}' \
    >"$TMP/evil.jsonl"
run "$CLI" batch --jsonl "${URL[@]}" "$TMP/evil.jsonl" </dev/null
expect_rc "batch --jsonl: a line's model with options is that line's error" 2
RC=0 pycheck "batch --jsonl: options in a line's model refused, the rest runs" '
rows = [json.loads(l) for l in out.splitlines()]
if [r["status"] for r in rows] != ["error", "ok"]: fail(rows)
if rows[0]["error"]["code"] != "LLMUX_ECONFIG": fail(rows[0])
if "not options" not in rows[0]["error"]["message"]: fail(rows[0])
'
run "$CLI" batch -m "$M" "${URL[@]}" "$TMP/prompts" "$TMP/prompts" </dev/null
expect_usage "batch with two FILEs: exit 2"
run "$CLI" batch -m "$M" "${URL[@]}" --concurrency 0 "$TMP/prompts" </dev/null
expect_err "batch --concurrency 0: exit 2" 2 \
    'llmux: --concurrency: not a positive integer' 
run "$CLI" batch -m "$M" "${URL[@]}" --stream "$TMP/prompts" </dev/null
expect_usage "batch --stream (not a batch option): exit 2"
run "$CLI" batch "${URL[@]}" "$TMP/prompts" </dev/null
expect_usage "batch without -m: exit 2"
run "$CLI" batch -m "$M" "${URL[@]}" "$TMP/no-such-file" </dev/null
expect_err "batch with a missing FILE: exit 2" 2 \
    'llmux: input: .*no-such-file: No such file or directory'
run "$CLI" chat -m "$M" "${URL[@]}" --concurrency 2 hi </dev/null
expect_usage "chat --concurrency (a batch option): exit 2"

# ---- prompts from a terminal; empty prompts ------------------------------

# pty_run INPUT CMD...: runs CMD with a pseudo-terminal as stdin, INPUT
# typed into it (as bytes: $'\x04' is Ctrl-D), stdout and stderr to
# $TMP/out and $TMP/err, the status in RC. The terminal's line discipline
# handles INPUT when it is written, so the outcome does not depend on
# when CMD reads. A CMD still reading after 10 s is killed: status 124.
pty_run() {
    local input=$1
    shift
    "$PY" - "$input" "$@" >"$TMP/out" 2>"$TMP/err" <<'EOF'
import os, subprocess, sys
master, slave = os.openpty()
p = subprocess.Popen(sys.argv[2:], stdin=slave)
os.close(slave)
os.write(master, sys.argv[1].encode())
try:
    rc = p.wait(timeout=10)
except subprocess.TimeoutExpired:
    p.kill()
    p.wait()
    sys.stderr.write("TIMEOUT: still reading after 10 s\n")
    rc = 124
os.close(master)
sys.exit(rc)
EOF
    RC=$?
}

HINT="llmux: reading the prompt from the terminal; end it with Ctrl-D"
pty_run $'hello world\x04' "$CLI" chat -m "$M" "${URL[@]}"
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = "Mock reply to: hello world" ] &&
    [ "$(cat "$TMP/err")" = "$HINT" ]; then
    ok "terminal: a hint on stderr; one Ctrl-D ends a partial line"
else
    bad "terminal: a hint on stderr; one Ctrl-D ends a partial line" \
        "status $RC, stdout: $(cat "$TMP/out")"
fi
pty_run $'line one\nline two\x04' "$CLI" chat -m "$M" "${URL[@]}"
if [ "$RC" -eq 0 ] &&
    [ "$(cat "$TMP/out")" = $'Mock reply to: line one\nline two' ]; then
    ok "terminal: two lines, the second ended by one Ctrl-D"
else
    bad "terminal: two lines, the second ended by one Ctrl-D" \
        "status $RC, stdout: $(cat "$TMP/out")"
fi
pty_run $'whole line\n\x04' "$CLI" complete -m "$CM" "${URL[@]}"
if [ "$RC" -eq 0 ] &&
    [ "$(cat "$TMP/out")" = "Mock completion of: whole line" ]; then
    ok "terminal: Ctrl-D after a newline ends the prompt (complete)"
else
    bad "terminal: Ctrl-D after a newline ends the prompt (complete)" \
        "status $RC, stdout: $(cat "$TMP/out")"
fi
pty_run $'first input\nsecond\x04' "$CLI" embed -m "$EM" "${URL[@]}"
if [ "$RC" -eq 0 ] && cmp -s "$TMP/out" "$TMP/embed-c" &&
    grep -qx 'llmux: reading the inputs from the terminal, one per line; end them with Ctrl-D' \
        "$TMP/err"; then
    ok "terminal: embed reads its inputs, says so"
else
    bad "terminal: embed reads its inputs, says so" "status $RC"
fi
pty_run $'\x04' "$CLI" chat -m "$M" "${URL[@]}"
if [ "$RC" -eq 2 ] && [ "$(sed -n 1p "$TMP/err")" = "$HINT" ] &&
    [ "$(sed -n 2p "$TMP/err")" = "llmux: chat: the prompt is empty" ] &&
    [ ! -s "$TMP/out" ]; then
    ok "terminal: Ctrl-D at once, an empty prompt: exit 2"
else
    bad "terminal: Ctrl-D at once, an empty prompt: exit 2" "status $RC"
fi

start_mock --quiet
EP=$PORT
EURL=(--base-url "http://127.0.0.1:$EP/v1")
run_in '' "$CLI" chat -m "$M" "${EURL[@]}"
expect_usage "empty stdin: a usage error" chat
if grep -qx 'llmux: chat: the prompt is empty' "$TMP/err"; then
    ok "empty stdin: 'llmux: chat: the prompt is empty'"
else
    bad "empty stdin: 'llmux: chat: the prompt is empty'"
fi
run_in $'\n' "$CLI" complete -m "$CM" "${EURL[@]}"
expect_usage "stdin with only a newline: an empty prompt" complete
run "$CLI" chat -m "$M" "${EURL[@]}" "" </dev/null
expect_usage "an empty PROMPT argument: a usage error" chat
run "$CLI" evaluate -m "$M" "${EURL[@]}" --expected x "" </dev/null
expect_usage "evaluate, an empty PROMPT: a usage error" evaluate
run "$CLI" tokenize -m "$M" "${EURL[@]}" "" </dev/null
expect_usage "tokenize, an empty TEXT: a usage error" tokenize
if grep -qx 'llmux: tokenize: the text is empty' "$TMP/err"; then
    ok "tokenize, an empty TEXT: 'the text is empty'"
else
    bad "tokenize, an empty TEXT: 'the text is empty'"
fi
mockcheck "empty prompts: nothing was sent" "$EP" /_mock/stats \
    'if o["requests"] != 0: fail("requests %r" % o)'

# ---- shell completion ---------------------------------------------------------

COMP_BASH="$SRC/tools/cli/completion/llmux.bash"
COMP_ZSH="$SRC/tools/cli/completion/_llmux"
BASH_COMPLETION_LIB=/usr/share/bash-completion/bash_completion

if bash -n "$COMP_BASH" 2>"$TMP/err"; then
    ok "bash completion: bash -n"
else
    bad "bash completion: bash -n"
fi

# complete_words LIB WORD...: runs _llmux in a clean bash (LIB, when not
# empty, sourced first: bash-completion's helpers) with COMP_WORDS set to
# the words as readline splits them, the last one being completed; the
# candidates, one a line, in $TMP/out.
complete_words() {
    local lib=$1
    shift
    bash --norc --noprofile -c '
        [ -n "$1" ] && source "$1"
        source "$2" || exit 1
        shift 2
        COMP_WORDS=("$@")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        _llmux "$1" "${COMP_WORDS[COMP_CWORD]}" \
            "${COMP_WORDS[COMP_CWORD - 1]}"
        [ ${#COMPREPLY[@]} -eq 0 ] || printf "%s\n" "${COMPREPLY[@]}"
    ' _ "$lib" "$COMP_BASH" "$@" >"$TMP/out" 2>"$TMP/err"
    RC=$?
}

# expect_words NAME WANT...: the candidates are exactly the WANT words
expect_words() {
    local name=$1
    shift
    printf '%s\n' "$@" | sed '/^$/d' | sort >"$TMP/want"
    sort "$TMP/out" >"$TMP/got"
    if [ "$RC" -eq 0 ] && cmp -s "$TMP/want" "$TMP/got"; then
        ok "$name"
    else
        bad "$name" "got:  $(tr '\n' ' ' <"$TMP/got")" \
            "want: $(tr '\n' ' ' <"$TMP/want")"
    fi
}

: >"$TMP/err"
# the provider names starting with "o", as the table lists them
"$CLI" providers 2>/dev/null | awk 'NR > 1 && /^o/ { print $1 }' \
    >"$TMP/o-names"
modes=(plain)
[ -f "$BASH_COMPLETION_LIB" ] && modes+=(bash-completion)
for mode in "${modes[@]}"; do
    lib=
    [ "$mode" = bash-completion ] && lib=$BASH_COMPLETION_LIB
    n="bash completion ($mode)"
    complete_words "$lib" "$CLI" ""
    expect_words "$n: the commands" $CMDS help version
    complete_words "$lib" "$CLI" ch
    expect_words "$n: 'ch' is chat" chat
    complete_words "$lib" "$CLI" help ev
    expect_words "$n: help's COMMAND" evaluate
    for c in $CMDS; do
        complete_words "$lib" "$CLI" "$c" --
        expect_words "$n: the options $c accepts" \
            $(sed 's/^/--/' "$TMP/accepts-$c")
    done
    complete_words "$lib" "$CLI" chat hello -m o
    expect_words "$n: -m completes provider names, then '/'" \
        $(sed 's|$|/|' "$TMP/o-names")
    complete_words "$lib" "$CLI" chat --model = o
    expect_words "$n: --model=, the same" $(sed 's|$|/|' "$TMP/o-names")
    complete_words "$lib" "$CLI" models -m o
    expect_words "$n: models -m: bare provider names" $(cat "$TMP/o-names")
    complete_words "$lib" "$CLI" chat --max-tokens ""
    expect_words "$n: nothing for a number"
    complete_words "$lib" "$CLI" chat -- -
    expect_words "$n: nothing after '--'"
done
if [ "$(wc -l <"$TMP/o-names")" -lt 2 ]; then
    bad "bash completion: providers to complete (openai, ollama...)" \
        "$(cat "$TMP/o-names")"
fi
[ -f "$BASH_COMPLETION_LIB" ] ||
    skip "bash completion with bash-completion's helpers (not installed)"

if command -v zsh >/dev/null 2>&1; then
    if zsh -n "$COMP_ZSH" 2>"$TMP/err"; then
        ok "zsh completion: zsh -n"
    else
        bad "zsh completion: zsh -n"
    fi
else
    skip "zsh completion: zsh -n (no zsh)"
fi
missing=
for c in $CMDS; do
    grep -qE "^ +$c\)" "$COMP_ZSH" || missing="$missing $c"
    while read -r o; do
        grep -qE -- "--$o([]=[}'\"]|$)" "$COMP_ZSH" || missing="$missing --$o"
    done <"$TMP/accepts-$c"
done
if [ -z "$missing" ]; then
    ok "zsh completion: names every command and option"
else
    bad "zsh completion: names every command and option" \
        "missing:$(echo "$missing" | tr ' ' '\n' | sort -u | tr '\n' ' ')"
fi

# ---- the man page ---------------------------------------------------------------

MAN="$SRC/docs/man/llmux.1.scd"
: >"$TMP/err"
if command -v scdoc >/dev/null 2>&1; then
    if scdoc <"$MAN" >/dev/null 2>"$TMP/err"; then
        ok "man page: scdoc reads it"
    else
        bad "man page: scdoc reads it"
    fi
else
    skip "man page: scdoc reads it (no scdoc)"
fi
# section NAME: the man page's section NAME, up to the next one
man_section() {
    sed -n "/^# $1\$/,/^# /p" "$MAN"
}
missing=
for c in $CMDS help version; do
    man_section COMMANDS | grep -q "^\*$c\*" || missing="$missing $c"
done
# every option any help names at an option's place, long and short
cat "$TMP"/opts-* "$TMP/overview" |
    grep -oE -- '^ +(-[a-zA-Z], )?--[a-z][a-z-]*' |
    grep -oE -- '(^| )-[a-zA-Z]|--[a-z][a-z-]*' | tr -d ' ' | sort -u \
    >"$TMP/help-opts"
for o in -V --version; do echo "$o"; done >>"$TMP/help-opts"
while read -r o; do
    man_section OPTIONS | grep -qF -- "*$o*" || missing="$missing $o"
done <"$TMP/help-opts"
if [ -z "$missing" ] && [ "$(wc -l <"$TMP/help-opts")" -ge 25 ]; then
    ok "man page: every command, and every option of every --help"
else
    bad "man page: every command, and every option of every --help" \
        "missing:${missing:- (only $(wc -l <"$TMP/help-opts") options)}"
fi
missing=
while read -r v; do
    man_section ENVIRONMENT | grep -qw -- "$v" || missing="$missing $v"
done <"$TMP/env-vars"
if [ -z "$missing" ]; then
    ok "man page: ENVIRONMENT names every variable read"
else
    bad "man page: ENVIRONMENT names every variable read" "missing:$missing"
fi
# the exit statuses the code defines, each described
missing=
for s in 0 $(sed -nE 's/^#define EXIT_[A-Z]+ +([0-9]+)$/\1/p' "$CLI_SRC"); do
    man_section 'EXIT STATUS' | grep -qx "\*$s\*" || missing="$missing $s"
    grep -qE "^  $s  " "$TMP/overview" || missing="$missing --help:$s"
done
if [ -z "$missing" ]; then
    ok "man page and --help: every exit status of the code"
else
    bad "man page and --help: every exit status of the code" \
        "missing:$missing"
fi
for s in NAME SYNOPSIS DESCRIPTION OPTIONS FILES EXAMPLES; do
    man_section "$s" | grep -q . || missing="$missing $s"
done
if [ -z "$missing" ] && man_section 'SEE ALSO' | grep -qF 'llmux-plugin*(7)' &&
    man_section FILES | grep -q 'plugins.d'; then
    ok "man page: its sections, FILES, SEE ALSO llmux-plugin(7)"
else
    bad "man page: its sections, FILES, SEE ALSO llmux-plugin(7)" \
        "missing:$missing"
fi

# ---- output to a closed pipe -------------------------------------------------

"$CLI" chat -m "$M#events=200000" "${URL[@]}" --stream hi </dev/null \
    2>"$TMP/err" | head -c 10 >/dev/null
RC=${PIPESTATUS[0]}
if [ "$RC" -eq 0 ] && [ ! -s "$TMP/err" ]; then
    ok "--stream | head: quiet exit 0 (SIGPIPE ignored)"
else
    bad "--stream | head: quiet exit 0 (SIGPIPE ignored)" "status $RC"
fi

"$CLI" embed -m "$EM" "${URL[@]}" $(seq 1 3000) </dev/null 2>"$TMP/err" |
    head -n 1 >/dev/null
RC=${PIPESTATUS[0]}
if [ "$RC" -eq 0 ] && [ ! -s "$TMP/err" ]; then
    ok "embed | head -n 1: quiet exit 0"
else
    bad "embed | head -n 1: quiet exit 0" "status $RC"
fi

# ---- every provider: the same commands, the same normalized answers ---------
#
# The four protocols are served by the one mock under path prefixes: OpenAI
# at /v1, Mistral at /mistral, Ollama at /ollama, Aleph Alpha at /aleph.
# Each block is skipped (visibly) while its plugin module is not in
# $LLMUX_PLUGIN_PATH or the mock does not speak that protocol yet.

ROOT="http://127.0.0.1:$P1"
NORM="$TMP/norm"
mkdir -p "$NORM"
unset MISTRAL_API_KEY MISTRAL_BASE_URL AA_TOKEN AA_BASE_URL OLLAMA_HOST \
    OLLAMA_API_KEY AZURE_OPENAI_API_KEY AZURE_OPENAI_ENDPOINT OPENAI_API_VERSION
export MISTRAL_API_KEY=mistral-test AA_TOKEN=aa-test \
    AZURE_OPENAI_API_KEY=azure-test

# plugin_found NAME: NAME.so is in a $LLMUX_PLUGIN_PATH directory.
plugin_found() {
    local d dirs
    IFS=: read -r -a dirs <<<"${LLMUX_PLUGIN_PATH:-}"
    for d in "${dirs[@]}"; do
        if [ -n "$d" ] && [ -f "$d/$1.so" ]; then
            return 0
        fi
    done
    return 1
}

# probe URL METHOD BODY PYEXPR: the mock answers 200 at URL with a JSON
# body `o` for which PYEXPR holds (tells a protocol from the OpenAI
# fallback, which answers any path ending in /completions or /models).
probe() {
    local code
    if ! command -v curl >/dev/null; then
        return 1
    fi
    code=$(curl -s -o "$TMP/probe" -w '%{http_code}' -X "$2" \
        -H 'Authorization: Bearer probe' -H 'Content-Type: application/json' \
        ${3:+--data "$3"} "$1" 2>/dev/null)
    [ "$code" = 200 ] || return 1
    "$PY" - "$TMP/probe" "$4" <<'EOF' >/dev/null 2>&1
import json, sys
o = json.load(open(sys.argv[1], encoding="utf-8"))
sys.exit(0 if eval(sys.argv[2]) else 1)
EOF
}

# normalize IN OUT: OUT gets IN's JSON objects (one per line, or one) with
# only the top-level members every provider's answer has (object, choices,
# usage, data): id, created, model and system_fingerprint identify the
# serving backend, not the answer, and the fields one provider adds
# (Mistral's "p" padding, Ollama's durations) are passed through as they
# came; keys sorted.
normalize() {
    "$PY" - "$1" "$2" <<'EOF'
import json, sys
out = []
for l in open(sys.argv[1], encoding="utf-8").read().splitlines():
    if not l.strip(): continue
    o = json.loads(l)
    if isinstance(o, dict):
        o = {k: v for k, v in o.items()
             if k in ("object", "choices", "usage", "data")}
        for c in o.get("choices", []):
            c.pop("content_filter_results", None)  # Azure's annotation
    out.append(json.dumps(o, sort_keys=True))
open(sys.argv[2], "w").write("\n".join(out) + "\n")
EOF
}

# stream_summary IN OUT: the text the deltas of a --json --stream output
# add up to, the finish reason and the usage, as one JSON line.
stream_summary() {
    "$PY" - "$1" "$2" <<'EOF'
import json, sys
text, finish, usage = "", None, None
for l in open(sys.argv[1], encoding="utf-8").read().splitlines():
    o = json.loads(l)
    for c in o.get("choices", []):
        text += (c.get("delta") or {}).get("content") or c.get("text") or ""
        finish = c.get("finish_reason") or finish
    usage = o.get("usage") or usage
open(sys.argv[2], "w").write(json.dumps(
    {"text": text, "finish_reason": finish, "usage": usage},
    sort_keys=True) + "\n")
EOF
}

# provider_block NAME BASE CHAT_MODEL COMPLETE_MODEL EMBED_MODEL KEYVAR
# (KEYVAR empty: the provider needs no key).
provider_block() {
    local name=$1 base=$2 cm=$3 tm=$4 em=$5 keyvar=$6
    local m="$name/$cm" t="$name/$tm" e="$name/$em" n="[$name]"
    local U=(--base-url "$base")

    run "$CLI" chat -m "$m" "${U[@]}" hello world </dev/null
    expect_out "$n chat: text" 'Mock reply to: hello world\n'
    cp "$TMP/out" "$NORM/$name.chat"

    run "$CLI" chat -m "$m;base_url=$base" hello world </dev/null
    expect_out "$n chat: base_url in the config string" \
        'Mock reply to: hello world\n'

    run "$CLI" chat -m "$m" "${U[@]}" --stream hello world </dev/null
    if [ "$RC" -eq 0 ] && cmp -s "$NORM/$name.chat" "$TMP/out"; then
        ok "$n chat --stream: output equals the non-stream output"
    else
        bad "$n chat --stream: output equals the non-stream output" \
            "status $RC, stream: $(head -c 200 "$TMP/out")"
    fi

    run "$CLI" chat -m "$m" "${U[@]}" --json some words here </dev/null
    pycheck "$n chat --json: one chat.completion object" '
o = json.loads(out)
if o.get("object") != "chat.completion": fail("object %r" % o.get("object"))
c = o["choices"][0]
if c["message"]["role"] != "assistant": fail("role")
if c["message"]["content"] != "Mock reply to: some words here":
    fail("content %r" % c["message"]["content"])
if c["finish_reason"] != "stop": fail("finish_reason %r" % c["finish_reason"])
u = o["usage"]
if (u["prompt_tokens"], u["completion_tokens"], u["total_tokens"]) != \
   (3, 6, 9): fail("usage %r" % u)'
    [ "$RC" -eq 0 ] && normalize "$TMP/out" "$NORM/$name.chat-json"

    run "$CLI" chat -m "$m" "${U[@]}" --json --stream some words here \
        </dev/null
    pycheck "$n chat --json --stream: chunks, usage, deltas = text" '
lines = out.splitlines()
if len(lines) < 2: fail("%d lines" % len(lines))
text, usage = "", 0
for l in lines:
    o = json.loads(l)
    if o.get("object") != "chat.completion.chunk":
        fail("object %r" % o.get("object"))
    for c in o.get("choices", []):
        text += c.get("delta", {}).get("content") or ""
    if o.get("usage"):
        usage += 1
        if o["usage"]["total_tokens"] != 9: fail("usage %r" % o["usage"])
if usage != 1: fail("usage in %d chunks" % usage)
if text != "Mock reply to: some words here": fail("text %r" % text)'
    [ "$RC" -eq 0 ] && stream_summary "$TMP/out" "$NORM/$name.chat-stream"

    run "$CLI" complete -m "$t" "${U[@]}" once upon </dev/null
    expect_out "$n complete: text" 'Mock completion of: once upon\n'
    cp "$TMP/out" "$NORM/$name.complete"

    run "$CLI" complete -m "$t" "${U[@]}" --stream once upon </dev/null
    expect_out "$n complete --stream: same text" \
        'Mock completion of: once upon\n'

    run "$CLI" complete -m "$t" "${U[@]}" --json once upon </dev/null
    pycheck "$n complete --json: one text_completion object" '
o = json.loads(out)
if o.get("object") != "text_completion": fail("object %r" % o.get("object"))
c = o["choices"][0]
if c["text"] != "Mock completion of: once upon": fail("text %r" % c["text"])
if c["finish_reason"] != "stop": fail("finish_reason %r" % c["finish_reason"])
if o["usage"]["total_tokens"] != 7: fail("usage %r" % o["usage"])'
    [ "$RC" -eq 0 ] && normalize "$TMP/out" "$NORM/$name.complete-json"

    run "$CLI" complete -m "$t" "${U[@]}" --json --stream once upon \
        </dev/null
    pycheck "$n complete --json --stream: text_completion chunks" '
text, usage = "", 0
lines = out.splitlines()
if len(lines) < 2: fail("%d lines" % len(lines))
for l in lines:
    o = json.loads(l)
    if o.get("object") != "text_completion":
        fail("object %r" % o.get("object"))
    for c in o.get("choices", []):
        if "text" not in c: fail("choice without text: %r" % c)
        text += c["text"] or ""
    if o.get("usage"): usage += 1
if usage != 1: fail("usage in %d chunks" % usage)
if text != "Mock completion of: once upon": fail("text %r" % text)'
    [ "$RC" -eq 0 ] && stream_summary "$TMP/out" "$NORM/$name.complete-stream"

    run "$CLI" embed -m "$e" "${U[@]}" "first input" second </dev/null
    pycheck "$n embed: two lines of 8 floats" '
lines = out.split("\n")
if lines[-1] != "": fail("no final newline")
lines = lines[:-1]
if len(lines) != 2: fail("%d lines" % len(lines))
for l in lines:
    v = l.split(" ")
    if len(v) != 8: fail("%d values: %r" % (len(v), l))
    for x in v: float(x)
if lines[0] == lines[1]: fail("both vectors equal")'
    cp "$TMP/out" "$NORM/$name.embed"

    run "$CLI" embed -m "$e" "${U[@]}" "first input" </dev/null
    pycheck "$n embed: one input, one line" '
if len(out.splitlines()) != 1: fail("%r" % out)
if out.splitlines()[0] != open(args[0]).read().splitlines()[0]:
    fail("differs from the first of two inputs")' "$NORM/$name.embed"

    run "$CLI" embed -m "$e" "${U[@]}" --json "first input" second </dev/null
    pycheck "$n embed --json: an OpenAI-shaped list, same floats" '
o = json.loads(out)
if o.get("object") != "list": fail("object %r" % o.get("object"))
d = o["data"]
if len(d) != 2: fail("%d items" % len(d))
plain = [[float(x) for x in l.split()]
         for l in open(args[0]).read().splitlines()]
for i, x in enumerate(d):
    if x.get("object") != "embedding" or x.get("index") != i:
        fail("item %r" % {k: v for k, v in x.items() if k != "embedding"})
    if len(x["embedding"]) != 8: fail("dim")
    for a, b in zip(plain[i], x["embedding"]):
        if abs(a - b) > 1e-6 * max(1, abs(a)): fail("text and JSON differ")' \
        "$NORM/$name.embed"
    [ "$RC" -eq 0 ] && normalize "$TMP/out" "$NORM/$name.embed-json"

    run "$CLI" models -m "$name" "${U[@]}" </dev/null
    pycheck "$n models: one id per line" '
ids = out.split("\n")
if ids[-1] != "": fail("no final newline")
ids = ids[:-1]
if not ids: fail("no models")
for i in ids:
    if not i or " " in i or "\t" in i: fail("bad line %r" % i)'
    cp "$TMP/out" "$TMP/models-$name"

    run "$CLI" models -m "$name" "${U[@]}" --json </dev/null
    pycheck "$n models --json: a list whose ids are the lines" '
o = json.loads(out)
if o.get("object") != "list": fail("object %r" % o.get("object"))
ids = [m["id"] for m in o["data"]]
if ids != open(args[0]).read().splitlines(): fail("ids differ: %r" % ids)' \
        "$TMP/models-$name"

    # errors: the plugin reads its protocol's error body
    run "$CLI" chat -m "provider=$name;model={$cm#status=500;message=Boom \
from the mock}" "${U[@]}" --retries 0 hi </dev/null
    expect_err "$n HTTP 500: exit 1, the message from the $name error body" 1 \
        "llmux: $name: Boom from the mock \\(HTTP 500\\)"
    if [ -s "$TMP/out" ]; then
        bad "$n HTTP 500: nothing on stdout"
    fi
    run "$CLI" chat -m "$m#status=500" "${U[@]}" --retries 0 hi </dev/null
    expect_err "$n HTTP 500 (default body): exit 1, a message, not raw JSON" 1 \
        "llmux: $name: [^{ ].* \\(HTTP 500\\)"
    run "$CLI" complete -m "$t#status=500" "${U[@]}" --retries 0 hi </dev/null
    expect_err "$n complete, HTTP 500: exit 1" 1 \
        "llmux: $name: [^{ ].* \\(HTTP 500\\)"
    run "$CLI" chat -m "$m#stream_error_after=1" "${U[@]}" --stream hi \
        </dev/null
    expect_err "$n error inside a stream: exit 1" 1 "llmux: $name: [^{ ].*"

    if [ -n "$keyvar" ]; then
        run "$CLI" chat -m "$m" "${U[@]}" --api-key bad-key hi </dev/null
        expect_err "$n HTTP 401 (--api-key bad-key): exit 1" 1 \
            "llmux: $name: [^ ].* \\(HTTP 401\\)"
        env -u "$keyvar" "$CLI" chat -m "$m" "${U[@]}" --api-key k2 hi \
            </dev/null >"$TMP/out" 2>"$TMP/err"
        RC=$?
        expect_out "$n key from --api-key (no $keyvar)" 'Mock reply to: hi\n'
        env -u "$keyvar" "$CLI" chat -m "$m" "${U[@]}" hi </dev/null \
            >"$TMP/out" 2>"$TMP/err"
        RC=$?
        expect_err "$n missing API key: exit 2, names $keyvar" 2 \
            "llmux: $name: .*$keyvar.*"
    else
        env -u OPENAI_API_KEY -u MISTRAL_API_KEY -u AA_TOKEN \
            "$CLI" chat -m "$m" "${U[@]}" hi </dev/null >"$TMP/out" \
            2>"$TMP/err"
        RC=$?
        expect_out "$n no API key needed" 'Mock reply to: hi\n'
    fi

    if [ "$name" != alephalpha ]; then
        run "$CLI" tokenize -m "$m" "${U[@]}" hello world </dev/null
        expect_err "$n tokenize: not supported, exit 2" 2 \
            "llmux: $name: .*not supported.*"
        run "$CLI" detokenize -m "$m" "${U[@]}" 1 2 </dev/null
        expect_err "$n detokenize: not supported, exit 2" 2 \
            "llmux: $name: .*not supported.*"
        run "$CLI" evaluate -m "$m" "${U[@]}" --expected x hi </dev/null
        expect_err "$n evaluate: not supported, exit 2" 2 \
            "llmux: $name: .*not supported.*"
    fi
}

# alephalpha_tasks BASE: tokenize, detokenize, evaluate.
alephalpha_tasks() {
    local m=alephalpha/luminous-base n="[alephalpha]"
    local U=(--base-url "$1")

    run "$CLI" tokenize -m "$m" "${U[@]}" --json hello tokenized world \
        </dev/null
    pycheck "$n tokenize --json: {tokens, token_ids}" '
o = json.loads(out)
if sorted(o) != ["token_ids", "tokens"]: fail("keys %r" % sorted(o))
t, i = o["tokens"], o["token_ids"]
if not t or len(t) != len(i): fail("lengths %d, %d" % (len(t), len(i)))
for x in t:
    if not isinstance(x, str): fail("token %r" % x)
for x in i:
    if not isinstance(x, int) or isinstance(x, bool) or x < 0:
        fail("id %r" % x)'
    cp "$TMP/out" "$TMP/tok-json"

    run "$CLI" tokenize -m "$m" "${U[@]}" hello tokenized world </dev/null
    pycheck "$n tokenize: '<id>\\t<token>' lines, as in the JSON" '
o = json.loads(open(args[0]).read())
want = "".join("%d\t%s\n" % (i, t)
               for i, t in zip(o["token_ids"], o["tokens"]))
if out != want: fail("%r != %r" % (out, want))' "$TMP/tok-json"
    cp "$TMP/out" "$TMP/tok-text"

    run_in $'hello tokenized world\n' "$CLI" tokenize -m "$m" "${U[@]}"
    if [ "$RC" -eq 0 ] && cmp -s "$TMP/out" "$TMP/tok-text"; then
        ok "$n tokenize: no TEXT reads stdin"
    else
        bad "$n tokenize: no TEXT reads stdin" "status $RC"
    fi

    IDS=$("$PY" -c 'import json, sys
print(" ".join(str(i) for i in json.load(open(sys.argv[1]))["token_ids"]))' \
        "$TMP/tok-json" 2>/dev/null)
    run "$CLI" detokenize -m "$m" "${U[@]}" $IDS </dev/null
    pycheck "$n detokenize: the text on one line" '
if not out.endswith("\n") or out.count("\n") != 1 or out == "\n":
    fail("%r" % out)'
    cp "$TMP/out" "$TMP/detok-text"

    run "$CLI" detokenize -m "$m" "${U[@]}" --json $IDS </dev/null
    pycheck "$n detokenize --json: {\"text\": ...} as printed" '
o = json.loads(out)
if list(o) != ["text"] or not isinstance(o["text"], str): fail("%r" % o)
if o["text"] + "\n" != open(args[0]).read(): fail("differs from the text")' \
        "$TMP/detok-text"

    run_in "$IDS" "$CLI" detokenize -m "$m" "${U[@]}"
    if [ "$RC" -eq 0 ] && cmp -s "$TMP/out" "$TMP/detok-text"; then
        ok "$n detokenize: no ID reads the ids from stdin"
    else
        bad "$n detokenize: no ID reads the ids from stdin" "status $RC"
    fi

    # the mock detokenizes each id to "tok<id>" (tools/mock/mock_aleph.c):
    # the ids arrive, in order
    run "$CLI" detokenize -m "$m" "${U[@]}" 7 "42 9" </dev/null
    expect_out "$n detokenize: every id sent, in order" 'tok7 tok42 tok9\n'

    run "$CLI" detokenize -m "$m" "${U[@]}" 12 abc </dev/null
    expect_err "$n detokenize: a bad id is a usage error (exit 2)" 2 \
        'llmux: detokenize: .*abc.*'

    run "$CLI" evaluate -m "$m" "${U[@]}" --expected "hello world" --json \
        Say hello </dev/null
    pycheck "$n evaluate --json: the result object, log probabilities" '
o = json.loads(out)
if not isinstance(o, dict): fail("not an object: %r" % o)
r = o.get("result", o)
if not isinstance(r, dict) or "log_probability" not in r:
    fail("no log_probability: %r" % o)
if not isinstance(r["log_probability"], (int, float)): fail("%r" % r)'
    cp "$TMP/out" "$TMP/eval-json"

    run "$CLI" evaluate -m "$m" "${U[@]}" --expected "hello world" \
        Say hello </dev/null
    pycheck "$n evaluate: the result JSON on one line" '
if out.count("\n") != 1: fail("%d lines" % out.count("\n"))
if json.loads(out) != json.loads(open(args[0]).read()): fail("%r" % out)' \
        "$TMP/eval-json"

    run "$CLI" evaluate -m "$m" "${U[@]}" --expected "a b c d e f g" \
        Say hello </dev/null
    pycheck "$n evaluate: --expected is sent (another result)" '
if json.loads(out) == json.loads(open(args[0]).read()): fail("same result")' \
        "$TMP/eval-json"

    run "$CLI" evaluate -m "$m" "${U[@]}" Say hello </dev/null
    expect_usage "$n evaluate without --expected: usage, exit 2"

    run "$CLI" tokenize -m "$m#status=500" "${U[@]}" --retries 0 hi \
        </dev/null
    expect_err "$n tokenize, HTTP 500: exit 1" 1 \
        'llmux: alephalpha: [^{ ].* \(HTTP 500\)'
}

RAN=()
if plugin_found openai; then
    provider_block openai "$ROOT/v1" gpt-4o-mini gpt-3.5-turbo-instruct \
        text-embedding-3-small OPENAI_API_KEY
    RAN+=(openai)
else
    skip "[openai] every check (openai.so not in \$LLMUX_PLUGIN_PATH)"
fi

if ! plugin_found mistral; then
    skip "[mistral] every check (mistral.so not in \$LLMUX_PLUGIN_PATH)"
elif ! probe "$ROOT/mistral/v1/fim/completions" POST \
    '{"model":"codestral-latest","prompt":"probe"}' \
    'o["choices"][0]["message"] is not None'; then
    skip "[mistral] every check (the mock does not serve /mistral yet)"
else
    provider_block mistral "$ROOT/mistral" mistral-small-latest \
        codestral-latest mistral-embed MISTRAL_API_KEY
    RAN+=(mistral)
fi

if ! plugin_found ollama; then
    skip "[ollama] every check (ollama.so not in \$LLMUX_PLUGIN_PATH)"
elif ! probe "$ROOT/ollama/api/tags" GET '' \
    'isinstance(o["models"], list)'; then
    skip "[ollama] every check (the mock does not serve /ollama yet)"
else
    provider_block ollama "$ROOT/ollama" llama3.2 llama3.2 \
        nomic-embed-text ''
    RAN+=(ollama)
    env -u OLLAMA_HOST OLLAMA_HOST="$ROOT/ollama" "$CLI" chat \
        -m ollama/llama3.2 hi </dev/null >"$TMP/out" 2>"$TMP/err"
    RC=$?
    expect_out "[ollama] OLLAMA_HOST sets the base URL" 'Mock reply to: hi\n'
fi

if ! plugin_found alephalpha; then
    skip "[alephalpha] every check (alephalpha.so not in \$LLMUX_PLUGIN_PATH)"
elif ! probe "$ROOT/aleph/models_available" GET '' \
    'isinstance(o, list) and "name" in o[0]'; then
    skip "[alephalpha] every check (the mock does not serve /aleph yet)"
else
    provider_block alephalpha "$ROOT/aleph" llama-3.1-8b-instruct \
        luminous-base luminous-base AA_TOKEN
    RAN+=(alephalpha)
    alephalpha_tasks "$ROOT/aleph"
    AA_BASE_URL="$ROOT/aleph" "$CLI" chat -m alephalpha/llama-3.1-8b-instruct \
        hi </dev/null >"$TMP/out" 2>"$TMP/err"
    RC=$?
    expect_out "[alephalpha] AA_BASE_URL sets the base URL" \
        'Mock reply to: hi\n'
fi

if ! plugin_found azure; then
    skip "[azure] every check (azure.so not in \$LLMUX_PLUGIN_PATH)"
elif ! probe "$ROOT/openai/models?api-version=2024-10-21" GET '' \
    'isinstance(o["data"], list)'; then
    skip "[azure] every check (the mock does not serve /openai yet)"
else
    # the v1 API: no api-version anywhere
    provider_block azure "$ROOT" gpt-4o-mini gpt-3.5-turbo-instruct \
        text-embedding-3-small AZURE_OPENAI_API_KEY
    RAN+=(azure)
    run "$CLI" chat -m azure/gpt-4o-mini --base-url "$ROOT" hi </dev/null
    expect_out "[azure] chat on the v1 API" 'Mock reply to: hi\n'
    mockcheck "[azure] v1 path, api-key header, no Authorization" "$P1" \
        /_mock/requests '
r = o[-1]
h = {k.lower(): v for k, v in r["headers"].items()}
if not r["path"].startswith("/openai/v1/"): fail(r["path"])
if h.get("api-key") != "azure-test": fail("api-key %r" % h.get("api-key"))
if "authorization" in h: fail("Authorization sent")'
    AZURE_OPENAI_ENDPOINT="$ROOT" "$CLI" chat \
        -m "azure/prod-4o;api_version=2024-10-21" hi </dev/null \
        >"$TMP/out" 2>"$TMP/err"
    RC=$?
    expect_out "[azure] AZURE_OPENAI_ENDPOINT sets the base URL" \
        'Mock reply to: hi\n'
    mockcheck "[azure] api_version=: the deployments path" "$P1" \
        /_mock/requests '
p = o[-1]["path"]
if p != "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21":
    fail(p)'
    OPENAI_API_VERSION=2024-06-01 "$CLI" chat -m azure/prod-4o \
        --base-url "$ROOT" --json hi </dev/null >"$TMP/out" 2>"$TMP/err"
    RC=$?
    pycheck "[azure] OPENAI_API_VERSION: the model is the deployment, filter \
results kept" '
o = json.loads(out)
if o.get("model") != "prod-4o": fail("model %r" % o.get("model"))
if o["prompt_filter_results"][0]["prompt_index"] != 0: fail("filter results")
if "content_filter_results" not in o["choices"][0]: fail("choice results")'
    mockcheck "[azure] OPENAI_API_VERSION: its version in the query" "$P1" \
        /_mock/requests '
p = o[-1]["path"]
if p != "/openai/deployments/prod-4o/chat/completions?api-version=2024-06-01":
    fail(p)'
    run "$CLI" chat -m azure/prod-4o </dev/null hi
    expect_err "[azure] no base URL (no AZURE_OPENAI_ENDPOINT): exit 2" 2 \
        "llmux: azure: no base URL .*, or AZURE_OPENAI_ENDPOINT\)"
fi

# the same normalized output whichever provider answers
if [ "${#RAN[@]}" -ge 2 ]; then
    for kind in chat chat-json chat-stream complete complete-json \
        complete-stream embed embed-json; do
        first=${RAN[0]}
        same=1
        diffs=()
        for p in "${RAN[@]:1}"; do
            if [ ! -f "$NORM/$first.$kind" ] || [ ! -f "$NORM/$p.$kind" ]; then
                same=0
                diffs+=("$p: missing output")
            elif ! cmp -s "$NORM/$first.$kind" "$NORM/$p.$kind"; then
                same=0
                diffs+=("$p: $(head -c 300 "$NORM/$p.$kind")")
            fi
        done
        if [ "$same" -eq 1 ]; then
            ok "identical $kind output across ${RAN[*]}"
        else
            bad "identical $kind output across ${RAN[*]}" \
                "$first: $(head -c 300 "$NORM/$first.$kind" 2>/dev/null)" \
                "${diffs[@]}"
        fi
    done
else
    skip "cross-provider comparison (only ${RAN[*]:-none} available)"
fi

summary
