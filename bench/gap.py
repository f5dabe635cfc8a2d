"""yprof against the floors by wall clock, in one process: each round runs
the workload unprofiled, under the empty hook, under the ideal recorder
(the same hook reading the TSC and storing 16 bytes per event) and under
yprof, in a rotating order, and each ratio is taken against that round's
unprofiled time. The machine's drifts between minutes (±20% here) then hit
every configuration alike, which separate processes (bench.py) cannot do.

    bench/run.sh PYTHON --gap [--rounds 11] \\
        [--workloads "fib,10 functions,richards"] [--configs ...]

(run.sh makes the virtualenv and builds the floors; afterwards
bench/.venv-<version>/bin/python bench/gap.py ... runs it directly.)

Default configurations: on 3.12+ floor-mon, floor-mon-tsc and yprof (the
sys.monitoring floors, yprof's own hook kind there); before 3.12 floor,
floor-tsc and yprof (setprofile). Any configuration of bench.py works (the
peers too; one slower than 30x in the first round is not run again, as in
bench.py), and
an ideal recorder's name with "-read" appended (floor-tsc-read,
floor-mon-tsc-read) adds a thread that reads its records every
millisecond, as yprof's flusher reads the rings.
"""
import argparse
import gc
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runner  # noqa: E402
import workloads  # noqa: E402

SLOW = 30.0  # as bench.py: a configuration this many times slower runs one round only


def main():
    mon = sys.version_info >= (3, 12)
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--workloads", default="fib,10 functions,richards")
    ap.add_argument("--configs", default="floor-mon,floor-mon-tsc,yprof" if mon else "floor,floor-tsc,yprof")
    a = ap.parse_args()
    configs = ["none"] + a.configs.split(",")
    if "yprof" not in configs:
        ap.error("--configs must include yprof (the figures are yprof's against the floors)")
    tmp = tempfile.mkdtemp(prefix="ypgap")
    print("Python %d.%d.%d, %d rounds in one process, median of per-round ratios to unprofiled"
          % (sys.version_info[:3] + (a.rounds,)))
    print("| workload | " + " | ".join(configs[1:]) + " | yprof÷floor | yprof÷ideal |")
    print("|---" * (len(configs) + 2) + "|")
    any_slow = False
    for name in a.workloads.split(","):
        workloads.prepare(name)
        work = workloads.WORKLOADS[name]
        work()  # first sight of every function, outside the timing
        hooks = {c: runner.setup(c, tmp, {}) for c in configs}
        ratios = {c: [] for c in configs[1:]}
        slow = set()  # configurations run once only (SLOW)
        gc.disable()
        for r in range(a.rounds):
            order = configs[r % len(configs):] + configs[:r % len(configs)]
            t = {}
            for c in order:
                if c in slow:
                    continue
                start, stop = hooks[c]
                start()
                t0 = time.perf_counter()
                work()
                t[c] = time.perf_counter() - t0
                stop()
            for c in configs[1:]:
                if c in t:
                    ratios[c].append(t[c] / t["none"])
                    if r == 0 and c != "yprof" and ratios[c][0] > SLOW:
                        slow.add(c)
        gc.enable()
        med = {c: statistics.median(v) for c, v in ratios.items()}
        floors = [med[c] for c in med if c.startswith("floor") and "tsc" not in c]
        ideals = [med[c] for c in med if c.startswith("floor") and "tsc" in c]

        def over(base):
            return "%.2f" % ((med["yprof"] - 1) / (min(base) - 1)) if base and min(base) > 1.02 else "n/a"

        print("| %s | %s | %s | %s |" % (name, " | ".join("%.2fx%s" % (med[c], "¹" if c in slow else "")
                                                           for c in configs[1:]),
                                          over(floors), over(ideals)), flush=True)
        any_slow = any_slow or bool(slow)
    if any_slow:
        print("\n¹ slower than %gx in the first round: not run again." % SLOW)


if __name__ == "__main__":
    main()
