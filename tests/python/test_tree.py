"""The source tree keeps the shape docs/architecture.md gives it: no C
function much over a screen, each part including only what the dependency
rule allows, and the ring standing alone (nothing of the recorder's)."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import c_tree  # noqa: E402


def test_no_function_is_over_80_lines():
    assert c_tree.long_functions() == []


def test_function_lengths_are_measured():  # the checker sees what it should
    fns = dict((name, n) for name, _, n in c_tree.functions(os.path.join(ROOT, "analyzer", "yp_agg.c")))
    assert "yp_agg_events" in fns and 5 < fns["yp_agg_events"] < 20
    assert len(fns) > 20


def test_each_part_includes_only_what_the_dependency_rule_allows():
    assert c_tree.bad_includes() == []


def includes(path):
    return re.findall(r'^#include "([^"]+)"', open(os.path.join(ROOT, path)).read(), re.M)


def test_the_ring_stands_alone():
    assert includes("include/yprof/ring.h") == ["yprof/format.h"]
    assert includes("recorder/yp_ring.c") == ["yprof/ring.h"]


def test_nothing_below_pymod_includes_python():
    for part in ("format", "recorder", "analyzer"):
        for p in c_tree.c_files(part):
            assert "Python.h" not in open(p).read(), p
