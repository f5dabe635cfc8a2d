"""CPython's own test runner under the profilers: `python -m test
test_json test_difflib` unprofiled, under yprof (python -m yprof_record)
and under cProfile, in fresh processes, medians of --rounds; then the same
without the one test that dominates on 3.13 (test_json's
test_highly_nested_objects_encoding) and that test alone. Prints the time,
the events yprof recorded and yprof's cost per event, ((yprof time -
unprofiled time) / events), which is what to compare across Pythons and
with the per-event cost of the overhead benchmark. See docs/performance.md."""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

DEEP = "test_highly_nested_objects_encoding"
CASES = (("test_json test_difflib", []), ("... without " + DEEP, ["-i", DEEP]), (DEEP + " alone", ["-m", DEEP]))


def run(config, extra, tmp):
    trace = os.path.join(tmp, "t.yp")
    pre = {"none": [], "yprof": ["-m", "yprof_record", "-o", trace],
           "cProfile": ["-m", "cProfile", "-o", os.path.join(tmp, "c.out")]}[config]
    t = time.perf_counter()
    p = subprocess.run([sys.executable] + pre + ["-m", "test", "test_json", "test_difflib"] + extra,
                       capture_output=True, text=True, timeout=1800)
    t = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit("%s failed:\n%s%s" % (config, p.stdout[-2000:], p.stderr[-2000:]))
    events = None
    if config == "yprof":
        analyze = os.path.join(os.path.dirname(sys.executable), "yprof-analyze")
        out = subprocess.run([analyze, trace, "--no-db", "--top", "1"], capture_output=True, text=True).stdout
        events = int(re.search(r"([0-9]+) events", out).group(1))
    return t, events


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    print("Python %s, %d rounds, medians (whole process: start-up and regrtest included)\n"
          % (sys.version.split()[0], a.rounds))
    print("| run | unprofiled | yprof | cProfile | events (yprof) | yprof ns/event |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, extra in CASES:
            res = {c: [] for c in ("none", "yprof", "cProfile")}
            events = 0
            for _ in range(a.rounds):
                for c in res:
                    t, ev = run(c, extra, tmp)
                    res[c].append(t)
                    events = ev or events
            m = {c: statistics.median(v) for c, v in res.items()}
            print("| %s | %.2f s | %.2f s (%.2f×) | %.2f s (%.2f×) | %d | %.0f |" % (
                label, m["none"], m["yprof"], m["yprof"] / m["none"], m["cProfile"], m["cProfile"] / m["none"],
                events, (m["yprof"] - m["none"]) / events * 1e9 if events else 0), flush=True)


if __name__ == "__main__":
    main()
