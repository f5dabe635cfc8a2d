"""Promises kept under concurrency: fork at any moment, stop() under load,
holes in a thread's stream, CPU time of live threads, bounded memory, and
the smaller defects of the second wave's review (issue "Concurrency")."""
import json
import os
import re
import sqlite3
import struct
import subprocess
import sys

import pytest

from conftest import PY, SANITIZER, analyze, run_py


# ---- fork at any moment -------------------------------------------------------------

FORK_STORM = r"""
import json, os, sys, threading, time
import yprof_record as yp

N = int(sys.argv[1])
sys.setswitchinterval(1e-5)
stop = threading.Event()

def cycle():
    while not stop.is_set():
        yp.start("storm.yp")
        time.sleep(0.0005)
        yp.stop()

def reader():
    while not stop.is_set():
        yp.get_stats(timeout=1.0)
        yp.clear_stats()

def work(i):
    return i * 2

ts = [threading.Thread(target=cycle), threading.Thread(target=reader)]
for t in ts:
    t.start()
hung = failed = recorded = 0
children = []
for k in range(N):
    pid = os.fork()
    if pid == 0:
        # the child: its first line of Python, then exact counts when it records
        try:
            rec = yp.is_running()
            for i in range(100):
                work(i)
            ok = True
            if rec:
                st = yp.get_stats().function("work")
                ok = st is not None and st.ncalls == 100
                yp.stop()
                import yprof_record
                yprof_record._close()
            os._exit((0 if ok else 3) + (10 if rec else 0))
        except BaseException:
            os._exit(4)
    children.append(pid)
    deadline = time.monotonic() + 20
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8
            if code >= 10:
                recorded += 1
                code -= 10
            if code != 0:
                failed += 1
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            hung += 1
            break
        time.sleep(0.002)
stop.set()
for t in ts:
    t.join()
yp.stop()
print(json.dumps({"hung": hung, "failed": failed, "recorded": recorded, "children": children}))
"""


def test_fork_at_any_moment_gives_a_child_that_runs_and_records(tmp_path):
    n = 100 if SANITIZER else 300
    p = run_py(tmp_path, FORK_STORM, n, timeout=900)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["hung"] == 0, out
    assert out["failed"] == 0, out
    assert out["recorded"] > 0  # some forks came while recording
    # every child that recorded left a readable trace with its 100 calls
    traces = sorted(tmp_path.glob("storm.*.yp"))
    assert len(traces) == out["recorded"]
    for t in traces:
        r = analyze(t, "-q", "-o", str(t.with_suffix(".db")))
        assert "warning" not in r.stderr, r.stderr
        con = sqlite3.connect(str(t.with_suffix(".db")))
        (calls,) = con.execute("SELECT ncalls FROM function_totals WHERE name='work'").fetchone()
        con.close()
        assert calls == 100, t


def test_fork_child_does_not_keep_the_parents_trace_open(tmp_path):
    p = run_py(tmp_path, """
        import os, json, yprof_record as yp
        yp.start("parent.yp")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            fds = []
            for fd in os.listdir("/proc/self/fd"):
                try:
                    fds.append(os.readlink("/proc/self/fd/" + fd))
                except OSError:
                    pass
            os.write(w, json.dumps(fds).encode())
            os._exit(0)
        os.waitpid(pid, 0)
        print(os.read(r, 65536).decode())
        yp.stop()
    """)
    fds = json.loads(p.stdout)
    parent = str(tmp_path / "parent.yp")
    assert parent not in fds, fds
    assert any(f.startswith(str(tmp_path / "parent.")) and f.endswith(".yp") for f in fds)  # its own


# ---- stop() under load -------------------------------------------------------------------

def test_stop_under_load_never_waits_for_the_flusher_and_drops_no_mark(tmp_path):
    # small rings (2^8 events) and 8 busy threads: before, a stop mark pushed
    # into a full ring under the registry lock waited out wait_ms (2 s here)
    p = run_py(tmp_path, """
        import json, threading, time, yprof_record as yp
        def f(i): return i
        done = threading.Event()
        def busy():
            while not done.is_set():
                for i in range(200): f(i)
        ts = [threading.Thread(target=busy) for _ in range(8)]
        for t in ts: t.start()
        worst = 0.0
        for k in range(300):
            yp.start("load.yp", _ring_bits=8, _wait_ms=2000)
            time.sleep(0.002)
            t0 = time.monotonic()
            yp.stop()
            worst = max(worst, time.monotonic() - t0)
        done.set()
        for t in ts: t.join()
        print(json.dumps({"worst": worst, "dropped": yp.status()["dropped_events"]}))
    """, timeout=600)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["dropped"] == 0, out
    if not SANITIZER:  # an instrumented flusher takes its time; no bound there
        assert out["worst"] < 1.0, out  # the bound a waiting stop ran into is 2 s
    r = analyze(tmp_path / "load.yp", "-q")
    assert "warning" not in r.stderr, r.stderr


# ---- holes in a thread's stream -----------------------------------------------------------

CHUNK = struct.Struct("<IBBHIIIIII QQII")


def event_chunks(data):
    """(offset, thread_id, seq, n_records, dropped, comp_bytes) of each EVENTS chunk."""
    out, off = [], data.find(b"YPCK")
    while 0 <= off and off + CHUNK.size <= len(data):
        (magic, kind, _flags, hsize, tid, seq, nrec, _raw, comp, dropped, _f, _l, _pc, _hc) = \
            CHUNK.unpack_from(data, off)
        assert magic == 0x4B435059 and hsize == 56
        if kind == 1:
            out.append((off, tid, seq, nrec, dropped, comp))
        off += hsize + comp
    return out


HOLE = """
import threading, time, yprof_record as yp
def f(i): return i
def outer():
    for k in range(40):
        for i in range(2000): f(i)
        time.sleep(0.003)    # the flusher writes a chunk
    return 1
def worker():
    outer()
yp.start("hole.yp", _flush_ms=1)
t = threading.Thread(target=worker, name="holder")
t.start(); t.join()
yp.stop()
"""


def test_a_damaged_chunk_is_a_hole_in_its_thread_for_stats_and_every_export(tmp_path):
    run_py(tmp_path, HOLE)
    trace = tmp_path / "hole.yp"
    analyze(trace, "-q")  # whole, first: every call is there
    con = sqlite3.connect(str(tmp_path / "hole.db"))
    assert con.execute("SELECT ncalls FROM function_totals WHERE name='f'").fetchone() == (80000,)
    con.close()
    data = bytearray(trace.read_bytes())
    chunks = [c for c in event_chunks(data)]
    by_thread = {}
    for c in chunks:
        by_thread.setdefault(c[1], []).append(c)
    tid, mine = max(by_thread.items(), key=lambda kv: len(kv[1]))
    assert len(mine) >= 10
    off, _, seq, nrec, dropped, comp = mine[len(mine) // 2]
    data[off + 56 + comp // 2] ^= 0xFF  # one payload byte
    trace.write_bytes(bytes(data))

    r = analyze(trace, "-q", "--chrome", tmp_path / "hole.json")
    assert "thread %d (holder) lost %d event(s)" % (tid, nrec + dropped) in r.stderr, r.stderr
    con = sqlite3.connect(str(tmp_path / "hole.db"))
    (lost, unmatched) = con.execute(
        "SELECT dropped, unmatched_returns FROM threads WHERE id=?", (tid,)).fetchone()
    (outer_total,) = con.execute(
        "SELECT total_s FROM function_totals WHERE name='outer'").fetchone()
    (calls,) = con.execute("SELECT ncalls FROM function_totals WHERE name='f'").fetchone()
    con.close()
    assert lost == nrec + dropped
    assert unmatched >= 1  # outer's return came after the hole closed its frame
    # the chunk's events were mostly f's calls and returns, alternating (a
    # few sleep calls among them): its calls are lost, no other
    assert nrec // 2 - 3 <= 80000 - calls <= nrec // 2 + 1, (calls, nrec)

    # the Chrome export closes the same frames at the same place
    ev = json.loads((tmp_path / "hole.json").read_text())["traceEvents"]
    mine_ev = [e for e in ev if e.get("tid") == tid and e.get("ph") == "X"]
    outer = [e for e in mine_ev if e["name"].endswith("outer")]
    assert len(outer) == 1
    # the same calls as the statistics: f's events are its ncalls
    assert sum(1 for e in mine_ev if e["name"].split(" ")[0] == "f") == calls
    outer_end = outer[0]["ts"] + outer[0]["dur"]
    last_ts = max(e["ts"] + e["dur"] for e in mine_ev)
    # outer ends at the hole, long before the thread's last event
    assert outer_end < last_ts - 0.2 * (last_ts - outer[0]["ts"])
    assert abs(outer_total - outer[0]["dur"] * 1e-6) < 0.01


def test_a_missing_chunk_is_found_by_its_sequence_number(tmp_path):
    run_py(tmp_path, HOLE)
    trace = tmp_path / "hole.yp"
    data = bytes(trace.read_bytes())
    chunks = event_chunks(data)
    by_thread = {}
    for c in chunks:
        by_thread.setdefault(c[1], []).append(c)
    tid, mine = max(by_thread.items(), key=lambda kv: len(kv[1]))
    off, _, seq, nrec, dropped, comp = mine[len(mine) // 2]
    cut = data[:off] + data[off + 56 + comp:]  # the whole chunk gone, header and all
    trace.write_bytes(cut)
    r = analyze(trace, "-q")
    assert "thread %d (holder) lost 0 event(s) in 1 chunk(s)" % tid in r.stderr, r.stderr
    con = sqlite3.connect(str(tmp_path / "hole.db"))
    (unmatched,) = con.execute("SELECT unmatched_returns FROM threads WHERE id=?", (tid,)).fetchone()
    con.close()
    assert unmatched >= 1


# ---- CPU time of threads alive at stop() / get_stats() ---------------------------------------

CPU = """
import json, sys, threading, time, yprof_record as yp
clock = sys.argv[1]
def burn(seconds):
    t0 = time.thread_time()
    x = 0
    while time.thread_time() - t0 < seconds:
        for i in range(1000): x += i
    return time.thread_time()
res = {}
gate = threading.Event()
def alive():
    res["alive"] = burn(0.6)
    gate.wait()
def exited():
    res["exited"] = burn(0.4)
yp.start("cpu.yp", clock=clock)
a = threading.Thread(target=alive, name="alive"); a.start()
e = threading.Thread(target=exited, name="exited"); e.start()
burn(0.3)
e.join()
while "alive" not in res: time.sleep(0.01)
res["main"] = time.thread_time()
live = {t.name: t.cpu_s for t in yp.get_stats().threads}
res["main_after"] = time.thread_time()
yp.stop()
gate.set(); a.join()
print(json.dumps({"res": res, "live": live}))
"""


@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_cpu_s_of_live_and_exited_threads_matches_thread_time(tmp_path, clock):
    p = run_py(tmp_path, CPU, clock)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    res, live = out["res"], out["live"]

    def close(got, want, slack=0.03):
        return abs(got - want) <= 0.02 * want + slack

    assert close(live["alive"], res["alive"]), (live, res)
    assert close(live["exited"], res["exited"]), (live, res)
    assert res["main"] - 0.03 <= live["MainThread"] <= res["main_after"] + 0.03, (live, res)
    analyze(tmp_path / "cpu.yp", "-q")
    con = sqlite3.connect(str(tmp_path / "cpu.db"))
    rows = dict(con.execute("SELECT name, cpu_s FROM threads").fetchall())
    con.close()
    assert close(rows["alive"], res["alive"]), (rows, res)
    assert close(rows["exited"], res["exited"]), (rows, res)
    assert rows["MainThread"] >= res["main_after"] - 0.03, (rows, res)


# ---- memory ---------------------------------------------------------------------------------

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench")
sys.path.insert(0, BENCH)
import memory  # noqa: E402  bench/memory.py: the same child the benchmark runs


def mem_run(tmp_path, n, kind, profiled):
    """Peak RSS and yprof's own figures of a child with n threads (bench/memory.py).
    A full ring waits for the flusher as long as it takes (YPROF_WAIT_MS):
    with 500 threads made runnable at once on 2 cores the flusher was not
    scheduled for over the default 50 ms in 2 of 30 runs (the same before
    and after coroutines were counted per object), and events were dropped;
    what is measured here is memory, of a complete recording."""
    p = subprocess.run([PY, "-c", memory.CHILD, str(n), kind, "1" if profiled else "0", "2.0",
                        str(tmp_path / "mem.yp")], capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
                       env=dict(os.environ, YPROF_WAIT_MS="60000"))
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("n,kind,limit_mib", [(64, "busy", 40), (500, "idle", 60)])
def test_profiler_memory_is_bounded_and_its_peak_reported(tmp_path, n, kind, limit_mib):
    prof = mem_run(tmp_path, n, kind, True)
    assert prof["dropped"] == 0, prof
    assert prof["peak"] >= prof["bytes"], prof
    assert prof["peak"] <= limit_mib << 20, prof
    # the rings of the threads that were alive are in the peak, not in the end figure
    assert prof["peak"] > prof["bytes"], prof
    if SANITIZER:  # its allocator keeps freed memory: RSS says nothing
        return
    bare = mem_run(tmp_path, n, kind, False)
    grew_mib = (prof["hwm_kib"] - bare["hwm_kib"]) / 1024
    assert grew_mib <= limit_mib, (grew_mib, prof, bare)


def test_peak_memory_reaches_the_trace_and_the_report(tmp_path):
    mem_run(tmp_path, 32, "busy", True)  # more than the pool of 16 keeps
    r = analyze(tmp_path / "mem.yp")
    m = re.search(r"memory ([\d.]+ \w+) \(peak ([\d.]+ \w+)\)", r.stdout)
    assert m, r.stdout
    con = sqlite3.connect(str(tmp_path / "mem.db"))
    cur, peak = con.execute("SELECT profiler_bytes, peak_bytes FROM session").fetchone()
    con.close()
    assert peak > cur > 0
    assert peak > 32 * 64 * 1024  # 32 rings were alive at once


# ---- smaller defects ------------------------------------------------------------------------

def flusher_task():
    for task in os.listdir("/proc/self/task"):
        with open("/proc/self/task/%s/comm" % task) as f:
            if f.read().strip() == "yprof-flusher":
                return task
    return None


def test_the_flusher_thread_takes_no_signal(yp, tmp_path):
    yp.start(str(tmp_path / "sig.yp"))
    task = flusher_task()
    assert task is not None
    with open("/proc/self/task/%s/status" % task) as f:
        blocked = int(re.search(r"SigBlk:\s*([0-9a-f]+)", f.read()).group(1), 16)
    for sig in (2, 10, 12, 14, 15, 17):  # INT, USR1, USR2, ALRM, TERM, CHLD
        assert blocked & (1 << (sig - 1)), hex(blocked)


def test_a_step_of_the_wall_clock_does_not_stall_the_flusher(tmp_path):
    import time
    if os.geteuid() != 0:
        pytest.skip("setting the clock needs root")
    try:
        now = time.clock_gettime(time.CLOCK_REALTIME)
        time.clock_settime(time.CLOCK_REALTIME, now)
    except OSError:
        pytest.skip("this machine does not let the clock be set")
    p = run_py(tmp_path, """
        import json, time, yprof_record as yp
        def f(i): return i
        yp.start("clk.yp")
        for i in range(1000): f(i)
        time.sleep(0.2)
        before = yp.status()["events_written"]
        m0, r0 = time.monotonic(), time.clock_gettime(time.CLOCK_REALTIME)
        time.clock_settime(time.CLOCK_REALTIME, r0 - 5.0)
        try:
            time.sleep(0.05)  # the flusher is asleep with a 20 ms deadline
            for i in range(1000): f(i)
            t0 = time.monotonic()
            while yp.status()["events_written"] < before + 2000 and time.monotonic() - t0 < 4:
                time.sleep(0.005)
            waited = time.monotonic() - t0
        finally:
            time.clock_settime(time.CLOCK_REALTIME, r0 + (time.monotonic() - m0))
        yp.stop()
        print(json.dumps({"waited": waited}))
    """)
    waited = json.loads(p.stdout.strip().splitlines()[-1])["waited"]
    assert waited < 2.0, waited  # before: until the wall clock caught up, 5 s


def test_thread_names_are_read_without_running_application_code(yp, tmp_path):
    import threading
    calls = []

    class Named(threading.Thread):
        @property
        def name(self):
            calls.append(1)
            return "app-named"

        @name.setter
        def name(self, value):
            self.__dict__["_name"] = value

    def f(i):
        return i

    yp.start(str(tmp_path / "names.yp"))
    t = Named(target=lambda: [f(i) for i in range(100)])
    t.start()
    t.join()
    stats = yp.get_stats()
    yp.stop()
    assert calls == []
    assert all("name" != fs.name.split(".")[-1] for fs in stats.functions)


def test_the_extension_exports_only_its_init_function():
    from yprof_record import _yprof
    p = subprocess.run(["nm", "-D", "--defined-only", _yprof.__file__], capture_output=True, text=True,
                       check=True)
    names = [line.split()[-1] for line in p.stdout.splitlines() if line.strip()]
    assert [n for n in names if n.startswith("yp")] == [], names
    assert "PyInit__yprof" in names


def _race_probe(i):
    return i


def test_clear_and_snapshot_race_nothing(yp, tmp_path):
    # run by the TSan build: the bases clear_stats() writes are read by
    # snapshots taken without the GIL
    import threading

    def f(i):
        return i

    yp.start(str(tmp_path / "race.yp"))
    stop = threading.Event()

    def clearer():
        while not stop.is_set():
            yp.clear_stats()

    t = threading.Thread(target=clearer)
    t.start()
    for k in range(200):
        for i in range(100):
            f(i)
        yp.get_stats()
        yp.pollution()
    stop.set()
    t.join()
    yp.clear_stats()
    for i in range(1000):
        _race_probe(i)
    assert yp.get_stats().function("_race_probe").ncalls == 1000
    p = yp.pollution()
    assert 0 <= p["hook_s"] <= p["app_s"] + 0.05, p  # the bases came from one clear, not torn
