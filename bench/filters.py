"""What an include filter costs: a stdlib-heavy program (bench/filter_app.py)
unprofiled, under yprof recording everything, under yprof with
include=[the program's own module], and under cProfile, interleaved in
fresh processes, medians over --rounds; ratios against unprofiled measured
in the same run. On 3.12+ the code left out answers sys.monitoring with
DISABLE once per place; on 3.8-3.11 the setprofile hook still runs for it
(on 3.9-3.11 yprof-include-frame-eval: builtins=False and YPROF_HOOK=frame-eval,
the PEP 523 hook, which leaves the interpreter on its fast paths).
See docs/performance.md."""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = ("none", "yprof", "yprof-include", "cProfile")
if (3, 9) <= sys.version_info < (3, 12):  # the opt-in PEP 523 hook: no C functions, no profile hook
    CONFIGS += ("yprof-include-frame-eval",)


def run(config):
    p = subprocess.run([sys.executable, os.path.join(HERE, "filter_app.py"), config], capture_output=True,
                       text=True, check=True, timeout=600)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    res = {c: [] for c in CONFIGS}
    for _ in range(a.rounds):
        for c in CONFIGS:
            res[c].append(run(c))
    base = statistics.median(r["t"] for r in res["none"])
    print("Python %s, %d rounds, median time / median unprofiled time (%.0f ms)\n"
          % (sys.version.split()[0], a.rounds, base * 1000))
    print("| configuration | × unprofiled | events recorded | functions | calls in the program's module |")
    print("|---|---|---|---|---|")
    for c in CONFIGS:
        t = statistics.median(r["t"] for r in res[c])
        last = res[c][-1]
        print("| %s | %.2f | %s | %s | %s |" % (c, t / base, last.get("events", "–"), last.get("functions", "–"),
                                               last.get("calls_in_app", "–")))


if __name__ == "__main__":
    main()
