"""Crashes, full disks, allocation failures, fork, shutdown, memory."""
import json
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import PY, SANITIZER, analyze, db_counts, run_py

BUSY = """
import threading, time, yprof_record as yp
def work(i): return i
def loop():
    while True:
        for i in range(1000): work(i)
        time.sleep(0.001)
yp.start("kill.yp")
for i in range(4): threading.Thread(target=loop, daemon=True).start()
print("ready", flush=True)
time.sleep(60)
"""


def test_sigkill_mid_run_leaves_a_readable_trace(tmp_path):
    script = tmp_path / "busy.py"
    script.write_text(BUSY)
    p = subprocess.Popen([PY, str(script)], cwd=str(tmp_path), stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(1.2)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    r = analyze(tmp_path / "kill.yp")
    assert "cut short" in r.stderr and "warning" in r.stderr
    calls = db_counts(tmp_path / "kill.db", "name='work'")["work"][0]
    assert calls > 10000  # at most the last flush interval (20 ms) is lost
    # no footer, but the pollution figures of the last MARKER (every 500 ms)
    con = sqlite3.connect(str(tmp_path / "kill.db"))
    complete, app_s, hook_s, prof_bytes = con.execute(
        "SELECT complete, app_s, hook_s, profiler_bytes FROM session").fetchone()
    con.close()
    assert complete == 0
    assert 0.4 <= app_s <= 1.3 + 0.5, app_s  # recorded for ~1.2 s, figures at most 500 ms old
    assert hook_s > 0 and prof_bytes > 2 ** 20  # the rings the threads wrote


def test_file_size_limit_app_runs_on_and_error_is_visible(tmp_path):
    p = run_py(tmp_path, """
        import resource, signal, warnings, yprof_record as yp
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
        def f(i): return i * 2
        yp.start("full.yp")
        total = sum(f(i) for i in range(300000))
        st = yp.get_stats().function("f")
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            yp.stop()
        assert total == sum(i * 2 for i in range(300000))
        assert st.ncalls == 300000, st          # live stats stay exact
        s = yp.status()
        assert s["error"] and "full.yp" in s["error_text"], s
        assert any("writing" in str(x.message) for x in w), [str(x.message) for x in w]
        print("ok", s["error_text"])
    """)
    assert "ok" in p.stdout and "File too large" in p.stdout
    # the trace holds what was written before the limit: read, with one warning
    r = analyze(tmp_path / "full.yp", "-q")
    assert r.stderr.startswith("yprof-analyze: warning: ") and "cut short" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert 0 < db_counts(tmp_path / "full.db")["f"][0] < 300000


def test_dev_full_at_start_is_an_oserror(yp):
    with pytest.raises(OSError):
        yp.start("/dev/full")
    assert not yp.is_running()


def test_allocation_failures_are_counted_never_raised(tmp_path):
    p = run_py(tmp_path, """
        import threading, warnings, yprof_record as yp
        from yprof_record import _yprof
        def g(i): return i
        def h(i): return g(i)
        yp.start("oom.yp")
        _yprof._fail_allocs(3)        # the next three allocations fail
        def t(): [h(i) for i in range(100)]
        th = threading.Thread(target=t); th.start(); th.join()   # its ring fails
        def fresh(): return 1
        fresh()                       # its symbol fails
        assert [h(i) for i in range(100)][-1] == 99
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            yp.stop()
        s = yp.status()
        assert s["alloc_failures"] >= 2, s
        assert any("allocation" in str(x.message) for x in w)
        assert yp.get_stats().function("h").ncalls >= 100
        print("ok")
    """)
    assert "ok" in p.stdout


def test_fork_child_records_its_own_trace(tmp_path):
    run_py(tmp_path, """
        import os, yprof_record as yp
        def parent_work(i): return i
        def child_work(i): return i
        yp.start("fork.yp")
        for i in range(10): parent_work(i)
        pid = os.fork()
        if pid == 0:
            for i in range(7): child_work(i)
            yp.stop()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert status == 0
        for i in range(5): parent_work(i)
        yp.stop()
        yp._close()
        with open("child_pid", "w") as f: f.write(str(pid))
    """, timeout=60)
    pid = (tmp_path / "child_pid").read_text()
    analyze(tmp_path / "fork.yp", "-q")
    parent = db_counts(tmp_path / "fork.db")
    assert parent["parent_work"] == (15, 15) and "child_work" not in parent
    child_trace = tmp_path / ("fork.%s.yp" % pid)
    assert child_trace.exists()
    analyze(child_trace, "-q")
    assert db_counts(str(child_trace).replace(".yp", ".db"))["child_work"] == (7, 7)


MP_POOL = """
    import json, multiprocessing as mp, sys, yprof_record as yp
    def sq(x): return x * x
    if __name__ == "__main__":
        yp.start("mp.yp")
        with mp.get_context(sys.argv[1]).Pool(2) as pool:
            pids = sorted(w.pid for w in pool._pool)
            r = pool.map(sq, range(50))
            pool.close()
            pool.join()  # every worker has started (and opened its trace) and left
        yp.stop()
        assert r == [x * x for x in range(50)]
        print(json.dumps(pids))
"""


def child_trace_pids(tmp_path):
    """The pids of the mp.<pid>.yp traces, each read by the analyzer (cut
    short at worst) and carrying its own pid in its header."""
    pids = []
    for f in sorted(tmp_path.glob("mp.*.yp")):
        analyze(f, "-q")
        con = sqlite3.connect(str(f).replace(".yp", ".db"))
        pid = con.execute("SELECT pid FROM session").fetchone()[0]
        con.close()
        assert f.name == "mp.%d.yp" % pid
        pids.append(pid)
    return sorted(pids)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_pool_parent_trace_and_one_trace_per_forked_worker(tmp_path, method):
    p = run_py(tmp_path, MP_POOL, method, timeout=120)
    pids = json.loads(p.stdout.strip().splitlines()[-1])
    r = analyze(tmp_path / "mp.yp", "-q")
    assert r.stderr == ""  # complete
    counts = db_counts(tmp_path / "mp.db")
    assert counts["Pool.map"] == (1, 1) and "sq" not in counts  # sq ran in the workers
    # a forked worker records into its own trace, finished although it
    # leaves through os._exit (no atexit): the 50 calls are all there; a
    # spawned one is a new interpreter that records only when children are
    # followed (test_processes.py)
    assert child_trace_pids(tmp_path) == (pids if method == "fork" else [])
    if method == "fork":
        done = analyze(tmp_path, "-q", "-o", tmp_path / "all.db")
        assert "cut short" not in done.stderr, done.stderr
        assert db_counts(tmp_path / "all.db")["sq"] == (50, 50)


def test_shutdown_with_recording_on_and_daemon_threads(tmp_path):
    t0 = time.time()
    run_py(tmp_path, """
        import threading, time, yprof_record as yp
        def spin():
            while True:
                sum(range(100))
        yp.start("exit.yp")
        for _ in range(3): threading.Thread(target=spin, daemon=True).start()
        time.sleep(0.3)
        # no stop(): the interpreter exits with recording on
    """, timeout=60)
    assert time.time() - t0 < 20
    r = analyze(tmp_path / "exit.yp", "-q")
    assert r.stderr == ""  # finalized by atexit: complete


def test_memory_stays_flat_over_millions_of_events(tmp_path):
    p = run_py(tmp_path, """
        import yprof_record as yp
        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4096
        def f(i): return i
        def run(n):
            for i in range(n): f(i)
        yp.start("mem.yp")
        run(500000)
        yp.get_stats()
        before = rss()
        for _ in range(10):
            run(1000000)          # 2M events per round, 20M in all
            yp.get_stats()
        after = rss()
        yp.stop()
        s = yp.get_stats()
        assert s.function("f").ncalls == 10500000
        print("growth_mb %.1f" % ((after - before) / 2**20))
    """, timeout=300)
    growth = float(p.stdout.split("growth_mb")[1])
    # keeping 20M 16-byte events would be 320 MB
    assert growth < 16 or SANITIZER, growth
