"""get_stats() latency with thousands of functions while 8 threads run busily:
median, p99 and worst of --calls calls (targets: median <= 10 ms, p99 <= 50 ms).

    python bench/stats_latency.py
"""
import argparse
import sys
import os
import statistics
import tempfile
import threading
import time

import yprof_record as yp

ns = {}
exec("\n".join("def f%d(x): return x" % i for i in range(5000)), ns)
FUNCS = [ns["f%d" % i] for i in range(5000)]


def busy(stop, k):
    while not stop.is_set():
        for f in FUNCS[k::8]:
            f(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200)
    a = ap.parse_args()
    stop = threading.Event()
    tmp = tempfile.mkdtemp(prefix="yprof-latency-")
    yp.start(os.path.join(tmp, "latency.yp"))
    ts = [threading.Thread(target=busy, args=(stop, k)) for k in range(8)]
    for t in ts:
        t.start()
    time.sleep(0.5)
    lat, rows = [], []
    for _ in range(a.calls):
        t = time.perf_counter()
        s = yp.get_stats()
        lat.append(time.perf_counter() - t)
        t = time.perf_counter()
        s.function("f1")
        rows.append(time.perf_counter() - t)
        time.sleep(0.02)
    stop.set()
    for t in ts:
        t.join()
    yp.stop()
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
    print("Python %s; functions in stats: %d, events so far: %d" % (sys.version.split()[0], len(s.functions),
                                                                   s.session["events"]))
    print("get_stats() latency: median %.1f ms, p99 %.1f ms, max %.1f ms (%d calls, 8 busy threads)" % (
        statistics.median(lat) * 1e3, p99 * 1e3, lat[-1] * 1e3, len(lat)))
    print("first row access (Python objects for every row): median %.1f ms" % (statistics.median(rows) * 1e3))
    yp._close()
    os.remove(os.path.join(tmp, "latency.yp"))
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
