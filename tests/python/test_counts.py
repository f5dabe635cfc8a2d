"""Exact call counts: yprof against cProfile on the same interpreter."""
import os
import pstats
import subprocess
import sys

import pytest
import workload_mix
from conftest import PY, analyze, db_counts, run_py
from yprof_record import _yprof

HERE = os.path.dirname(os.path.abspath(__file__))

CPROFILE = """
import cProfile, sys
sys.path.insert(0, %r)
import workload_mix
pr = cProfile.Profile()
pr.enable()
workload_mix.main()
pr.disable()
pr.dump_stats("cprofile.pstats")
"""

YPROF = """
import sys
sys.path.insert(0, %r)
import workload_mix
import yprof_record as yp
yp.start("mix.yp", builtins=%r)
print(yp.status()["hook"])
workload_mix.main()
yp.stop()
yp.get_stats().to_pstats("live.pstats")
"""

# (builtins, YPROF_HOOK) -> the hook that must be in use on this Python
HOOKS = [(True, "", "sys.monitoring" if sys.version_info >= (3, 12) else "setprofile"),
         (False, "", "sys.monitoring" if sys.version_info >= (3, 12) else "setprofile"),
         (False, "frame-eval", "sys.monitoring" if sys.version_info >= (3, 12) else
          "frame-eval" if sys.version_info >= (3, 9) else "setprofile"),
         (False, "setprofile", "setprofile")]


# a module built with CPython's public API only counts coroutines per resume,
# as cProfile does (docs/api.md, "Coroutines")
PER_OBJECT = not _yprof._build_info()["public_api_only"]


def with_coroutine_calls(ref):
    """cProfile's counts with the coroutines' made one per object (each of
    workload_mix's resumes at least once more, which cProfile counts)."""
    if not PER_OBJECT:
        return ref
    out = dict(ref)
    for k, (nc, cc) in ref.items():
        n = workload_mix.COROUTINES.get(k[2])
        if n is not None:
            assert nc > n and cc > n, (k, nc, n)
            out[k] = (n, n)
    return out


def load(path):
    st = pstats.Stats(str(path)).stats
    out = {}
    for (fn, line, name), (cc, nc, tt, ct, callers) in st.items():
        out[(os.path.basename(fn), line, name)] = (nc, cc)
    return out


@pytest.mark.parametrize("builtins,env,hook", HOOKS)
def test_counts_equal_cprofile_for_every_python_function(tmp_path, builtins, env, hook):
    # every hook yprof can use: the same counts as cProfile, function by function
    run_py(tmp_path, CPROFILE % HERE, name="cp.py")
    p = run_py(tmp_path, YPROF % (HERE, builtins), name="yp.py", env={"YPROF_HOOK": env})
    assert p.stdout.split()[0] == hook
    analyze(tmp_path / "mix.yp", "--pstats", tmp_path / "offline.pstats", "-q")
    ref = {k: v for k, v in load(tmp_path / "cprofile.pstats").items() if k[0] == "workload_mix.py"}
    assert len(ref) >= 15
    ref = with_coroutine_calls(ref)
    for name in ("live.pstats", "offline.pstats"):
        got = {k: v for k, v in load(tmp_path / name).items() if k[0] == "workload_mix.py"}
        mism = {k: (ref.get(k), got.get(k)) for k in set(ref) | set(got) if ref.get(k) != got.get(k)}
        assert not mism, "%s differs from cProfile: %s" % (name, mism)
    # spot checks with numbers we know
    fib = [v for k, v in ref.items() if k[2] == "fib"][0]
    assert fib == (465, 1)  # fib(12): 465 calls, 1 primitive


def test_builtins_are_recorded_with_cprofile_names(tmp_path):
    run_py(tmp_path, CPROFILE % HERE, name="cp.py")
    run_py(tmp_path, YPROF % (HERE, True), name="yp.py")
    ref = pstats.Stats(str(tmp_path / "cprofile.pstats")).stats
    got = pstats.Stats(str(tmp_path / "live.pstats")).stats
    for key in [("~", 0, "<method 'append' of 'list' objects>"), ("~", 0, "<built-in method builtins.len>")]:
        assert key in ref and key in got, key
        assert ref[key][:2] == got[key][:2]
        assert ref[key][1] >= 30  # 30 from main(), more from asyncio


def test_no_builtins_option(tmp_path):
    run_py(tmp_path, """
        import yprof_record as yp
        yp.start("nb.yp", builtins=False)
        l = []
        for i in range(10): l.append(len(l))
        yp.stop()
        names = {f.name for f in yp.get_stats().functions}
        assert "list.append" not in names and "len" not in names, names
    """)


def test_exceptions_propagate_unchanged(yp, tmp_path):
    def inner():
        raise KeyError("k")

    def outer():
        try:
            inner()
        except KeyError as e:
            return e

    yp.start(str(tmp_path / "exc.yp"))
    try:
        e = outer()
        assert isinstance(e, KeyError) and e.args == ("k",)
        try:
            inner()
        except KeyError:
            assert sys.exc_info()[0] is KeyError
        else:
            raise AssertionError("no exception")
    finally:
        yp.stop()
    f = yp.get_stats().function("test_exceptions_propagate_unchanged.<locals>.inner") or \
        yp.get_stats().function("inner")
    assert f.ncalls == 2


def test_sys_exit_inside_profiled_script(tmp_path):
    (tmp_path / "exits.py").write_text(
        "import sys\ndef f():\n    sys.exit(3)\ndef g():\n    return f()\ng()\n")
    p = subprocess.run([PY, "-m", "yprof_record", "-o", "exit.yp", "exits.py"], cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 3, p.stderr
    analyze(tmp_path / "exit.yp", "-q")
    counts = db_counts(tmp_path / "exit.db")
    assert counts["f"] == (1, 1) and counts["g"] == (1, 1)


def test_deep_recursion_with_a_raised_limit_does_not_crash(tmp_path):
    # Plain 3.11+ runs Python recursion without C recursion; the default
    # hooks must not change that (a PEP 523 evaluator would: it is opt-in)
    if sys.version_info < (3, 11):
        pytest.skip("before 3.11 plain CPython recurses on the C stack too")
    p = run_py(tmp_path, """
        import sys
        import yprof_record as yp
        sys.setrecursionlimit(200000)
        def d(n):
            return 0 if n == 0 else 1 + d(n - 1)
        for builtins in (True, False):
            yp.clear_stats()
            yp.start("deep.yp", builtins=builtins)
            assert d(60000) == 60000
            yp.stop()
            print(yp.get_stats().function("d").ncalls)
    """, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["60001", "60001"]


LABELS = """
import collections, datetime, io, itertools, json, math, re, sys, time
def work():
    d = collections.deque()
    for i in range(5):
        d.append(i)                       # <method 'append' of 'collections.deque' objects>
        [].append(i)                      # <method 'append' of 'list' objects>
        int.from_bytes(b"\\x01", "big")    # <built-in method from_bytes> (bound to a type)
        dict.fromkeys("ab")               # <built-in method fromkeys>
        str.maketrans("a", "b")           # static: <maketrans>
        len("abc"); math.sqrt(4.0)        # <built-in method builtins.len>, <built-in method math.sqrt>
        io.StringIO().write("x")          # <method 'write' of '_io.StringIO' objects>
        re.compile("a+").match("aa")      # <method 'match' of 're.Pattern' objects>
        datetime.datetime.now()           # <built-in method now>
        "-".join(["a", "b"]); b"ab".hex()
        sorted([3, 1, 2]); time.perf_counter()
        collections.OrderedDict(a=1).move_to_end("a")
        list(itertools.islice(range(5), 2))
        json.dumps({"a": [1, 2]})
if sys.argv[1] == "cprofile":
    import cProfile
    pr = cProfile.Profile(); pr.enable(); work(); pr.disable(); pr.dump_stats("ref.pstats")
else:
    import yprof_record as yp
    yp.start("l.yp"); work(); yp.stop()
    yp.get_stats().to_pstats("live.pstats")
"""


def test_builtin_labels_in_pstats_are_cprofiles_exactly(tmp_path):
    # every C function's pstats key as cProfile writes it, with its counts:
    # methods of types outside builtins, methods bound to a type, static ones
    run_py(tmp_path, LABELS, "cprofile", name="labels.py")
    run_py(tmp_path, LABELS, "yprof", name="labels.py")
    analyze(tmp_path / "l.yp", "-q", "--pstats", tmp_path / "offline.pstats")

    def builtins(path):
        st = pstats.Stats(str(path)).stats
        return {k[2]: v[:2] for k, v in st.items() if k[0] == "~" and "disable" not in k[2]}

    ref = builtins(tmp_path / "ref.pstats")
    for key in ("<method 'append' of 'collections.deque' objects>", "<built-in method from_bytes>",
                "<built-in method fromkeys>", "<method 'match' of 're.Pattern' objects>",
                "<built-in method builtins.len>"):
        assert key in ref, (key, sorted(ref))
    for name in ("live.pstats", "offline.pstats"):
        got = builtins(tmp_path / name)
        mism = {k: (ref.get(k), got.get(k)) for k in set(ref) | set(got) if ref.get(k) != got.get(k)}
        assert not mism, "%s: labels or counts differ from cProfile's: %s" % (name, mism)
