"""Instructions per event, counted by callgrind (repeatable where timings on
these machines are not), with 10 and with 20,000 functions (the O(1)
claim), for a C function's events (`--only c` runs that row alone) and for
the 10 functions called from 4 threads (`--only threads`: whether an event
costs more when threads share the recorder; the threads' start-up cancels):
the empty hook, the ideal recorder (empty hook + rdtsc + a 16-byte
store), yprof's hook (everything but draining) and yprof's drain (decode,
live aggregation, coding, zstd: the flusher's work, wherever it ran). Fixed
costs cancel: each figure is the difference between two runs of N and 2N
calls, divided by the difference in events.

    bench/run.sh creates the venv and builds emptyhook; then
    bench/.venv-3.13/bin/python bench/instructions.py
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

CHILD = r"""
import gc, sys
gc.disable()  # a collection landing in one run and not the other is noise here
n, rounds, mode, out, kind = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ns = {}
exec(compile("\n".join("def f%d(x): return x" % i for i in range(n)), "<many>", "exec"), ns)
# kind "c": the same loop calling a C function (abs) instead
fs = [abs] * n if kind == "c" else [ns["f%d" % i] for i in range(n)]
for f in fs:  # first sight of every function (ids, symbols) outside the difference
    f(0)
if mode == "yprof":
    import yprof_record as yp
    from yprof_record import _calibrate
    _calibrate.wait()  # all of the background calibration in both runs: it cancels
    # a ring that holds the whole run: valgrind runs one thread at a time,
    # so the flusher cannot drain while the application thread runs
    yp.start(out, _ring_bits=21)
    for f in fs:
        f(0)
elif mode in ("floor", "ideal"):  # on 3.12+ sys.monitoring's, the cheaper hook there
    import floors
    floors.install("tsc" if mode == "ideal" else True)


def run(fs, rounds):  # locals, not module globals: the globals dict's layout
    for _ in range(rounds):  # differs between modes, and its lookups with it
        for f in fs:
            f(1)
            f(2)


if kind == "threads":  # the same calls, a quarter in each of 4 threads
    import threading

    def part():
        if mode in ("floor", "ideal") and sys.version_info < (3, 12):
            floors.install("tsc" if mode == "ideal" else True)  # setprofile: per thread
        run(fs, rounds // 4)
    ts = [threading.Thread(target=part) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
else:
    run(fs, rounds)
if mode == "yprof":
    yp.stop()
    dropped = yp.status()["dropped_events"]
    if dropped:  # a drop would take its events' drain (and the waits) out of the figures
        sys.exit("%d events dropped" % dropped)
"""


CHILD = "import sys; sys.path.insert(0, %r)  # floors.py\n" % os.path.dirname(os.path.abspath(__file__)) + CHILD


def totals(prefix):
    """Instructions of the whole run (every thread), and those inside the
    recorder's drain_locked (inclusive)."""
    total = None
    with open(prefix) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
    if total is None:
        raise SystemExit("no totals in " + prefix)
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", prefix],
                         check=True, capture_output=True, text=True).stdout
    drain = 0
    for line in out.splitlines():
        parts = line.split()
        if parts and re.search(r"\.c:(yp_)?drain_locked\b", line) and "=>" not in line:
            drain = int(parts[0].replace(",", ""))
    return total, drain


def measure(tmp, n, rounds, mode, kind):
    prefix = os.path.join(tmp, "cg.%s.%s.%d.%d" % (kind, mode, n, rounds))
    script = os.path.join(tmp, "child.py")
    with open(script, "w") as f:
        f.write(CHILD)
    # a fixed hash seed: with random ones the same figure moved by up to 60
    # instructions per event between runs (dict layouts); with seed 0 two
    # runs agree within 1
    # and a full ring waits for the flusher as long as it takes
    env = dict(os.environ, PYTHONHASHSEED="0", YPROF_WAIT_MS="3600000")
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + prefix,
                    sys.executable, script, str(n), str(rounds), mode, os.path.join(tmp, "t.yp"), kind],
                   capture_output=True, text=True, env=env)
    if p.returncode:
        raise SystemExit("the child failed: %s" % p.stderr.strip().splitlines()[-1:])
    return totals(prefix)


def main():
    import argparse
    ap = argparse.ArgumentParser(description="instructions per event, callgrind")
    ap.add_argument("--only", choices=("python", "c", "threads"),
                    help="only the Python-function rows, the C-function row or the threads row")
    only = ap.parse_args().only
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is needed (apt-get install valgrind)")
    tmp = tempfile.mkdtemp(prefix="ypinstr")
    print("Python %s, callgrind instructions per event (2 events per call), over no hook\n" % sys.version.split()[0])
    print("| functions | empty hook | ideal recorder | yprof hook | yprof drain | yprof hook ÷ empty | yprof hook ÷ ideal |")
    print("|---|---|---|---|---|---|---|")
    rows = [(10, 8000, "python"), (20000, 4, "python"), (10, 8000, "c"), (10, 8000, "threads")]
    for n, r, kind in [row for row in rows if only in (None, row[2])]:
        events = 4 * n * r  # extra events between the N and 2N runs
        tot, drain = {}, {}
        for mode in ("none", "floor", "ideal", "yprof"):
            (t2, d2), (t1, d1) = measure(tmp, n, 2 * r, mode, kind), measure(tmp, n, r, mode, kind)
            tot[mode], drain[mode] = (t2 - t1) / events, (d2 - d1) / events
        floor = tot["floor"] - tot["none"]
        ideal = tot["ideal"] - tot["none"]
        hook = tot["yprof"] - drain["yprof"] - tot["none"]
        label = {"python": "%d" % n, "c": "C function (abs)", "threads": "%d, from 4 threads" % n}[kind]
        print("| %s | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f |" %
              (label, floor, ideal, hook, drain["yprof"], hook / floor, hook / ideal))
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
