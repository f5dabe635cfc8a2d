"""How long start() takes: the first of a process (clock and pollution
calibration, once per process) and a later one, each in fresh processes,
medians of --runs. YPROF_CLOCK=monotonic leaves out the TSC's calibration,
which shows the two parts. See docs/performance.md."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
import yprof_record as yp
path = sys.argv[1]
t0 = time.perf_counter(); yp.start(path); t1 = time.perf_counter(); yp.stop()
t2 = time.perf_counter(); yp.start(path); t3 = time.perf_counter(); yp.stop()
print(json.dumps({"first": t1 - t0, "later": t3 - t2}))
"""


def measure(runs, env):
    out = {"first": [], "later": []}
    with tempfile.TemporaryDirectory() as d:
        for i in range(runs):
            p = subprocess.run([sys.executable, "-c", CHILD, os.path.join(d, "t%d.yp" % i)], env=env,
                               capture_output=True, text=True, check=True)
            r = json.loads(p.stdout)
            for k in out:
                out[k].append(r[k] * 1000)
    return {k: statistics.median(v) for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    a = ap.parse_args()
    print("Python %s, median of %d processes each" % (sys.version.split()[0], a.runs))
    for label, extra in (("default clock", {}), ("YPROF_CLOCK=monotonic", {"YPROF_CLOCK": "monotonic"})):
        m = measure(a.runs, dict(os.environ, **extra))
        print("  %-22s first start() %6.2f ms, later start() %5.2f ms" % (label, m["first"], m["later"]))


if __name__ == "__main__":
    main()
