"""Coroutines: one call per coroutine object, from its first start to its
end, with the time it spent suspended as awaited_s (wall clock) or left out
(CPU clock); live statistics equal to the analyzer's; on every hook."""
import json
import os
import sqlite3
import subprocess

import pytest
from conftest import PY, analyze, run_py
from test_counts import HOOKS

# The program: 10 concurrent handlers, each burns 5 ms of CPU,
# awaits asyncio.sleep(0.1), burns 5 ms, awaits asyncio.sleep(0.1). The
# program measures what each handler took and waited with its own clocks.
HANDLERS = r"""
import asyncio, json, sys, time
import yprof_record as yp

took = {"total": 0.0, "awaited": 0.0, "burn_cpu": 0.0}

def burn(s):
    t0 = time.thread_time()
    while time.thread_time() < t0 + s:
        pass
    took["burn_cpu"] += time.thread_time() - t0

async def waited(aw):
    t0 = time.monotonic()
    await aw
    return time.monotonic() - t0

async def handler(i):
    t0 = time.monotonic()
    burn(0.005)
    w = await waited(asyncio.sleep(0.1))
    burn(0.005)
    w += await waited(asyncio.sleep(0.1))
    took["total"] += time.monotonic() - t0
    took["awaited"] += w

async def main():
    await asyncio.gather(*(handler(i) for i in range(10)))

yp.start("h.yp", clock=sys.argv[1], builtins=sys.argv[2] == "1")
asyncio.run(main())
yp.stop()
s = yp.get_stats()
live = {n: [s.function(n).ncalls, s.function(n).total_s, s.function(n).awaited_s, s.function(n).self_s]
        for n in ("handler", "burn", "main", "waited")}
print(json.dumps({"hook": yp.status()["hook"], "took": took, "live": live}))
"""


def db_funcs(db, names):
    con = sqlite3.connect(str(db))
    rows = con.execute("SELECT name, ncalls, total_s, awaited_s, self_s FROM function_totals WHERE name IN (%s)"
                       % ",".join("?" * len(names)), names).fetchall()
    con.close()
    return {r[0]: list(r[1:]) for r in rows}


def run_handlers(tmp_path, clock, builtins, env):
    p = run_py(tmp_path, HANDLERS, clock, "1" if builtins else "0", env={"YPROF_HOOK": env})
    out = json.loads(p.stdout.strip().splitlines()[-1])
    analyze(tmp_path / "h.yp", "-q")
    offline = db_funcs(tmp_path / "h.db", list(out["live"]))
    for name, row in out["live"].items():  # live = offline
        assert offline[name][0] == row[0], (name, offline[name], row)
        # the trace keeps time at its resolution (docs/format.md): a few ns per
        # event (burn makes some 40,000 calls)
        assert offline[name][1:] == pytest.approx(row[1:], rel=1e-6, abs=2e-5), (name, offline[name], row)
    return out


@pytest.mark.parametrize("builtins,env,hook", HOOKS)
def test_handlers_count_once_per_coroutine_with_their_awaited_time(tmp_path, builtins, env, hook):
    out = run_handlers(tmp_path, "wall", builtins, env)
    assert out["hook"] == hook
    took, live = out["took"], out["live"]
    handler, burn, main, waited = live["handler"], live["burn"], live["main"], live["waited"]
    assert handler[0] == 10 and burn[0] == 20 and main[0] == 1 and waited[0] == 20
    # first start to end, suspended time included: what the handlers measured
    assert handler[1] == pytest.approx(took["total"], rel=0.10), (handler, took)
    assert handler[2] == pytest.approx(took["awaited"], rel=0.10), (handler, took)
    # 20 sleeps of 0.1 s; each one's timer starts before its coroutine
    # suspends (a fresh-clone run on a busy machine read 1.9989 s)
    assert 1.9 <= handler[2] < handler[1]
    assert handler[3] < 0.02  # its own code: the burns are burn's
    assert main[2] > 0.2 and main[2] <= main[1]


@pytest.mark.parametrize("builtins,env,hook", HOOKS)
def test_with_the_cpu_clock_suspended_time_adds_nothing(tmp_path, builtins, env, hook):
    out = run_handlers(tmp_path, "cpu", builtins, env)
    took, live = out["took"], out["live"]
    handler, burn = live["handler"], live["burn"]
    assert handler[0] == 10 and burn[0] == 20
    assert handler[2] == 0.0 and live["main"][2] == 0.0
    assert burn[1] == pytest.approx(took["burn_cpu"], rel=0.10)
    # the handlers ran their burns and little else: not the 2 s they waited
    assert burn[1] <= handler[1] < burn[1] + 0.05, (handler, burn)


CANCELLED = r"""
import asyncio, json, sys, time
import yprof_record as yp

suspended = []

async def stuck(i):
    suspended.append(time.monotonic())
    await asyncio.sleep(30)

async def main():
    tasks = [asyncio.ensure_future(stuck(i)) for i in range(5)]
    await asyncio.sleep(0.2)
    now = time.monotonic()
    for t in tasks:
        t.cancel()          # thrown into each suspended coroutine
    await asyncio.gather(*tasks, return_exceptions=True)
    suspended[:] = [now - t for t in suspended]

yp.start("c.yp", builtins=sys.argv[1] == "1")
asyncio.run(main())
yp.stop()
f = yp.get_stats().function("stuck")
print(json.dumps([f.ncalls, f.total_s, f.awaited_s, sum(suspended)]))
"""


@pytest.mark.parametrize("builtins,env,hook", HOOKS)
def test_a_cancelled_coroutine_is_one_call_ended_by_the_throw(tmp_path, builtins, env, hook):
    p = run_py(tmp_path, CANCELLED, "1" if builtins else "0", env={"YPROF_HOOK": env})
    ncalls, total, awaited, waited = json.loads(p.stdout.strip().splitlines()[-1])
    assert ncalls == 5
    # from the await to the cancel, as the program measured it
    assert awaited == pytest.approx(waited, rel=0.10) and awaited <= total < awaited + 0.1, (total, awaited, waited)


KINDS = r"""
import asyncio, cProfile, json, pstats, sys, types
import yprof_record as yp

async def agen():                 # an async generator: per resume, as cProfile
    for i in range(3):
        await asyncio.sleep(0)
        yield i

@types.coroutine
def legacy():                     # a generator-based coroutine: one call
    yield
    return 1

def plain():                      # a generator: per resume, as cProfile
    yield 1
    yield 2

async def user():
    out = [x async for x in agen()]
    out.append(await legacy())
    out.extend(plain())
    return out

def work():
    for _ in range(4):
        asyncio.run(user())

pr = cProfile.Profile()
pr.enable()
work()
pr.disable()
ref = {k[2]: v[1] for k, v in pstats.Stats(pr).stats.items()}
yp.start("k.yp", builtins=sys.argv[1] == "1")
work()
yp.stop()
s = yp.get_stats()
names = ("agen", "legacy", "plain", "user")
print(json.dumps({"ref": {n: ref[n] for n in names}, "got": {n: s.function(n).ncalls for n in names}}))
"""


@pytest.mark.parametrize("builtins,env,hook", HOOKS)
def test_only_coroutines_change_counting_generators_keep_cprofiles(tmp_path, builtins, env, hook):
    p = run_py(tmp_path, KINDS, "1" if builtins else "0", env={"YPROF_HOOK": env})
    out = json.loads(p.stdout.strip().splitlines()[-1])
    ref, got = out["ref"], out["got"]
    assert got["agen"] == ref["agen"] and got["plain"] == ref["plain"] == 4 * 3
    assert got["legacy"] == 4 and ref["legacy"] == 4 * 2  # cProfile: each resume
    assert got["user"] == 4 and ref["user"] > 4


def test_the_async_server_example_counts_each_request_once(tmp_path):
    # examples/async_server.py: 20 clients of 10 requests, every 5th SLOW
    example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "async_server.py")
    p = subprocess.run([PY, example, "--trace", str(tmp_path / "a.yp")], capture_output=True, text=True,
                       timeout=120, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["handle_request"]["ncalls"] == 200 and out["fetch"]["ncalls"] == 200
    assert out["digest"]["ncalls"] == 40 and out["serve_client"]["ncalls"] == 20
    # 160 waits of 2 ms and 40 of 20 ms (each wait's timer starts a little
    # before its coroutine suspends: 5% allowed)
    assert out["handle_request"]["awaited_s"] >= 0.95 * (160 * 0.002 + 40 * 0.02)
    assert out["handle_request"]["self_s"] < out["handle_request"]["total_s"] - out["handle_request"]["awaited_s"]
    # each request under its kind's tag: a slow one's wall time has its 20 ms wait, and it is not active time
    tags = out["tags"]
    assert tags["fast"]["handle_request"] == 160 and tags["slow"]["handle_request"] == 40, tags
    assert tags["slow"]["wall_s"] >= 40 * 0.02 > tags["slow"]["active_s"] and tags["fast"]["wall_s"] >= 160 * 0.002
    analyze(tmp_path / "a.yp", "-q")
    con = sqlite3.connect(str(tmp_path / "a.db"))
    row = con.execute("SELECT ncalls, awaited_s FROM function_totals WHERE name = 'handle_request'").fetchone()
    con.close()
    assert row[0] == 200 and row[1] == pytest.approx(out["handle_request"]["awaited_s"], abs=1e-3)
