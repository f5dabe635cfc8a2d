"""The Python API: arguments, context manager, decorator, CLIs, Stats."""
import json
import os
import pstats
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import PY, SANITIZER, analyze, db_counts, run_py


def f(x):
    return x


def test_bad_arguments(yp, tmp_path):
    with pytest.raises(ValueError):
        yp.start(str(tmp_path / "a.yp"), clock="bogus")
    with pytest.raises(TypeError):
        yp.start(42)
    with pytest.raises(OSError):
        yp.start(str(tmp_path / "no" / "such" / "dir" / "a.yp"))
    assert not yp.is_running()
    assert yp.stop() is False and yp.stop() is False
    assert yp.start(str(tmp_path / "a.yp")) is True
    assert yp.start(str(tmp_path / "a.yp")) is False  # already running: harmless
    assert yp.is_running()
    assert yp.stop() is True


def test_work_while_stopped_is_not_counted_and_intervals_accumulate(yp, tmp_path):
    path = str(tmp_path / "iv.yp")
    yp.clear_stats()
    yp.start(path)
    for i in range(3):
        f(i)
    yp.stop()
    for i in range(100):
        f(i)
    yp.start(path)
    for i in range(4):
        f(i)
    yp.stop()
    assert yp.get_stats().function("f").ncalls == 7
    yp._close()
    analyze(path, "-q")
    assert db_counts(path.replace(".yp", ".db"), "name='f'")["f"] == (7, 7)


def test_context_manager_and_decorator(yp, tmp_path):
    yp.clear_stats()
    with yp.profile(str(tmp_path / "cm.yp")):
        f(1)
    assert not yp.is_running()

    @yp.profile(str(tmp_path / "cm.yp"))
    def g():
        return f(2)

    assert g() == 2
    assert yp.get_stats().function("f").ncalls == 2


def test_stats_object(yp, tmp_path):
    yp.clear_stats()
    yp.start(str(tmp_path / "s.yp"))
    for i in range(5):
        f(i)
    yp.stop()
    s = yp.get_stats()
    fs = s.function("f")
    assert (fs.ncalls, fs.primitive_calls, fs.builtin, fs.lineno) == (5, 5, False, f.__code__.co_firstlineno)
    assert fs.module == "test_module" and fs.filename.endswith("test_module.py")
    assert fs.avg_s == pytest.approx(fs.total_s / 5)
    assert s.sorted("ncalls")[0].ncalls >= 5
    assert [x.name for x in s.filter(module="test_module", name="f")] == ["f"]
    main = s.thread("MainThread")
    assert main.ident and main.native_id and main.events > 0
    assert [x.ncalls for x in main.functions if x.name == "f"] == [5]
    text = s.report(top=5)
    assert "ncalls" in text and "tottime" in text
    s.save(str(tmp_path / "live.db"))
    assert db_counts(tmp_path / "live.db", "name='f'")["f"] == (5, 5)
    s.to_pstats(str(tmp_path / "live.pstats"))
    st = pstats.Stats(str(tmp_path / "live.pstats")).stats
    assert [v[1] for k, v in st.items() if k[2] == "f"] == [5]
    p = yp.pollution()
    assert set(p) >= {"pct", "flusher_pct", "hook_s", "flusher_s", "bytes", "interp_s"}
    # hook time is sampled (one event in 64 timed, counted 64 times): over a
    # few events it may be 0, or more than the recorded time
    assert p["bytes"] > 0 and p["hook_s"] >= 0 and p["app_s"] > 0
    # the live figures are the ones the trace's footer gives the analyzer
    # (how close pct comes to the measured slow-down: bench/pollution.py;
    # the formula on hand-made figures: tests/unit/test_sqlite.cc)
    yp._close()
    row = session_row(str(tmp_path / "s.yp"))
    assert row["pollution_pct"] == pytest.approx(p["pct"], rel=0.01)
    assert row["hook_s"] == pytest.approx(p["hook_s"], rel=0.01)


def test_hook_time_is_sampled(yp, tmp_path):
    # every 64th event times itself: 400,000 events must have been sampled
    # (a run of a few ms can be overshot by one sample that caught a page
    # fault: it counts 64 times; seen on the public-API build)
    def g(i):
        return i

    yp.clear_stats()
    yp.start(str(tmp_path / "h.yp"))
    for i in range(200000):
        g(i)
    yp.stop()
    p = yp.pollution()
    assert yp.get_stats().function("*g").ncalls == 200000
    assert 0 < p["hook_s"] < p["app_s"], p


@pytest.mark.parametrize("value,warns", [("200", False), ("", False), ("soon", True), ("-1", True)])
def test_wait_env_var_is_checked(yp, tmp_path, monkeypatch, recwarn, value, warns):
    monkeypatch.setenv("YPROF_WAIT_MS", value)
    assert yp.start(str(tmp_path / "w.yp")) is True
    f(1)
    yp.stop()
    msgs = [str(w.message) for w in recwarn if "YPROF_WAIT_MS" in str(w.message)]
    assert len(msgs) == (1 if warns else 0), msgs
    assert yp.get_stats().function("f").ncalls == 1


def session_row(path):
    analyze(path, "-q")
    con = sqlite3.connect(path.replace(".yp", ".db"))
    con.row_factory = sqlite3.Row
    row = dict(con.execute("SELECT app_s, hook_s, interp_s, pollution_pct, events FROM session").fetchone())
    con.close()
    return row


def test_each_trace_has_its_own_pollution_figures(yp, tmp_path):
    # a long first trace, then a short one: the second's footer must not
    # carry the first's recorded time or hook time
    def g(i):
        return i

    a, b = str(tmp_path / "a.yp"), str(tmp_path / "b.yp")
    yp.clear_stats()
    yp.start(a)
    for i in range(400000):
        g(i)
    yp.stop()
    yp.start(b)  # another path: a.yp is closed
    for i in range(20000):
        g(i)
    yp.stop()
    live = yp.pollution()  # since clear_stats: both
    yp._close()
    ra, rb = session_row(a), session_row(b)
    assert ra["events"] >= 800000 and 40000 <= rb["events"] < 42000, (ra, rb)
    assert 0 < rb["app_s"] < ra["app_s"] / 4, (ra, rb)  # 1/20 of the calls; before: both runs
    for r in (ra, rb):
        # sampled hook time: on a sanitizer build its samples vary too much
        # for a run of milliseconds
        assert 0 < r["hook_s"] < r["app_s"] or SANITIZER, r
        assert r["pollution_pct"] < 100 or SANITIZER, r
    assert live["app_s"] == pytest.approx(ra["app_s"] + rb["app_s"], rel=0.01)


def test_interpreter_estimate_is_bounded_by_its_share_of_the_run(yp, tmp_path):
    # one-line functions: on 3.11 the per-event interpreter estimate alone
    # came to 110-145% of the run; the share of the time left by the hook
    # bounds it (the calibration loop's share lost to an empty hook)
    from yprof_record import _calibrate

    def g(i):
        return i

    path = str(tmp_path / "p.yp")
    yp.clear_stats()
    yp.start(path)
    for i in range(300000):
        g(i)
    yp.stop()
    p = yp.pollution()
    # a measurement that could not be made is not kept (the next one tries
    # again): in two fresh-clone runs of the whole suite (3.8, 3.9) none
    # could be made just after this stop(), for a cause not found; it is
    # asked again for up to 2 s here, so that the bound below is tested
    for _ in range(20):
        share = _calibrate.interp_cost(yp._yprof._hook_kind())[1]
        if share > 0:
            break
        time.sleep(0.1)
    # if it fails again, what the calibration knew and measures now
    assert 0 < share < 1, (dict(_calibrate._cost), dict(_calibrate._bg), sys.getprofile(),
                           _calibrate._measure(yp._yprof._hook_kind()))
    assert 0 <= p["interp_s"] <= share * max(0.0, p["app_s"] - p["hook_s"]) * 1.0001, (p, share)
    yp._close()
    row = session_row(path)
    assert row["app_s"] == pytest.approx(p["app_s"], rel=0.01)
    assert row["pollution_pct"] == pytest.approx(p["pct"], rel=0.01)
    assert row["interp_s"] <= share * max(0.0, row["app_s"] - row["hook_s"]) * 1.0001, (row, share)


def test_the_interpreter_estimate_counts_slower_bytecodes_and_not_c_time(tmp_path):
    # docs/api.md, "pollution": a profile hook slows every bytecode on 3.11
    # (less on 3.10, none before nor on 3.12+): a loop without calls loses
    # the calibrated bytecode share of its time, though it makes no events;
    # a run spent in a recorded C function (time.sleep) loses nothing there
    p = run_py(tmp_path, """
        import json, time
        import yprof_record as yp
        from yprof_record import _calibrate
        _calibrate.wait(60)
        def loop(n):
            t = 0.0
            for i in range(n):
                t += i * 0.5
            return t
        out = {}
        yp.start("b.yp")
        for name, work in (("loop", lambda: loop(2000000)), ("sleep", lambda: time.sleep(0.3))):
            yp.clear_stats()
            work()
            p = yp.pollution()
            out[name] = (p["interp_s"], p["app_s"], p["hook_s"])
        yp.stop()
        out["cost"] = _calibrate.known(yp._yprof._hook_kind())
        out["hook"] = yp.status()["hook"]
        print(json.dumps(out))
    """)
    r = json.loads(p.stdout)
    interp, app, hook = r["loop"]
    if sys.version_info[:2] == (3, 11) and r["hook"] == "setprofile":
        # about half of such code's time (docs/api.md; 0.40-0.63 measured
        # by kind of code): no spread of a busy machine takes it under 0.2
        assert interp >= 0.2 * (app - hook), r
    interp, app, hook = r["sleep"]
    assert app >= 0.3 and interp < 0.05 * app, r  # not bytecode * 0.3 s


@pytest.mark.parametrize("wait", [False, True])
def test_the_calibration_is_measured_in_the_background_or_at_stop_and_reaches_the_footer(tmp_path, wait):
    # start() right after the import does not wait for the interpreter's
    # calibration; stop() settles it before the footer, so the trace and the
    # live figures carry the interpreter estimate either way; waited for,
    # the background thread has measured it before start()
    p = run_py(tmp_path, """
        import json, sys, time
        import yprof_record as yp
        from yprof_record import _calibrate
        if %r:
            _calibrate.wait(60)
        known_before = _calibrate.known(1 if yp._MONITORING else 0) is not None
        yp.start("c.yp")
        def g(i):
            return i
        for i in range(200000):
            g(i)
        yp.stop()
        kind = yp._yprof._hook_kind()
        print(json.dumps({"before": known_before, "after": _calibrate.known(kind), "p": yp.pollution()}))
    """ % wait)
    r = json.loads(p.stdout)
    if wait:
        assert r["before"] is True
    per_event, share, bytecode = r["after"]
    assert per_event > 0 and 0 < share < 1 and 0 <= bytecode < 1
    assert r["p"]["interp_s"] > 0
    row = session_row(str(tmp_path / "c.yp"))
    assert row["interp_s"] == pytest.approx(r["p"]["interp_s"], rel=0.01)


def test_setprofile_calibration_left_to_stop_is_measured_there(tmp_path):
    # a child forked before its parent's background measurement ended (here:
    # none known, none running) measures at stop(), on the stopping thread
    # with its recording hook taken off, while the hook is still on the others
    p = run_py(tmp_path, """
        import json
        import yprof_record as yp
        from yprof_record import _calibrate
        _calibrate.wait(60)
        _calibrate._cost.clear()
        yp.start("s.yp")
        assert yp.status()["hook"] == "setprofile"
        def g(i):
            return i
        for i in range(100000):
            g(i)
        yp.stop()
        print(json.dumps({"known": _calibrate.known(0), "interp_s": yp.pollution()["interp_s"]}))
    """, env={"YPROF_HOOK": "setprofile"})
    r = json.loads(p.stdout)
    per_event, share, bytecode = r["known"]
    assert per_event > 0 and 0 < share < 1 and 0 <= bytecode < 1 and r["interp_s"] > 0


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is 3.12+")
def test_monitoring_without_builtins_uses_the_figures_measured_without_call_events(tmp_path):
    # with C functions recorded a recording takes CALL events, which fire at
    # every call site: the calibration measures the empty callback both ways
    # and each recording uses its own. Distinct figures put in place make
    # the choice visible: 2 ns per event against 0.001
    p = run_py(tmp_path, """
        import json
        import yprof_record as yp
        from yprof_record import _calibrate
        _calibrate.wait(60)
        measured = {k: _calibrate.known(k) for k in (1, 3)}
        _calibrate._cost.update({1: (0.001, 0.99, 0.0), 3: (2.0, 0.99, 0.0)})
        def g(i):
            return i
        out = {"measured": measured}
        for builtins in (True, False):
            yp.clear_stats()
            yp.start("m.yp", builtins=builtins)
            assert yp.status()["hook"] == "sys.monitoring"
            for i in range(100000):
                g(i)
            yp.stop()
            out[str(builtins)] = (yp.pollution()["interp_s"], yp.get_stats().session["events"])
        print(json.dumps(out))
    """)
    r = json.loads(p.stdout)
    for kind in ("1", "3"):  # the background measured both
        per_event, share, bytecode = r["measured"][kind]
        assert per_event > 0 and 0 < share < 1 and bytecode == 0
    interp, events = r["True"]
    assert events >= 200000 and interp < 0.01e-9 * events
    interp, events = r["False"]
    assert events >= 200000 and interp == pytest.approx(2e-9 * events, rel=0.01)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is 3.12+")
def test_a_child_forked_during_the_calibration_does_not_keep_its_tool(tmp_path):
    # the background thread holds an empty sys.monitoring tool while it
    # measures; a child forked then has no such thread to take it off
    p = run_py(tmp_path, """
        import os, sys
        from yprof_record import _calibrate
        _calibrate.wait(60)
        assert _calibrate._empty_monitoring(True)  # as the background thread, mid-measurement
        tool = _calibrate._mon_state["tool"]
        pid = os.fork()
        if pid == 0:
            os._exit(0 if sys.monitoring.get_tool(tool) is None else 3)
        _, status = os.waitpid(pid, 0)
        _calibrate._empty_monitoring(False)
        print(os.waitstatus_to_exitcode(status), sys.monitoring.get_tool(tool))
    """)
    assert p.stdout.split() == ["0", "None"]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring callbacks are 3.12+")
def test_monitoring_callbacks_take_any_arguments_recording_or_not(yp, tmp_path):
    # The callback objects are reachable from Python: wrong arguments must
    # come back as None, never as a crash, whether yprof records or not.
    from yprof_record import _yprof

    def g():
        return 1

    cbs = [_yprof._mon_start, _yprof._mon_return, _yprof._mon_unwind, _yprof._mon_ccall, _yprof._mon_creturn]
    bad = [(), (1,), ("x", 2, 3, 4), (g.__code__, 0, len, 5)]
    for cb in cbs:
        for args in bad:
            assert cb(*args) is None
    yp.clear_stats()
    yp.start(str(tmp_path / "m.yp"))
    for cb in cbs:
        for args in bad[:3]:
            assert cb(*args) is None
    for _ in range(3):
        g()
    yp.stop()
    for cb in cbs:  # stopped: the objects call an empty function
        assert cb(g.__code__, 0, None) is None
    assert yp.get_stats().function("*g").ncalls == 3


def test_python_dash_m_runs_script_and_module(tmp_path):
    (tmp_path / "prog.py").write_text("import sys\ndef h(): return 1\nfor _ in range(3): h()\n"
                                      "print('args', sys.argv[1:])\n")
    p = subprocess.run([PY, "-m", "yprof_record", "-o", "p.yp", "--clock", "cpu", "prog.py", "a", "-b"],
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "args ['a', '-b']" in p.stdout
    analyze(tmp_path / "p.yp", "-q")
    assert db_counts(tmp_path / "p.db", "name='h'")["h"] == (3, 3)
    con = __import__("sqlite3").connect(str(tmp_path / "p.db"))
    assert con.execute("SELECT clock FROM session").fetchone()[0] == "cpu"
    (tmp_path / "modx.py").write_text("def k(): return 2\nif __name__ == '__main__':\n    k(); k()\n")
    p = subprocess.run([PY, "-m", "yprof_record", "-o", "m.yp", "-m", "modx"], cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    assert p.returncode == 0, p.stderr
    analyze(tmp_path / "m.yp", "-q")
    assert db_counts(tmp_path / "m.db", "name='k'")["k"] == (2, 2)


def test_yprof_run_prints_the_report(tmp_path):
    (tmp_path / "prog.py").write_text("def h(): return 1\nfor _ in range(4): h()\n")
    yprof = os.path.join(os.path.dirname(PY), "yprof")
    p = subprocess.run([yprof, "run", "-o", "r.yp", "prog.py"], cwd=str(tmp_path), capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "yprof report" in p.stdout and "database: r.db" in p.stdout
    assert any(l.split()[:1] == ["4"] and "h  prog.py:1" in l for l in p.stdout.splitlines()), p.stdout


def test_cpu_clock_does_not_count_sleep(yp, tmp_path):
    import time

    def sleeper():
        time.sleep(0.2)

    # Spin for 50 ms of this thread's CPU time, not of wall time: on a busy
    # VM a wall-clock spin can get much less CPU than its length.
    def spinner():
        t = time.thread_time()
        while time.thread_time() - t < 0.05:
            pass

    yp.clear_stats()
    yp.start(str(tmp_path / "cpu.yp"), clock="cpu")
    sleeper()
    spinner()
    yp.stop()
    s = yp.get_stats()
    assert s.session["clock"] == "cpu"
    # qualified names on 3.11+, plain co_name before
    assert s.filter(name="*sleeper")[0].total_s < 0.05
    assert 0.04 < s.filter(name="*spinner")[0].total_s < 1.0
    yp._close()  # a different clock next time means a new trace anyway


@pytest.mark.parametrize("builtins", [True, False])
def test_cpu_clock_follows_thread_time_under_gil_contention(tmp_path, builtins):
    # Two call-heavy threads share the GIL, so each runs about half the wall
    # time. The recorder reads the real CPU clock only after gaps (GIL waits
    # are gaps) and every 512 events: each thread's recorded time must still
    # follow its own time.thread_time(), not the wall clock.
    p = run_py(tmp_path, """
        import threading, time, yprof_record as yp
        def leaf(i): return i + 1
        def work(out):
            w0 = time.perf_counter(); c0 = time.thread_time()
            s = 0
            while time.perf_counter() - w0 < 0.4:
                for i in range(100): s += leaf(i)
            out.append((time.thread_time() - c0, time.perf_counter() - w0))
        yp.start("c.yp", clock="cpu", builtins=%s)
        outs = [[], []]
        ts = [threading.Thread(target=work, args=(o,), name="w%%d" %% k) for k, o in enumerate(outs)]
        for t in ts: t.start()
        for t in ts: t.join()
        yp.stop()
        s = yp.get_stats()
        for k, o in enumerate(outs):
            cpu, wall = o[0]
            rec = s.function("work", thread="w%%d" %% k).total_s
            print("thread", k, "cpu", cpu, "wall", wall, "recorded", rec)
            assert abs(rec - cpu) < 0.15 * cpu + 0.005, (rec, cpu, wall)
        # the two threads did compete: each got well under the wall time
        assert sum(o[0][0] for o in outs) < 1.5 * max(o[0][1] for o in outs)
        print("ok")
    """ % builtins)
    assert "ok" in p.stdout, p.stdout + p.stderr


@pytest.mark.parametrize("clock_env", ["", "monotonic"])
def test_wall_clock_times_are_real_seconds(tmp_path, clock_env):
    # TSC (calibrated) where the kernel uses it, else CLOCK_MONOTONIC
    p = run_py(tmp_path, """
        import time, yprof_record as yp
        def nap(): time.sleep(0.05)
        yp.start("w.yp")
        t = time.perf_counter(); nap(); nap(); took = time.perf_counter() - t
        yp.stop()
        f = yp.get_stats().function("nap")
        assert f.ncalls == 2
        assert 0.09 <= f.total_s <= took * 1.01 + 0.001, (f.total_s, took)
        print("ok", f.total_s)
    """, env={"YPROF_CLOCK": clock_env})
    assert "ok" in p.stdout
    analyze(tmp_path / "w.yp", "-q")
    con = __import__("sqlite3").connect(str(tmp_path / "w.db"))
    assert 0.09 <= con.execute("SELECT total_s FROM function_totals WHERE name='nap'").fetchone()[0] < 1.0


def test_the_module_is_built_as_the_test_command_asked():
    # run.sh runs this file again on a build with only CPython's public API
    # (what a CPython newer than the tested ones gets): it must be that build
    from yprof_record import _yprof
    want = os.environ.get("YP_PUBLIC_API") == "1" or sys.version_info >= (3, 14)
    assert _yprof._build_info()["public_api_only"] is want
