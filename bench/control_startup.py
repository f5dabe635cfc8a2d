"""What YPROF_CONTROL=1 costs a process at start-up: `python -c pass` with
and without it, interleaved, median of --runs each (the .pth's imports and
the channel's opening; the runtime cost while idle is the overhead
benchmark's control-idle column). Run with the Python whose site-packages
has yprof installed. See docs/performance.md."""
import argparse
import os
import statistics
import subprocess
import sys
import time


def once(env):
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    a = ap.parse_args()
    off = dict(os.environ, YPROF_CONTROL="")
    on = dict(os.environ, YPROF_CONTROL="1")
    once(off), once(on)  # warm the file cache
    t = {"off": [], "on": []}
    for _ in range(a.runs):
        t["off"].append(once(off))
        t["on"].append(once(on))
    m = {k: statistics.median(v) * 1000 for k, v in t.items()}
    print("Python %s, %d runs each: python -c pass %.1f ms, with YPROF_CONTROL=1 %.1f ms (+%.1f ms)"
          % (sys.version.split()[0], a.runs, m["off"], m["on"], m["on"] - m["off"]))


if __name__ == "__main__":
    main()
