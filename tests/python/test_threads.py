"""Threads: every thread recorded, exact per-thread counts, start/stop from
any thread, many cycles under load, live stats from other threads."""
import os
import random
import shutil
import subprocess
import sys
import threading
import time

import pytest
from conftest import SANITIZER, analyze, db_counts, run_py

# builtins=False with YPROF_HOOK=frame-eval runs on the PEP 523 frame
# evaluator on 3.9-3.11 (another hook kind, interpreter-wide): every
# threaded scenario runs with both
BOTH = pytest.mark.parametrize("builtins", [True, False], ids=["builtins", "python-only"])


@pytest.fixture(autouse=True)
def frame_eval_for_python_only(monkeypatch, request):
    if "builtins" in request.fixturenames and request.getfixturevalue("builtins") is False:
        monkeypatch.setenv("YPROF_HOOK", "frame-eval")


def work(n):
    return n


def per_thread(k):
    for i in range(k):
        work(i)


@BOTH
def test_64_threads_exact_counts(yp, tmp_path, builtins):
    yp.start(str(tmp_path / "t64.yp"), builtins=builtins)
    if not builtins and (3, 9) <= sys.version_info < (3, 12):
        assert yp.status()["hook"] == "frame-eval"
    ths = [threading.Thread(target=per_thread, args=(i + 1,), name="w%02d" % i) for i in range(64)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    yp.stop()
    st = yp.get_stats()
    by_name = {t.name: t for t in st.threads}
    for i in range(64):
        t = by_name["w%02d" % i]
        f = [f for f in t.functions if f.name == "work"]
        assert f and f[0].ncalls == i + 1, (t.name, f)
    assert st.function("work").ncalls == 64 * 65 // 2
    analyze(tmp_path / "t64.yp", "-q")
    assert db_counts(tmp_path / "t64.db", "name = 'work'")["work"][0] == 64 * 65 // 2


@BOTH
def test_threads_alive_before_start_are_recorded(yp, tmp_path, builtins):
    go, done = threading.Event(), threading.Event()

    def body():
        go.wait()
        per_thread(100)
        done.set()

    name = "early-%d" % builtins  # the live stats keep the other variant's thread (cleared)
    t = threading.Thread(target=body, name=name)
    t.start()
    time.sleep(0.05)
    yp.start(str(tmp_path / "early.yp"), builtins=builtins)
    go.set()
    done.wait()
    yp.stop()
    t.join()
    early = yp.get_stats().thread(name)
    assert [f.ncalls for f in early.functions if f.name == "work"] == [100]


def test_start_in_one_thread_stop_in_another(yp, tmp_path):
    path = str(tmp_path / "cross.yp")
    threading.Thread(target=yp.start, args=(path,)).start()
    deadline = time.time() + 5
    while not yp.is_running() and time.time() < deadline:
        time.sleep(0.001)
    assert yp.is_running()
    per_thread(10)
    t = threading.Thread(target=yp.stop)
    t.start()
    t.join()
    assert not yp.is_running()
    per_thread(10)  # not recorded
    assert yp.get_stats().function("work").ncalls == 10
    analyze(path, "-q")


@BOTH
def test_1000_start_stop_cycles_from_random_threads_under_load(yp, tmp_path, builtins):
    path = str(tmp_path / "cycles.yp")
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)  # or the cyclers wait 16 x 5 ms for the GIL
    stop = threading.Event()
    calls = [0] * 16

    def worker(i):
        while not stop.is_set():
            for _ in range(50):
                work(i)
            calls[i] += 50
            time.sleep(0.0005)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for w in workers:
        w.start()
    cycles = [0] * 4  # one counter per cycler: `+=` on a shared one races

    def cycler(k, n):
        rng = random.Random(5 + k)
        for _ in range(n):
            (yp.start(path, builtins=builtins) if rng.random() < 0.5 else yp.stop())
            cycles[k] += 1

    cyclers = [threading.Thread(target=cycler, args=(k, 250)) for k in range(4)]
    for c in cyclers:
        c.start()
    for c in cyclers:
        c.join()
    yp.stop()
    stop.set()
    for w in workers:
        w.join()
    sys.setswitchinterval(old)
    assert sum(cycles) == 1000
    live = yp.get_stats().function("work")
    total = sum(calls)
    assert live is not None and 0 < live.ncalls <= total
    p = analyze(path, "-q")
    assert "warning" not in p.stderr
    # the trace and the live stats saw the same calls
    assert db_counts(tmp_path / "cycles.db", "name = 'work'")["work"][0] == live.ncalls


def test_get_stats_from_monitor_while_8_threads_run(yp, tmp_path):
    path = str(tmp_path / "live.yp")
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            per_thread(50)

    yp.start(path)
    ths = [threading.Thread(target=busy) for _ in range(8)]
    for t in ths:
        t.start()
    seen = []
    errors = []

    def monitor():
        try:
            for _ in range(20):
                f = yp.get_stats().function("work")
                seen.append(f.ncalls if f else 0)
                time.sleep(0.01)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    m = threading.Thread(target=monitor)
    m.start()
    m.join()
    stop.set()
    for t in ths:
        t.join()
    yp.stop()
    assert not errors
    assert seen == sorted(seen) and seen[-1] > 0, seen
    final = yp.get_stats()
    analyze(path, "-q")
    db = db_counts(tmp_path / "live.db")
    for f in final.functions:
        if f.name in ("work", "per_thread", "test_get_stats_from_monitor_while_8_threads_run.<locals>.busy"):
            assert db[f.name] == (f.ncalls, f.primitive_calls), f.name


def test_clear_stats_while_running_from_another_thread(yp, tmp_path):
    yp.start(str(tmp_path / "clear.yp"))
    per_thread(100)
    t = threading.Thread(target=yp.clear_stats)
    t.start()
    t.join()
    per_thread(7)
    assert yp.get_stats().function("work").ncalls == 7
    yp.stop()


def test_churn_all_at_once_no_crash_no_leak(tmp_path):
    # in a fresh process, so its memory figures are its own
    from conftest import run_py
    p = run_py(tmp_path, """
        import random, sys, threading, time, yprof_record as yp
        sys.setswitchinterval(0.0002)
        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4096
        def work(i): return i
        def short_lived():
            for i in range(200): work(i)
        def churn(n):
            for _ in range(n):
                t = threading.Thread(target=short_lived); t.start(); t.join()
        def cycles(n, seed):
            rng = random.Random(seed)
            for _ in range(n):
                yp.start("churn.yp") if rng.random() < 0.5 else yp.stop()
        def reader(stop):
            while not stop.is_set():
                yp.get_stats(); yp.clear_stats(); time.sleep(0.001)
        def round_():
            stop = threading.Event()
            r = threading.Thread(target=reader, args=(stop,)); r.start()
            ts = [threading.Thread(target=churn, args=(50,)) for _ in range(4)]
            ts += [threading.Thread(target=cycles, args=(250, s)) for s in range(4)]
            for t in ts: t.start()
            for t in ts: t.join()
            stop.set(); r.join(); yp.stop()
        round_()                      # warm up: rings, tables, allocator
        before = rss()
        round_()                      # 200 more threads, 1,000 more cycles
        after = rss()
        yp._close()
        print("growth_kb", (after - before) // 1024)
    """, timeout=300)
    growth_kb = int(p.stdout.split("growth_kb")[1])
    assert growth_kb < 8 * 1024 or SANITIZER, growth_kb


def test_threads_created_from_c(yp, tmp_path):
    """A pthread calling into Python through PyGILState_Ensure (a ctypes
    callback): recorded on 3.12+ (sys.monitoring is interpreter-wide); on
    older versions only threads of `threading` get the hook (docs/api.md)."""
    import ctypes

    libc = ctypes.CDLL(None)
    CB = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)

    def body(arg):
        per_thread(25)
        return None

    cb = CB(body)
    yp.clear_stats()
    yp.start(str(tmp_path / "cthread.yp"))
    tid = ctypes.c_ulong()
    assert libc.pthread_create(ctypes.byref(tid), None, cb, None) == 0
    assert libc.pthread_join(tid, None) == 0
    yp.stop()
    f = yp.get_stats().function("work")
    if sys.version_info >= (3, 12):
        assert f is not None and f.ncalls == 25
    else:
        assert f is None


def test_switching_hooks_inside_a_running_frame(yp, tmp_path, monkeypatch):
    # A frame entered under the frame evaluator (3.9-3.11) returns after a
    # stop() and a start() onto setprofile: its return must be reported once,
    # by the hook now in use (twice would be one unmatched return)
    monkeypatch.setenv("YPROF_HOOK", "frame-eval")
    path = str(tmp_path / "switch.yp")

    def switch():
        yp.stop()
        yp.start(path, builtins=True)
        work(1)
        return 1

    yp.start(path, builtins=False)
    first = yp.status()["hook"]
    switch()
    yp.stop()
    assert first == ("frame-eval" if (3, 9) <= sys.version_info < (3, 12) else
                     "sys.monitoring" if sys.version_info >= (3, 12) else "setprofile")
    st = yp.get_stats()
    main = st.thread(threading.current_thread().name)
    assert main.unmatched_returns == 0
    assert st.function("work").ncalls == 1
    assert [f.ncalls for f in st.functions if f.name.endswith("switch")] == [1]


@pytest.mark.skipif(not (3, 9) <= sys.version_info < (3, 12), reason="the PEP 523 hook is for 3.9-3.11")
@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build a foreign evaluator")
def test_frame_eval_leaves_a_foreign_evaluator_alone(tmp_path):
    # Another tool's PEP 523 evaluator (the benchmark's empty one, built here)
    # is installed first: YPROF_HOOK=frame-eval must not replace it, and must
    # record on setprofile instead, with exact counts.
    import sysconfig
    src = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "emptyhook.c")
    so = tmp_path / ("emptyhook" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-I" + sysconfig.get_paths()["include"], src, "-o", str(so)],
                   check=True)
    p = run_py(tmp_path, """
        import sys, yprof_record as yp
        from yprof_record import _yprof
        sys.path.insert(0, ".")
        import emptyhook
        emptyhook.eval(True)
        def work(i): return i
        yp.start("foreign.yp", builtins=False)
        hook = yp.status()["hook"]
        for i in range(1000): work(i)
        yp.stop()
        taken = not _yprof._empty_eval(True)  # the slot still holds the foreign evaluator
        print(hook, taken, yp.get_stats().function("work").ncalls)
    """, env={"YPROF_HOOK": "frame-eval"})
    assert p.stdout.split() == ["setprofile", "True", "1000"]


def test_stop_puts_back_another_tools_thread_profile_function(yp, tmp_path):
    # threading.setprofile() belongs to the application (or another tool)
    # too: after stop() new threads must start with its function again,
    # and while recording they must still be recorded
    seen = []

    def other(frame, event, arg):
        seen.append(event)
        sys.setprofile(None)

    get = getattr(threading, "getprofile", None) or (lambda: threading._profile_hook)
    threading.setprofile(other)
    try:
        for _ in range(2):  # a second start/stop as well
            yp.clear_stats()
            yp.start(str(tmp_path / "tp.yp"))
            t = threading.Thread(target=per_thread, args=(10,))
            t.start()
            t.join()
            yp.stop()
            assert yp.get_stats().function("work").ncalls == 10
            assert get() is other
        t = threading.Thread(target=per_thread, args=(1,))
        t.start()
        t.join()
        assert "call" in seen, seen  # other ran in the new thread
    finally:
        threading.setprofile(None)


def test_a_thread_first_seen_after_stop_drops_the_bootstrap_hook(yp, tmp_path):
    # a thread started just before stop() gets the Python bootstrap function
    # from threading; if its first event comes after stop(), it must not keep
    # a Python profile function (a slow-down for its whole life)
    from yprof_record import _thread_hook
    after = []

    def body():
        sys.setprofile(_thread_hook)  # what threading does at a thread's start
        per_thread(1)  # its first events: yprof is stopped
        after.append(sys.getprofile())

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert after == [None]
