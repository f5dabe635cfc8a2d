"""Benchmark workloads. Each returns nothing; run() times it."""
import threading


def fib_work():
    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)
    fib(27)


class Vec:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x, self.y = x, y

    def add(self, o):
        return Vec(self.x + o.x, self.y + o.y)

    def norm2(self):
        return self.x * self.x + self.y * self.y


def oo_work():
    acc = Vec(0, 0)
    out = []
    for i in range(60000):
        acc = acc.add(Vec(i % 7, i % 5))
        if acc.norm2() > 1000:
            out.append(len(out))
            acc = Vec(0, 0)
    sorted(out)


def _calls(n):
    def leaf(i):
        return i + 1

    def mid(i):
        return leaf(i) + leaf(i + 1)

    s = 0
    for i in range(n):
        s += mid(i)
    return s


def threads_work(k):
    ts = [threading.Thread(target=_calls, args=(240000 // k,)) for _ in range(k)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def threads4_work():
    threads_work(4)


def threads16_work():
    threads_work(16)


def stdlib_work():
    import ast
    import email
    import json
    import textwrap
    with open(textwrap.__file__) as f:
        src = f.read()
    for _ in range(4):  # ~100 ms unprofiled: long enough for this machine's noise
        ast.dump(ast.parse(src))
        doc = {"k%d" % i: [i, str(i), {"x": i * 1.5}] for i in range(3000)}
        json.loads(json.dumps(doc))
        msg = email.message_from_string("Subject: hi\nFrom: a@b\n\n" + "body line\n" * 200)
        msg.get_payload()


def tcp_work():
    import socket
    import socketserver

    class H(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                self.wfile.write(line.upper())

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    def client():
        with socket.create_connection(srv.server_address) as s:
            f = s.makefile("rwb")
            for i in range(400):
                f.write(b"ping %d\n" % i)
                f.flush()
                f.readline()

    cs = [threading.Thread(target=client) for _ in range(4)]
    for c in cs:
        c.start()
    for c in cs:
        c.join()
    srv.shutdown()
    srv.server_close()


def _make_functions(n):
    ns = {}
    exec(compile("\n".join("def f%d(x): return x" % i for i in range(n)), "<many>", "exec"), ns)
    return [ns["f%d" % i] for i in range(n)]


_FEW = _MANY = None
_PYPERF = {}
_TESTS = None


def _pyperformance(name):
    """A benchmark module shipped in the pyperformance package (bench/run.sh
    installs it): real programs nobody here wrote."""
    import importlib.util
    import os
    import pyperformance
    path = os.path.join(os.path.dirname(pyperformance.__file__), "data-files", "benchmarks", "bm_" + name,
                        "run_benchmark.py")
    spec = importlib.util.spec_from_file_location("bm_" + name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cpython_tests():
    """CPython's own test.test_json and test.test_difflib, minus the json CLI
    tests (they time a subprocess, not this interpreter), the deep-recursion
    tests (they probe the recursion limit, which profilers move) and the
    unicode sweeps (a second of one loop: no calls to record)."""
    import unittest
    import test.test_difflib
    import test.test_json
    suite = unittest.TestSuite()
    suite._cleanup = False  # keep the tests after a run: gap.py runs the suite many times
    for mod in (test.test_json, test.test_difflib):
        for t in _flatten(unittest.defaultTestLoader.loadTestsFromModule(mod)):
            if not any(x in t.id() for x in ("test_tool", "test_recursion", "test_unicode")):
                suite.addTest(t)
    return suite


def _flatten(suite):
    for t in suite:
        if hasattr(t, "__iter__"):
            yield from _flatten(t)
        else:
            yield t


def prepare(name=None):
    """Built before timing: the per-event cost must not include compiling
    or importing."""
    global _FEW, _MANY, _TESTS
    _FEW = _make_functions(10)
    _MANY = _make_functions(20000)
    if name in ("richards", "deltablue"):
        _PYPERF[name] = _pyperformance(name)
    if name in BODIES:
        import pyperf_bodies
        _PYPERF[name] = pyperf_bodies.load(name)
        _PYPERF[name]()  # first sight of every function and first-use caches, outside the timing
    if name == "cpython tests (json+difflib)":
        _TESTS = _cpython_tests()
    if name == "stdlib (ast/json/email)":
        # its imports and first-use caches (email's regexes, ...) would
        # otherwise be timed too, and be free under a profiler that
        # imported the same modules itself (VizTracer imports json)
        stdlib_work()


def richards_work():
    _PYPERF["richards"].Richards().run(3)


def deltablue_work():
    _PYPERF["deltablue"].delta_blue(2000)


def cpython_tests_work():
    import difflib
    import io
    import unittest
    # test_html_diff compares with a file made by the first HtmlDiff of a
    # process: its class counts the tables it has made (ids "difflib_chg_to0__")
    difflib.HtmlDiff._default_prefix = 0
    r = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(_TESTS)
    if not r.wasSuccessful():
        raise SystemExit("CPython tests failed: %s" % (r.failures + r.errors)[:1])


def _call_all(fs, rounds):
    for _ in range(rounds):
        for f in fs:
            f(1)
            f(2)


def few_functions_work():
    _call_all(_FEW, 80000)  # 1.6M calls over 10 functions


def many_functions_work():
    _call_all(_MANY, 40)  # 1.6M calls over 20,000 functions


def _body(name):
    """pyperformance's program `name` (pyperf_bodies.py), loaded by prepare()."""
    def work():
        _PYPERF[name]()
    return work


# the bodies of pyperformance's programs the peer table and the pollution
# figures are measured on (issue 20), beside richards and deltablue above
BODIES = ("raytrace", "nbody", "chaos", "go", "float", "nqueens", "json_dumps", "json_loads", "generators",
          "coroutines", "deepcopy", "logging", "async_tree")

WORKLOADS = {
    "fib": fib_work,
    "oo+builtins": oo_work,
    "richards": richards_work,
    "deltablue": deltablue_work,
    "4 threads": threads4_work,
    "16 threads": threads16_work,
    "stdlib (ast/json/email)": stdlib_work,
    "cpython tests (json+difflib)": cpython_tests_work,
    "tcp server": tcp_work,
    "10 functions": few_functions_work,
    "20000 functions": many_functions_work,
}
WORKLOADS.update((name, _body(name)) for name in BODIES)
