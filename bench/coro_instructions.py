"""The cost of coroutines and tasks against the floor, counted by callgrind
(timings on these machines move the floors' own figures by up to 40%
between runs). For each of pyperformance's two coroutine programs
(bench/pyperf_bodies.py: `coroutines`, a recursive coroutine that never
suspends; `async_tree`, the variant without sleeps: 6 levels of 6 tasks),
under no hook, the empty hook (sys.monitoring's on 3.12+, setprofile's
before) and yprof: the instructions of running the body twice minus once
(one-time costs cancel), yprof's split into its hook (what the
application's thread pays) and its drain (the flusher's decode,
aggregation, coding and zstd, on another core when one is free). The
target (issue 17): the hook's cost within 1.3 x the empty hook's.

    bench/run.sh creates the venv and builds emptyhook; then
    bench/.venv-3.13/bin/python bench/coro_instructions.py [--bodies coroutines,async_tree]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from instructions import totals

CHILD = r"""
import gc, os, sys
sys.path.insert(0, %r)
import pyperf_bodies
body, times, mode, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
fn = pyperf_bodies.load(body)
fn()  # first sight of everything outside the difference
if mode == "yprof":
    import yprof_record as yp
    from yprof_record import _calibrate
    _calibrate.wait()
    yp.start(out, _ring_bits=21)
elif mode == "floor":
    import floors
    floors.install()
gc.collect()
for _ in range(times):
    fn()
if mode == "yprof":
    yp.stop()
    dropped = yp.status()["dropped_events"]
    if dropped:  # a drop would take its events' drain (and the waits) out of the figures
        sys.exit("%%d events dropped" %% dropped)
""" % os.path.dirname(os.path.abspath(__file__))


def measure(tmp, body, times, mode):
    prefix = os.path.join(tmp, "cg.%s.%s.%d" % (body, mode, times))
    script = os.path.join(tmp, "child.py")
    with open(script, "w") as f:
        f.write(CHILD)
    # a full ring waits for the flusher as long as it takes: under valgrind
    # threads take turns, and the default 50 ms can drop events
    env = dict(os.environ, PYTHONHASHSEED="0", YPROF_WAIT_MS="3600000")
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + prefix, sys.executable, script,
                    body, str(times), mode, os.path.join(tmp, "t.yp")], capture_output=True, text=True, env=env)
    if p.returncode:
        raise SystemExit("the child failed: %s" % p.stderr.strip().splitlines()[-1:])
    return totals(prefix)


def main():
    ap = argparse.ArgumentParser(description="coroutines' and tasks' cost against the floor, callgrind")
    ap.add_argument("--bodies", default="coroutines,async_tree", help="pyperformance bodies, comma-separated")
    bodies = ap.parse_args().bodies.split(",")
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is needed (apt-get install valgrind)")
    tmp = tempfile.mkdtemp(prefix="ypcoro")
    hook_kind = "sys.monitoring" if sys.version_info >= (3, 12) else "setprofile"
    print("Python %s (%s), callgrind instructions of one run of the body, over no hook\n"
          % (sys.version.split()[0], hook_kind))
    print("| body | empty hook | yprof hook | yprof drain | yprof hook ÷ empty |")
    print("|---|---|---|---|---|")
    for body in bodies:
        cost = {}
        for mode in ("none", "floor", "yprof"):
            (t2, d2), (t1, d1) = measure(tmp, body, 2, mode), measure(tmp, body, 1, mode)
            cost[mode] = (t2 - t1, d2 - d1)
        floor = cost["floor"][0] - cost["none"][0]
        hook = cost["yprof"][0] - cost["yprof"][1] - cost["none"][0]
        print("| %s | %.2f G | %.2f G | %.2f G | %.2f |" % (body, floor / 1e9, hook / 1e9, cost["yprof"][1] / 1e9,
                                                            hook / floor))
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
