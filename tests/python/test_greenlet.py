"""Greenlets: each greenlet's frames are a stack of their own, so counts are
exact across switches and a greenlet's time switched out is the awaited
time of its open frames (docs/api.md, "Greenlets"); live statistics equal
the analyzer's and the reference reader's; on every hook."""
import json
import sqlite3

import pytest
from conftest import analyze, run_py
from test_counts import HOOKS
from test_ref_reader import assert_same

pytest.importorskip("greenlet")  # run.sh installs it (and gevent) for every Python

# Two greenlets switch to each other 1,000 times each, calling known
# functions a known number of times. argv: clock, when greenlet is imported
# (before start(), with another tracer set, or after it), builtins, where
# (the main thread, or a thread started after start()).
PINGPONG = r"""
import functools, json, sys, threading
import yprof_record as yp
clock, when, builtins, where = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
theirs = []
if when == "before":
    import greenlet
    greenlet.settrace(lambda event, args: theirs.append(event))
yp.start("g.yp", clock=clock, builtins=builtins)
import greenlet

def shared(): return 1
def work_a(): return shared()
def work_b(): shared(); return shared()
def run_a(n):
    for _ in range(n):
        work_a(); gb.switch()
def run_b(n):
    for _ in range(n):
        work_b(); ga.switch()

def main():
    global ga, gb
    ga = greenlet.greenlet(functools.partial(run_a, 1000))
    gb = greenlet.greenlet(functools.partial(run_b, 1000))
    ga.switch()
    gb.switch()
    assert ga.dead and gb.dead

if where == "thread":
    t = threading.Thread(target=main); t.start(); t.join()
else:
    main()
yp.stop()
s = yp.get_stats()
live = {f.name: [f.ncalls, f.primitive_calls] for f in s.functions
        if f.name in ("run_a", "run_b", "work_a", "work_b", "shared", "main") or f.name.endswith("switch")}
print(json.dumps({"hook": yp.status()["hook"], "live": live, "theirs": len(theirs)}))
"""


def db_counts(db):
    con = sqlite3.connect(str(db))
    rows = con.execute("SELECT name, ncalls, primitive_calls FROM function_totals").fetchall()
    con.close()
    return {r[0]: [r[1], r[2]] for r in rows}


def pingpong(tmp_path, clock="wall", when="after", builtins=True, where="main", env=""):
    p = run_py(tmp_path, PINGPONG, clock, when, "1" if builtins else "0", where, env={"YPROF_HOOK": env})
    out = json.loads(p.stdout.strip().splitlines()[-1])
    analyze(tmp_path / "g.yp", "-q")
    offline = db_counts(tmp_path / "g.db")
    for name, row in out["live"].items():  # live = offline
        assert offline[name] == row, (name, offline[name], row)
    assert_same(tmp_path / "g.yp", tmp_path / "g.db")  # = the reference reader
    return out


@pytest.mark.parametrize("builtins,env,hook", HOOKS)
def test_two_greenlets_switching_count_exactly(tmp_path, builtins, env, hook):
    out = pingpong(tmp_path, builtins=builtins, env=env)
    assert out["hook"] == hook
    live = out["live"]
    for name, n in (("run_a", 1), ("run_b", 1), ("work_a", 1000), ("work_b", 1000), ("shared", 3000), ("main", 1)):
        assert live[name] == [n, n], (name, live)  # primitive: no greenlet's call is another's recursion
    switch = [v for k, v in live.items() if k.endswith("switch")]
    assert switch == ([[2002, 2002]] if builtins else []), live  # 1,000 + 1,000 + main's 2


@pytest.mark.parametrize("when,where", [("before", "main"), ("after", "thread"), ("before", "thread")])
def test_switches_are_traced_wherever_greenlet_is_first_used(tmp_path, when, where):
    out = pingpong(tmp_path, "cpu", when, where=where)
    assert out["live"]["work_b"] == [1000, 1000] and out["live"]["run_a"] == [1, 1], out
    # a tracer set before start() is still called, after ours: every switch
    assert out["theirs"] == (2004 if when == "before" and where == "main" else 0)


# A greenlet switched out while main sleeps: its frames' time away is
# awaited (wall clock), not theirs at all (CPU clock); the sleep is main's.
SLEEPER = r"""
import json, sys, time
import greenlet
import yprof_record as yp

took = {}
def inner():
    main.switch()
def waiter():
    t0 = time.monotonic()
    inner()
    took["waiter"] = time.monotonic() - t0

main = greenlet.getcurrent()
yp.start("s.yp", clock=sys.argv[1])
g = greenlet.greenlet(waiter)
g.switch()
t0 = time.monotonic()
time.sleep(0.3)
took["slept"] = time.monotonic() - t0
g.switch()
yp.stop()
s = yp.get_stats()
live = {n: [s.function(n).ncalls, s.function(n).total_s, s.function(n).awaited_s, s.function(n).self_s]
        for n in ("waiter", "inner", "sleep")}
print(json.dumps({"took": took, "live": live}))
"""


@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_time_switched_out_is_awaited(tmp_path, clock):
    p = run_py(tmp_path, SLEEPER, clock)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    took, live = out["took"], out["live"]
    waiter, inner, sleep = live["waiter"], live["inner"], live["sleep"]
    assert waiter[0] == inner[0] == sleep[0] == 1
    if clock == "wall":
        assert waiter[1] == pytest.approx(took["waiter"], rel=0.10), out
        assert waiter[2] == pytest.approx(took["slept"], rel=0.10) and inner[2] == pytest.approx(waiter[2], rel=0.01)
    else:
        assert waiter[2] == inner[2] == 0.0 and waiter[1] < 0.05, out
    assert waiter[3] < 0.01 and inner[3] < 0.01, out  # switched out is never self time
    assert sleep[1] == pytest.approx(took["slept"], rel=0.10) if clock == "wall" else sleep[1] < 0.05
    analyze(tmp_path / "s.yp", "-q")
    assert_same(tmp_path / "s.yp", tmp_path / "s.db")


# gevent: 5 handlers, each burning 0.5 ms of CPU then sleeping 2 ms, 10
# times; two kinds of request under their own tags.
GEVENT = r"""
import json, sys, time
import yprof_record as yp
yp.start("v.yp")
import gevent

took = {"total": 0.0, "slept": 0.0}
def burn():
    t = time.thread_time() + 0.0005
    while time.thread_time() < t:
        pass
def handler(kind, n):
    yp.set_tag(kind)
    t0 = time.monotonic()
    for _ in range(n):
        burn()
        t1 = time.monotonic()
        gevent.sleep(0.002)
        took["slept"] += time.monotonic() - t1
    took["total"] += time.monotonic() - t0
gevent.joinall([gevent.spawn(handler, "get" if i % 2 else "post", 10 + i) for i in range(5)])
yp.stop()
s = yp.get_stats()
h, b = s.function("handler"), s.function("burn")
tags = {t: s.function("burn", tag=t).ncalls for t in s.tags}
print(json.dumps({"took": took, "handler": [h.ncalls, h.total_s, h.awaited_s], "burn": b.ncalls, "tags": tags}))
"""


def test_gevent_handlers_count_exactly_with_their_waits_and_tags(tmp_path):
    pytest.importorskip("gevent")
    p = run_py(tmp_path, GEVENT)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    took, handler = out["took"], out["handler"]
    assert handler[0] == 5 and out["burn"] == 10 + 11 + 12 + 13 + 14
    assert handler[1] == pytest.approx(took["total"], rel=0.10), out
    assert handler[2] == pytest.approx(took["slept"], rel=0.15), out
    assert out["tags"] == {"post": 10 + 12 + 14, "get": 11 + 13}, out
    analyze(tmp_path / "v.yp", "-q")
    assert_same(tmp_path / "v.yp", tmp_path / "v.db")
