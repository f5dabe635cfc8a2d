"""The O(1) check by wall clock, with less noise than separate processes:
one process runs the 10-function and the 20,000-function workloads
(workloads.py, 1.6 M calls each) unprofiled and under yprof, interleaved
(none-10, yprof-10, none-20000, yprof-20000, ...), and prints the median
overhead in ns per event of each and their ratio. The machine's slow drifts
then hit both sizes alike.

    bench/run.sh creates the venv; then
    bench/.venv-3.13/bin/python bench/o1.py [rounds] [wall|cpu] [builtins|nobuiltins]

(with YPROF_HOOK=frame-eval and nobuiltins: the PEP 523 hook on 3.9-3.11)
"""
import gc
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads  # noqa: E402
import yprof_record as yp  # noqa: E402
from yprof_record import _calibrate  # noqa: E402

_calibrate.wait()  # the one-time calibration in the background: not in the timings

EVENTS = 3_200_000  # 1.6 M calls and their returns


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 11
    clock = sys.argv[2] if len(sys.argv) > 2 else "wall"
    builtins = (sys.argv[3] if len(sys.argv) > 3 else "builtins") == "builtins"
    sizes = {"10 functions": workloads.few_functions_work, "20000 functions": workloads.many_functions_work}
    workloads.prepare("10 functions")  # makes both function sets
    tmp = tempfile.mkdtemp(prefix="ypo1")
    for work in sizes.values():  # first sight of every function, outside the timing
        work()
    gc.disable()
    times = {(name, mode): [] for name in sizes for mode in ("none", "yprof")}
    for r in range(rounds):
        for name, work in sizes.items():
            for mode in ("none", "yprof"):
                if mode == "yprof":
                    yp.start(os.path.join(tmp, "o1.yp"), clock=clock, builtins=builtins)
                    hook = yp.status()["hook"]
                t = time.perf_counter()
                work()
                t = time.perf_counter() - t
                if mode == "yprof":
                    yp.stop()
                times[(name, mode)].append(t)
        print("round %d/%d done" % (r + 1, rounds), file=sys.stderr)
    ns = {}
    for name in sizes:
        # per round, so each difference compares runs a few ms apart
        per = [(p - n) / EVENTS * 1e9 for n, p in zip(times[(name, "none")], times[(name, "yprof")])]
        ns[name] = statistics.median(per)
        print("%-16s unprofiled %.1f ms, yprof %.1f ms (medians): %.1f ns/event" %
              (name, statistics.median(times[(name, "none")]) * 1e3, statistics.median(times[(name, "yprof")]) * 1e3,
               ns[name]))
    a, b = ns["10 functions"], ns["20000 functions"]
    print("Python %d.%d, %d rounds, %s clock, builtins=%s, %s: 20,000 / 10 functions = %.2f (target: 0.90-1.10)" %
          (sys.version_info[0], sys.version_info[1], rounds, clock, builtins, hook, b / a if a else float("nan")))


if __name__ == "__main__":
    main()
