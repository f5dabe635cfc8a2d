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
from workloads import BODIES, WORKLOADS  # noqa: E402

# --workloads bodies: pyperformance's programs (the peer table on them)
PYPERF = ("richards", "deltablue") + BODIES

CONFIGS = ["none", "floor", "floor-tsc", "yprof", "yprof-cpu", "yprof-nobuiltins", "cProfile", "yappi",
           "yappi-cpu", "viztracer", "pyinstrument", "control-idle"]
SLOW = 30.0  # a configuration this many times slower than none runs one round only


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
    ap.add_argument("--workloads", default=",".join(w for w in WORKLOADS if w not in BODIES),
                    help="comma-separated names, or 'bodies': pyperformance's programs")
    a = ap.parse_args()
    configs = a.configs.split(",")
    if sys.version_info >= (3, 12) and a.configs == ",".join(CONFIGS):
        # the two hook kinds: sys.monitoring (yprof's default there) and setprofile
        configs[3:3] = ["floor-mon", "floor-mon-tsc"]
        configs.insert(configs.index("yprof") + 1, "yprof-setprofile")
    if (3, 9) <= sys.version_info < (3, 12) and a.configs == ",".join(CONFIGS):
        # PEP 523 frame evaluation: Python frames only, so beside yprof-nobuiltins
        configs[3:3] = ["floor-pep523", "floor-pep523-tsc"]
        configs.insert(configs.index("yprof-nobuiltins") + 1, "yprof-frame-eval")
    names = list(PYPERF) if a.workloads == "bodies" else a.workloads.split(",")
    res = {(w, c): [] for w in names for c in configs}
    slow = set()
    for r in range(a.rounds):
        for w in names:
            for c in configs:
                if (w, c) in slow:
                    continue
                out = run(c, w)
                if out:
                    res[(w, c)].append(out)
                    base = res[(w, "none")]
                    if c != "none" and base and out["t"] > SLOW * base[0]["t"]:
                        slow.add((w, c))  # e.g. yappi on 20,000 functions: minutes per run
        print("round %d/%d done" % (r + 1, a.rounds), file=sys.stderr)
    print("Python %s, %d rounds, median time / median unprofiled time\n" % (sys.version.split()[0], a.rounds))
    head = ("| workload | " + " | ".join(configs[1:]) +
            " | yprof÷floor | yprof÷ideal | yprof ns/event | bytes/event | yprof pct | events |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for w in names:
        base = statistics.median(x["t"] for x in res[(w, "none")]) if res[(w, "none")] else None
        cells = []
        ratio = {}
        for c in configs[1:]:
            xs = res[(w, c)]
            if xs and base:
                ratio[c] = statistics.median(x["t"] for x in xs) / base
                cells.append("%.2fx%s" % (ratio[c], "¹" if len(xs) == 1 and a.rounds > 1 else ""))
            else:
                cells.append("n/a")

        def over(floors):  # yprof's overhead over the cheapest floor's
            fs = [ratio[f] for f in floors if f in ratio]
            if "yprof" not in ratio or not fs or min(fs) <= 1.0:
                return "n/a"
            return "%.2f" % ((ratio["yprof"] - 1) / (min(fs) - 1))
        cells += [over(["floor", "floor-mon"]), over(["floor-tsc", "floor-mon-tsc"])]
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
    print("\n¹ one run: slower than %gx in round 1, not repeated. yprof÷floor: yprof's overhead "
          "(ratio − 1) over the cheapest empty hook's; yprof÷ideal: over the cheapest hook that reads the "
          "TSC and stores 16 bytes per event." % SLOW)


if __name__ == "__main__":
    main()
