"""pyperformance's benchmark programs (the package bench/run.sh installs
from PyPI), run as their own `__main__` blocks set them up, with default
arguments, but against a stand-in for `pyperf` that only remembers what
each block asked to time: the function and its arguments. A workload then
calls those functions itself, `repeat` times, so every profiler sees the
same code and nothing of pyperf's runner. Nothing of pyperformance is
copied here."""
import argparse
import os
import sys
import time
import types

# body -> times its benchmark function(s) run per workload (about 0.1-0.3 s
# unprofiled on this machine; a time function gets loops=repeat)
REPEAT = {
    "raytrace": 1, "nbody": 1, "chaos": 2, "go": 1, "float": 1, "nqueens": 1,
    "json_dumps": 10, "json_loads": 250, "generators": 2, "coroutines": 5, "deepcopy": 300, "logging": 1000,
    "async_tree": 1,
}
# the command-line arguments a program's runner parses (async_tree: the
# variant with no sleeps, all coroutines and tasks: 6 levels of 6 branches)
ARGS = {"async_tree": ["none"]}


class _Runner:
    """What a benchmark's __main__ block uses of pyperf.Runner."""

    argv = []

    def __init__(self, *args, **kwargs):
        self.argparser = argparse.ArgumentParser()
        self.metadata = {}
        self.calls = []

    def parse_args(self, args=None):
        return self.argparser.parse_args(self.argv)

    def bench_func(self, name, func, *args, inner_loops=None, **kwargs):
        self.calls.append((False, func, args))

    def bench_time_func(self, name, func, *args, inner_loops=None, **kwargs):
        self.calls.append((True, func, args))

    def bench_async_func(self, name, func, *args, inner_loops=None, **kwargs):
        import asyncio
        self.calls.append((False, lambda *a: asyncio.run(func(*a)), args))


def _pyperf():
    m = types.ModuleType("pyperf")
    m.Runner = _Runner
    m.perf_counter = time.perf_counter
    return m


def load(name, path=None, repeat=None):
    """A function running the body `name` once (REPEAT[name] times its own
    benchmark functions); path: its program, else pyperformance's."""
    if path is None:
        import pyperformance
        path = os.path.join(os.path.dirname(pyperformance.__file__), "data-files", "benchmarks", "bm_" + name,
                            "run_benchmark.py")
    runners = []

    class Runner(_Runner):
        argv = ARGS.get(name, [])

        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            runners.append(self)

    fake = _pyperf()
    fake.Runner = Runner
    saved = sys.modules.get("pyperf")
    sys.modules["pyperf"] = fake
    try:
        ns = {"__name__": "__main__", "__file__": path}
        with open(path) as f:
            code = compile(f.read(), path, "exec")
        argv, sys.argv = sys.argv, [path]
        try:
            exec(code, ns)
        finally:
            sys.argv = argv
    finally:
        if saved is None:
            sys.modules.pop("pyperf", None)
        else:
            sys.modules["pyperf"] = saved
    calls = [c for r in runners for c in r.calls]
    if not calls:
        raise SystemExit("pyperformance's %s asked to time nothing" % name)
    n = repeat or REPEAT[name]

    def work():
        for is_time_func, func, args in calls:
            if is_time_func:
                func(n, *args)
            else:
                for _ in range(n):
                    func(*args)
    work.calls = calls  # (is a time function, function, arguments)
    return work
