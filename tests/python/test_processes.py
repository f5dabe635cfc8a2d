"""Several processes: children followed (fork, multiprocessing's spawn and
forkserver, subprocess), their traces finished however they end (os._exit,
SIGTERM), and many traces read into one database."""
import json
import os
import re
import signal
import sqlite3
import subprocess
import textwrap
import time

import pytest

from conftest import PY, analyze, run_py

POOL = """
    import json, multiprocessing as mp, os, subprocess, sys, yprof_record as yp

    def work(n):
        return n + 1

    def task(k):
        for i in range(k):
            work(i)
        return os.getpid(), k

    if __name__ == "__main__":
        yp.start("fam.yp", follow_children=True)
        ctx = mp.get_context(sys.argv[1])
        with ctx.Pool(2) as pool:
            done = pool.map(task, [3, 4, 5, 6, 7, 8], chunksize=1)
        # a Python child started by subprocess: followed too
        child = subprocess.run([sys.executable, "-c", "import os, sys; sys.path.insert(0, '.');"
                                " import prog; prog.task(9); print(os.getpid())"],
                               check=True, capture_output=True, text=True)
        yp.stop()
        # after stop(): children are no longer followed
        late = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              check=True, capture_output=True, text=True)
        per_pid = {}
        for pid, k in done:
            per_pid.setdefault(pid, []).append(k)
        per_pid[int(child.stdout)] = [9]
        print(json.dumps({"me": os.getpid(), "per_pid": per_pid, "late": int(late.stdout)}))
"""


def wait_whole(d, timeout=60):
    """multiprocessing's resource tracker and fork server end after the
    program (they wait for it to close their pipe): their traces are
    finished a moment later."""
    deadline = time.time() + timeout
    while True:
        p = analyze(d, "-q", "--no-db")
        if "cut short" not in p.stderr or time.time() > deadline:
            return p
        time.sleep(0.2)


def rows(db, sql):
    con = sqlite3.connect(str(db))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_pool_and_subprocess_children_followed_and_merged_into_one_database(tmp_path, method):
    out = json.loads(run_py(tmp_path, POOL, method, timeout=180).stdout.strip().splitlines()[-1])
    me, per_pid, late = out["me"], {int(k): v for k, v in out["per_pid"].items()}, out["late"]
    p = wait_whole(tmp_path)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    analyze(tmp_path, "-q", "-o", tmp_path / "fam.db")
    procs = dict(rows(tmp_path / "fam.db", "SELECT pid, ppid FROM processes"))
    assert procs[me] != me and late not in procs
    for pid in per_pid:  # every worker and the subprocess child, each its own process row
        assert pid in procs
    # a worker's parent is the program, or under forkserver the fork server,
    # itself the program's child
    for pid in per_pid:
        parent = procs[pid]
        assert parent == me or (method == "forkserver" and procs.get(parent) == me), (pid, parent, procs)
    got = dict(rows(tmp_path / "fam.db", "SELECT pid, ncalls FROM process_function_totals WHERE name = 'work'"))
    assert got == {pid: sum(ks) for pid, ks in per_pid.items()}
    tasks = dict(rows(tmp_path / "fam.db", "SELECT pid, ncalls FROM process_function_totals WHERE name = 'task'"))
    assert tasks == {pid: len(ks) for pid, ks in per_pid.items()}
    # (work is __main__'s, __mp_main__'s in a spawned worker, prog's in the subprocess)
    total = rows(tmp_path / "fam.db", "SELECT sum(ncalls) FROM function_totals WHERE name = 'work'")
    assert total == [(3 + 4 + 5 + 6 + 7 + 8 + 9,)]
    assert rows(tmp_path / "fam.db", "SELECT count(*), sum(complete) FROM processes")[0] == (len(procs),) * 2
    # each process's threads belong to it; the session sums the processes
    assert rows(tmp_path / "fam.db", "SELECT count(*) FROM threads t LEFT JOIN processes p"
                                     " ON p.id = t.process_id WHERE p.id IS NULL") == [(0,)]
    ev = rows(tmp_path / "fam.db", "SELECT (SELECT sum(events) FROM processes), events, pid FROM session")[0]
    assert ev[0] == ev[1] and ev[2] == me


def test_yprof_run_follow_children_reports_the_family(tmp_path):
    (tmp_path / "prog.py").write_text(textwrap.dedent(POOL))
    yprof = os.path.join(os.path.dirname(PY), "yprof")
    p = subprocess.run([yprof, "run", "-o", "app.yp", "--follow-children", "prog.py", "spawn"], cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr
    out = json.loads([line for line in p.stdout.splitlines() if line.startswith("{")][0])
    assert "cut short" not in p.stderr and "leaked" not in p.stderr, p.stderr
    # the report has the process table; the database every process
    for pid in out["per_pid"]:
        assert "\n%8s %8d " % (pid, out["me"]) in p.stdout, p.stdout
    got = dict(rows(tmp_path / "app.db", "SELECT pid, ncalls FROM process_function_totals WHERE name = 'work'"))
    assert got == {int(pid): sum(ks) for pid, ks in out["per_pid"].items()}


def test_a_stale_fork_child_trace_of_an_earlier_run_is_not_in_the_family(tmp_path):
    prog = tmp_path / "p.py"
    prog.write_text("import os\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0)\n")
    yprof = os.path.join(os.path.dirname(PY), "yprof")
    first = subprocess.run([yprof, "run", "-o", "r.yp", "p.py"], cwd=str(tmp_path), capture_output=True, text=True,
                           timeout=120)
    second = subprocess.run([yprof, "run", "-o", "r.yp", "p.py"], cwd=str(tmp_path), capture_output=True,
                            text=True, timeout=120)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert len(list(tmp_path.glob("r.*.yp"))) == 2  # a fork child each run
    assert rows(tmp_path / "r.db", "SELECT count(*) FROM processes") == [(2,)]  # this run's two


def test_a_fork_child_ended_by_os_exit_or_sigterm_keeps_every_event(tmp_path):
    run_py(tmp_path, """
        import os, signal, time, yprof_record as yp
        def w(i): return i
        yp.start("k.yp")
        kids = {}
        for how, n in (("exit", 700), ("term", 900)):
            r, wfd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                for i in range(n): w(i)
                os.write(wfd, b"x")
                if how == "exit":
                    os._exit(3)       # no atexit
                time.sleep(600)       # until SIGTERM (default disposition: death)
            os.close(wfd)
            os.read(r, 1)
            if how == "term":
                os.kill(pid, signal.SIGTERM)
            kids[how] = (pid, os.waitpid(pid, 0)[1])
        yp.stop()
        open("kids", "w").write(repr(kids))
    """, timeout=60)
    kids = eval((tmp_path / "kids").read_text())
    assert os.WIFEXITED(kids["exit"][1]) and os.WEXITSTATUS(kids["exit"][1]) == 3
    # still dies of SIGTERM, as without the profiler
    assert os.WIFSIGNALED(kids["term"][1]) and os.WTERMSIG(kids["term"][1]) == signal.SIGTERM
    for how, n in (("exit", 700), ("term", 900)):
        trace = tmp_path / ("k.%d.yp" % kids[how][0])
        p = analyze(trace, "-q", "-o", tmp_path / (how + ".db"))
        assert p.stderr == "", p.stderr  # footer written
        assert rows(tmp_path / (how + ".db"), "SELECT ncalls FROM function_totals WHERE name = 'w'") == [(n,)]


def test_sigterm_handler_of_the_program_is_left_alone_in_a_fork_child(tmp_path):
    p = run_py(tmp_path, """
        import os, signal, yprof_record as yp
        mine = lambda *a: None
        signal.signal(signal.SIGTERM, mine)
        yp.start("s.yp")
        pid = os.fork()
        if pid == 0:
            os._exit(0 if signal.getsignal(signal.SIGTERM) is mine else 5)
        print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) if hasattr(os, "waitstatus_to_exitcode")
              else os.waitpid(pid, 0)[1] >> 8)
        yp.stop()
    """)
    assert p.stdout.split() == ["0"]


def make_trace(tmp_path, name, clock="wall", calls=3):
    run_py(tmp_path, """
        import sys, yprof_record as yp
        def f(): pass
        yp.start(sys.argv[1], clock=sys.argv[2])
        for _ in range(int(sys.argv[3])): f()
        yp.stop()
    """, name, clock, calls, name="mk.py")  # one script: the same f in every trace
    return tmp_path / name


def test_traces_of_different_clocks_are_refused_together(tmp_path):
    a = make_trace(tmp_path, "a.yp")
    b = make_trace(tmp_path, "b.yp", clock="cpu")
    p = analyze(a, b, check=False)
    assert p.returncode == 1 and not os.path.exists(str(tmp_path / "a.db"))
    assert len(p.stderr.splitlines()) == 1 and "wall clock" in p.stderr and "cpu clock" in p.stderr, p.stderr


def test_directory_without_traces_and_unknown_process_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    p = analyze(tmp_path / "empty", check=False)
    assert p.returncode == 1 and "no traces (*.yp)" in p.stderr and len(p.stderr.splitlines()) == 1
    a = make_trace(tmp_path, "a.yp")
    p = analyze(a, "--process", "999999999", check=False)
    assert p.returncode == 2 and "no trace of process 999999999" in p.stderr
    p = analyze(a, "--process", "x", check=False)
    assert p.returncode == 2 and "--process needs a process id" in p.stderr


def test_process_option_reports_one_process_and_the_database_keeps_all(tmp_path):
    a = make_trace(tmp_path, "a.yp", calls=3)
    b = make_trace(tmp_path, "b.yp", calls=5)
    pid_b = rows_of_trace(tmp_path, b)
    p = analyze(a, b, "--process", pid_b, "--processes", "-o", tmp_path / "ab.db")
    calls = [int(m) for m in re.findall(r"^\s*(\d+)\s.*\sf  ", p.stdout, re.M)]
    assert calls == [5], p.stdout
    assert rows(tmp_path / "ab.db", "SELECT ncalls FROM function_totals WHERE name = 'f'") == [(8,)]
    # the same function in both processes is one function of the database
    assert rows(tmp_path / "ab.db", "SELECT count(*) FROM functions WHERE name = 'f'") == [(1,)]


def rows_of_trace(tmp_path, trace):
    analyze(trace, "-q", "-o", tmp_path / "one.db")
    (pid, ppid), = rows(tmp_path / "one.db", "SELECT pid, ppid FROM processes")
    session = rows(tmp_path / "one.db", "SELECT pid FROM session")
    assert session == [(pid,)] and ppid > 0  # one trace: one process row, the session's
    return pid


def test_header_holds_the_parent_pid_of_a_fork_child(tmp_path):
    p = run_py(tmp_path, """
        import os, yprof_record as yp
        yp.start("h.yp")
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        yp.stop()
        print(os.getpid(), os.getppid(), pid)
    """)
    me, parent, child = map(int, p.stdout.split())
    analyze(tmp_path, "-q", "-o", tmp_path / "h.db")
    assert dict(rows(tmp_path / "h.db", "SELECT pid, ppid FROM processes")) == {me: parent, child: me}


def test_a_trace_named_twice_is_refused_not_counted_twice(tmp_path):
    a = make_trace(tmp_path, "a.yp")
    p = analyze(a, tmp_path, check=False)  # the directory holds a.yp too
    assert p.returncode == 1 and "are the same trace" in p.stderr and len(p.stderr.splitlines()) == 1
    assert not (tmp_path / "a.db").exists()


def test_fork_children_killed_just_as_they_block_still_finish_and_die(tmp_path):
    # the SIGTERM comes as each child goes into a blocking call (the race a
    # Python-level handler loses: it would wait for the call to return)
    p = run_py(tmp_path, """
        import os, signal, time, yprof_record as yp
        def w(i): return i
        yp.start("b.yp")
        out = []
        for k in range(20):
            r, wfd = os.pipe()
            never, _ = os.pipe()
            pid = os.fork()
            if pid == 0:
                for i in range(300): w(i)
                os.write(wfd, b"x")
                os.read(never, 1)     # blocks for ever: nobody writes
                os._exit(9)
            os.read(r, 1)
            os.kill(pid, signal.SIGTERM)
            out.append((pid, os.waitpid(pid, 0)[1]))
            os.close(r), os.close(wfd), os.close(never), os.close(_)
        yp.stop()
        print(" ".join("%d:%d" % (pid, st) for pid, st in out))
    """, timeout=120)
    for item in p.stdout.split():
        pid, status = map(int, item.split(":"))
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM, item
        q = analyze(tmp_path / ("b.%d.yp" % pid), "-q", "-o", tmp_path / "b.db")
        assert q.stderr == "", q.stderr
        assert rows(tmp_path / "b.db", "SELECT ncalls FROM function_totals WHERE name = 'w'") == [(300,)]


def test_a_fork_of_a_child_that_stopped_recording_dies_of_sigterm_as_usual(tmp_path):
    # the recording child catches SIGTERM; its own child, which records
    # nothing (the recording stopped before the fork), must not inherit that
    p = run_py(tmp_path, """
        import os, signal, time, yprof_record as yp
        yp.start("g.yp")
        pid = os.fork()
        if pid == 0:
            yp.stop()
            g = os.fork()
            if g == 0:
                time.sleep(30)
                os._exit(5)
            time.sleep(0.2)
            os.kill(g, signal.SIGTERM)
            _, st = os.waitpid(g, 0)
            os._exit(0 if os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGTERM else 7)
        _, st = os.waitpid(pid, 0)
        yp.stop()
        print(os.WEXITSTATUS(st))
    """, timeout=60)
    assert p.stdout.split() == ["0"]
