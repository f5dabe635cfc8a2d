"""The C tree's shape, checked by tests/python/test_tree.py and printed by
`python tools/c_tree.py`: function lengths (nothing much over a screen) and
the includes of each part (the dependency rule of docs/architecture.md).

A function is a definition that starts in column 0 and ends at the first
`}` in column 0 after it (clang-format puts both there)."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARTS = ("format", "recorder", "analyzer", "pymod")
# what each part's C files may include from the project (besides their own
# folder's private headers): docs/architecture.md
ALLOWED = {
    "format": {"yprof/format.h", "yprof/containers.h"},
    "recorder": {"yprof/format.h", "yprof/containers.h", "yprof/ring.h", "yprof/recorder.h"},
    "analyzer": {"yprof/format.h", "yprof/containers.h", "yprof/analyze.h"},
    "pymod": {"yprof/format.h", "yprof/containers.h", "yprof/ring.h", "yprof/recorder.h", "yprof/analyze.h"},
}
MAX_LINES = 80

HEAD = re.compile(r"^(?!static_assert|typedef|struct|enum|union|#|/|\*| |\})[A-Za-z_].*\(")


def c_files(part):
    d = os.path.join(ROOT, part)
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith((".c", ".h")))


def functions(path):
    """(name, first line, number of lines) of each function defined in path."""
    lines = open(path).read().split("\n")
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if HEAD.match(line) and not line.rstrip().endswith(";"):
            j = i
            while j < len(lines) and "{" not in lines[j] and not lines[j].rstrip().endswith(";"):
                j += 1
            if j < len(lines) and "{" in lines[j]:
                k = j
                if not lines[j].rstrip().endswith("}") or lines[j].count("{") != lines[j].count("}"):
                    k = j + 1
                    while k < len(lines) and not lines[k].startswith("}"):
                        k += 1
                m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", line)
                out.append((m.group(1) if m else "?", i + 1, k - i + 1))
                i = k
        i += 1
    return out


def long_functions(limit=MAX_LINES):
    return [(os.path.relpath(p, ROOT), name, first, n)
            for part in PARTS for p in c_files(part) for name, first, n in functions(p) if n > limit]


def bad_includes():
    bad = []
    for part in PARTS:
        for p in c_files(part):
            for inc in re.findall(r'^#include "([^"]+)"', open(p).read(), re.M):
                if inc.startswith("yprof/") and inc not in ALLOWED[part]:
                    bad.append((os.path.relpath(p, ROOT), inc))
                elif not inc.startswith("yprof/") and not os.path.exists(os.path.join(os.path.dirname(p), inc)):
                    bad.append((os.path.relpath(p, ROOT), inc))  # another folder's private header
    return bad


if __name__ == "__main__":
    for part in PARTS:
        for p in c_files(part):
            fs = functions(p)
            longest = max((n for _, _, n in fs), default=0)
            print("%-34s %5d lines %3d functions, longest %3d" %
                  (os.path.relpath(p, ROOT), len(open(p).read().split("\n")), len(fs), longest))
    for f, name, first, n in long_functions():
        print("over %d lines: %s:%d %s (%d)" % (MAX_LINES, f, first, name, n))
    for f, inc in bad_includes():
        print("include not allowed: %s includes %s" % (f, inc))
    sys.exit(1 if long_functions() or bad_includes() else 0)
