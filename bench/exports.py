"""Every export of a big trace: time, size, bytes per event, and whether a
timeline over its limit is refused before anything is written.

    python bench/exports.py [--threads 16] [--seconds 60] [--keep DIR]

Records `--threads` busy threads (the call-heavy loop of bench/memory.py)
for `--seconds`, then runs yprof-analyze once per export on the trace:
the database, pstats, callgrind, collapsed stacks, the SVG flame graph,
pprof, and the two timelines (Chrome JSON, Perfetto protobuf) at their
default limit (1 GiB), again narrowed to one thread and one second, and
with no limit when they fit in the disk's free space (`--unlimited`).
"""
import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import sys, threading, time
n, seconds, path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
import yprof_record as yp
def f(i): return i
stop = threading.Event()
def worker():
    while not stop.is_set():
        for i in range(500): f(i)
yp.start(path)
ts = [threading.Thread(target=worker, name="worker-%d" % k) for k in range(n)]
for t in ts: t.start()
time.sleep(seconds)
stop.set()
for t in ts: t.join()
yp.stop()
"""


def analyzer():
    here = os.path.join(os.path.dirname(sys.executable), "yprof-analyze")
    return here if os.path.exists(here) else shutil.which("yprof-analyze")


def run(args):
    t0 = time.perf_counter()
    p = subprocess.run([analyzer()] + args, capture_output=True, text=True)
    return time.perf_counter() - t0, p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--keep", help="a directory for the files (default: a temporary one, removed)")
    ap.add_argument("--unlimited", action="store_true", help="also write the timelines whole (--max-size 0)")
    a = ap.parse_args()
    d = a.keep or tempfile.mkdtemp(prefix="ypexports")
    os.makedirs(d, exist_ok=True)
    trace = os.path.join(d, "big.yp")
    subprocess.run([sys.executable, "-c", CHILD, str(a.threads), str(a.seconds), trace], check=True)
    took, p = run([trace, "-q", "-o", os.path.join(d, "big.db")])
    con = sqlite3.connect(os.path.join(d, "big.db"))
    events, dropped = con.execute("SELECT events, dropped_events FROM session").fetchone()
    con.close()
    print("Python %d.%d.%d, %d threads for %.0f s: %d events (%d dropped), trace %.1f MiB"
          % (sys.version_info[:3] + (a.threads, a.seconds, events, dropped, os.path.getsize(trace) / 2**20)))
    print("| export | options | seconds | size | bytes/event | result |")
    print("|---|---|---|---|---|---|")
    print("| database | | %.1f | %.1f MiB | | |" % (took, os.path.getsize(os.path.join(d, "big.db")) / 2**20))
    cases = [("pstats", "p.pstats", []), ("callgrind", "c.out", []), ("collapsed", "s.folded", []),
             ("flamegraph", "f.svg", []), ("pprof", "p.pb.gz", []),
             ("chrome", "t.json", []), ("perfetto", "t.pftrace", []),
             ("chrome", "t1.json", ["--thread", "worker-0", "--since", "1", "--until", "2"]),
             ("perfetto", "t1.pftrace", ["--thread", "worker-0", "--since", "1", "--until", "2"]),
             ("chrome", "t2.json", ["--min-duration", "10"]),
             ("perfetto", "t2.pftrace", ["--min-duration", "10"])]
    if a.unlimited:
        cases += [("chrome", "all.json", ["--max-size", "0"]), ("perfetto", "all.pftrace", ["--max-size", "0"])]
    for kind, name, extra in cases:
        out = os.path.join(d, name)
        took, p = run([trace, "-q", "--no-db", "--" + kind, out] + extra)
        if p.returncode == 0:
            size = os.path.getsize(out)
            print("| %s | %s | %.1f | %.1f MiB | %.1f | written |"
                  % (kind, " ".join(extra), took, size / 2**20, size / max(events, 1)))
            os.remove(out)
        else:
            print("| %s | %s | %.1f | | | %s |" % (kind, " ".join(extra), took,
                                                    p.stderr.strip().replace("|", "/")[:200]))
    if not a.keep:
        shutil.rmtree(d)


if __name__ == "__main__":
    main()
