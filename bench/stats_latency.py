"""get_stats() latency with thousands of functions while 8 threads run busily.

    python bench/stats_latency.py
"""
import statistics
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
    stop = threading.Event()
    yp.start("/tmp/latency.yp")
    ts = [threading.Thread(target=busy, args=(stop, k)) for k in range(8)]
    for t in ts:
        t.start()
    time.sleep(0.5)
    lat, rows = [], []
    for _ in range(30):
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
    print("functions in stats: %d, events so far: %d" % (len(s.functions), s.session["events"]))
    print("get_stats() latency: median %.1f ms, max %.1f ms (30 calls, 8 busy threads)" % (
        statistics.median(lat) * 1e3, max(lat) * 1e3))
    print("first row access (Python objects for every row): median %.1f ms" % (statistics.median(rows) * 1e3))
    yp._close()


if __name__ == "__main__":
    main()
