#!/usr/bin/env python3
"""Checks that the size-versioned structs only grew at their end.

    appendable.py SUPPR BASELINE.abi NEW.abi

SUPPR is tests/abi/appendable.suppr: its name_regexp names the structs.
tests/abi/check.sh runs abidiff with that file, which lets members be
appended to those structs; but libabigail's has_data_member_inserted_at
also hides a member that moved or changed type in the same struct, so this
compares the members themselves: the baseline's (name, offset, type) list
must be a prefix of the new one. A member's type is compared by its
spelling (a pointer to a struct that grew is still the same member; that
struct is checked on its own). Exit status 1 when a struct did otherwise.
"""
import re
import sys
import xml.etree.ElementTree as ET


def struct_regexp(suppr):
    for line in open(suppr):
        m = re.match(r"\s*name_regexp\s*=\s*(\S+)\s*$", line)
        if m:
            return re.compile(m.group(1))
    sys.exit("%s: no name_regexp" % suppr)


class Corpus:
    def __init__(self, path):
        self.types = {}
        self.structs = {}
        root = ET.parse(path).getroot()
        for el in root.iter():
            tid = el.get("id")
            if tid is not None and el.tag != "elf-symbol":
                self.types.setdefault(tid, el)
            if (el.tag == "class-decl" and el.get("is-declaration-only")
                    != "yes" and el.get("name")):
                self.structs.setdefault(el.get("name"), el)

    def spell(self, tid, depth=0):
        el = self.types.get(tid)
        if el is None or depth > 20:
            return "?" + str(tid)
        t = el.tag
        if t in ("type-decl", "typedef-decl", "class-decl", "union-decl",
                 "enum-decl"):
            kind = {"class-decl": "struct ", "union-decl": "union ",
                    "enum-decl": "enum "}.get(t, "")
            return kind + (el.get("name") or "<anonymous>")
        if t == "pointer-type-def":
            return self.spell(el.get("type-id"), depth + 1) + "*"
        if t == "qualified-type-def":
            q = " ".join(k for k in ("const", "volatile", "restrict")
                         if el.get(k) == "yes")
            return q + " " + self.spell(el.get("type-id"), depth + 1)
        if t == "array-type-def":
            return "%s[%s]" % (self.spell(el.get("type-id"), depth + 1),
                               el.get("size-in-bits"))
        if t == "function-type":
            params = [self.spell(p.get("type-id"), depth + 1)
                      if p.get("is-variadic") != "yes" else "..."
                      for p in el.findall("parameter")]
            ret = el.find("return")
            return "%s(%s)" % (self.spell(ret.get("type-id"), depth + 1)
                               if ret is not None else "void",
                               ", ".join(params))
        return t + ":" + str(tid)

    def members(self, name):
        el = self.structs.get(name)
        if el is None:
            return None
        out = []
        for dm in el.findall("data-member"):
            var = dm.find("var-decl")
            out.append((var.get("name"), int(dm.get("layout-offset-in-bits")),
                        self.spell(var.get("type-id"))))
        return out


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    names = struct_regexp(sys.argv[1])
    old, new = Corpus(sys.argv[2]), Corpus(sys.argv[3])
    bad = 0
    for name in sorted(old.structs):
        if not names.match(name):
            continue
        a, b = old.members(name), new.members(name)
        if b is None:
            continue  # gone or opaque: abidiff reports it
        for i, m in enumerate(a):
            if i >= len(b) or b[i] != m:
                got = ("missing" if i >= len(b) else
                       "'%s' (bit %d, %s)" % b[i])
                print("appendable.py: struct %s: member '%s' (bit %d, %s) "
                      "is now %s; a size-versioned struct only grows at its "
                      "end" % ((name,) + m + (got,)))
                bad = 1
                break
    return bad


if __name__ == "__main__":
    sys.exit(main())
