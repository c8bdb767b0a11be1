#!/usr/bin/env python3
"""The shape the core keeps (docs/ARCHITECTURE.md), checked on the build:

- no core file calls a function of a core file that calls one of its own
  (read from the objects' symbol tables with nm, so it is what the
  compiler made of the code, not what a comment says);
- the engine's parts call only the parts listed after them in engine.h's
  header comment;
- no core source file is over 1,000 lines;
- the core names no provider and no provider's header or error text
  outside comments (LLMUX_ERROR_KIND_* is the plugin ABI's neutral word).

Usage: check_core.py CORE_DIR OBJECT...
"""
import collections
import os
import re
import subprocess
import sys

MAX_LINES = 1000
PROVIDER_WORDS = re.compile(
    r"x-ratelimit|context_length|openai|mistral|ollama|aleph", re.I)


def symbols(obj):
    out = subprocess.run([os.environ.get("NM", "nm"), obj], capture_output=True, text=True,
                         check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRV":
            defined.add(parts[2])
        elif len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
    return defined, undefined


def unit_name(obj):
    base = os.path.basename(obj)
    return re.sub(r"\.c\.o(bj)?$|\.o$", "", base)


def call_graph(objs):
    defs, undefs = {}, {}
    for o in objs:
        name = unit_name(o)
        defs[name], undefs[name] = symbols(o)
    owner = {s: f for f, ds in defs.items() for s in ds}
    edges = collections.defaultdict(lambda: collections.defaultdict(set))
    for f, us in undefs.items():
        for s in us:
            t = owner.get(s)
            if t and t != f:
                edges[f][t].add(s)
    return edges


def engine_order(core):
    text = open(os.path.join(core, "engine.h"), encoding="utf-8").read()
    head = text[:text.index("*/")]
    return re.findall(r"^ \*   (\w+)\.c ", head, re.M)


def strip_comments(src):
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", src, flags=re.S)


def main():
    core = sys.argv[1]
    # CTest hands $<TARGET_OBJECTS:...> over as one ';'-separated argument
    objs = [o for arg in sys.argv[2:] for o in arg.split(";") if o]
    problems = []
    edges = call_graph(objs)
    files = sorted(edges.keys() | {t for e in edges.values() for t in e})
    for a in files:
        for b in files:
            if a < b and b in edges[a] and a in edges[b]:
                problems.append(
                    f"{a}.c and {b}.c call each other: {a} -> "
                    f"{sorted(edges[a][b])[:3]}, {b} -> "
                    f"{sorted(edges[b][a])[:3]}")
    order = engine_order(core)
    if len(order) < 5:
        problems.append("engine.h's header lists no parts in call order")
    for i, a in enumerate(order):
        for b in order[:i]:
            if b in edges[a]:
                problems.append(
                    f"{a}.c calls {b}.c, listed above it in engine.h: "
                    f"{sorted(edges[a][b])[:3]}")
    for name in sorted(os.listdir(core)):
        if not name.endswith((".c", ".h")):
            continue
        with open(os.path.join(core, name), encoding="utf-8") as f:
            src = f.read()
        n = src.count("\n")
        if name.endswith(".c") and n > MAX_LINES:
            problems.append(f"{name} has {n} lines (at most {MAX_LINES})")
        code = strip_comments(src).replace("ERROR_KIND_CONTEXT_LENGTH", "")
        for m in PROVIDER_WORDS.finditer(code):
            line = code.count("\n", 0, m.start()) + 1
            problems.append(f"{name}: provider knowledge outside comments: "
                            f"'{m.group(0)}' (line {line} without comments)")
    for p in problems:
        print("check_core: " + p)
    print(f"check_core: {len(objs)} objects, {len(order)} engine parts, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
