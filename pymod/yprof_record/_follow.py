"""Children followed, and traces finished however a process ends.

start(follow_children=True) puts the recording's options in the environment
(YPROF_FOLLOW); every Python started from then on with yprof_record
installed (multiprocessing's spawn and forkserver children, subprocess
running Python, their children) sees it at start-up (yprof_control.pth) and
records into <name>.<pid>.yp beside the parent's trace. stop() takes it out
of the environment again. A fork child of a recording process records
whether or not children are followed (__init__._after_fork_child).

A process leaving through os._exit() (multiprocessing's workers do) skips
atexit: os._exit is wrapped to finish the trace first. A child killed by
SIGTERM (Pool.terminate(), `with Pool(...)` at its end) would lose what its
rings hold: a child whose SIGTERM is the default has it caught in C
(yp_sigterm.c) by a thread that finishes the trace and then dies of
SIGTERM as it would have. Not a Python handler: that one runs when the
main thread next checks for signals, and a SIGTERM that comes just before
a blocking call (a worker reading its queue) is seen only when the call
returns, maybe never.
"""
import json
import os
import signal

ENV = "YPROF_FOLLOW"
_real_exit = os._exit
_prev_env = []  # the variable's value before start() set it (None: unset)


def export(path, clock, builtins, include, exclude):
    """Children started from now on record (start(follow_children=True))."""
    if not _prev_env:
        _prev_env.append(os.environ.get(ENV))
    os.environ[ENV] = json.dumps({"path": path, "clock": clock, "builtins": bool(builtins),
                                  "include": list(include), "exclude": list(exclude)})


def withdraw():
    """Children started from now on do not record (stop())."""
    if _prev_env:
        prev = _prev_env.pop()
        if prev is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = prev


def child_path(path, pid):
    stem, ext = os.path.splitext(path)
    return "%s.%d%s" % (stem, pid, ext or ".yp")


def child_start():
    """At start-up of a Python whose parent follows its children: record
    into the parent's trace name with this pid. Never raises; a problem is
    one line on stderr and the program runs unprofiled."""
    import yprof_record
    try:
        opts = json.loads(os.environ[ENV])
        yprof_record.start(child_path(opts["path"], os.getpid()), clock=opts["clock"],
                           builtins=opts["builtins"], include=opts["include"] or None,
                           exclude=opts["exclude"] or None, follow_children=True, _open_frames=False)
        guard_sigterm()
    except Exception as e:
        import sys
        try:
            sys.stderr.write("yprof: this child process is not recorded (%s=%r): %s: %s\n"
                             % (ENV, os.environ.get(ENV), type(e).__name__, e))
        except Exception:
            pass


def _exit(status):
    """os._exit(status), the trace finished first (its footer written)."""
    try:
        import yprof_record
        yprof_record._close()
    except BaseException:
        pass
    _real_exit(status)


def guard_exit():
    """os._exit finishes the trace (idempotent; stays for the process's life:
    it does nothing once the trace is finished)."""
    if os._exit is _real_exit:
        os._exit = _exit


def _sigterm_watch():
    """The quiet thread: SIGTERM came; the trace is finished, then the
    process dies of it."""
    from . import _yprof
    _yprof._sigterm_wait()
    try:
        import yprof_record
        yprof_record._close()
    except BaseException:
        pass
    finally:
        _yprof._sigterm_die()


def guard_sigterm():
    """A child whose SIGTERM is the default (death) finishes its trace first.
    A handler the program sets (signal.signal) replaces this one, before or
    after."""
    from . import _yprof
    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return  # the program's own, or ignored
    try:
        if _yprof._sigterm_catch() and _watch.get("pid") != os.getpid():
            _watch["pid"] = os.getpid()
            _yprof._start_quiet_thread(_sigterm_watch)
    except Exception:
        pass


_watch = {}  # the process whose watching thread runs
