"""The tasks table (docs/api.md, "Tasks"): one row per asyncio task (C and
pure-Python tasks, eager ones on 3.12+) and per greenlet, with its name,
root function, tag, creation, first run, end, steps and the time its steps
ran; live rows equal the database's; on every hook."""
import json
import sqlite3
import sys

import pytest
from conftest import analyze, run_py
from test_counts import HOOKS

# The handlers as tasks: each burns 5 ms, sleeps 0.1 s, burns 5 ms,
# sleeps 0.1 s, under the tag of its kind; the program measures each one.
# argv: the task factory (c: asyncio's, py: the pure-Python Task, eager:
# 3.12's eager_task_factory), builtins.
HANDLERS = r"""
import asyncio, json, sys, time
import yprof_record as yp

took, ran = {}, {"burns": 0.0}

def burn(s):
    t0, w0 = time.thread_time(), time.monotonic()
    while time.thread_time() < t0 + s:
        pass
    ran["burns"] += time.monotonic() - w0

async def handler(i):
    t0 = time.monotonic()
    yp.set_tag("odd" if i % 2 else "even")
    burn(0.005)
    await asyncio.sleep(0.1)
    burn(0.005)
    await asyncio.sleep(0.1)
    took[i] = time.monotonic() - t0

async def main():
    loop = asyncio.get_running_loop()
    if sys.argv[1] == "py":
        loop.set_task_factory(lambda loop, coro, **kw: asyncio.tasks._PyTask(coro, loop=loop, **kw))
    elif sys.argv[1] == "eager":
        loop.set_task_factory(asyncio.eager_task_factory)
    ts = [asyncio.create_task(handler(i), name="h%d" % i if i < 3 else None) for i in range(10)]
    await asyncio.gather(*ts)
    names.extend(t.get_name() for t in ts)  # asked last: 3.13 formats "Task-N" when asked

names = []

yp.start("t.yp", builtins=sys.argv[2] == "1")
asyncio.run(main())
yp.stop()
rows = [{s: getattr(k, s) for s in k.__slots__} for k in yp.get_stats().tasks]
print(json.dumps({"took": took, "ran": ran["burns"], "tasks": rows, "names": names, "hook": yp.status()["hook"]}))
"""


def db_tasks(db):
    con = sqlite3.connect(str(db))
    rows = con.execute(
        "SELECT t.kind, t.name, f.name, g.value, t.created_s, t.first_run_s, t.done_s, t.wall_s, t.active_s, t.steps"
        " FROM tasks t LEFT JOIN functions f ON f.id = t.function_id LEFT JOIN tags g ON g.id = t.tag_id"
        " ORDER BY t.id").fetchall()
    con.close()
    return rows


def live_as_db(rows):
    return [(k["kind"], k["name"], k["function"], k["tag"], k["created_s"], k["first_run_s"], k["done_s"],
             k["wall_s"], k["active_s"], k["steps"]) for k in rows]


def assert_live_is_db(tmp_path, trace, rows):
    analyze(tmp_path / trace, "-q")
    db = db_tasks(tmp_path / trace.replace(".yp", ".db"))
    live = live_as_db(rows)
    assert len(db) == len(live)
    for a, b in zip(live, db):
        assert a[:4] == b[:4] and a[9] == b[9], (a, b)
        for x, y in zip(a[4:9], b[4:9]):  # the trace keeps time at its resolution (docs/format.md)
            assert (x is None) == (y is None) and (x is None or x == pytest.approx(y, abs=2e-5)), (a, b)


def run_handlers(tmp_path, factory, builtins=True, env=""):
    p = run_py(tmp_path, HANDLERS, factory, "1" if builtins else "0", env={"YPROF_HOOK": env})
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert_live_is_db(tmp_path, "t.yp", out["tasks"])
    return out


def check_handlers(out, steps, default_names=True):
    tasks = [k for k in out["tasks"] if k["function"] == "handler"]
    assert len(tasks) == 10, out["tasks"]
    names = [k["name"] for k in tasks]
    if default_names is None:  # eager tasks: their first step runs before create_task names them
        assert all(n.startswith("Task-") for n in names) and len(set(names)) == 10, names
    else:
        assert names[:3] == ["h0", "h1", "h2"], names
    if default_names:  # (with a task factory, some Pythons' create_task names the others "None")
        assert all(n.startswith("Task-") for n in names[3:]) and len(set(names)) == 10, names
    if default_names is not None:  # each row has its task's own name (the first steps run after naming)
        assert sorted(names) == sorted(out["names"]), (names, out["names"])
    took = sorted(out["took"].values())
    for k in tasks:
        assert k["kind"] == "asyncio" and k["done_s"] is not None and k["steps"] == steps, k
        assert k["created_s"] is not None and k["created_s"] <= k["first_run_s"] <= k["done_s"], k
        assert k["wall_s"] == pytest.approx(k["done_s"] - k["first_run_s"], abs=1e-6)
        assert took[0] * 0.9 <= k["wall_s"] <= took[-1] * 1.1 + 0.01, (k, took)  # what the handler measured
        assert 0.009 <= k["active_s"] < k["wall_s"] / 2, k  # its 10 ms of CPU burns, not its 0.2 s of sleep
    # the time their steps ran: their burns (as the program measured them), and the rest of their
    # 30 steps' code (profiled), not their 2 s of sleep
    active = sum(k["active_s"] for k in tasks)
    assert out["ran"] * 0.95 <= active <= out["ran"] + 0.1, (active, out["ran"], tasks)
    assert sorted(k["tag"] for k in tasks) == ["even"] * 5 + ["odd"] * 5
    main = [k for k in out["tasks"] if k["function"] == "main"]
    assert len(main) == 1 and main[0]["steps"] >= 2 and main[0]["wall_s"] >= 0.2


@pytest.mark.parametrize("builtins,env,hook", HOOKS)
def test_each_asyncio_task_is_a_row_with_its_steps_and_times(tmp_path, builtins, env, hook):
    out = run_handlers(tmp_path, "c", builtins, env)
    assert out["hook"] == hook
    check_handlers(out, steps=3)  # its start, then a resume after each sleep


def test_the_command_line_prints_the_count_and_the_longest_tasks(tmp_path):
    out = run_handlers(tmp_path, "c")
    r = analyze(tmp_path / "t.yp", "--tasks", "-n", "3", "--no-db")
    lines = r.stdout.split("\ntasks: ")[1].splitlines()
    n = len(out["tasks"])
    assert lines[0] == "%d asyncio, 0 greenlets (0 not done)" % n, lines
    assert lines[1].split() == ["kind", "name", "function", "steps", "wall_s", "active_s"]
    longest = sorted(out["tasks"], key=lambda k: -k["wall_s"])[:3]
    for line, k in zip(lines[2:5], longest):
        kind, name, function, steps, wall, active = line.split()
        assert (kind, name, function, int(steps)) == (k["kind"], k["name"], k["function"], k["steps"]), (line, k)
        assert float(wall) == pytest.approx(k["wall_s"], abs=2e-5)


def test_pure_python_tasks_are_rows_too(tmp_path):
    check_handlers(run_handlers(tmp_path, "py"), steps=3, default_names=False)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are 3.12+")
def test_eager_tasks_are_rows_whose_first_step_runs_at_creation(tmp_path):
    out = run_handlers(tmp_path, "eager")
    check_handlers(out, steps=3, default_names=None)
    # each one's first step runs inside its create_task, before the next is created
    rows = sorted((k for k in out["tasks"] if k["function"] == "handler"), key=lambda k: k["created_s"])
    for k, after in zip(rows, rows[1:] + [None]):
        assert k["created_s"] <= k["first_run_s"] and (after is None or k["first_run_s"] <= after["created_s"]), rows


# A coroutine a plain function drives by hand inside a task is not a task,
# also once the tasks' type is learned (docs/api.md, "Tasks").
BY_HAND = r"""
import asyncio, json
import yprof_record as yp

async def inner():
    return 1

def drive():
    c = inner()
    try:
        c.send(None)
    except StopIteration:
        pass

async def worker():
    drive()
    await asyncio.sleep(0)
    drive()

async def main():
    await asyncio.gather(*[asyncio.create_task(worker()) for _ in range(5)])

yp.start("h.yp")
asyncio.run(main())
yp.stop()
st = yp.get_stats()
rows = [{s: getattr(k, s) for s in k.__slots__} for k in st.tasks]
print(json.dumps({"tasks": rows, "inner": [f.ncalls for f in st.functions if f.name == "inner"]}))
"""


@pytest.mark.parametrize("builtins,env,hook", HOOKS)
def test_a_coroutine_driven_by_hand_in_a_task_is_not_a_task(tmp_path, builtins, env, hook):
    p = run_py(tmp_path, BY_HAND.replace('yp.start("h.yp")', 'yp.start("h.yp", builtins=%r)' % builtins),
               env={"YPROF_HOOK": env})
    out = json.loads(p.stdout.strip().splitlines()[-1])
    mine = sorted(k["function"] for k in out["tasks"] if k["module"] == "__main__")  # (and asyncio.run's own)
    assert mine == ["main"] + ["worker"] * 5, out["tasks"]
    assert all(k["steps"] == 2 for k in out["tasks"] if k["function"] == "worker"), out["tasks"]
    assert out["inner"] == [10]
    assert_live_is_db(tmp_path, "h.yp", out["tasks"])


# Greenlets: the two of test_greenlet's ping-pong, each switched in 1,001
# times; the main greenlet is not a task.
PINGPONG = r"""
import functools, json
import greenlet
import yprof_record as yp

def run_a(n):
    for _ in range(n):
        gb.switch()
def run_b(n):
    for _ in range(n):
        ga.switch()

yp.start("g.yp")
ga = greenlet.greenlet(functools.partial(run_a, 1000))
gb = greenlet.greenlet(functools.partial(run_b, 1000))
ga.switch()
gb.switch()
main = greenlet.getcurrent()
waiting = greenlet.greenlet(lambda: main.switch())
waiting.switch()  # it runs, and is switched out when recording stops
yp.stop()
rows = [{s: getattr(k, s) for s in k.__slots__} for k in yp.get_stats().tasks]
print(json.dumps(rows))
"""


def task_rows(tmp_path, code, trace):
    """The program's live rows, checked against the database's."""
    rows = json.loads(run_py(tmp_path, code).stdout.strip().splitlines()[-1])
    assert_live_is_db(tmp_path, trace, rows)
    return rows


def test_each_greenlet_is_a_row(tmp_path):
    pytest.importorskip("greenlet")
    rows = task_rows(tmp_path, PINGPONG, "g.yp")
    assert [(k["kind"], k["function"], k["steps"], k["done_s"] is not None) for k in rows] == \
        [("greenlet", "run_a", 1001, True), ("greenlet", "run_b", 1001, True),
         ("greenlet", "<lambda>", 1, False)], rows


GEVENT = r"""
import json, time
import yprof_record as yp
yp.start("v.yp")
import gevent

def burn():
    t = time.thread_time() + 0.0005
    while time.thread_time() < t:
        pass

def handler(n):
    for _ in range(n):
        burn()
        gevent.sleep(0.002)

gevent.joinall([gevent.spawn(handler, 10) for _ in range(5)])
yp.stop()
rows = [{s: getattr(k, s) for s in k.__slots__} for k in yp.get_stats().tasks]
print(json.dumps(rows))
"""


def test_gevent_greenlets_are_rows_with_their_steps(tmp_path):
    pytest.importorskip("gevent")
    rows = task_rows(tmp_path, GEVENT, "v.yp")
    handlers = [k for k in rows if k["function"] == "handler"]
    assert len(handlers) == 5, rows
    for k in handlers:
        assert k["done_s"] is not None and k["steps"] == 11, k  # its start, then back after each sleep
        assert 10 * 0.0005 <= k["active_s"] < k["wall_s"] and k["wall_s"] >= 10 * 0.002, k
