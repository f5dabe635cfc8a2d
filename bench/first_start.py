"""How long start() and stop() take: the first of a process and a later
one, in fresh processes, medians of --runs. The interpreter calibration runs
in the background from the import: a start() right after the import does
not wait for it, and the first stop() then finishes it; a start() 50 ms
after the import finds it done. YPROF_CLOCK=monotonic leaves out the TSC's
calibration (its rate is measured from the module's loading, at least 1 ms).
See docs/performance.md."""
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
path, pause = sys.argv[1], float(sys.argv[2])
time.sleep(pause)
t0 = time.perf_counter(); yp.start(path); t1 = time.perf_counter(); yp.stop(); t2 = time.perf_counter()
yp.start(path); t3 = time.perf_counter(); yp.stop()
print(json.dumps({"first": t1 - t0, "first stop": t2 - t1, "later": t3 - t2}))
"""
KEYS = ("first", "first stop", "later")


def measure(runs, env, pause):
    out = {k: [] for k in KEYS}
    with tempfile.TemporaryDirectory() as d:
        for i in range(runs):
            p = subprocess.run([sys.executable, "-c", CHILD, os.path.join(d, "t%d.yp" % i), str(pause)], env=env,
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
        for pause in (0.0, 0.05):
            m = measure(a.runs, dict(os.environ, **extra), pause)
            print("  %-22s %-21s first start() %5.2f ms, first stop() %5.2f ms, later start() %5.2f ms"
                  % (label, "right after import" if not pause else "50 ms after import", m["first"],
                     m["first stop"], m["later"]))


if __name__ == "__main__":
    main()
