"""Overhead benchmark: every workload under every configuration, interleaved
(A B C A B C ...), medians over rounds, ratios against no profiler measured
in the same run. See docs/performance.md."""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from workloads import WORKLOADS  # noqa: E402

CONFIGS = ["none", "floor", "yprof", "yprof-cpu", "yprof-nobuiltins", "cProfile", "yappi", "yappi-cpu",
           "viztracer", "pyinstrument"]


def run(config, workload):
    p = subprocess.run([sys.executable, os.path.join(HERE, "runner.py"), config, workload], capture_output=True,
                       text=True, timeout=600)
    if p.returncode != 0:
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    a = ap.parse_args()
    configs = a.configs.split(",")
    if sys.version_info >= (3, 12) and a.configs == ",".join(CONFIGS):
        # the two hook kinds: sys.monitoring (yprof's default there) and setprofile
        configs[2:2] = ["floor-mon"]
        configs.insert(configs.index("yprof") + 1, "yprof-setprofile")
    names = a.workloads.split(",")
    res = {(w, c): [] for w in names for c in configs}
    for r in range(a.rounds):
        for w in names:
            for c in configs:
                out = run(c, w)
                if out:
                    res[(w, c)].append(out)
        print("round %d/%d done" % (r + 1, a.rounds), file=sys.stderr)
    print("Python %s, %d rounds, median time / median unprofiled time\n" % (sys.version.split()[0], a.rounds))
    head = "| workload | " + " | ".join(configs[1:]) + " | yprof ns/event | bytes/event | yprof pct | events |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for w in names:
        base = statistics.median(x["t"] for x in res[(w, "none")]) if res[(w, "none")] else None
        cells = []
        for c in configs[1:]:
            xs = res[(w, c)]
            cells.append("%.2fx" % (statistics.median(x["t"] for x in xs) / base) if xs and base else "n/a")
        y = res.get((w, "yprof"), [])
        if y and base:
            ev = statistics.median(x["events"] for x in y)
            t = statistics.median(x["t"] for x in y)
            nsev = "%.0f" % ((t - base) / ev * 1e9) if ev else "n/a"
            bpe = "%.2f" % (statistics.median(x["trace_bytes"] for x in y) / ev) if ev else "n/a"
            pct = "%.0f%%" % statistics.median(x["pollution_pct"] for x in y)
            cells += [nsev, bpe, pct, "%d" % ev]
        else:
            cells += ["n/a"] * 4
        print("| %s | %s |" % (w, " | ".join(cells)))


if __name__ == "__main__":
    main()
