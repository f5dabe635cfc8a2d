"""Include / exclude filters: what is recorded, exact counts of what is,
where the time of what is not goes, and the filters' arguments and
command-line options."""
import json
import os
import pstats
import sqlite3
import subprocess
import sys

import pytest
import workload_mix
from conftest import PY, analyze, db_counts, run_py
from test_counts import HOOKS

HERE = os.path.dirname(os.path.abspath(__file__))

# workload_mix (every kind of call) driven from a module of its own, which
# also calls the standard library
DRIVER = """
import json
import workload_mix


def drive():
    workload_mix.main()
    for i in range(30):
        json.loads(json.dumps({"i": i}))
    return len(str(7))
"""

CPROFILE = """
import cProfile, sys
sys.path[:0] = [%r, "."]
import driver
pr = cProfile.Profile()
pr.enable()
driver.drive()
pr.disable()
pr.dump_stats("cprofile.pstats")
"""

YPROF = """
import sys
sys.path[:0] = [%r, "."]
import driver
import yprof_record as yp
yp.start("f.yp", builtins=%r, include=%r, exclude=%r)
driver.drive()
yp.stop()
print(yp.status()["hook"])
yp.get_stats().to_pstats("live.pstats")
"""


def c_counts(ref, kept):
    """The call counts of the C functions cProfile saw called from code
    kept(filename), sorted (some of their labels differ from yprof's:
    issue 19)."""
    return sorted(n for n in (sum(n for ck, (cc, n, tt, ct) in callers.items() if kept(ck[0]))
                              for k, (_, callers) in ref.items() if k[0] == "~") if n)


def pstats_of(path):
    """{(file basename, line, name): (ncalls, callers)}"""
    return {(os.path.basename(k[0]), k[1], k[2]): (v[1], v[4]) for k, v in pstats.Stats(str(path)).stats.items()}


def record(tmp_path, builtins, env, include, exclude):
    (tmp_path / "driver.py").write_text(DRIVER)
    run_py(tmp_path, CPROFILE % HERE, name="cp.py")
    p = run_py(tmp_path, YPROF % (HERE, builtins, include, exclude), name="yp.py", env={"YPROF_HOOK": env})
    analyze(tmp_path / "f.yp", "--pstats", tmp_path / "offline.pstats", "-q")
    return p.stdout.split()[0], pstats_of(tmp_path / "cprofile.pstats")


@pytest.mark.parametrize("builtins,env,hook", HOOKS)
def test_include_records_exactly_the_included_module(tmp_path, builtins, env, hook):
    # every hook: the included module's functions with cProfile's counts,
    # nothing of the driver or the standard library, and the C functions
    # the included code calls, as many times as cProfile saw it call them
    used, ref = record(tmp_path, builtins, env, ["workload_mix"], None)
    assert used == hook
    want = {k: workload_mix.COROUTINES.get(k[2], v[0]) for k, v in ref.items() if k[0] == "workload_mix.py"}
    assert len(want) >= 15
    c_from_mix = c_counts(ref, lambda f: os.path.basename(f) == "workload_mix.py")
    for name in ("live.pstats", "offline.pstats"):
        got = pstats_of(tmp_path / name)
        py = {k: v[0] for k, v in got.items() if k[0] != "~"}
        assert py == want, name
        c_got = sorted(v[0] for k, v in got.items() if k[0] == "~")
        assert c_got == (c_from_mix if builtins else []), name


def left_out(filename):
    return os.path.basename(filename) == "workload_mix.py" or os.sep + "json" + os.sep in filename


@pytest.mark.parametrize("builtins,env,hook", HOOKS)
def test_exclude_leaves_out_the_module_and_nothing_else(tmp_path, builtins, env, hook):
    used, ref = record(tmp_path, builtins, env, None, ["workload_mix", "json"])
    assert used == hook
    want = {k: v[0] for k, v in ref.items() if k[0] == "driver.py"}
    assert want and [v for k, v in want.items() if k[2] == "drive"] == [1]
    # the C functions called from code that is kept, as often as cProfile saw them called from there
    c_kept = c_counts(ref, lambda f: not left_out(f))
    con = sqlite3.connect(str(tmp_path / "f.db"))
    modules = {m for (m,) in con.execute("SELECT DISTINCT module FROM function_totals WHERE builtin = 0")}
    con.close()
    assert "driver" in modules and "asyncio.events" in modules  # what workload_mix calls is kept
    assert not {m for m in modules if m == "workload_mix" or m == "json" or m.startswith("json.")}, modules
    for name in ("live.pstats", "offline.pstats"):
        got = pstats_of(tmp_path / name)
        assert "workload_mix.py" not in {k[0] for k in got}
        assert {k: v[0] for k, v in got.items() if k[0] == "driver.py"} == want
        c_got = sorted(v[0] for k, v in got.items() if k[0] == "~" and v[0])
        assert c_got == (c_kept if builtins else []), name


PKG = {
    "pkg/__init__.py": "from . import sub\ndef top(): return sub.deep() + 1\n",
    "pkg/sub.py": "def deep(): return 2\n",
    "pkgx.py": "def other(): return 3\n",
    "app.py": ("import pkg, pkgx\ndef main():\n    t = 0\n    for _ in range(5):\n"
               "        t += pkg.top() + pkgx.other()\n    return t\n"),
}

PKG_RUN = """
import sys, json
sys.path.insert(0, ".")
import app
import yprof_record as yp
yp.start("p.yp", include=json.loads(sys.argv[1]), exclude=json.loads(sys.argv[2]))
app.main()
yp.stop()
print(json.dumps(sorted("%s.%s=%d" % (f.module, f.name, f.ncalls) for f in yp.get_stats().functions
                        if not f.builtin and f.ncalls)))
"""


@pytest.mark.parametrize("include,exclude,want", [
    (["pkg"], [], ["pkg.sub.deep=5", "pkg.top=5"]),  # a package and its submodules
    (["pkg.sub"], [], ["pkg.sub.deep=5"]),
    (["pkgx"], [], ["pkgx.other=5"]),  # a prefix of the name only at a dot: not pkg
    (["app", "pkg"], ["pkg.sub"], ["app.main=1", "pkg.top=5"]),
    ([], ["pkg", "app"], ["pkgx.other=5"]),
    (["*/pkg/*.py"], [], ["pkg.sub.deep=5", "pkg.top=5"]),  # a path glob
    (["pkg/sub.py"], [], ["pkg.sub.deep=5"]),  # a relative one: from the current directory
    (["app.py", "pkgx"], [], ["app.main=1", "pkgx.other=5"]),
])
def test_module_names_and_path_globs(tmp_path, include, exclude, want):
    for name, text in PKG.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    p = run_py(tmp_path, PKG_RUN, json.dumps(include), json.dumps(exclude))
    assert json.loads(p.stdout) == want


def test_time_of_code_left_out_goes_to_its_recorded_caller(tmp_path):
    # caller() spends ~0.3 s of CPU in burn(), a module left out: caller's
    # own time holds it (against time.thread_time() around the call)
    (tmp_path / "burner.py").write_text("def burn(n):\n    x = 0\n    for i in range(n): x += i * i\n"
                                        "    return x\n")
    p = run_py(tmp_path, """
        import json, sys, time
        sys.path.insert(0, ".")
        import burner
        import yprof_record as yp
        def caller():
            t0 = time.thread_time()
            burner.burn(3000000)
            return time.thread_time() - t0
        yp.start("b.yp", clock="cpu", exclude=["burner"])
        spent = caller()
        yp.stop()
        f = [f for f in yp.get_stats().functions if f.name == "caller"][0]
        names = [g.name for g in yp.get_stats().functions]
        print(json.dumps({"spent": spent, "self": f.self_s, "total": f.total_s, "burn": "burn" in names}))
    """)
    r = json.loads(p.stdout)
    assert r["spent"] > 0.1 and not r["burn"]
    assert r["self"] == pytest.approx(r["spent"], rel=0.1)
    assert r["total"] == pytest.approx(r["spent"], rel=0.1)


def test_filters_change_between_recordings(tmp_path):
    # each recording under its own filter, in any order, counts exactly: the
    # decisions cached on code objects are the filter's own, and on 3.12+
    # the places a filter disabled send events again to the next recording
    for name, text in PKG.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    p = run_py(tmp_path, """
        import json, sys
        sys.path.insert(0, ".")
        import pkg
        import yprof_record as yp
        def mine(k):
            return pkg.top() + len([k])
        def run(n):
            for _ in range(n):
                mine(1)
        out = []
        for inc, exc in [("pkg", None), (None, None), ("__main__", None), (None, "pkg.sub"), ("pkg", None),
                         (None, None)]:
            yp.clear_stats()
            yp.start("s.yp", include=inc, exclude=exc)
            run(7)
            yp.stop()
            out.append(sorted("%s=%d" % (f.name, f.ncalls) for f in yp.get_stats().functions if f.ncalls))
        print(json.dumps(out))
    """)
    every = ["deep=7", "len=7", "mine=7", "run=1", "top=7"]
    assert json.loads(p.stdout) == [["deep=7", "top=7"], every, ["len=7", "mine=7", "run=1"],
                                    ["len=7", "mine=7", "run=1", "top=7"], ["deep=7", "top=7"], every]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is 3.12+")
def test_places_disabled_by_a_filter_send_events_after_stop(tmp_path):
    # DISABLE lasts, for whoever uses the tool id next, until
    # restart_events(): after stop() another tool sees every call again
    p = run_py(tmp_path, """
        import sys
        import yprof_record as yp
        def f():
            return 1
        yp.start("d.yp", include=["nothing_here"])
        for _ in range(5):
            f()
        yp.stop()
        assert yp.status()["include"] == ["nothing_here"]
        mon = sys.monitoring
        seen = []
        for tool in (3, 4, 5):  # the ids yprof uses, and another
            mon.use_tool_id(tool, "other")
            mon.register_callback(tool, mon.events.PY_START, lambda code, off, t=tool: seen.append((t, code.co_name)))
            mon.set_events(tool, mon.events.PY_START)
        for _ in range(2):
            f()
        print(sorted(s for s in seen if s[1] == "f"))
    """)
    assert p.stdout.strip() == "[(3, 'f'), (3, 'f'), (4, 'f'), (4, 'f'), (5, 'f'), (5, 'f')]"


def test_pattern_arguments_are_checked(yp, tmp_path):
    path = str(tmp_path / "a.yp")
    with pytest.raises(TypeError, match="include must be a str or a list of str"):
        yp.start(path, include=5)
    with pytest.raises(TypeError, match="exclude patterns must be str"):
        yp.start(path, exclude=["a", 3])
    with pytest.raises(ValueError, match="include patterns must not be empty"):
        yp.start(path, include=["a", " "])
    assert not yp.is_running() and not os.path.exists(path)
    # a str is one pattern; a PathLike a path glob
    assert yp.start(path, include="os.path", exclude=tmp_path / "x.py")
    yp.stop()
    assert yp.status()["include"] == ["os.path"] and yp.status()["exclude"] == [str(tmp_path / "x.py")]
    # profile() passes them on, as a context manager and as a decorator
    with yp.profile(path, include=["json"]):
        assert yp.status()["include"] == ["json"]

    @yp.profile(path, exclude="re")
    def decorated():
        return yp.status()["exclude"]
    assert decorated() == ["re"]


def test_at_most_sixteen_different_filters_per_process(tmp_path):
    p = run_py(tmp_path, """
        import yprof_record as yp
        for i in range(16):
            assert yp.start("a.yp", include=["m%d" % i])
            yp.stop()
        assert yp.start("a.yp", include=["m3"])  # one used before: its place is kept
        yp.stop()
        try:
            yp.start("a.yp", include=["m16"])
        except ValueError as e:
            print(e)
        assert yp.start("a.yp")  # no filter is always possible
        yp.stop()
    """)
    assert p.stdout.strip() == "at most 16 different include/exclude filters can be used in one process"


def test_command_line_include_and_exclude(tmp_path):
    for name, text in PKG.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "main.py").write_text("import app\ndef go():\n    return app.main()\ngo()\n")
    r = subprocess.run([PY, "-m", "yprof_record", "-o", "c.yp", "--include", "__main__,pkg", "--exclude",
                        "pkg.sub", "main.py"], cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    analyze(tmp_path / "c.yp", "-q")
    got = db_counts(tmp_path / "c.db", "ncalls > 0 AND builtin = 0")
    assert {k: v[0] for k, v in got.items()} == {"<module>": 1, "go": 1, "top": 5}
    r = subprocess.run([PY, "-m", "yprof_record", "--idle", "--control", "--include", "x", "main.py"],
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "yprof ctl PID start" in r.stderr


def test_include_costs_no_events_for_code_left_out(tmp_path):
    # the events recorded are the included code's only: two per call of it
    # (no C functions), whatever the code left out does
    p = run_py(tmp_path, """
        import json, sys
        import yprof_record as yp
        def mine():
            return json.dumps({"a": list(range(50))})
        yp.start("e.yp", include="__main__", builtins=False)
        for _ in range(1000):
            mine()
        yp.stop()
        print(yp.get_stats().session["events"])
    """)
    assert 2000 <= int(p.stdout) <= 2000 + 10  # + the thread's and the interval's own marks
