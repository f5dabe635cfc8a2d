"""`yprof ctl`, `yprof list` and `yprof top`: the control channel's client
(the channel and its protocol: _control.py; docs/api.md)."""

import argparse
import errno
import json
import os
import socket
import stat
import sys
import time

from . import _control as C
from . import _filter

CTL_USAGE = """\
usage: yprof ctl PID start [-o PATH] [--clock wall|cpu] [--no-builtins]
                           [--include PATTERN] [--exclude PATTERN] [--follow-children]
       yprof ctl PID stop | status | clear
       yprof ctl PID stats [--top N] [--sort KEY] [--thread T] [--json]
       yprof ctl PID save DB

Controls the profiler of running process PID through its control channel
(the process was started with YPROF_CONTROL=1, python -m yprof_record
--control, or called yprof_record.serve_control()).

  start    record to PATH (default yprof.PID.yp here) until stop; only the
           modules or files (path globs) --include names, none --exclude
           names (repeat them, or separate patterns with commas); with
           --follow-children, every Python process it starts meanwhile too,
           into PATH's name with its pid
  stop     stop recording; the trace is complete
  status   the recorder's state, as JSON
  stats    the live statistics (every interval since the last clear)
  save     write the live statistics as an SQLite database (docs/schema.md)
  clear    reset the live statistics (the trace keeps every event)

exit status: 0 done, 1 refused or failed, 2 bad usage.
"""


class Failed(Exception):
    """Said in one line; exit status 1."""


# ---- the connection -----------------------------------------------------------------------

def _target(pid):
    """The checked socket path of process pid's channel."""
    uid = C.process_uid(pid)
    if uid is None:
        raise Failed("no process %d" % pid)
    me = os.geteuid()
    if me not in (0, uid):
        raise Failed("process %d belongs to uid %d; only that user and root may control it" % (pid, uid))
    path = C.control_path(pid)
    d = os.path.dirname(path)
    try:
        C.check_dir(d, uid)
    except C.Refused as e:
        if not os.path.lexists(d):
            raise Failed(_no_channel(pid))
        raise Failed("refused: %s" % e)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise Failed(_no_channel(pid))
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != uid:
        raise Failed("refused: %s is %s, not process %d's channel; not followed" % (path, C._describe(st), pid))
    return path


def _no_channel(pid):
    return ("process %d has no control channel (start it with YPROF_CONTROL=1, python -m yprof_record "
            "--control, or call yprof_record.serve_control() in it)" % pid)


def _recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        d = s.recv(min(n - len(buf), 1 << 20))
        if not d:
            raise Failed("the channel closed the connection before its reply was whole")
        buf += d
    return bytes(buf)


def _connect(s, path, timeout):
    """connect, waiting while the channel's queue of connections is full."""
    end = time.monotonic() + timeout
    while True:
        try:
            return s.connect(path)
        except BlockingIOError:
            if time.monotonic() > end:
                raise
            time.sleep(0.01)


def request(pid, cmd, timeout=30.0, **args):
    """The result of one command, or Failed with the channel's error."""
    path = _target(pid)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        try:
            _connect(s, path, timeout)
        except OSError as e:
            if e.errno in (errno.ECONNREFUSED, errno.ENOENT):
                raise Failed("process %d's channel does not answer (%s): its socket was left by an earlier "
                             "process (yprof list removes such)" % (pid, e.strerror))
            raise Failed("cannot connect to %s: %s" % (path, e.strerror))
        try:
            try:
                s.sendall(C.encode({"cmd": cmd, "args": args}))
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before it read the request: its reply says why
            head = _recv_exact(s, C.HEADER.size)
            try:
                n = C.parse_header(head, C.MAX_REPLY)
            except ValueError as e:
                raise Failed("bad reply from process %d: %s" % (pid, e))
            reply = json.loads(_recv_exact(s, n).decode("utf-8"))
        except socket.timeout:
            raise Failed("process %d did not answer within %g s" % (pid, timeout))
        except OSError as e:
            raise Failed("talking to process %d: %s" % (pid, e.strerror or e))
    finally:
        s.close()
    if not reply.get("ok"):
        raise Failed(reply.get("error") or "refused")
    return reply.get("result")


# ---- yprof ctl ------------------------------------------------------------------------------

def _pid(text, prog):
    try:
        pid = int(text)
        if pid <= 0:
            raise ValueError
        return pid
    except ValueError:
        sys.stderr.write("%s: PID must be a process id, not %r\n" % (prog, text))
        raise SystemExit(2)


def ctl_parser():
    p = argparse.ArgumentParser(prog="yprof ctl", add_help=False)
    p.add_argument("-o", "--output")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    p.add_argument("--no-builtins", action="store_true")
    p.add_argument("--include", action="append")
    p.add_argument("--exclude", action="append")
    p.add_argument("--follow-children", action="store_true")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--sort", choices=("total", "self", "ncalls", "avg"), default="total")
    p.add_argument("--thread")
    p.add_argument("--json", action="store_true")
    p.add_argument("rest", nargs="*")
    return p


_ALLOWED = {"start": {"output", "clock", "no_builtins", "include", "exclude", "follow_children"}, "stats": {"top", "sort", "thread", "json"},
            "stop": set(), "status": set(), "clear": set(), "save": set()}


def _used(opts, p):
    return {k for k, v in vars(opts).items() if k != "rest" and v != p.get_default(k)}


def ctl_main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        (sys.stdout if argv else sys.stderr).write(CTL_USAGE)
        return 0 if argv else 2
    if len(argv) < 2:
        sys.stderr.write("yprof ctl: a command is needed after the PID (yprof ctl --help)\n")
        return 2
    pid, cmd = _pid(argv[0], "yprof ctl"), argv[1]
    if cmd not in _ALLOWED:
        sys.stderr.write("yprof ctl: unknown command %r (%s)\n" % (cmd, ", ".join(sorted(_ALLOWED))))
        return 2
    p = ctl_parser()
    opts, unknown = p.parse_known_args(argv[2:])
    extra = _used(opts, p) - _ALLOWED[cmd]
    if unknown or extra:
        bad = unknown or ["--" + sorted(extra)[0].replace("_", "-")]
        sys.stderr.write("yprof ctl: %s does not take %s (yprof ctl --help)\n" % (cmd, bad[0]))
        return 2
    if len(opts.rest) != (1 if cmd == "save" else 0):
        sys.stderr.write("yprof ctl: %s\n" % ("save needs the database's path" if cmd == "save"
                                                else "%s takes no argument %r" % (cmd, opts.rest[0])))
        return 2
    if cmd == "stats" and opts.top < 0:
        sys.stderr.write("yprof ctl: --top must be 0 or more\n")
        return 2
    try:
        return _ctl(pid, cmd, opts)
    except Failed as e:
        sys.stderr.write("yprof: %s\n" % e)
        return 1


def _patterns(values):
    """--include/--exclude's patterns, path globs made absolute here (as -o)."""
    mods, globs = _filter.split(_filter.from_cli(values))
    return list(mods + globs)


def _ctl(pid, cmd, opts):
    out = sys.stdout
    if cmd == "start":
        path = os.path.abspath(opts.output or "yprof.%d.yp" % pid)
        st = request(pid, "start", path=path, clock=opts.clock, builtins=not opts.no_builtins,
                     include=_patterns(opts.include), exclude=_patterns(opts.exclude),
                     follow_children=opts.follow_children)
        out.write("process %d: recording to %s (hook %s, clock %s)\n" % (pid, st["path"], st["hook"], opts.clock))
    elif cmd == "stop":
        st = request(pid, "stop")
        out.write("process %d: stopped; %d events in %s\n" % (pid, st["events"], st["path"]))
    elif cmd == "status":
        out.write(json.dumps(request(pid, "status"), indent=2, sort_keys=True) + "\n")
    elif cmd == "clear":
        request(pid, "clear")
        out.write("process %d: live statistics cleared\n" % pid)
    elif cmd == "save":
        r = request(pid, "save", path=os.path.abspath(opts.rest[0]))
        out.write("process %d: statistics written to %s\n" % (pid, r["path"]))
    elif cmd == "stats":
        args = {"top": opts.top, "sort": opts.sort, "thread": opts.thread}
        if opts.json:
            out.write(json.dumps(request(pid, "stats", format="json", **args), indent=1) + "\n")
        else:
            width = _width(out)
            out.write(request(pid, "stats", format="text", width=width, **args))
    return 0


def _width(f):
    import shutil
    isatty = getattr(f, "isatty", None)
    return shutil.get_terminal_size((0, 0)).columns if isatty and isatty() else 0


# ---- yprof list ------------------------------------------------------------------------------

def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return " ".join(os.fsdecode(a) for a in f.read().split(b"\0") if a)
    except OSError:
        return "?"


def channels():
    """(pid, socket path) of every channel in this user's directories (all
    users' under /tmp and /run/user for root); sockets of processes that
    are gone are removed on the way."""
    dirs = {C.own_dir(), "/tmp/yprof-%d" % os.getuid()}
    if os.geteuid() == 0:
        try:
            dirs.update(os.path.join("/tmp", n) for n in os.listdir("/tmp") if n.startswith("yprof-"))
        except OSError:
            pass
        try:
            dirs.update(os.path.join("/run/user", n, "yprof") for n in os.listdir("/run/user"))
        except OSError:
            pass
    found = []
    for d in sorted(dirs):
        try:
            st = os.lstat(d)
            C.check_dir(d, st.st_uid)
            if os.geteuid() not in (0, st.st_uid):
                continue
            names = os.listdir(d)
        except (OSError, C.Refused):
            continue
        for n in names:
            if not n.endswith(".sock") or not n[:-5].isdigit():
                continue
            pid, path = int(n[:-5]), os.path.join(d, n)
            if C.process_uid(pid) is None:
                _unlink_socket(path)  # a process that left without removing it (os._exit, a signal)
                continue
            found.append((pid, path))
    return sorted(found)


def _unlink_socket(path):
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except OSError:
        pass


def _refused(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(2.0)
        s.connect(path)
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()


def list_main(argv):
    if argv and argv[0] in ("-h", "--help"):
        sys.stdout.write("usage: yprof list [--json]\n\nThe processes with a control channel that this user "
                         "may control: pid, state (recording or idle), command line.\n")
        return 0
    if argv not in ([], ["--json"]):
        sys.stderr.write("yprof list: unknown argument %r (yprof list --help)\n" % argv[0])
        return 2
    rows = []
    for pid, path in channels():
        if pid == os.getpid():
            continue
        try:
            st = request(pid, "status", timeout=2.0)
            state, trace = ("recording" if st["running"] else "idle"), st["path"]
        except Failed:
            if _refused(path):  # nobody listens: left by a process that had this pid
                _unlink_socket(path)
                continue
            state, trace = "no answer", ""
        rows.append({"pid": pid, "state": state, "trace": trace, "command": _cmdline(pid)})
    if argv == ["--json"]:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return 0
    sys.stdout.write("%8s  %-9s  %s\n" % ("PID", "STATE", "COMMAND"))
    for r in rows:
        sys.stdout.write("%8d  %-9s  %s\n" % (r["pid"], r["state"], r["command"]))
    return 0
