"""`yprof top PID`: a live view of a running process's functions, through
its control channel (_ctl.py): calls per second, self and total time over
the last interval and since the recording started. Plain ANSI, no curses."""

import argparse
import json
import os
import select
import shutil
import sys
import time

from . import _ctl

_SORTS = {"calls": "calls_per_s", "self": "self_pct", "total": "total_pct"}
_KEYS = {"c": "calls", "s": "self", "t": "total"}


def parser():
    p = argparse.ArgumentParser(
        prog="yprof top", description="A live view of process PID's functions (the process has a control "
        "channel: yprof ctl --help). Starts a recording when none runs, and stops it on quitting; keys: "
        "q quits, c/s/t sort by calls/s, self %%, total %%. Percentages are of one thread's time: a "
        "function busy in two threads shows 200%%.")
    p.add_argument("pid", help="the process")
    p.add_argument("-i", "--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")
    p.add_argument("--top", type=int, default=0, help="rows to show (default: what fits, or 20)")
    p.add_argument("--sort", choices=sorted(_SORTS), default="self", help="calls (per second), self or total "
                   "(%% over the last interval; default self)")
    p.add_argument("--thread", help="one thread's functions (name or id)")
    p.add_argument("--once", action="store_true", help="one refresh, printed without terminal codes, then quit")
    p.add_argument("--json", action="store_true", help="each refresh as one JSON line")
    p.add_argument("-o", "--output", help="the trace of the recording top starts (default: a temporary "
                   "file beside the channel, removed on quitting)")
    p.add_argument("--include", action="append", metavar="PATTERN",
                   help="the recording top starts: only these modules or files (as yprof ctl start)")
    p.add_argument("--exclude", action="append", metavar="PATTERN",
                   help="the recording top starts: not these modules or files")
    return p


def rows(prev, cur, dt):
    """Per function: the interval's rates (dt seconds) and the totals since
    the start (the live statistics' duration)."""
    before = {f["id"]: f for f in (prev["functions"] if prev else [])}
    dur = cur["session"].get("duration_s") or 0.0
    out = []
    for f in cur["functions"]:
        p = before.get(f["id"])
        dc, ds, dtot = f["ncalls"], f["self_s"], f["total_s"]
        if p and p["ncalls"] <= f["ncalls"]:  # else the statistics were cleared meanwhile
            dc, ds, dtot = dc - p["ncalls"], ds - p["self_s"], dtot - p["total_s"]
        out.append({
            "name": f["name"], "module": f["module"], "filename": f["filename"], "lineno": f["lineno"],
            "calls_per_s": dc / dt if dt > 0 else 0.0, "self_pct": 100.0 * ds / dt if dt > 0 else 0.0,
            "total_pct": 100.0 * dtot / dt if dt > 0 else 0.0, "ncalls": f["ncalls"], "self_s": f["self_s"],
            "total_s": f["total_s"], "self_pct_all": 100.0 * f["self_s"] / dur if dur > 0 else 0.0,
            "total_pct_all": 100.0 * f["total_s"] / dur if dur > 0 else 0.0,
        })
    return out


def ordered(rs, sort):
    k = _SORTS[sort]
    alltime = {"calls_per_s": "ncalls", "self_pct": "self_s", "total_pct": "total_s"}[k]
    return sorted(rs, key=lambda r: (r[k], r[alltime]), reverse=True)


def _label(r, room):
    loc = "" if not r["lineno"] else "  %s:%d" % (os.path.basename(r["filename"]), r["lineno"])
    text = r["name"] + loc
    if room > 0 and len(text) > room:
        text = r["name"] if len(r["name"]) <= room else r["name"][:max(1, room - 1)] + "…"
    return text


def render(info, rs, n, width):
    head = ("yprof top: pid %d  %s  every %.3g s  sort %s%s  pollution %.1f%%"
            % (info["pid"], "recording " + info["path"] if info["running"] else "idle", info["interval"],
               info["sort"], "  thread " + info["thread"] if info["thread"] else "", info["pct"]))
    lines = [head[:width] if width else head,
             "%-25s  %-25s" % ("---- last interval ----", "------ since start ------"),
             "%9s %7s %7s  %9s %7s %7s  %s" % ("calls/s", "self%", "total%", "calls", "self%", "total%", "function")]
    room = width - 53 if width else 0
    for r in rs[:n]:
        lines.append("%9.1f %7.1f %7.1f  %9d %7.1f %7.1f  %s" % (
            r["calls_per_s"], r["self_pct"], r["total_pct"], r["ncalls"], r["self_pct_all"], r["total_pct_all"],
            _label(r, room)))
    return "\n".join(lines) + "\n"


class _Keys:
    """Single keys from a terminal (cbreak mode, restored on exit); none otherwise."""

    def __init__(self, enabled):
        self.fd, self.saved = None, None
        if enabled and sys.stdin.isatty():
            import termios
            import tty
            self.fd = sys.stdin.fileno()
            self.saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)

    def wait(self, seconds):
        """A key pressed within seconds, or None after them."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            if self.fd is None:
                time.sleep(left)
                return None
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                return os.read(self.fd, 1).decode("latin-1")

    def close(self):
        if self.saved is not None:
            import termios
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


def top_main(argv):
    opts = parser().parse_args(argv)
    pid = _ctl._pid(opts.pid, "yprof top")
    if not opts.interval > 0 or opts.top < 0:
        sys.stderr.write("yprof top: --interval must be above 0 and --top 0 or more\n")
        return 2
    try:
        return _top(pid, opts)
    except _ctl.Failed as e:
        sys.stderr.write("yprof: %s\n" % e)
        return 1


def _top(pid, opts):
    st = _ctl.request(pid, "status")
    started, temp = False, None
    if not st["running"]:
        path = opts.output
        if not path:
            temp = path = os.path.join(os.path.dirname(_ctl._target(pid)), "top.%d.yp" % pid)
        _ctl.request(pid, "start", path=os.path.abspath(path), include=_ctl._patterns(opts.include),
                     exclude=_ctl._patterns(opts.exclude))
        started = True
    keys = _Keys(not opts.once and not opts.json)
    sort = opts.sort
    try:
        prev, t_prev = _snapshot(pid, opts), time.monotonic()
        while True:
            key = keys.wait(opts.interval)
            cur, t_cur = _snapshot(pid, opts), time.monotonic()
            dt = _elapsed(prev, cur, t_cur - t_prev)
            if key in ("q", "Q"):
                break
            sort = _KEYS.get(key, sort)
            _show(pid, opts, cur, ordered(rows(prev, cur, dt), sort), sort)
            prev, t_prev = cur, t_cur
            if opts.once:
                break
    except KeyboardInterrupt:
        pass
    finally:
        keys.close()
        if started:
            try:
                _ctl.request(pid, "stop")
            except _ctl.Failed:
                pass
            if temp:
                try:
                    os.unlink(temp)
                except OSError:
                    pass
    return 0


def _snapshot(pid, opts):
    return _ctl.request(pid, "stats", format="json", top=0, sort="total", thread=opts.thread)


def _elapsed(prev, cur, wall):
    """The recorded time between two snapshots (wall time when none was)."""
    d = (cur["session"].get("duration_s") or 0.0) - (prev["session"].get("duration_s") or 0.0)
    return d if d > 0 else wall


def _show(pid, opts, cur, rs, sort):
    st = cur["session"]
    info = {"pid": pid, "running": cur["running"], "path": st.get("trace_path", ""), "interval": opts.interval,
            "sort": sort, "thread": cur["thread"], "pct": st.get("pollution_pct", 0.0)}
    size = shutil.get_terminal_size((100, 24))
    n = opts.top or (max(5, size.lines - 5) if sys.stdout.isatty() and not opts.once else 20)
    if opts.json:
        sys.stdout.write(json.dumps(dict(info, functions=rs[:n])) + "\n")
    elif opts.once or not sys.stdout.isatty():
        sys.stdout.write(render(info, rs, n, size.columns if sys.stdout.isatty() else 0))
    else:
        sys.stdout.write("\x1b[H\x1b[2J" + render(info, rs, n, size.columns))
    sys.stdout.flush()
