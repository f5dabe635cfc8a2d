"""Before/after by wall clock: two yprof builds (two virtualenvs), each run
as a process that times the workloads unprofiled and under yprof,
interleaved, and prints its median ratios; the two builds' processes
alternate (A B A B ...), so the machine's slow drifts hit both alike.

    bench/.venv-3.13/bin/python bench/ab.py OLD_PYTHON NEW_PYTHON \\
        [--pairs 8] [--rounds 5] [--workloads "fib,10 functions,oo+builtins"]

(OLD_PYTHON: e.g. a virtualenv with the earlier commit installed by
`pip install --no-deps <checkout>`.)
"""
import argparse
import collections
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def child(rounds, names):
    sys.path.insert(0, HERE)
    import workloads
    import yprof_record as yp
    from yprof_record import _calibrate
    _calibrate.wait()  # the one-time calibration in the background: not in the timings
    for n in names:
        workloads.prepare(n)
        workloads.WORKLOADS[n]()  # first sight of every function, untimed
    gc.disable()
    out = os.path.join(tempfile.mkdtemp(prefix="ypab"), "ab.yp")
    res = []
    for n in names:
        work, ratios = workloads.WORKLOADS[n], []
        for _ in range(rounds):
            t = time.perf_counter()
            work()
            a = time.perf_counter() - t
            yp.start(out)
            t = time.perf_counter()
            work()
            b = time.perf_counter() - t
            yp.stop()
            ratios.append(b / a)
        res.append(statistics.median(ratios))
    print(" ".join("%.4f" % r for r in res))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workloads", default="fib,10 functions,oo+builtins")
    a = ap.parse_args()
    names = a.workloads.split(",")
    got = collections.defaultdict(list)
    for i in range(a.pairs):
        for who, py in (("old", a.old), ("new", a.new)):
            p = subprocess.run([py, os.path.abspath(__file__), "--child", str(a.rounds), a.workloads],
                               capture_output=True, text=True, check=True)
            for n, r in zip(names, p.stdout.split()):
                got[(who, n)].append(float(r))
        print("pair %d/%d done" % (i + 1, a.pairs), file=sys.stderr)
    print("| workload | old | new | old runs | new runs |")
    print("|---|---|---|---|---|")
    for n in names:
        o, w = got[("old", n)], got[("new", n)]
        print("| %s | %.2fx | %.2fx | %s | %s |" % (n, statistics.median(o), statistics.median(w),
                                                 " ".join("%.2f" % x for x in o), " ".join("%.2f" % x for x in w)))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), sys.argv[3].split(","))
    else:
        main()
