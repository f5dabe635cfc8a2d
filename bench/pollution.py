"""How close yprof's pollution figure comes to the slow-down it reports on.

In one process, each round runs the workload unprofiled and under yprof (in
alternating order), and reads pollution()["pct"] for that run alone
(clear_stats() before it). The measured share of the profiled run that the
profiler cost is 1 - unprofiled/profiled time; the table gives the median
of both over the rounds, and the reported figure's components; the last
column is the share of the recorded time spent in recorded C functions
(their self time), which the interpreter estimate leaves out of the code a
hook slows (docs/api.md, "pollution").

    bench/run.sh PYTHON --pollution [--rounds 7] [--workloads "fib,10 functions"]

(afterwards bench/.venv-<version>/bin/python bench/pollution.py ... runs it
directly.)
"""
import argparse
import gc
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads  # noqa: E402

DEFAULT = ("fib,oo+builtins,richards,deltablue,4 threads,stdlib (ast/json/email),"
           "10 functions,20000 functions")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--workloads", default=DEFAULT,
                    help="comma-separated names, or 'bodies': pyperformance's programs")
    a = ap.parse_args()
    import yprof_record as yp
    from yprof_record import _calibrate
    _calibrate.wait()  # not in the first round's time
    path = os.path.join(tempfile.mkdtemp(prefix="yppoll"), "t.yp")
    print("Python %d.%d.%d, %d rounds in one process, medians" % (sys.version_info[:3] + (a.rounds,)))
    kind = yp._yprof._hook_kind() if yp._yprof._is_running() else (1 if getattr(yp, "_MONITORING", False) else 0)
    per_event, bound, bytecode = _calibrate.interp_cost(kind)
    print("calibration: %.1f ns per event, bytecode share %.2f, bound %.2f\n" % (per_event, bytecode, bound))
    print("| workload | slow-down | measured share | reported pct | error (points) | hook | interpreter (est.) "
          "| C functions |")
    print("|---|---|---|---|---|---|---|---|")
    names = ["richards", "deltablue"] + list(workloads.BODIES) if a.workloads == "bodies" else a.workloads.split(",")
    for name in names:
        workloads.prepare(name)
        work = workloads.WORKLOADS[name]
        work()  # first sight of every function, outside the timing
        ratios, pcts, hooks, interps, cfuncs = [], [], [], [], []
        gc.disable()
        for r in range(a.rounds):
            t = {}
            for c in (("none", "yprof") if r % 2 == 0 else ("yprof", "none")):
                if c == "yprof":
                    yp.clear_stats()
                    yp.start(path)
                t0 = time.perf_counter()
                work()
                t[c] = time.perf_counter() - t0
                if c == "yprof":
                    yp.stop()
                    p = yp.pollution()
                    pcts.append(p["pct"])
                    hooks.append(100 * p["hook_s"] / p["app_s"])
                    interps.append(100 * p["interp_s"] / p["app_s"])
                    c = sum(f.self_s for f in yp.get_stats().functions if f.builtin)
                    cfuncs.append(100 * c / p["app_s"])
            ratios.append(t["yprof"] / t["none"])
        gc.enable()
        ratio = statistics.median(ratios)
        share, pct = 100 * (1 - 1 / ratio), statistics.median(pcts)
        print("| %s | %.2fx | %.0f%% | %.0f%% | %+.0f | %.0f%% | %.0f%% | %.0f%% |"
              % (name, ratio, share, pct, pct - share, statistics.median(hooks), statistics.median(interps),
                 statistics.median(cfuncs)), flush=True)
    yp._close()


if __name__ == "__main__":
    main()
