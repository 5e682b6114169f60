"""test_layers.py - the include rules between the parts of src/ (issue 11)

Reads every `#include "..."` in src/*.{c,h} (comments stripped; a name is
looked up under src/, as -Isrc does, then beside the including file), maps
each file to its part and checks the rules the issue sets for this and
every later change:

  parts   Entry   src/main.c, src/daemon/daemon.{c,h}
          Conf    src/conf/
          Smtp    src/smtp/, src/daemon/listener.*, src/daemon/shaper.*
          Fp      src/fp/
          Rep     src/rep/, src/policy/, src/dnsbl/, src/dns/
          Admin   src/admin/
          Report  src/report/
          Swarm   src/swarm/
          util/, log/ and src/daemon/runtime.{c,h} (the process-wide state)
          belong to no part; any other file is listed as "unassigned".

  rules   Fp never includes Smtp or Rep.
          Rep never includes Smtp or Entry, and no Rep file reads the
            daemon global `ms` (`ms->` outside comments).
          Admin never includes Smtp.
          Report never includes Smtp or Entry.
          Swarm never includes Smtp or Rep.
          No include cycle between modules (module = foo.c + foo.h; an edge
            A -> B when A.c or A.h includes B.h): every strongly connected
            component of more than one module is reported with its edges.
          `struct sess {` appears only in src/smtp/session.c (no header
            declares the session's fields).
          src/policy/* and src/admin/* do not include smtp/session.h.

Every violation is printed as `file:line: includes "x" -- rule`.  Run it
alone for the whole list:

    /usr/bin/python3 tests/blackbox/test_layers.py

Expected to FAIL on main until issue 11's steps 1-3 (the private session,
the policy input record, the event-record summary) have landed; it must
pass from then on.  It needs no build and no network.
"""
import os
import re
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(REPO, "src")

# part -> {forbidden part: rule text}
RULES = {
    "Fp": {"Smtp": "Fp never includes Smtp", "Rep": "Fp never includes Rep"},
    "Rep": {"Smtp": "Rep never includes Smtp",
            "Entry": "Rep never includes Entry (the daemon's globals)"},
    "Admin": {"Smtp": "Admin never includes Smtp"},
    "Report": {"Smtp": "Report never includes Smtp",
               "Entry": "Report never includes Entry"},
    "Swarm": {"Smtp": "Swarm never includes Smtp",
              "Rep": "Swarm never includes Rep"},
}
NO_PART = ("util/", "log/")
NO_PART_FILES = ("daemon/runtime.c", "daemon/runtime.h")


def part(rel):
    """part - the part of a file, by its path under src/ (None: no part)"""
    if rel in ("main.c", "daemon/daemon.c", "daemon/daemon.h"):
        return "Entry"
    if rel in NO_PART_FILES or rel.startswith(NO_PART):
        return None
    if re.match(r"daemon/(listener|shaper)\.[ch]$", rel):
        return "Smtp"
    top = rel.split("/", 1)[0]
    return {"conf": "Conf", "smtp": "Smtp", "fp": "Fp", "rep": "Rep",
            "policy": "Rep", "dnsbl": "Rep", "dns": "Rep", "admin": "Admin",
            "report": "Report", "swarm": "Swarm"}.get(top, "unassigned")


def strip_comments(text):
    """strip_comments - C comments and string/char literals blanked out,
    line breaks kept so line numbers stay true; #include names survive"""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            # keep the literal of an #include line, blank any other
            line_start = text.rfind("\n", 0, i) + 1
            keep = re.match(r"\s*#\s*include\s*$", text[line_start:i])
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(text[i:j] if keep else
                       c + " " * max(0, j - i - 2) + (c if j - i > 1 else ""))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def sources():
    """sources - {path under src/: text without comments} for *.c and *.h"""
    files = {}
    for d, _, names in os.walk(SRC):
        for nm in names:
            if nm.endswith((".c", ".h")):
                p = os.path.join(d, nm)
                with open(p, encoding="utf-8", errors="replace") as f:
                    files[os.path.relpath(p, SRC)] = strip_comments(f.read())
    return dict(sorted(files.items()))


def includes(files):
    """includes - [(file, line, written name, resolved path or None)]"""
    out = []
    for rel, text in files.items():
        for no, line in enumerate(text.split("\n"), 1):
            m = re.match(r'\s*#\s*include\s*"([^"]+)"', line)
            if not m:
                continue
            name = m.group(1)
            cands = [os.path.normpath(name),
                     os.path.normpath(os.path.join(os.path.dirname(rel), name))]
            res = next((c for c in cands if c in files), None)
            out.append((rel, no, name, res))
    return out


def part_violations(incs):
    """part_violations - includes that cross a forbidden arrow"""
    v = []
    for rel, no, name, res in incs:
        if res is None:
            continue
        src, dst = part(rel), part(res)
        rule = RULES.get(src, {}).get(dst)
        if rule:
            v.append('src/%s:%d: includes "%s" (%s -> %s) -- %s'
                     % (rel, no, name, src, dst, rule))
    return v


def global_violations(files):
    """global_violations - Rep files that read the daemon global `ms`"""
    v = []
    for rel, text in files.items():
        if part(rel) != "Rep":
            continue
        for no, line in enumerate(text.split("\n"), 1):
            if re.search(r"\bms->", line):
                v.append("src/%s:%d: reads the daemon global: %s -- Rep never "
                         "reads the daemon's globals (Entry)"
                         % (rel, no, line.strip()))
    return v


def module(rel):
    """module - foo.c and foo.h are one module, named foo"""
    return os.path.splitext(rel)[0]


def sccs(edges):
    """sccs - strongly connected components of {node: set(node)} (Tarjan,
    iterative)"""
    index, low, onstack, stack, comps = {}, {}, set(), [], []
    counter = [0]
    nodes = set(edges) | {b for bs in edges.values() for b in bs}
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        onstack.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    onstack.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                elif nxt in onstack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    onstack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                comps.append(sorted(comp))
    return comps


def cycle_violations(incs):
    """cycle_violations - module-level include cycles, one entry each"""
    edges, why = {}, {}
    for rel, no, name, res in incs:
        if res is None or not res.endswith(".h"):
            continue
        a, b = module(rel), module(res)
        if a == b:
            continue
        edges.setdefault(a, set()).add(b)
        why.setdefault((a, b), []).append("src/%s:%d" % (rel, no))
    v = []
    for comp in sccs(edges):
        if len(comp) < 2:
            continue
        members = set(comp)
        lines = ["include cycle among %d modules: %s -- no module-level "
                 "include cycle" % (len(comp), ", ".join(comp))]
        for a in comp:
            for b in sorted(edges.get(a, ()) & members):
                lines.append("    %s -> %s.h  (%s)"
                             % (a, b, ", ".join(why[(a, b)])))
        v.append("\n".join(lines))
    return v


def sess_violations(files, incs):
    """sess_violations - struct sess declared outside session.c, and policy
    or admin including smtp/session.h"""
    v = []
    for rel, text in files.items():
        if rel == "smtp/session.c":
            continue
        for no, line in enumerate(text.split("\n"), 1):
            if re.search(r"\bstruct\s+sess\s*\{", line):
                v.append("src/%s:%d: declares the fields of struct sess -- "
                         "struct sess is private to src/smtp/session.c"
                         % (rel, no))
    for rel, no, name, res in incs:
        if res == "smtp/session.h" and rel.startswith(("policy/", "admin/")):
            v.append('src/%s:%d: includes "%s" -- policy and admin never '
                     "include smtp/session.h" % (rel, no, name))
    return v


def unassigned(files):
    """unassigned - files the part table does not know (not an error)"""
    return [rel for rel in files if part(rel) == "unassigned"]


@pytest.fixture(scope="module")
def tree():
    files = sources()
    assert files, "no sources under %s" % SRC
    return files, includes(files)


def report(title, v):
    """report - fail with one violation per line"""
    if v:
        pytest.fail("%s: %d violation(s)\n%s" % (title, len(v), "\n".join(v)),
                    pytrace=False)


def test_parts_include_rules(tree):
    """Fp, Rep, Admin, Report and Swarm include only what the rules allow"""
    report("part rules", part_violations(tree[1]))


def test_rep_reads_no_daemon_globals(tree):
    """no `ms->` in src/rep, src/policy, src/dnsbl, src/dns"""
    report("daemon globals in Rep", global_violations(tree[0]))


def test_no_module_include_cycle(tree):
    """the module include graph is acyclic"""
    report("include cycles", cycle_violations(tree[1]))


def test_session_is_private(tree):
    """struct sess's fields only in session.c; policy/admin skip session.h"""
    report("private session", sess_violations(*tree))


def test_checker_finds_what_it_should():
    """the checker itself: a crafted tree with one of each violation"""
    files = {
        "fp/a.c": '#include "smtp/s.h"\n/* #include "rep/r.h" */\n',
        "smtp/s.h": "struct sess { int x; };\n",
        "smtp/session.c": "struct sess {\n};\n",
        "rep/r.c": '#include "daemon/daemon.h"\nint f(void) { return ms->x; }\n'
                   'const char *s = "ms->y";\n',
        "daemon/daemon.h": "", "daemon/runtime.h": '#include "smtp/s.h"\n',
        "policy/p.c": '#include "smtp/session.h"\n',
        "smtp/session.h": "",
        "x/a.h": '#include "x/b.h"\n', "x/b.c": '#include "a.h"\n',
        "x/b.h": "",
    }
    files = {k: strip_comments(t) for k, t in files.items()}
    incs = includes(files)
    pv = part_violations(incs)
    assert len(pv) == 3 and "Fp never includes Smtp" in pv[0], pv
    assert "Rep never includes Entry" in "".join(pv), pv
    assert "Rep never includes Smtp" in pv[-1], pv   # policy -> smtp
    gv = global_violations(files)
    assert len(gv) == 1 and "src/rep/r.c:2" in gv[0], gv
    cv = cycle_violations(incs)
    assert len(cv) == 1 and "x/a, x/b" in cv[0], cv
    sv = sess_violations(files, incs)
    assert len(sv) == 2 and "src/smtp/s.h:1" in sv[0], sv
    assert "policy/p.c" in sv[1], sv
    assert unassigned(files) == ["x/a.h", "x/b.c", "x/b.h"]


def main():
    """main - print every violation; exit 1 if there is any"""
    files = sources()
    incs = includes(files)
    total = 0
    for title, v in (("part rules", part_violations(incs)),
                     ("daemon globals in Rep", global_violations(files)),
                     ("include cycles", cycle_violations(incs)),
                     ("private session", sess_violations(files, incs))):
        print("== %s: %d violation(s)" % (title, len(v)))
        for line in v:
            print(line)
        total += len(v)
    un = unassigned(files)
    if un:
        print("== note: files in no known part: " + ", ".join(un))
    unres = sorted({"src/%s: \"%s\"" % (r, n) for r, _, n, res in incs
                    if res is None})
    if unres:
        print("== note: includes not found under src/: " + ", ".join(unres))
    print("%d violation(s)" % total)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
