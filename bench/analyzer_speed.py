"""Analyzer throughput and trace size: record a call-heavy trace of about
N million events, then time `yprof-analyze` on it (best of 3).

    python bench/analyzer_speed.py [--million 100]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import yprof_record as yp


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--million", type=float, default=100)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="ypspeed")
    path = os.path.join(d, "big.yp")
    target = a.million * 1e6
    yp.start(path, builtins=False)
    t0 = time.perf_counter()
    events = 0
    while events < target:
        fib(25)  # 242785 calls
        events += 2 * 242785
    rec = time.perf_counter() - t0
    yp.stop()
    yp._close()
    size = os.path.getsize(path)
    exe = os.path.join(os.path.dirname(sys.executable), "yprof-analyze") 
    if not os.path.exists(exe):
        exe = shutil.which("yprof-analyze")
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([exe, path, "-q", "--no-db"], check=True)
        best = min(best, time.perf_counter() - t)
    t = time.perf_counter()
    subprocess.run([exe, path, "-q", "-o", os.path.join(d, "big.db")], check=True)
    with_db = time.perf_counter() - t
    print("events            %.1f M" % (events / 1e6))
    print("recording         %.1f M events/s (fib, builtins off)" % (events / rec / 1e6))
    print("trace             %.1f MB, %.3f bytes/event" % (size / 1e6, size / events))
    print("yprof-analyze     %.1f M events/s (report only, best of 3: %.2f s)" % (events / best / 1e6, best))
    print("  with database   %.2f s" % with_db)
    shutil.rmtree(d)


if __name__ == "__main__":
    main()
