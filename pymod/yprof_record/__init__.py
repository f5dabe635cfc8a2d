"""yprof_record — a deterministic, multi-threaded profiler for CPython.

    import yprof_record as yp
    yp.start("trace.yp")          # every thread, from any thread, any time
    ...
    stats = yp.get_stats()        # live, from any thread, also while running
    stats.print(top=10)
    yp.stop()                     # the trace is complete (footer written)

Then ``yprof-analyze trace.yp`` prints a report and writes ``trace.db``.
The API is documented in docs/api.md. Only argument errors raise: bad
arguments raise TypeError/ValueError and an unwritable path OSError from
start(); everything else that goes wrong inside the profiler is counted and
reported by status() and by a warning at stop().
"""

import atexit
import contextvars
import functools
import inspect
import os
import sys
import threading
import warnings

from . import _calibrate, _filter, _follow, _greenlet, _yprof
from .stats import FunctionStats, Stats, TaskStats, ThreadStats

__all__ = [
    "start", "stop", "is_running", "get_stats", "clear_stats", "pollution",
    "status", "profile", "serve_control", "control_path", "set_tag", "tag", "Stats", "FunctionStats",
    "ThreadStats", "TaskStats",
]
__version__ = _yprof.__version__  # pyproject.toml's, compiled in

_CLOCKS = ("wall", "cpu")
_lock = threading.RLock()
_options = {}          # options of the current/last start(), for fork children
_warned = set()

# The tag in effect (docs/api.md, "Tags"): a ContextVar, so every thread
# and every asyncio task has its own; the hook reads it in C where it can
# change (yp_hook_tag.c).
_tag_var = contextvars.ContextVar("yprof_tag", default=None)
_yprof._set_tag_var(_tag_var)
_tags = {"used": False}

# Our own Python code is not profiled.
_yprof._set_ignore_prefix(os.path.dirname(os.path.abspath(__file__)) + os.sep)


# On 3.12+ events come from sys.monitoring (PEP 669) under a tool id of our
# own (not 2, cProfile's): no frame objects, every thread of the interpreter,
# threads created from C included. YPROF_HOOK=setprofile selects the legacy
# hook there too (used by the benchmark to compare the two).
_MONITORING = hasattr(sys, "monitoring") and os.environ.get("YPROF_HOOK", "") != "setprofile"
_tool = None
# On 3.9-3.11 with builtins=False, YPROF_HOOK=frame-eval (read at each
# start()) selects a PEP 523 frame evaluator: Python frames only, no profile
# hook, so the interpreter keeps its fast paths (half the overhead on 3.11).
# Opt-in because on 3.11 any frame evaluator makes every Python call recurse
# on the C stack (the interpreter stops inlining them): a program that
# raised the recursion limit and recurses tens of thousands deep, which
# plain 3.11 runs, would overflow it (docs/api.md). The C side falls back to
# setprofile when another evaluator is installed.
_EVAL_VERSIONS = (3, 9) <= sys.version_info < (3, 12)
_HOOK_SETPROFILE, _HOOK_MONITORING, _HOOK_EVAL = 0, 1, 2
_HOOK_NAMES = {_HOOK_SETPROFILE: "setprofile", _HOOK_MONITORING: "sys.monitoring", _HOOK_EVAL: "frame-eval"}


def _monitoring_on(builtins):
    global _tool
    mon = sys.monitoring
    for tool in (4, 3):
        try:
            mon.use_tool_id(tool, "yprof")
        except ValueError:
            continue
        _tool = tool
        break
    else:
        return False
    E = mon.events
    # PY_THROW apart from PY_START: code left out by a filter answers its
    # local events with DISABLE, which PY_THROW (not local) must never get
    table = [(E.PY_START, _yprof._mon_start), (E.PY_RESUME, _yprof._mon_resume),
             (E.PY_THROW, _yprof._mon_throw), (E.PY_RETURN, _yprof._mon_return),
             (E.PY_YIELD, _yprof._mon_yield), (E.PY_UNWIND, _yprof._mon_unwind)]
    if builtins:
        table += [(E.CALL, _yprof._mon_ccall), (E.C_RETURN, _yprof._mon_creturn),
                  (E.C_RAISE, _yprof._mon_creturn)]
    mask = 0
    for ev, cb in table:
        mon.register_callback(_tool, ev, cb)
        mask |= ev
    mon.set_events(_tool, mask)
    return True


def _monitoring_off():
    global _tool
    if _tool is None:
        return
    mon = sys.monitoring
    try:
        mon.set_events(_tool, 0)
        # places of code a filter left out were disabled (for every later
        # user of the tool id too): a later recording must see them
        if _yprof._take_disabled():
            mon.restart_events()
        for name in ("PY_START", "PY_RESUME", "PY_THROW", "PY_RETURN", "PY_YIELD", "PY_UNWIND",
                     "CALL", "C_RETURN", "C_RAISE"):
            mon.register_callback(_tool, getattr(mon.events, name), None)
        mon.free_tool_id(_tool)
    except Exception:
        pass
    _tool = None


if _MONITORING:
    _yprof._set_missing(sys.monitoring.MISSING)
    _yprof._set_disable(sys.monitoring.DISABLE)

# The interpreter's slow-down under the hook start() will use, measured in
# a thread that is never recorded, so that start() never waits (_calibrate.py).
_calibrate.start_background(_MONITORING)


def _thread_hook(frame, event, arg):
    # threading.setprofile() puts this in every new thread; its first call
    # replaces it with the C hook for that thread. A thread whose first event
    # comes after stop() (started just before it) must not keep a Python
    # profile function for its whole life: it removes itself.
    if _yprof._is_running():
        _yprof._bootstrap()
    else:
        sys.setprofile(None)


_prev_thread_hook = None  # threading's profile function before ours (another tool's)


def _get_thread_profile():
    get = getattr(threading, "getprofile", None)  # 3.10+
    return get() if get else getattr(threading, "_profile_hook", None)


def _set_thread_hook(current):
    """New threads start with our hook; `current` (what was there, read
    before recording began) is put back later."""
    global _prev_thread_hook
    if current is not _thread_hook:
        _prev_thread_hook = current
    threading.setprofile(_thread_hook)


def _restore_thread_hook():
    """Put back threading's profile function as it was before start(), when
    ours is still the one set (never undo another tool's later one)."""
    global _prev_thread_hook
    if _get_thread_profile() is _thread_hook:
        threading.setprofile(_prev_thread_hook)
    _prev_thread_hook = None


def _thread_names():
    # threading's tables read from C: no code runs (Thread._name, not the
    # name property, which could be the application's), so nothing is
    # recorded even while the hook is on
    _yprof._name_threads()


def _eval_slot_free():
    """No other PEP 523 evaluator is installed (a debugger's, a JIT's): yprof
    leaves it alone and uses setprofile, calibrated as setprofile."""
    if not _yprof._empty_eval(True):
        return False
    _yprof._empty_eval(False)
    return True


def _env_wait_ms():
    """YPROF_WAIT_MS: how long a thread whose ring is full waits for the
    flusher before events are dropped (unset or 0: 50 ms)."""
    text = os.environ.get("YPROF_WAIT_MS", "").strip()
    if not text:
        return 0
    try:
        ms = int(text)
        if not 0 <= ms <= 3600000:
            raise ValueError
        return ms
    except ValueError:
        warnings.warn("yprof: YPROF_WAIT_MS=%r is not a number of milliseconds (0 to 3600000); "
                      "using the default, 50" % text, RuntimeWarning, stacklevel=3)
        return 0


def start(path="yprof.yp", *, clock="wall", builtins=True, include=None, exclude=None, follow_children=False,
          _ring_bits=0, _flush_ms=0, _wait_ms=0, _open_frames=True):
    """Start recording every thread (running ones and those started later).

    path: the trace file. A later start() with the same path continues the
    same trace as a new interval; a different path finishes the current
    trace and starts a new one. clock: "wall" or "cpu" (per-thread CPU
    time). builtins: also record C functions (len, list.append, ...).
    include, exclude: a pattern or a list of them (module names, or file
    path globs): only code that an include pattern matches (any code when
    there is none) and no exclude pattern matches is recorded; the time of
    code left out counts as its nearest recorded caller's own, and the C
    functions it calls are left out too (docs/api.md).
    follow_children: every Python process started while this recording
    runs (multiprocessing's spawn and forkserver children, subprocess
    running Python, and their children) records too, into
    <path without .yp>.<pid>.yp with the same options; a fork child records
    so whether or not this is set.
    Calling it while running does nothing. Returns True if it started.
    (_open_frames=False: the frames running now are not recorded, the
    command line's own.)"""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError("path must be a str or os.PathLike, not %s" % type(path).__name__)
    path = os.fsdecode(os.fspath(path))
    if not path:
        raise ValueError("path must not be empty")
    if clock not in _CLOCKS:
        raise ValueError("clock must be 'wall' or 'cpu', not %r" % (clock,))
    if not isinstance(builtins, (bool, int)):
        raise TypeError("builtins must be a bool")
    if not isinstance(follow_children, (bool, int)):
        raise TypeError("follow_children must be a bool")
    include = _filter.patterns(include, "include")
    exclude = _filter.patterns(exclude, "exclude")
    path = os.path.abspath(path)
    _wait_ms = _wait_ms or _env_wait_ms()
    with _lock:
        if _yprof._is_running():
            return False
        inc_mods, inc_globs = _filter.split(include)
        exc_mods, exc_globs = _filter.split(exclude)
        _yprof._set_filter(inc_mods, inc_globs, exc_mods, exc_globs)  # ValueError: too many filters
        cmdline = " ".join([sys.executable] + list(sys.argv))
        # sys.monitoring when its tool id is free, else the setprofile hook.
        # Everything Python-level happens before the hook is on, so none of
        # it is recorded; what start() does after (a C call or two, the
        # lock's release) is not recorded either: it is yprof_record's code
        if _MONITORING and _tool is None:
            kind = _HOOK_MONITORING
        elif (_EVAL_VERSIONS and not builtins and os.environ.get("YPROF_HOOK", "") == "frame-eval"
              and _eval_slot_free()):
            kind = _HOOK_EVAL
        else:
            kind = _HOOK_SETPROFILE
        if kind == _HOOK_MONITORING and not _monitoring_on(bool(builtins)):
            kind = _HOOK_SETPROFILE  # every tool id taken
        # the interpreter's slow-down under a hook: measured in the
        # background since the import, else at stop() (-1: not known yet);
        # the opt-in frame evaluator's before it is installed
        _calibrate._recording["builtins"] = bool(builtins)
        cal = _calibrate.of(kind, builtins)
        per_event, share, bytecode = _calibrate.interp_cost(cal) if kind == _HOOK_EVAL else (
            _calibrate.known(cal) or (-1.0, -1.0, -1.0))
        thread_profile = _get_thread_profile()
        if kind == _HOOK_SETPROFILE:
            _set_thread_hook(thread_profile)
        _thread_names()
        _options.update(path=path, clock=clock, builtins=bool(builtins),
                        include=inc_mods + inc_globs, exclude=exc_mods + exc_globs,
                        follow_children=bool(follow_children))
        try:
            started = _yprof._start(path, clock == "cpu", bool(builtins), cmdline, _ring_bits, _flush_ms,
                                    _wait_ms, per_event, share, bytecode, kind, bool(_open_frames))
        finally:
            if not _yprof._is_running():  # it raised, or could not start: undo
                _monitoring_off()
                _restore_thread_hook()
        if started and kind != _HOOK_SETPROFILE and _yprof._hook_kind() == _HOOK_SETPROFILE:
            _set_thread_hook(thread_profile)  # the frame evaluator could not be used
        if started:
            if _tags["used"]:  # this thread's tag, for the new recording
                _tell_tag(_tag_var.get())
            _greenlet.trace()
            _follow.guard_exit()
            if follow_children:
                _follow.export(path, clock, builtins, _options["include"], _options["exclude"])
        return started


def _in_task():
    """Whether an asyncio task's step runs in this thread now (its tag is
    then the task's, not the thread's own)."""
    aio = sys.modules.get("asyncio")
    if aio is None:
        return False
    try:
        return aio.current_task() is not None
    except RuntimeError:  # no running event loop
        return False


def _tell_tag(value):
    _yprof._set_tag(value, _in_task())


def _check_tag(value):
    if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
        raise TypeError("a tag is a str or an int (or None), not %s" % type(value).__name__)


def set_tag(value):
    """The tag of the calls this context (thread, asyncio task) starts from
    now on: a str or an int; None clears it."""
    _check_tag(value)
    _tags["used"] = True
    _tag_var.set(value)
    _tell_tag(value)


class tag:
    """`with tag(value):` or `@tag(value)`: the calls started inside have
    this tag, the one before is back after (async functions too)."""

    def __init__(self, value):
        _check_tag(value)
        self.value = value
        self._tokens = []

    def __enter__(self):
        _tags["used"] = True
        self._tokens.append(_tag_var.set(self.value))
        _tell_tag(self.value)
        return self

    def __exit__(self, *exc):
        _tag_var.reset(self._tokens.pop())
        _tell_tag(_tag_var.get())
        return False

    def __call__(self, fn):
        value = self.value
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def tagged_coroutine(*args, **kwargs):
                with tag(value):
                    return await fn(*args, **kwargs)
            return tagged_coroutine

        @functools.wraps(fn)
        def tagged(*args, **kwargs):
            with tag(value):
                return fn(*args, **kwargs)
        return tagged


def stop():
    """Stop recording in every thread, from any thread. The trace is flushed
    and gets a footer. Harmless when not running. Returns True if it was
    running."""
    with _lock:
        if not _yprof._is_running():
            return False
        _monitoring_off()
        _follow.withdraw()
        _thread_names()
        _settle_calibration()
        stopped = _yprof._stop()
        _restore_thread_hook()  # after: its calls are not the application's
    _warn_errors()
    return stopped


def _settle_calibration():
    """The interpreter's slow-down under the hook in use, before the trace's
    footer is written, if the background measurement has not given it:
    with no hook of ours left to disturb it (sys.monitoring's were taken
    off; setprofile's is taken off this thread, which is stopping)."""
    kind = _yprof._hook_kind()
    cal = _calibrate.of(kind, _options.get("builtins", True))
    if _calibrate.known(cal) is None:
        if kind == _HOOK_SETPROFILE:
            _yprof._unhook_self()  # ours (start() replaced every thread's); stop() removes the others'
        _yprof._set_interp(*_calibrate.interp_cost(cal))


def _warn_errors():
    st = _yprof._status()
    msg = None
    if st["error"]:
        msg = "yprof: " + st["error_text"]
    elif st["dropped_events"]:
        msg = "yprof: %d events were dropped (the flusher fell behind)" % st["dropped_events"]
    elif st["alloc_failures"]:
        msg = "yprof: %d allocation failures (some events not recorded)" % st["alloc_failures"]
    if msg and msg not in _warned:
        _warned.add(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)


def is_running():
    """True while recording."""
    return _yprof._is_running()


def get_stats(timeout=2.0):
    """A snapshot of the statistics so far (every interval since the last
    clear_stats()), from any thread, while running or not. Waits at most
    `timeout` seconds for the flusher to take what the rings hold."""
    _thread_names()
    cap = _yprof._snapshot(int(max(0.0, float(timeout)) * 1000), _options.get("path", ""))
    return Stats(cap)


def clear_stats():
    """Reset the live statistics (any thread, also while running). The trace
    file keeps every event."""
    _yprof._clear()


def pollution():
    """The profiler's own cost: pct (share of the recorded run time the
    application's threads spent on the profiler: hook_s + interp_s),
    flusher_pct (the flusher's CPU, flusher_s, as a share of the same time:
    another core's, when one is free), hook_s, wait_s, flusher_s, interp_s
    (estimated interpreter slow-down caused by having a hook at all), app_s
    (recorded wall time) and bytes (memory held)."""
    return _yprof._pollution()


def status():
    """Recorder state: running, path, hook (where events come from:
    "sys.monitoring", "frame-eval" or "setprofile"), write errors, dropped
    events, ..."""
    st = _yprof._status()
    st["hook"] = _HOOK_NAMES.get(_yprof._hook_kind(), "?")
    st["include"] = list(_options.get("include", ()))
    st["exclude"] = list(_options.get("exclude", ()))
    st["follow_children"] = bool(_options.get("follow_children", False)) and _yprof._is_running()
    return st


class profile:
    """Context manager and decorator:

        with yprof_record.profile("t.yp"): ...
        @yprof_record.profile("t.yp")
        def main(): ...
    """

    def __init__(self, path="yprof.yp", *, clock="wall", builtins=True, include=None, exclude=None):
        self.path, self.clock, self.builtins = path, clock, builtins
        self.include, self.exclude = include, exclude
        self._started = False

    def _options(self):
        return dict(clock=self.clock, builtins=self.builtins, include=self.include, exclude=self.exclude)

    def __enter__(self):
        self._started = start(self.path, **self._options())
        return self

    def __exit__(self, *exc):
        if self._started:
            stop()
        return False

    def __call__(self, func):
        import functools

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with profile(self.path, **self._options()):
                return func(*args, **kwargs)

        return wrapper


def serve_control():
    """Open this process's control channel, so that `yprof ctl PID ...` and
    `yprof top PID` can start, stop and read the profiler from outside
    (docs/api.md). Idempotent; a forked child opens its own. Returns the
    socket's path, or None when the channel could not be opened safely (a
    RuntimeWarning says why; the program is not affected)."""
    from . import _control
    try:
        return _control.serve()
    except _control.Refused as e:
        warnings.warn("yprof: control channel not opened: %s" % e, RuntimeWarning, stacklevel=2)
        return None


def control_path(pid=None):
    """The path of process pid's control socket (this process's by default)."""
    from . import _control
    return _control.control_path(pid)


def _close():
    """Stop and finish the trace (registered with atexit)."""
    with _lock:
        _monitoring_off()
        _follow.withdraw()
        if _yprof._is_running():
            _thread_names()
            _settle_calibration()
        _yprof._close()
        _restore_thread_hook()


def _before_fork():
    # Held across the fork by the forking thread: no other thread is inside
    # start()/stop() (which run Python code under it) when the child is
    # made, so the child never inherits it held by a thread it does not have.
    _lock.acquire()


def _after_fork_parent():
    _lock.release()


def _after_fork_child():
    global _lock
    _lock = threading.RLock()  # ours was held by this thread (_before_fork)
    was = _yprof._is_running()
    _monitoring_off()
    _yprof._after_fork_child()
    _restore_thread_hook()
    if was and _options.get("path"):
        try:
            start(_follow.child_path(_options["path"], os.getpid()),
                  clock=_options["clock"], builtins=_options["builtins"],
                  include=_options["include"], exclude=_options["exclude"],
                  follow_children=_options.get("follow_children", False))
            _follow.guard_sigterm()  # a pool's terminate() must not lose what the rings hold
        except Exception:
            pass  # the child runs on unprofiled rather than fail


atexit.register(_close)
# The C side holds its own locks across a fork (pthread_atfork, taken after
# ours: before-hooks run before the fork() call itself).
os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent,
                    after_in_child=_after_fork_child)
