"""The benchmark scripts (bench/) still run: one round of the smallest
workload each. Their figures are timings, so only their consistency is
checked here (a ratio and the share it implies, a sum and its parts), never
a speed."""
import json
import os
import subprocess
import sys
import sysconfig

import pytest
from conftest import SANITIZER

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench")
MON = sys.version_info >= (3, 12)
FLOORS = "floor-mon,floor-mon-tsc" if MON else "floor,floor-tsc"

# the scripts time the module; a sanitizer build only makes them slow
pytestmark = pytest.mark.skipif(bool(SANITIZER), reason="benchmarks are not run on sanitizer builds")


@pytest.fixture(scope="module")
def hookdir(tmp_path_factory):
    """The floors' module (bench/emptyhook.c), built as bench/run.sh does."""
    d = tmp_path_factory.mktemp("emptyhook")
    so = d / ("emptyhook" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-I" + sysconfig.get_paths()["include"],
                    os.path.join(BENCH, "emptyhook.c"), "-o", str(so)], check=True)
    return d


def run_bench(script, hookdir, *args):
    env = dict(os.environ, PYTHONPATH=str(hookdir))
    p = subprocess.run([sys.executable, os.path.join(BENCH, script)] + list(args), capture_output=True,
                       text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def row(out, name):
    """The cells of the table row for workload `name`."""
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == name:
            return cells
    raise AssertionError("no row %r in:\n%s" % (name, out))


def test_gap_compares_yprof_with_the_floors_in_one_process(hookdir):
    out = run_bench("gap.py", hookdir, "--rounds", "1", "--workloads", "fib", "--configs", FLOORS + ",yprof")
    cells = row(out, "fib")
    floor, ideal, yp = (float(c.rstrip("x")) for c in cells[1:4])
    assert min(floor, ideal, yp) > 0
    for cell, base in ((cells[4], floor), (cells[5], ideal)):  # yprof's overhead over each
        if base > 1.02:  # the printed ratios are rounded to 0.005
            lo, hi = (yp - 1.005) / (base - 0.995), (yp - 0.995) / (base - 1.005)
            assert lo - 0.006 <= float(cell) <= hi + 0.006, out
        elif base < 1.015:
            assert cell == "n/a", out


def test_gap_refuses_configurations_without_yprof(hookdir):
    p = subprocess.run([sys.executable, os.path.join(BENCH, "gap.py"), "--configs", FLOORS], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2 and "must include yprof" in p.stderr, p.stderr


def test_pollution_puts_the_reported_share_next_to_the_measured_one(hookdir):
    out = run_bench("pollution.py", hookdir, "--rounds", "1", "--workloads", "fib")
    cells = row(out, "fib")
    slow = float(cells[1].rstrip("x"))
    measured, reported = (float(c.rstrip("%")) for c in cells[2:4])
    error = float(cells[4])
    hook, interp, cfuncs = (float(c.rstrip("%")) for c in cells[5:8])
    # the slow-down is printed to 0.005, the shares to 0.5 points
    assert measured == pytest.approx(100 * (1 - 1 / slow), abs=0.51 + 0.5 / slow ** 2), out
    assert error == pytest.approx(reported - measured, abs=1.01), out
    assert reported == pytest.approx(hook + interp, abs=1.01), out  # each rounded
    # interp may calibrate to 0 on 3.8, whose empty hook costs the loop next
    # to nothing (seen in a fresh-clone run): reported is then hook alone
    assert 0 < hook <= reported < 100, out
    assert 0 <= cfuncs < 5, out  # fib calls no C function


def test_table_counts_every_event_and_its_ratios_agree(hookdir):
    out = run_bench("bench.py", hookdir, "--rounds", "1", "--workloads", "fib", "--configs",
                    "none," + FLOORS.split(",")[0] + ",yprof,cProfile")
    head = [c.strip() for c in out.splitlines()[2].strip().strip("|").split("|")]
    cells = dict(zip(head, row(out, "fib")))
    floor, yp, cprof = (float(cells[k].rstrip("x")) for k in head[1:4])
    assert min(floor, yp, cprof) > 0, out  # (one round: any of them may come out below 1)
    # fib(27) is 635,621 calls, 2 events each; the rest is the workload's own
    # call, the thread's start and end and the recording's marks
    assert 2 * 635621 <= int(cells["events"]) <= 2 * 635621 + 64, out
    # yprof÷floor is yprof's overhead over the floor's, from the rounded
    # ratios; n/a when the floor measured no overhead (unrounded ratio <= 1)
    if floor > 1.02:
        lo, hi = (yp - 1.005) / (floor - 0.995), (yp - 0.995) / (floor - 1.005)
        assert lo - 0.006 <= float(cells["yprof÷floor"]) <= hi + 0.006, out
    elif floor < 0.995:
        assert cells["yprof÷floor"] == "n/a", out
    # about one byte per event (delta coding + zstd): not 16, not 0
    assert 0.1 < float(cells["bytes/event"]) < 4, out


def test_control_idle_runs_with_a_channel_open_and_nothing_recorded(tmp_path):
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path))  # tmp_path is 0700: the channel's directory goes in it
    p = subprocess.run([sys.executable, os.path.join(BENCH, "runner.py"), "control-idle", "fib"], capture_output=True,
                       text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.splitlines()[-1])
    assert out["channel"] is True and out["recording"] is False and out["t"] > 0
    assert os.listdir(str(tmp_path / "yprof")) == []  # removed at exit


FAKE_BM = """
import pyperf
CALLS = []
def body(x):
    CALLS.append(("body", x))
def timed(loops, y):
    t0 = pyperf.perf_counter()
    CALLS.append(("timed", loops, y))
    return pyperf.perf_counter() - t0
if __name__ == "__main__":
    runner = pyperf.Runner()
    runner.argparser.add_argument("--size", type=int, default=7)
    args = runner.parse_args()
    runner.metadata["size"] = args.size
    runner.bench_func("body", body, args.size)
    runner.bench_time_func("timed", timed, "y")
"""


def test_pyperformance_bodies_run_their_main_blocks_timing_functions(tmp_path):
    # the stand-in for pyperf remembers what the program's __main__ block
    # asked to time, with its default arguments; each run calls it `repeat` times
    sys.path.insert(0, BENCH)
    try:
        import pyperf_bodies
    finally:
        sys.path.remove(BENCH)
    prog = tmp_path / "run_benchmark.py"
    prog.write_text(FAKE_BM)
    work = pyperf_bodies.load("fake", path=str(prog), repeat=3)
    before = sys.modules.get("pyperf")
    work()
    work()
    log = work.calls[0][1].__globals__["CALLS"]  # the program's own module state
    assert log == [("body", 7)] * 3 + [("timed", 3, "y")] + [("body", 7)] * 3 + [("timed", 3, "y")]
    assert sys.modules.get("pyperf") is before  # the stand-in is not left behind
