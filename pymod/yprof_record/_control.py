"""The control channel: a Unix-domain socket per process through which
`yprof ctl`, `yprof top` and `yprof list` start, stop and read the profiler
of a running program (docs/api.md, "Profiling a running program").

Where: <dir>/<pid>.sock, <dir> being $XDG_RUNTIME_DIR/yprof when that is
set, else /tmp/yprof-<uid>; the directory is 0700 and the process's user's,
the socket 0600. Who: the process's own user and root, checked on every
connection from the peer's credentials (SO_PEERCRED), not only from file
modes. How: one request per connection, one reply, then the channel closes
it. A message is a 12-byte header (b"YPRF", the protocol version, three zero
bytes, the payload's length as a big-endian uint32) and a UTF-8 JSON
object: {"cmd": ..., "args": {...}} asks, {"ok": true, "result": ...} or
{"ok": false, "error": "..."} answers. A request is at most 4 KiB and must
arrive whole within 2 s; at most 4 connections are served at once (more
are answered "busy"). Anything malformed gets an error reply and the
connection closed.

The channel's thread is the C module's quiet thread (never recorded, not
one of threading's); it waits in the selector's blocking call, without the
GIL, and runs a command with the GIL like any thread. Nothing here raises
into the application: a channel that cannot open says why in one line and
the program runs on without it.
"""

import atexit
import os
import selectors
import socket
import stat
import struct
import sys
import threading
import time

from . import _yprof

PROTOCOL = 1
MAGIC = b"YPRF"
HEADER = struct.Struct(">4sB3xI")
MAX_REQUEST = 4096
MAX_REPLY = 1 << 30
MAX_CONNECTIONS = 4
REQUEST_SECONDS = 2.0
SEND_SECONDS = 5.0


class Refused(Exception):
    """The channel cannot be opened (or used) safely; the message says why."""


# ---- where --------------------------------------------------------------------------------

def _base_dir(uid, xdg):
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, "yprof")
    return "/tmp/yprof-%d" % uid


def own_dir():
    """This process's channel directory."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg and not os.path.isdir(xdg):
        xdg = ""  # set but not there (a login's variable carried into a container)
    return _base_dir(os.getuid(), xdg)


def _proc_env(pid, name):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            for item in f.read().split(b"\0"):
                k, _, v = item.partition(b"=")
                if k == name.encode():
                    return os.fsdecode(v)
    except OSError:
        pass
    return None


def process_uid(pid):
    """The uid the process runs as, or None when there is no such process
    (or only its zombie: it has exited, and nobody has reaped it yet)."""
    try:
        uid = os.stat("/proc/%d" % pid).st_uid
        with open("/proc/%d/stat" % pid, "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return None
    return None if state in (b"Z", b"X") else uid


def candidate_dirs(pid):
    """Where process pid's channel may be: its $XDG_RUNTIME_DIR/yprof when
    its environment can be read and names one, then /tmp/yprof-<its uid>."""
    if pid == os.getpid():
        return [own_dir()]
    uid = process_uid(pid)
    if uid is None:
        uid = os.getuid()
    out = []
    xdg = _proc_env(pid, "XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        out.append(_base_dir(uid, xdg))
    out.append(_base_dir(uid, ""))
    return out


def control_path(pid=None):
    """The path of process pid's control socket (this process's by default):
    the one that exists, else where it would be."""
    pid = os.getpid() if pid is None else int(pid)
    dirs = candidate_dirs(pid)
    for d in dirs:
        p = os.path.join(d, "%d.sock" % pid)
        if os.path.lexists(p):
            return p
    return os.path.join(dirs[0], "%d.sock" % pid)


def check_dir(d, uid):
    """Refused unless d is a real directory (not a symbolic link) of uid's
    that only its owner may enter."""
    try:
        st = os.lstat(d)
    except FileNotFoundError:
        raise Refused("%s does not exist" % d)
    except OSError as e:
        raise Refused("cannot use %s: %s" % (d, e.strerror))
    if stat.S_ISLNK(st.st_mode):
        raise Refused("%s is a symbolic link; not followed" % d)
    if not stat.S_ISDIR(st.st_mode):
        raise Refused("%s is not a directory" % d)
    if st.st_uid != uid:
        raise Refused("%s belongs to uid %d, not %d" % (d, st.st_uid, uid))
    if st.st_mode & 0o077:
        raise Refused("%s has mode %04o; it must be 0700 (its owner's alone)" % (d, stat.S_IMODE(st.st_mode)))


def _describe(st):
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    if stat.S_ISSOCK(st.st_mode):
        return "a socket of uid %d" % st.st_uid
    if stat.S_ISDIR(st.st_mode):
        return "a directory"
    return "a file of uid %d" % st.st_uid


# ---- messages -------------------------------------------------------------------------------

def encode(obj):
    import json  # on first use: every YPROF_CONTROL=1 program imports this module at start-up
    body = json.dumps(obj, separators=(",", ":")).encode()
    return HEADER.pack(MAGIC, PROTOCOL, len(body)) + body


def parse_header(buf, limit):
    """The payload length from a whole header; ValueError when it is not ours."""
    magic, version, length = HEADER.unpack_from(buf)
    if magic != MAGIC:
        raise ValueError("not a yprof control message")
    if version != PROTOCOL:
        raise ValueError("protocol version %d not supported (this is %d)" % (version, PROTOCOL))
    if length > limit:
        raise ValueError("message of %d bytes is over the limit of %d" % (length, limit))
    return length


# ---- the channel ------------------------------------------------------------------------------

class _Conn:
    __slots__ = ("sock", "buf", "deadline")

    def __init__(self, sock):
        self.sock, self.buf, self.deadline = sock, b"", time.monotonic() + REQUEST_SECONDS


class Channel:
    """One process's listening socket and the loop that serves it."""

    def __init__(self):
        self.pid = os.getpid()
        self.uid = os.getuid()
        self.dir = own_dir()
        self.path = os.path.join(self.dir, "%d.sock" % self.pid)
        self.sock = None
        self.sel = None      # the loop's selector (its epoll descriptor)
        self.closed = False
        self.served = 0      # replies sent
        self.rejected = 0    # connections refused or answered with an error
        self.faults = 0      # errors of the channel's own (counted, never raised)

    # -- opening --

    def open(self):
        try:
            os.mkdir(self.dir, 0o700)
        except FileExistsError:
            pass
        except OSError as e:
            raise Refused("cannot create %s: %s" % (self.dir, e.strerror))
        check_dir(self.dir, self.uid)
        if len(os.fsencode(self.path)) >= 108:
            raise Refused("%s is too long for a Unix socket's address" % self.path)
        self._clear_stale()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(self.path)
            os.chmod(self.path, 0o600)  # the directory keeps everyone else out meanwhile
            s.listen(64)  # waiting connections are cheap; those served at once are MAX_CONNECTIONS
        except OSError as e:
            s.close()
            raise Refused("cannot listen on %s: %s" % (self.path, e.strerror or e))
        self.sock = s

    def _clear_stale(self):
        """A socket of ours left by a dead process that had this pid goes;
        anything else in its place is refused, and left as it is."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not (stat.S_ISSOCK(st.st_mode) and st.st_uid == self.uid):
            raise Refused("%s exists and is %s, not a socket of ours; not touched" % (self.path, _describe(st)))
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(0.5)
            probe.connect(self.path)
        except OSError:
            os.unlink(self.path)  # nobody listens: a dead process's
            return
        finally:
            probe.close()
        raise Refused("%s is in use by another process" % self.path)

    # -- closing --

    def close(self):
        """Stop serving; in the process that opened it, remove the socket
        and wake the loop (a forked child's copy just lets go: _after_fork_child)."""
        self.closed = True
        s, self.sock = self.sock, None
        if s is None:
            return
        if self.pid == os.getpid():
            try:
                os.unlink(self.path)
            except OSError:
                pass
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes the loop (Linux: a listener's shutdown ends its waits)
            except OSError:
                pass
        s.close()

    # -- serving --

    def serve(self):
        """The loop (run in the quiet thread): never raises."""
        sel = self.sel = selectors.DefaultSelector()
        conns = {}
        try:
            sel.register(self.sock, selectors.EVENT_READ, None)
            while not self.closed:
                timeout = None
                if conns:
                    timeout = max(0.0, min(c.deadline for c in conns.values()) - time.monotonic())
                for key, _ in sel.select(timeout):
                    if self.closed:
                        break
                    try:
                        if key.data is None:
                            self._accept(sel, conns)
                        else:
                            self._read(sel, conns, key.data)
                    except Exception:
                        self.faults += 1
                self._expire(sel, conns)
        except Exception:
            if not self.closed:
                self.faults += 1
        finally:
            for c in list(conns.values()):
                self._drop(sel, conns, c)
            sel.close()

    def _accept(self, sel, conns):
        listener = self.sock
        if listener is None:
            return
        try:
            s, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # e.g. EMFILE: the program has used up its descriptors; the
            self.faults += 1  # connection stays queued, so wait rather than spin
            time.sleep(0.1)
            return
        try:
            creds = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            _pid, uid, _gid = struct.unpack("3i", creds)
        except OSError:
            uid = -1
        if uid not in (self.uid, 0):
            self.rejected += 1
            self._reply_close(s, {"ok": False, "error": "permission denied: uid %d may not control process %d "
                                  "(only uid %d and root may)" % (uid, self.pid, self.uid)})
            return
        if len(conns) >= MAX_CONNECTIONS:
            self.rejected += 1
            self._reply_close(s, {"ok": False, "error": "busy: %d requests in progress" % len(conns)})
            return
        s.setblocking(False)
        c = _Conn(s)
        conns[s] = c
        sel.register(s, selectors.EVENT_READ, c)

    def _drop(self, sel, conns, c):
        conns.pop(c.sock, None)
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError, OSError):
            pass

    def _read(self, sel, conns, c):
        try:
            data = c.sock.recv(MAX_REQUEST + HEADER.size)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the peer left before its request was whole
            self.rejected += 1
            self._drop(sel, conns, c)
            c.sock.close()
            return
        c.buf += data
        if len(c.buf) < HEADER.size:
            return
        try:
            length = parse_header(c.buf, MAX_REQUEST)
        except ValueError as e:
            return self._finish(sel, conns, c, {"ok": False, "error": str(e)})
        if len(c.buf) < HEADER.size + length:
            return
        if len(c.buf) > HEADER.size + length:
            return self._finish(sel, conns, c, {"ok": False, "error": "bytes after the request"})
        self._drop(sel, conns, c)
        self._finish(sel, conns, c, self.handle(c.buf[HEADER.size:]))

    def _expire(self, sel, conns):
        now = time.monotonic()
        for c in [c for c in conns.values() if c.deadline <= now]:
            self._finish(sel, conns, c, {"ok": False, "error": "request not complete within %g s" % REQUEST_SECONDS})

    def _finish(self, sel, conns, c, reply):
        self._drop(sel, conns, c)
        if not reply.get("ok"):
            self.rejected += 1
        self._reply_close(c.sock, reply)

    def _reply_close(self, s, reply):
        try:
            s.settimeout(SEND_SECONDS)
            try:
                data = encode(reply)
            except (TypeError, ValueError) as e:  # a result JSON cannot carry: a bug of ours
                self.faults += 1
                data = encode({"ok": False, "error": "internal error: %s" % e})
            if len(data) > MAX_REPLY + HEADER.size:
                data = encode({"ok": False, "error": "reply of %d bytes is over the limit" % len(data)})
            s.sendall(data)
            self.served += 1
            s.shutdown(socket.SHUT_WR)
            _drain(s)
        except OSError:
            pass
        finally:
            s.close()

    # -- commands --

    def handle(self, body):
        """The reply (a dict) to one request's payload."""
        try:
            import json
            req = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return {"ok": False, "error": "the request is not UTF-8 JSON"}
        if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
            return {"ok": False, "error": "the request is not an object with a cmd"}
        args = req.get("args", {})
        if not isinstance(args, dict):
            return {"ok": False, "error": "args must be an object"}
        from ._commands import COMMANDS, CommandError  # on first use, as json
        fn = COMMANDS.get(req["cmd"])
        if fn is None:
            return {"ok": False, "error": "unknown command %r (%s)" % (req["cmd"][:40], ", ".join(sorted(COMMANDS)))}
        try:
            return {"ok": True, "result": fn(self, args)}
        except CommandError as e:
            return {"ok": False, "error": str(e)}
        except Exception as e:  # a bug of ours: said to the client, never raised in the application
            self.faults += 1
            return {"ok": False, "error": "internal error: %s: %s" % (type(e).__name__, e)}


def _drain(s, limit=1 << 16, seconds=1.0):
    """Read what the peer still sends (at most limit bytes, for at most
    seconds) before closing: a socket closed with unread input is reset,
    and the peer could lose the reply it has not read yet."""
    end = time.monotonic() + seconds
    got = 0
    while got < limit:
        left = end - time.monotonic()
        if left <= 0:
            return
        s.settimeout(left)
        d = s.recv(limit)
        if not d:
            return
        got += len(d)


# ---- this process's channel -----------------------------------------------------------------------

_lock = threading.Lock()
_channel = None


def serve():
    """Open this process's channel (once; again in a forked child) and serve
    it from the quiet thread. The socket's path, or raises Refused."""
    global _channel
    with _lock:
        if _channel is not None and _channel.pid == os.getpid() and not _channel.closed:
            return _channel.path
        ch = Channel()
        ch.open()
        try:
            _yprof._start_quiet_thread(ch.serve)
        except Exception as e:
            ch.close()
            raise Refused("cannot start its thread: %s" % e)
        _channel = ch
        return ch.path


def close():
    """Stop serving and remove the socket (at exit; tests)."""
    global _channel
    with _lock:
        ch, _channel = _channel, None
    if ch is not None:
        ch.close()


def _after_fork_child():
    # The parent's socket and thread are the parent's: the child lets go of
    # its copy of the descriptor (no shutdown, which would end the parent's
    # listening too) and opens its own channel.
    global _channel, _lock
    _lock = threading.Lock()
    ch, _channel = _channel, None
    if ch is None:
        return
    ch.closed = True
    for f in (ch.sock, ch.sel):
        try:
            if f is not None:
                f.close()
        except (OSError, ValueError):
            pass
    ch.sock = ch.sel = None
    try:
        serve()
    except Exception as e:  # Refused, or anything else: said, never raised in the child
        say("control channel not opened: %s" % e)


def say(msg):
    try:
        sys.stderr.write("yprof: %s\n" % msg)
        sys.stderr.flush()
    except Exception:
        pass


os.register_at_fork(after_in_child=_after_fork_child)
atexit.register(close)
