"""What yprof's memory costs a threaded program: peak RSS with and without it.

    python bench/memory.py [--seconds 3] [--rounds 3]

Each configuration (threads, busy or mostly idle) runs in a fresh process,
unprofiled and profiled (default options, the wall clock), `--rounds` times
each; the table gives the median peak RSS (VmHWM) of both, their difference,
and what yprof reports itself: pollution()['peak_bytes'] and 'bytes' at the
end, and the events dropped. Busy threads call a small function in a loop
(the overhead benchmarks' rate); idle ones call it every 50 ms.
"""
import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, os, sys, threading, time
n, busy, profiled, seconds = int(sys.argv[1]), sys.argv[2] == "busy", sys.argv[3] == "1", float(sys.argv[4])
path = sys.argv[5] if len(sys.argv) > 5 else "/tmp/yprof-bench-memory.yp"
import yprof_record as yp
def f(i): return i
stop = threading.Event()
ready = threading.Barrier(n + 1)
ids = []
def worker():
    ids.append(threading.get_native_id())
    ready.wait()
    while not stop.is_set():
        if busy:
            for i in range(500): f(i)
        else:
            f(0)
            time.sleep(0.05)
if profiled:
    yp.start(path)
ts = [threading.Thread(target=worker) for _ in range(n)]
for t in ts: t.start()
ready.wait()
time.sleep(seconds)
stop.set()
for t in ts: t.join()
# join() returns before the OS threads are gone, and a thread's ring is let go
# only when the thread really exits: wait for that, so the end figure is the end's
deadline = time.time() + 10
while set(map(str, ids)) & set(os.listdir("/proc/self/task")) and time.time() < deadline:
    time.sleep(0.005)
with open("/proc/self/status") as fh:
    hwm = [int(l.split()[1]) for l in fh if l.startswith("VmHWM:")][0]
out = {"hwm_kib": hwm}
if profiled:
    yp.get_stats()  # a flush: the rings of the threads that exited are retired
    p = yp.pollution()
    out.update(peak=p.get("peak_bytes", 0), bytes=p["bytes"], dropped=yp.status()["dropped_events"],
               events=yp.status()["events_written"])
    yp.stop()
print(json.dumps(out))
"""

CONFIGS = [(1, "busy"), (8, "busy"), (64, "busy"), (500, "idle")]


def run(n, kind, profiled, seconds):
    p = subprocess.run([sys.executable, "-c", CHILD, str(n), kind, "1" if profiled else "0", str(seconds)],
                       capture_output=True, text=True, timeout=600, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    mib = 1 / 1024
    print("Python %s, %g s per run, median of %d runs" % (sys.version.split()[0], a.seconds, a.rounds))
    print()
    print("| threads | unprofiled peak RSS | yprof peak RSS | difference | yprof peak_bytes | bytes at end "
          "| events | dropped |")
    print("|---|---|---|---|---|---|---|---|")
    for n, kind in CONFIGS:
        bare = [run(n, kind, False, a.seconds) for _ in range(a.rounds)]
        prof = [run(n, kind, True, a.seconds) for _ in range(a.rounds)]
        b = statistics.median(r["hwm_kib"] for r in bare)
        p = statistics.median(r["hwm_kib"] for r in prof)
        peak = statistics.median(r["peak"] for r in prof) / 2 ** 20
        end = statistics.median(r["bytes"] for r in prof) / 2 ** 20
        ev = statistics.median(r["events"] for r in prof)
        dropped = max(r["dropped"] for r in prof)
        print("| %d %s | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %.1fM | %d |"
              % (n, kind, b * mib, p * mib, (p - b) * mib, peak, end, ev / 1e6, dropped), flush=True)


if __name__ == "__main__":
    main()
