#!/usr/bin/env python3
"""Checks the dynamic symbols of libllmux.so against the version script and
the public headers (docs/ABI.md, "Symbol versions").

    exports.py LIB MAP INCLUDE_DIR

Fails when
  - a symbol the library defines carries no version, or another version
    than the node of MAP that lists it;
  - the library exports a name that does not start with llmux_ (a leak of
    an internal or a dependency's symbol);
  - a function or variable declared LLMUX_EXTERN in INCLUDE_DIR/**/*.h
    (and *.h.in) is not exported;
  - a name listed in MAP is not exported (a function removed or renamed:
    an incompatible change), or is exported unlisted.
Needs readelf (binutils).
"""
import os
import re
import subprocess
import sys


def map_nodes(path):
    """{symbol: node} from a version script, every name listed explicitly."""
    text = re.sub(r"/\*.*?\*/", " ", open(path).read(), flags=re.S)
    text = re.sub(r"#[^\n]*", " ", text)
    nodes = {}
    # NODE { global: a; b; local: *; } [PARENT];
    for m in re.finditer(r"([A-Za-z_][\w.]*)\s*\{(.*?)\}\s*[\w.]*\s*;", text,
                         flags=re.S):
        node, body = m.group(1), m.group(2)
        scope = "global"
        for tok in re.split(r"[;\s]+", body):
            if not tok:
                continue
            if tok.endswith(":"):
                scope = tok[:-1]
                continue
            if scope != "global":
                continue
            if any(c in tok for c in "*?["):
                sys.exit("%s: node %s: glob %r; list every name (docs/ABI.md)"
                         % (path, node, tok))
            if tok in nodes:
                sys.exit("%s: %s listed in %s and %s" % (path, tok,
                                                         nodes[tok], node))
            nodes[tok] = node
    if not nodes:
        sys.exit("%s: no version node found" % path)
    return nodes


def dyn_symbols(lib):
    """[(name, version or None)] of the symbols LIB defines, version nodes
    themselves left out."""
    out = subprocess.run(["readelf", "--dyn-syms", "--wide", lib],
                         check=True, capture_output=True, text=True).stdout
    syms = []
    for line in out.splitlines():
        f = line.split()
        # Num: Value Size Type Bind Vis Ndx Name [(n)]
        if len(f) < 8 or not f[0].rstrip(":").isdigit():
            continue
        typ, bind, ndx, name = f[3], f[4], f[6], f[7]
        if ndx == "UND" or bind == "LOCAL":
            continue
        if "@" in name:
            base, ver = re.split(r"@@?", name, maxsplit=1)
        else:
            base, ver = name, None
        if ndx == "ABS" and typ == "OBJECT" and ver is None and \
                re.fullmatch(r"[A-Z][A-Z0-9_]*_[0-9][0-9.]*", base):
            continue  # a version definition (LLMUX_0.1)
        syms.append((base, ver))
    return syms


def header_decls(include_dir):
    """Names declared LLMUX_EXTERN in the public headers, with their file."""
    names = {}
    for root, _, files in os.walk(include_dir):
        for fn in sorted(files):
            if not (fn.endswith(".h") or fn.endswith(".h.in")):
                continue
            path = os.path.join(root, fn)
            text = open(path).read()
            text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
            text = re.sub(r"//[^\n]*", " ", text)
            text = re.sub(r"^\s*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
            for m in re.finditer(r"\bLLMUX_EXTERN\b([^;{]*)", text):
                decl = m.group(1)
                n = (re.search(r"\(\s*(\w+)\s*\)\s*\(", decl) or
                     re.search(r"(\w+)\s*\(", decl) or
                     re.search(r"(\w+)\s*(?:\[[^\]]*\]\s*)*$", decl))
                if not n:
                    sys.exit("%s: cannot read the declaration %r"
                             % (path, decl.strip()))
                names[n.group(1)] = os.path.relpath(path, include_dir)
    if not names:
        sys.exit("%s: no LLMUX_EXTERN declaration found" % include_dir)
    return names


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    lib, map_path, include_dir = sys.argv[1:]
    nodes = map_nodes(map_path)
    syms = dyn_symbols(lib)
    decls = header_decls(include_dir)
    exported = {n for n, _ in syms}
    errors = []
    for name, ver in sorted(syms):
        if not name.startswith("llmux_"):
            errors.append("exported but not an llmux_ name: %s%s"
                          % (name, "@" + ver if ver else ""))
        if ver is None:
            errors.append("exported without a version: %s" % name)
        elif name not in nodes:
            errors.append("exported as %s@%s but not listed in %s"
                          % (name, ver, os.path.basename(map_path)))
        elif ver != nodes[name]:
            errors.append("%s has version %s, the map says %s"
                          % (name, ver, nodes[name]))
    for name, hdr in sorted(decls.items()):
        if name not in exported:
            errors.append("declared LLMUX_EXTERN in %s but not exported: %s "
                          "(add it to %s)" % (hdr, name,
                                              os.path.basename(map_path)))
    for name, node in sorted(nodes.items()):
        if name not in exported:
            errors.append("listed in %s (%s) but not exported: %s"
                          % (os.path.basename(map_path), node, name))
    for e in errors:
        print("FAIL: " + e)
    print("%d exported symbols, %d declared in the headers, %d in the map: %s"
          % (len(syms), len(decls), len(nodes),
             "%d problems" % len(errors) if errors else "ok"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
