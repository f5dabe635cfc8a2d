"""Profiling a running program from outside: unmodified programs started
with YPROF_CONTROL=1 (a threaded HTTP server from the standard library, a
forked child of it), driven by `yprof ctl`, `yprof top` and `yprof list`;
and the channel's defences: another user, things in the socket's place,
hostile requests."""

import json
import os
import pwd
import random
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pytest
from conftest import PY, analyze, db_counts
from yprof_record import _ctl, _top, cli  # noqa: F401 - imported before a fork drops to another user

YPROF = os.path.join(os.path.dirname(PY), "yprof")

SERVER = r'''
import http.server, os, signal, sys

# a server's graceful stop (SIGINT may be ignored: a shell starts background jobs so)
signal.signal(signal.SIGTERM, lambda *args: sys.exit(0))

def work(n):
    return sum(i * i for i in range(n))

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/fork":
            body = fork_child()
        else:
            body = b"%d" % work(int(self.path[1:] or "100"))
        self.send_response(200)
        self.end_headers()          # no Content-Length: the client reads to the close, after do_GET returned
        self.wfile.write(body)

    def log_message(self, *args):
        pass

def make():
    return http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)

def fork_child():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child serves on a port of its own until it is killed
        os.close(r)
        srv = make()
        os.write(w, b"%d %d" % (os.getpid(), srv.server_address[1]))
        os.close(w)
        srv.serve_forever()
        os._exit(0)
    os.close(w)
    out = os.read(r, 100)
    os.close(r)
    return out

srv = make()
print(os.getpid(), srv.server_address[1], flush=True)
srv.serve_forever()
'''


@pytest.fixture
def rt():
    """A runtime directory of the test's own (XDG_RUNTIME_DIR), so the
    channels it makes are apart from any other; under /tmp and searchable
    by everyone, as /run/user/<uid> is not but a second user's test needs."""
    d = tempfile.mkdtemp(prefix="yprof-rt-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    subprocess.call(["rm", "-rf", d])


def env_for(rt, **more):
    e = dict(os.environ, XDG_RUNTIME_DIR=rt, YPROF_CONTROL="1")
    e.pop("YPROF_HOOK", None)
    e.update(more)
    return e


def ctl(env, *args, timeout=60):
    """yprof's command line (itself without a channel)."""
    return subprocess.run([YPROF] + [str(a) for a in args], capture_output=True, text=True,
                          env=dict(env, YPROF_CONTROL=""), timeout=timeout)


def ok(p):
    assert p.returncode == 0, "exit %d: %s%s" % (p.returncode, p.stdout, p.stderr)
    return p.stdout


def sock_path(rt, pid):
    return os.path.join(rt, "yprof", "%d.sock" % pid)


def wait_channel(rt, pid, env, proc=None):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if os.path.exists(sock_path(rt, pid)):
            p = ctl(env, "ctl", pid, "status")
            if p.returncode == 0:
                return json.loads(p.stdout)
        if proc is not None and proc.poll() is not None:
            raise AssertionError("the program ended: %s" % (proc.stderr.read(),))
        time.sleep(0.05)
    raise AssertionError("no channel for %d" % pid)


def start_server(tmp_path, rt, env=None):
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    env = env or env_for(rt)
    proc = subprocess.Popen([PY, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=str(tmp_path))
    pid, port = map(int, proc.stdout.readline().split())
    assert pid == proc.pid
    return proc, port


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=30) as r:
        return r.read()


def load(port, n, clients=3):
    """n requests from `clients` threads at once; each ends after its handler returned."""
    errors = []

    def client(k):
        try:
            for _ in range(k):
                assert get(port, "/200") == b"%d" % sum(i * i for i in range(200))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    ts = [threading.Thread(target=client, args=(n // clients + (i < n % clients),)) for i in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors


def fn_calls(stats, name):
    return sum(f["ncalls"] for f in stats["functions"] if f["name"] == name)


def stop_proc(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_ctl_start_stats_stop_on_an_unmodified_threaded_server_and_its_forked_child(tmp_path, rt):
    env = env_for(rt)
    proc, port = start_server(tmp_path, rt)
    child = None
    try:
        st = wait_channel(rt, proc.pid, env, proc)
        assert st["running"] is False and st["pid"] == proc.pid
        assert stat.S_IMODE(os.stat(os.path.join(rt, "yprof")).st_mode) == 0o700
        assert stat.S_IMODE(os.lstat(sock_path(rt, proc.pid)).st_mode) == 0o600
        load(port, 5)  # served while idle: not counted
        trace = tmp_path / "server.yp"
        out = ok(ctl(env, "ctl", proc.pid, "start", "-o", trace))
        assert str(trace) in out
        load(port, 30)
        stats = json.loads(ok(ctl(env, "ctl", proc.pid, "stats", "--json", "--top", "0")))
        assert stats["running"] is True and stats["session"]["trace_path"] == str(trace)
        assert fn_calls(stats, "Handler.do_GET") == 30
        assert fn_calls(stats, "work") == 30
        text = ok(ctl(env, "ctl", proc.pid, "stats", "--top", "1000", "--sort", "total"))
        assert text.startswith("yprof report: %s" % trace)
        assert re.search(r"^\s+30\s+\S+\s+\S+\s+\S+\s+\S+\s+Handler.do_GET  server.py:\d+$", text, re.M), text
        out = ok(ctl(env, "ctl", proc.pid, "stop"))
        assert re.fullmatch(r"process %d: stopped; \d+ events in %s\n" % (proc.pid, re.escape(str(trace))), out)
        st = json.loads(ok(ctl(env, "ctl", proc.pid, "status")))
        assert st["running"] is False and st["path"] == str(trace)
        again = ctl(env, "ctl", proc.pid, "stop")
        assert again.returncode == 1 and again.stderr == "yprof: not recording\n"
        load(port, 4)  # after stop: not counted
        analyze(trace, "-o", tmp_path / "server.db")
        assert db_counts(tmp_path / "server.db", "name = 'Handler.do_GET'") == {"Handler.do_GET": (30, 30)}
        ok(ctl(env, "ctl", proc.pid, "save", tmp_path / "live.db"))
        assert db_counts(tmp_path / "live.db", "name = 'Handler.do_GET'") == {"Handler.do_GET": (30, 30)}

        # a forked child gets a channel of its own; the parent keeps its
        cpid, cport = map(int, get(port, "/fork").split())
        child = cpid
        assert wait_channel(rt, cpid, env)["running"] is False
        ok(ctl(env, "ctl", cpid, "start", "-o", tmp_path / "child.yp"))
        load(cport, 7)
        cstats = json.loads(ok(ctl(env, "ctl", cpid, "stats", "--json", "--top", "0")))
        assert fn_calls(cstats, "Handler.do_GET") == 7 and cstats["session"]["trace_path"] == str(tmp_path / "child.yp")
        ok(ctl(env, "ctl", cpid, "stop"))
        assert json.loads(ok(ctl(env, "ctl", proc.pid, "status")))["running"] is False
        listed = ok(ctl(env, "list"))
        assert re.search(r"^\s*%d\s+idle\s+\S*python\S* \S*server.py$" % proc.pid, listed, re.M), listed
        assert re.search(r"^\s*%d\s+idle\s" % cpid, listed, re.M), listed
    finally:
        if child:
            os.kill(child, signal.SIGKILL)
        stop_proc(proc)
    assert proc.returncode == 0, proc.stderr.read()
    assert not os.path.exists(sock_path(rt, proc.pid))  # removed at exit
    assert os.path.exists(sock_path(rt, child))  # killed: left behind ...
    listed = ok(ctl(env, "list", "--json"))
    assert json.loads(listed) == [] and not os.path.exists(sock_path(rt, child))  # ... and swept by yprof list


TICKER = r'''
import os, sys, threading, time

def tick():
    return sum(range(50))

def ticker(stop):
    while not stop.is_set():
        tick()
        time.sleep(0.002)

stop = threading.Event()
t = threading.Thread(target=ticker, args=(stop,), name="ticker")
t.start()
print(os.getpid(), flush=True)
import select
while not select.select([sys.stdin], [], [], 0.01)[0]:  # the main thread has events too
    pass
sys.stdin.readline()
stop.set()
t.join()
print("threads", threading.active_count())
'''


def start_program(tmp_path, rt, env, code, name="prog.py"):
    """A program that prints its pid first, started (pipes for its stdin and
    output) and its channel waited for: (process, pid)."""
    script = tmp_path / name
    script.write_text(code)
    proc = subprocess.Popen([PY, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    pid = int(proc.stdout.readline())
    wait_channel(rt, pid, env, proc)
    return proc, pid


@pytest.mark.parametrize("hook", ["default", "setprofile"])
def test_top_once_starts_a_recording_and_stops_it_and_reads_the_threads(tmp_path, rt, hook):
    env = env_for(rt, **({"YPROF_HOOK": "setprofile"} if hook == "setprofile" else {}))
    proc, pid = start_program(tmp_path, rt, env, TICKER)
    try:
        frame = json.loads(ok(ctl(env, "top", pid, "--once", "--json", "--interval", "0.5")))
        tick = [f for f in frame["functions"] if f["name"] == "tick"]
        assert tick and tick[0]["calls_per_s"] > 0 and tick[0]["ncalls"] > 0
        assert frame["running"] is True and frame["path"] == os.path.join(rt, "yprof", "top.%d.yp" % pid)
        st = json.loads(ok(ctl(env, "ctl", pid, "status")))
        assert st["running"] is False  # top stopped the recording it started
        assert not os.path.exists(frame["path"])  # and removed its trace
        # the control thread is never recorded: the program's two threads only
        stats = json.loads(ok(ctl(env, "ctl", pid, "stats", "--json")))
        assert sorted(t["name"] for t in stats["threads"]) == ["MainThread", "ticker"]
        # a recording top did not start, it leaves running; --thread filters
        ok(ctl(env, "ctl", pid, "start", "-o", tmp_path / "t.yp"))
        text = ok(ctl(env, "top", pid, "--once", "--interval", "0.3", "--thread", "ticker", "--sort", "calls"))
        lines = text.splitlines()
        assert lines[0].startswith("yprof top: pid %d  recording %s" % (pid, tmp_path / "t.yp"))
        assert "thread ticker" in lines[0] and lines[2].split()[:3] == ["calls/s", "self%", "total%"]
        rows = {ln.split()[-1] if ":" not in ln else ln.split()[-2]: ln.split() for ln in lines[3:]}
        assert float(rows["tick"][0]) > 0 and "sleep" in rows
        assert json.loads(ok(ctl(env, "ctl", pid, "status")))["running"] is True
        bad = ctl(env, "ctl", pid, "stats", "--thread", "nosuch")
        assert bad.returncode == 1 and bad.stderr.startswith("yprof: no thread 'nosuch' (threads: ")
        ok(ctl(env, "ctl", pid, "stop"))
    finally:
        out, err = proc.communicate("\n", timeout=60)
    assert proc.returncode == 0 and out.strip() == "threads 1", (out, err)


def test_top_on_a_terminal_quits_on_q_and_stops_the_recording_it_started(tmp_path, rt):
    import pty
    env = env_for(rt)
    proc, pid = start_program(tmp_path, rt, env, TICKER)
    try:
        master, slave = pty.openpty()
        top = subprocess.Popen([YPROF, "top", str(pid), "-i", "0.2"], stdin=slave, stdout=slave, stderr=slave,
                               env=dict(env, YPROF_CONTROL="", COLUMNS="100", LINES="20"))
        os.close(slave)
        screen = b""
        deadline = time.monotonic() + 60
        while screen.count(b"\x1b[H\x1b[2J") < 2 and time.monotonic() < deadline:  # two refreshes
            screen += os.read(master, 65536)
        assert json.loads(ok(ctl(env, "ctl", pid, "status")))["running"] is True
        os.write(master, b"t")  # sort by total %
        while b"sort total" not in screen and time.monotonic() < deadline:
            screen += os.read(master, 65536)
        os.write(master, b"q")
        assert top.wait(timeout=60) == 0
        os.close(master)
        frames = screen.split(b"\x1b[H\x1b[2J")
        assert frames[1].startswith(b"yprof top: pid %d  recording " % pid) and b"tick" in frames[1]
        assert b"sort total" in frames[-1]
        assert json.loads(ok(ctl(env, "ctl", pid, "status")))["running"] is False  # stopped on q
    finally:
        out, err = proc.communicate("\n", timeout=60)
    assert proc.returncode == 0, err


MP = r'''
import multiprocessing as mp, os, sys
import yprof_record

def where(_):
    return os.getpid(), os.path.exists(yprof_record.control_path())

if __name__ == "__main__":
    with mp.get_context(sys.argv[1]).Pool(2) as pool:
        seen = set(pool.map(where, range(8), chunksize=1))
    pids = {p for p, _ in seen}
    print(len(pids) >= 1 and os.getpid() not in pids, all(has for _, has in seen))
'''


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_workers_get_a_channel_of_their_own(tmp_path, rt, method):
    script = tmp_path / "mp_prog.py"
    script.write_text(MP)
    p = subprocess.run([PY, str(script), method], capture_output=True, text=True, env=env_for(rt), timeout=120)
    assert p.returncode == 0 and p.stdout == "True True\n", (p.stdout, p.stderr)


def test_yprof_record_control_idle_records_only_when_told(tmp_path, rt):
    env = dict(env_for(rt), YPROF_CONTROL="")
    script = tmp_path / "idle.py"
    script.write_text("import os, sys\n"
                      "def f(): return 1\n"
                      "print(os.getpid(), flush=True)\n"
                      "sys.stdin.readline()\n"
                      "for _ in range(123): f()\n"
                      "sys.stdin.readline()\n")
    proc = subprocess.Popen([PY, "-m", "yprof_record", "--control", "--idle", str(script)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(tmp_path))
    try:
        pid = int(proc.stdout.readline())
        assert wait_channel(rt, pid, env, proc)["running"] is False
        proc.stdin.write("\n")
        proc.stdin.flush()  # 123 calls while idle
        time.sleep(0.2)
        ok(ctl(env, "ctl", pid, "start", "-o", tmp_path / "told.yp", "--clock", "cpu", "--no-builtins"))
        stats = json.loads(ok(ctl(env, "ctl", pid, "stats", "--json", "--top", "0")))
        assert fn_calls(stats, "f") == 0 and stats["session"]["clock"] == "cpu"
    finally:
        out, err = proc.communicate("\n", timeout=60)
    assert proc.returncode == 0, err
    assert not (tmp_path / "yprof.yp").exists()  # idle: no recording of its own
    analyze(tmp_path / "told.yp", "-o", tmp_path / "told.db")  # finished at exit
    assert db_counts(tmp_path / "told.db", "name = 'f'") == {}
    con = sqlite3.connect(str(tmp_path / "told.db"))
    assert con.execute("SELECT clock FROM session").fetchall() == [("cpu",)]
    assert con.execute("SELECT count(*) FROM functions WHERE builtin = 1").fetchall() == [(0,)]
    con.close()
    p = subprocess.run([PY, "-m", "yprof_record", "--idle", str(script)], capture_output=True, text=True)
    assert p.returncode == 2 and "--idle needs --control" in p.stderr


def test_list_removes_sockets_nobody_listens_on_and_ctl_says_so(tmp_path, rt):
    env = env_for(rt)
    sleeper = subprocess.Popen(["sleep", "60"], env=env)  # a live process that has no channel ...
    try:
        d = os.path.join(rt, "yprof")
        os.mkdir(d, 0o700)
        s = socket.socket(socket.AF_UNIX)
        s.bind(sock_path(rt, sleeper.pid))  # ... but a socket left at its pid by one before it
        s.close()
        p = ctl(env, "ctl", sleeper.pid, "status")
        assert p.returncode == 1 and p.stderr == ("yprof: process %d's channel does not answer (Connection "
                                                  "refused): its socket was left by an earlier process (yprof "
                                                  "list removes such)\n" % sleeper.pid)
        # yprof list (reading $XDG_RUNTIME_DIR like the programs) sweeps it
        assert json.loads(ok(ctl(env, "list", "--json"))) == []
        assert os.listdir(d) == []
    finally:
        sleeper.kill()
        sleeper.wait()


FD_HOG = r'''
import os, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
print(os.getpid(), flush=True)
sys.stdin.readline()
held = []
try:
    while True:
        held.append(os.open("/dev/null", os.O_RDONLY))
except OSError:
    pass
print("full", flush=True)
sys.stdin.readline()
for fd in held:
    os.close(fd)
print("freed", flush=True)
sys.stdin.readline()
'''


def test_a_program_out_of_descriptors_keeps_its_channel_waiting_not_spinning(tmp_path, rt):
    env = env_for(rt)
    proc, pid = start_program(tmp_path, rt, env, FD_HOG)
    try:
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "full\n"
        waiting = subprocess.Popen([YPROF, "ctl", str(pid), "status"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=dict(env, YPROF_CONTROL=""))
        time.sleep(1.0)  # the channel cannot accept it meanwhile: one try every 0.1 s
        assert waiting.poll() is None
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "freed\n"
        out, err = waiting.communicate(timeout=60)
        assert waiting.returncode == 0, err
        faults = json.loads(out)["channel"]["faults"]
        assert 1 <= faults <= 40, faults  # a loop that spun would have counted thousands
    finally:
        out, err = proc.communicate("\n", timeout=60)
    assert proc.returncode == 0 and err == ""


def test_ctl_usage_and_failures_are_one_line_with_their_status(tmp_path, rt):
    env = env_for(rt)
    cases = [(["ctl"], 2, "usage: yprof ctl"), (["ctl", "x", "status"], 2, "PID must be a process id"),
             (["ctl", "1"], 2, "a command is needed"), (["ctl", "1", "fly"], 2, "unknown command 'fly'"),
             (["ctl", "1", "stop", "--top", "3"], 2, "stop does not take --top"),
             (["ctl", "1", "save"], 2, "save needs the database's path"),
             (["ctl", "999999999", "status"], 1, "yprof: no process 999999999"),
             (["ctl", str(os.getpid()), "status"], 1, "has no control channel"),
             (["list", "-x"], 2, "unknown argument")]
    for args, status, text in cases:
        p = ctl(env, *args)
        assert p.returncode == status and text in p.stderr, (args, p.returncode, p.stderr)
        if status == 1:
            assert p.stderr.count("\n") == 1 and p.stdout == ""


# ---- the channel's defences ------------------------------------------------------------------------

OTHER = "yproftest"


def other_user():
    if os.geteuid() != 0:
        pytest.skip("needs root to create a second user and run as it")
    try:
        pwd.getpwnam(OTHER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", OTHER], check=True)
    return pwd.getpwnam(OTHER)


def as_user(pw, fn):
    """fn()'s JSON-able result, computed in a fork of this process running
    as user pw (no exec: the second user need not be able to read this
    Python's files)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
            out = json.dumps(fn()).encode()
        except BaseException as e:
            out = json.dumps("child failed: %r" % e).encode()
        os.write(w, out)
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        d = os.read(r, 65536)
        if not d:
            break
        data += d
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


def ctl_in_process(*argv):
    """[exit status, stderr] of yprof's command line run in this process."""
    import io
    saved = sys.stderr, sys.stdout
    sys.stderr, sys.stdout = io.StringIO(), io.StringIO()
    try:
        rc = cli.main(list(argv))
        return [rc, sys.stderr.getvalue()]
    finally:
        sys.stderr, sys.stdout = saved


def raw_request(path, data, read=True, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    try:
        if data:
            s.sendall(data)
        if not read:
            return None
        buf = b""
        while True:
            d = s.recv(65536)
            if not d:
                return buf
            buf += d
    finally:
        s.close()


def decode_reply(buf):
    magic, version, n = struct_header().unpack_from(buf)
    assert magic == b"YPRF" and version == 1 and len(buf) == 12 + n
    return json.loads(buf[12:])


def struct_header():
    import struct
    return struct.Struct(">4sB3xI")


def test_another_user_is_refused_by_credentials_not_only_by_file_modes_client_forked(tmp_path, rt):
    pw = other_user()
    env = env_for(rt)
    proc, port = start_server(tmp_path, rt)
    try:
        wait_channel(rt, proc.pid, env, proc)
        p = as_user(pw, lambda: ctl_in_process("ctl", str(proc.pid), "status"))
        assert p == [1, "yprof: process %d belongs to uid 0; only that user and root may control it\n" % proc.pid]
        # with the modes opened (as a careless admin might), the credentials still refuse
        path = sock_path(rt, proc.pid)
        os.chmod(os.path.dirname(path), 0o755)
        os.chmod(path, 0o666)
        reply = as_user(pw, lambda: decode_reply(raw_request(path, _msg({"cmd": "start", "args": {"path": "/tmp/x.yp"}}))))
        assert reply == {"ok": False, "error": "permission denied: uid %d may not control process %d (only uid 0 "
                         "and root may)" % (pw.pw_uid, proc.pid)}
        # the owner still gets answers; its own client now refuses the open directory
        assert decode_reply(raw_request(path, _msg({"cmd": "status"})))["result"]["running"] is False
        p = ctl(env, "ctl", proc.pid, "status")
        assert p.returncode == 1 and p.stderr == "yprof: refused: %s has mode 0755; it must be 0700 (its " \
            "owner's alone)\n" % os.path.dirname(path)
    finally:
        stop_proc(proc)
    assert proc.returncode == 0


OBSTACLE = r'''
import os, socket, sys, warnings
import yprof_record as yp
kind, aside = sys.argv[1], sys.argv[2]
p = yp.control_path()
os.makedirs(os.path.dirname(p), mode=0o700, exist_ok=True)
if kind == "file":
    open(p, "w").write("keep")
elif kind == "symlink":
    os.symlink(aside, p)
elif kind == "socket-of-another-user":
    s = socket.socket(socket.AF_UNIX)
    s.bind(p)
    os.chown(p, int(sys.argv[3]), -1)
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    r = yp.serve_control()
print(r)
print("|".join(str(x.message) for x in w))
'''


@pytest.mark.parametrize("kind", ["file", "symlink", "socket-of-another-user"])
def test_something_in_the_sockets_place_is_refused_and_not_touched(tmp_path, rt, kind):
    extra = []
    if kind == "socket-of-another-user":
        extra = [str(other_user().pw_uid)]
    aside = tmp_path / "aside"
    script = tmp_path / "obstacle.py"
    script.write_text(OBSTACLE)
    p = subprocess.run([PY, str(script), kind, str(aside)] + extra, capture_output=True, text=True,
                       env=dict(env_for(rt), YPROF_CONTROL=""), timeout=60)
    assert p.returncode == 0, p.stderr
    result, message = p.stdout.splitlines()
    assert result == "None"
    what = {"file": "a file of uid 0", "symlink": "a symbolic link",
            "socket-of-another-user": "a socket of uid %s" % (extra[0] if extra else "")}[kind]
    assert re.fullmatch(r"yprof: control channel not opened: %s/yprof/\d+\.sock exists and is %s, not a socket "
                        r"of ours; not touched" % (re.escape(rt), what), message), message
    left = os.listdir(os.path.join(rt, "yprof"))
    assert len(left) == 1
    target = os.path.join(rt, "yprof", left[0])
    if kind == "file":
        assert open(target).read() == "keep"
    if kind == "symlink":
        assert os.readlink(target) == str(aside) and not aside.exists()  # nothing followed


@pytest.mark.parametrize("case", ["mode-0755", "symlink", "at-startup"])
def test_a_directory_that_is_not_private_is_refused(tmp_path, rt, case):
    d = os.path.join(rt, "yprof")
    if case == "symlink":
        real = tmp_path / "real"
        real.mkdir(mode=0o700)
        os.symlink(str(real), d)
        expect = "%s is a symbolic link; not followed" % d
    else:
        os.mkdir(d)
        os.chmod(d, 0o755)
        expect = "%s has mode 0755; it must be 0700 (its owner's alone)" % d
    if case == "at-startup":  # YPROF_CONTROL=1: one line, and the program runs on
        p = subprocess.run([PY, "-c", "print(sum(range(10)))"], capture_output=True, text=True, env=env_for(rt))
        assert p.returncode == 0 and p.stdout == "45\n"
        assert p.stderr == "yprof: control channel not opened: %s\n" % expect
    else:  # python -m yprof_record --control: one line, status 1, the program not run
        q = subprocess.run([PY, "-m", "yprof_record", "--control", "--idle", "-m", "this"], capture_output=True,
                           text=True, env=dict(env_for(rt), YPROF_CONTROL=""), cwd=str(tmp_path))
        assert q.returncode == 1 and q.stderr == "yprof: control channel not opened: %s\n" % expect, q.stderr
        assert q.stdout == ""
    assert os.listdir(d) == []  # nothing made in it


def test_a_symlink_in_the_sockets_place_is_not_followed_by_the_client(tmp_path, rt):
    env = env_for(rt)
    proc, port = start_server(tmp_path, rt)
    try:
        wait_channel(rt, proc.pid, env, proc)
        path = sock_path(rt, proc.pid)
        os.rename(path, path + ".real")
        os.symlink(path + ".real", path)
        p = ctl(env, "ctl", proc.pid, "start", "-o", tmp_path / "no.yp")
        assert p.returncode == 1 and p.stderr == (
            "yprof: refused: %s is a symbolic link, not process %d's channel; not followed\n" % (path, proc.pid))
        assert decode_reply(raw_request(path + ".real", _msg({"cmd": "status"})))["result"]["running"] is False
    finally:
        stop_proc(proc)
    assert proc.returncode == 0 and not (tmp_path / "no.yp").exists()


def _msg(obj, version=1, magic=b"YPRF", length=None):
    body = json.dumps(obj).encode()
    return struct_header().pack(magic, version, len(body) if length is None else length) + body


HOSTILE_APP = r'''
import os, sys, threading
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
print(os.getpid(), flush=True)
sys.stdin.readline()
total = 0
for _ in range(40):
    total += fib(18)
sys.stdin.readline()  # runs until the test is done with it
print(total, threading.active_count())
'''


def test_thirty_hostile_requests_leave_the_program_and_the_channel_unharmed(tmp_path, rt):
    env = env_for(rt)
    proc, pid = start_program(tmp_path, rt, env, HOSTILE_APP)
    rnd = random.Random(7)
    try:
        path = sock_path(rt, pid)
        garbage = bytes(rnd.randrange(256) for _ in range(1024))
        attacks = (
            [("random bytes", garbage, True)] * 4 +
            [("huge length", struct_header().pack(b"YPRF", 1, 0x7FFFFFFF), True)] * 4 +
            [("over the limit", _msg({"cmd": "status", "pad": "x" * 5000}), True)] * 2 +
            [("wrong version", _msg({"cmd": "status"}, version=9), True)] * 2 +
            [("not json", struct_header().pack(b"YPRF", 1, 5) + b"\xff{{{{", True)] * 2 +
            [("not an object", _msg([1, 2, 3]), True)] * 2 +
            [("unknown command", _msg({"cmd": "rm -rf /"}), True)] * 2 +
            [("bad arguments", _msg({"cmd": "start", "args": {"path": "relative.yp"}}), True)] * 2 +
            [("bad types", _msg({"cmd": "stats", "args": {"top": "all", "sort": 3}}), True)] * 2 +
            [("half message", _msg({"cmd": "status"})[:20], False)] * 4 +
            [("slow sender", None, True)] * 4)
        assert len(attacks) == 30
        replies = {}

        def attack(i, name, data, read):
            try:
                if name == "slow sender":  # a byte every 0.3 s, then a stall: the channel gives up at 2 s
                    s = socket.socket(socket.AF_UNIX)
                    s.settimeout(20)
                    s.connect(path)
                    buf = b""
                    for b in _msg({"cmd": "status"})[:5]:
                        s.send(bytes([b]))
                        time.sleep(0.3)
                    while True:
                        d = s.recv(4096)
                        if not d:
                            break
                        buf += d
                    replies[i] = buf
                else:
                    replies[i] = raw_request(path, data, read)
            except OSError as e:
                replies[i] = e
        proc.stdin.write("\n")
        proc.stdin.flush()  # the program works meanwhile
        for wave in ("quick", "half message", "slow sender"):  # each at once
            ts = [threading.Thread(target=attack, args=(i,) + a) for i, a in enumerate(attacks)
                  if a[0] == wave or wave == "quick" and a[0] not in ("half message", "slow sender")]
            for t in ts:
                t.start()
            for t in ts:
                t.join(60)
        for i, (name, _, read) in enumerate(attacks):
            r = replies[i]
            assert not isinstance(r, Exception), (name, r)
            if read:  # an error reply, never a success; a busy channel says so
                assert decode_reply(r)["ok"] is False, (name, r)
            if name == "slow sender":  # four at once: the channel serves four connections at a time
                assert decode_reply(r)["error"] == "request not complete within 2 s"
        st = json.loads(ok(ctl(env, "ctl", pid, "status")))
        assert st["channel"]["rejected"] == 30 and st["channel"]["faults"] == 0, st["channel"]
        assert st["running"] is False
    finally:
        out, err = proc.communicate("\n", timeout=120)
    assert proc.returncode == 0 and err == ""
    assert out.split() == [str(40 * 2584), "1"]  # its result, and its threads: the channel is not one


def test_ctl_start_with_include_records_only_the_programs_own_module(tmp_path, rt):
    # the server's own functions (do_GET, work, its genexpr) with exact
    # counts; nothing of http.server or socketserver, which do the rest
    env = env_for(rt)
    proc, port = start_server(tmp_path, rt, env)
    try:
        wait_channel(rt, proc.pid, env, proc)
        ok(ctl(env, "ctl", proc.pid, "start", "-o", tmp_path / "inc.yp", "--include", "__main__",
               "--exclude", "*/http/*"))
        st = json.loads(ok(ctl(env, "ctl", proc.pid, "status")))
        assert st["include"] == ["__main__"] and st["exclude"] == ["*/http/*"]
        load(port, 12)
        stats = json.loads(ok(ctl(env, "ctl", proc.pid, "stats", "--json", "--top", "0")))
        mods = {f["module"] for f in stats["functions"] if not f["builtin"] and f["ncalls"]}
        assert mods == {"__main__"}, mods
        assert fn_calls(stats, "Handler.do_GET") == 12
        assert fn_calls(stats, "work") == 12
        ok(ctl(env, "ctl", proc.pid, "stop"))
        # an empty pattern list: no filter
        ok(ctl(env, "ctl", proc.pid, "start", "-o", tmp_path / "all.yp", "--include", ""))
        st = json.loads(ok(ctl(env, "ctl", proc.pid, "status")))
        assert not st["include"] and not st["exclude"], st
        ok(ctl(env, "ctl", proc.pid, "stop"))
        assert (tmp_path / "all.yp").exists()
    finally:
        stop_proc(proc)


SPAWNER = '''
import os, subprocess, sys
def work(n): return n
print(os.getpid(), flush=True)
for line in sys.stdin:
    if line.strip() == "spawn":  # a Python child doing 40 calls of its own
        c = subprocess.run([sys.executable, "-c", "import os\\ndef job(i): return i\\n"
                            "for i in range(40): job(i)\\nprint(os.getpid())"], capture_output=True, text=True)
        for i in range(7): work(i)
        print(c.stdout.strip(), flush=True)
'''


def test_ctl_start_follow_children_records_the_python_children_started_meanwhile(tmp_path, rt):
    (tmp_path / "spawner.py").write_text(SPAWNER)
    env = env_for(rt)
    proc = subprocess.Popen([PY, str(tmp_path / "spawner.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=str(tmp_path))
    try:
        pid = int(proc.stdout.readline())
        wait_channel(rt, pid, env, proc)
        ok(ctl(env, "ctl", pid, "start", "-o", tmp_path / "s.yp",
               "--follow-children"))
        assert json.loads(ok(ctl(env, "ctl", pid, "status")))["follow_children"] is True
        proc.stdin.write("spawn\n")
        proc.stdin.flush()
        child = int(proc.stdout.readline())
        ok(ctl(env, "ctl", pid, "stop"))
        assert json.loads(ok(ctl(env, "ctl", pid, "status")))["follow_children"] is False
        proc.stdin.write("spawn\n")  # after stop: not followed
        proc.stdin.flush()
        late = int(proc.stdout.readline())
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert not (tmp_path / ("s.%d.yp" % late)).exists()
    analyze(tmp_path / "s.yp", tmp_path / ("s.%d.yp" % child), "-q", "-o", tmp_path / "s.db")
    con = sqlite3.connect(str(tmp_path / "s.db"))
    got = dict(((p, n), c) for p, n, c in con.execute(
        "SELECT pid, name, ncalls FROM process_function_totals WHERE name IN ('job', 'work')"))
    procs = dict(con.execute("SELECT pid, ppid FROM processes"))
    con.close()
    assert got == {(child, "job"): 40, (pid, "work"): 7} and procs[child] == pid
