#!/usr/bin/env python3
"""Tripline's architecture check: the import graph of engine/src's top-level modules.

Reads every `crate::…` path (and `super::…` that leaves its top-level module, and `tripline::…` in
the binaries' files) in every .rs file below the source folder, builds the graph of top-level
modules, and checks it against the dependency order written in docs/ARCHITECTURE.md (the numbered
list under `## Dependency order`, bottom first; the backticked names before ` — ` on each line are
that layer's modules). A module may use only modules of a lower layer: an edge to its own layer or
to a higher one, a cycle, or a module missing from the order is an error, printed with file:line.

Test code (`#[cfg(test)]` items, and the files of `#[cfg(test)] mod x;`) is not part of the
library and may use any layer: an end-to-end test in a receiver's folder builds a whole engine.

Usage: arch_graph.py SRC_DIR DOC [--graph]
Exit status 0 when the graph follows the order, 1 otherwise.
"""
import os
import re
import sys
from collections import defaultdict

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def strip(text):
    """Blanks comments, string and char literals, keeping newlines so line numbers stay right."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 258]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif c == "b" and text.startswith('b"', i) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            out.append(" ")
            i += 1
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", text[i:j + 1]))
            i = j + 1
        elif c == "'":
            m = re.match(r"'(\\(x..|u\{[0-9a-fA-F]+\}|.)|[^\\'])'", text[i:i + 12])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def tokens(text):
    """(token, line) pairs: identifiers, `::` and single punctuation characters."""
    line = 1
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif text.startswith("::", i):
            yield "::", line
            i += 2
        else:
            m = IDENT.match(text, i)
            if m:
                yield m.group(0), line
                i = m.end()
            else:
                yield c, line
                i += 1


def group_heads(toks, k):
    """The first segments of the items of a `{…}` group starting at toks[k] == '{'."""
    heads, depth, expect = [], 0, True
    while k < len(toks):
        t, line = toks[k]
        if t == "{":
            depth += 1
            if depth > 1:
                expect = False
        elif t == "}":
            depth -= 1
            if depth == 0:
                break
        elif t == "," and depth == 1:
            expect = True
        elif expect and depth == 1 and IDENT.fullmatch(t):
            heads.append((t, line))
            expect = False
        k += 1
    return heads


class File:
    def __init__(self, rel, path):
        self.rel = rel
        parts = rel[:-3].split("/")
        self.binary = rel in ("main.rs", "lambda/bootstrap.rs") or parts[0] == "cli"
        if rel in ("lib.rs", "main.rs"):
            self.modpath = []
        elif rel == "lambda/bootstrap.rs":
            self.modpath = ["lambda"]  # a binary of its own, counted with the module it starts
        elif parts[-1] == "mod":
            self.modpath = parts[:-1]
        else:
            self.modpath = parts
        with open(path, encoding="utf-8") as f:
            self.toks = list(tokens(strip(f.read())))


def cfg_test_ranges(toks):
    """Token index ranges of `#[cfg(test)]` items, and the names of `#[cfg(test)] mod x;`."""
    skip, test_mods = [], []
    k, n = 0, len(toks)
    pattern = ["#", "[", "cfg", "(", "test", ")", "]"]
    while k < n:
        if [t for t, _ in toks[k:k + 7]] != pattern:
            k += 1
            continue
        start, j = k, k + 7
        while j < n and toks[j][0] == "#" and j + 1 < n and toks[j + 1][0] == "[":
            depth = 0
            while j < n:
                depth += {"[": 1, "]": -1}.get(toks[j][0], 0)
                j += 1
                if depth == 0 and toks[j - 1][0] == "]":
                    break
        head = j
        paren = 0
        while j < n and not (paren == 0 and toks[j][0] in (";", "{")):
            paren += {"(": 1, ")": -1}.get(toks[j][0], 0)
            j += 1
        if j < n and toks[j][0] == ";":
            names = [t for t, _ in toks[head:j]]
            if "mod" in names:
                test_mods.append(names[names.index("mod") + 1])
            skip.append((start, j))
            k = j + 1
            continue
        depth = 0
        while j < n:
            depth += {"{": 1, "}": -1}.get(toks[j][0], 0)
            if depth == 0:
                break
            j += 1
        skip.append((start, j))
        k = j + 1
    return skip, test_mods


def top_of_path(file, modpath_at, toks, k, reexports):
    """Resolves the path starting at toks[k] to (top-level module or None, line) pairs."""
    t, line = toks[k]
    nxt = toks[k + 1][0] if k + 1 < len(toks) else None
    if nxt != "::":
        return []
    prev = toks[k - 1][0] if k else None
    if prev == "::":
        return []  # a later segment of some other path
    if t == "crate" and not file.binary:
        base = []
    elif t == "tripline" and file.binary:
        base = []
    elif t == "super":
        base = list(modpath_at)
        j = k
        while j < len(toks) and toks[j][0] == "super" and toks[j + 1][0] == "::":
            base = base[:-1]
            j += 2
        if base:
            return []  # still inside its top-level module
        k = j - 2
    elif t == "crate" and file.binary:
        return []  # the binary's own modules (cli)
    else:
        return []
    k += 2
    if k >= len(toks):
        return []
    if toks[k][0] == "{":
        heads = group_heads(toks, k)
    else:
        heads = [toks[k]]
    out = []
    for head, hl in heads:
        if head == "self":
            continue
        out.append((reexports.get(head, head), hl))
    return out


def analyse(src):
    """(top-level modules, {(from, to): [file:line]}) for the tree at `src`."""
    files = []
    for dirpath, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(dirpath, name)
                files.append(File(os.path.relpath(path, src).replace(os.sep, "/"), path))
    # Files that are test code: `#[cfg(test)] mod x;` declares x.rs or x/mod.rs (and below).
    test_dirs, test_files = [], set()
    for f in files:
        f.skip, mods = cfg_test_ranges(f.toks)
        here = f.rel.rsplit("/", 1)[0] if "/" in f.rel else ""
        if not (f.rel.endswith("mod.rs") or f.rel in ("lib.rs", "main.rs")):
            here = f.rel[:-3]
        for m in mods:
            base = f"{here}/{m}" if here else m
            test_files.add(base + ".rs")
            test_dirs.append(base + "/")
    files = [f for f in files
             if f.rel not in test_files and not any(f.rel.startswith(d) for d in test_dirs)]
    tops = set()
    for f in files:
        if f.rel in ("lib.rs", "main.rs"):
            continue
        tops.add(f.rel.split("/")[0].removesuffix(".rs"))
    # Names lib.rs re-exports (`pub use engine::{Tripline, …}`) resolve to their module.
    reexports = {}
    lib = next((f for f in files if f.rel == "lib.rs"), None)
    if lib:
        toks = lib.toks
        for k, (t, _) in enumerate(toks):
            if t == "use" and k and toks[k - 1][0] == "pub" and k + 2 < len(toks):
                mod = toks[k + 1][0]
                if mod in tops and toks[k + 2][0] == "::":
                    if toks[k + 3][0] == "{":
                        for head, _ in group_heads(toks, k + 3):
                            reexports[head] = mod
                    else:
                        j = k + 3
                        while j + 1 < len(toks) and toks[j + 1][0] == "::":
                            j += 2
                        reexports[toks[j][0]] = mod
    edges = defaultdict(list)  # (from, to) -> [file:line]
    for f in files:
        if not f.modpath and not f.binary:
            continue  # lib.rs declares and re-exports; it is no module of its own
        me = f.modpath[0] if f.modpath else "cli"
        if f.rel == "main.rs":
            me = "cli"
        # Inline `mod x {` blocks deepen the path `super` is read against.
        stack, depth = [], 0
        modpath = list(f.modpath)
        toks = f.toks
        skipped = set()
        for a, b in f.skip:
            skipped.update(range(a, b + 1))
        for k, (t, line) in enumerate(toks):
            if k in skipped and t not in ("{", "}"):
                continue
            if t == "{":
                depth += 1
                if k >= 2 and toks[k - 2][0] == "mod" and IDENT.fullmatch(toks[k - 1][0]):
                    stack.append((depth, toks[k - 1][0]))
                    modpath.append(toks[k - 1][0])
            elif t == "}":
                if stack and stack[-1][0] == depth:
                    stack.pop()
                    modpath.pop()
                depth -= 1
            elif t in ("crate", "super", "tripline"):
                for target, tl in top_of_path(f, modpath, toks, k, reexports):
                    if target in tops and target != me:
                        edges[(me, target)].append(f"{src.rstrip('/')}/{f.rel}:{tl}")
    return tops, edges


def read_order(doc):
    """Layers from the doc: {module: layer index}, bottom is 0."""
    with open(doc, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^## Dependency order\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not m:
        return None
    layers = {}
    index = 0
    for line in m.group(1).splitlines():
        item = re.match(r"^\d+\.\s+(.*)$", line)
        if not item:
            continue
        head = item.group(1).split(" — ")[0]
        for name in re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", head):
            layers[name] = index
        index += 1
    return layers


def cycles(nodes, edges):
    """Strongly connected components with more than one module (Tarjan)."""
    adj = defaultdict(set)
    for a, b in edges:
        adj[a].add(b)
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(adj[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def one_loop(comp, edges):
    """A shortest loop through the first module of a strongly connected component."""
    inside = set(comp)
    start = comp[0]
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for (a, b) in sorted(edges):
            if a != v or b not in inside:
                continue
            if b == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return path[::-1] + [start]
            if b not in prev:
                prev[b] = v
                queue.append(b)
    return [start, start]


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[-3], file=sys.stderr)
        return 2
    src, doc = argv[1], argv[2]
    tops, edges = analyse(src)
    tops.add("cli")
    if "--graph" in argv:
        for (a, b), where in sorted(edges.items()):
            print(f"{a} -> {b}  ({len(where)}: {where[0]})")
        return 0
    errors = 0
    layers = read_order(doc)
    if layers is None:
        print(f"FAILED: {doc} has no `## Dependency order` section")
        return 1
    for t in sorted(tops - set(layers)):
        print(f"FAILED: module `{t}` is not in the dependency order of {doc}")
        errors += 1
    for t in sorted(set(layers) - tops):
        print(f"FAILED: {doc} lists `{t}`, which is no top-level module of {src}")
        errors += 1
    for comp in cycles(tops, edges):
        print(f"FAILED: import cycle between {', '.join(comp)}; one of its loops:")
        loop = one_loop(comp, edges)
        for a, b in zip(loop, loop[1:]):
            where = edges[(a, b)]
            more = f" (+{len(where) - 1} more)" if len(where) > 1 else ""
            print(f"    {a} -> {b}  {where[0]}{more}")
        errors += 1
    for (a, b), where in sorted(edges.items()):
        if a in layers and b in layers and layers[b] >= layers[a]:
            rel = "its own layer" if layers[b] == layers[a] else "a higher layer"
            print(f"FAILED: `{a}` (layer {layers[a] + 1}) uses `{b}` ({rel}, {layers[b] + 1})")
            for w in where:
                print(f"    {w}")
            errors += 1
    print(f"{len(tops)} modules, {len(edges)} edges between them, {errors} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
