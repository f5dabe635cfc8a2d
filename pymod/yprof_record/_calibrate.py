"""Estimate of the interpreter's own slow-down while a profile hook is set.

On 3.12+, where yprof uses sys.monitoring, the empty hook is an empty C
callback registered for the same events under a spare tool id: measured
with the CALL and C_RETURN/C_RAISE events a recording of C functions takes
(kind 1) and without them (kind 3, builtins=False); for the PEP
523 frame evaluator (3.9-3.11, builtins=False) it is an evaluator that only
calls the default one.

On CPython 3.8-3.11 (less so on 3.12+) having any profile hook takes the
interpreter off its fast paths, a cost outside the hook that the hook cannot
time. We time two small loops with no hook and with an empty C hook (same
machinery, no work): one of one-line calls, one of bytecodes without calls
(attribute, float, int, list and dict work). What the second loses is the
share of Python code's time any hook takes whatever the events: on 3.11 a
profile hook runs every bytecode unspecialised and through the tracing
dispatch (about half the time of such code); before 3.11 and on
sys.monitoring nothing. What the first loses beyond that share is the
cost per event. pollution()["interp_s"] is that cost times the events
recorded, plus the bytecode share of the time left to Python code (the
recorded time less the hook's, that cost and the recorded C functions'
time: C code runs as fast under a hook), at most the share of the time the
first loop lost. docs/performance.md compares the estimate with the
measured slow-down (bench/pollution.py).

When: 15-45 ms of CPU once per process, never in start() (which must take
under 2 ms). Importing yprof_record starts a thread that is never recorded
(yp_quiet.c) to measure the hook start() will use, timing with the thread's
CPU clock so that waits for the GIL don't count. The setprofile hook is per
thread: that thread takes ours off itself, so it measures also while a
recording runs. sys.monitoring is interpreter-wide: a recording that starts
meanwhile makes the thread give up, and stop() measures then, after taking
the callbacks off and before the trace's footer is written. The opt-in PEP
523 evaluator is measured at its first start().
"""

import os
import sys
import time

from . import _yprof

_cost = {}  # by kind (of()): (ns per event, bound share, bytecode share)
# The figures' kinds: the hook kinds (0 setprofile, 1 sys.monitoring, 2 the
# PEP 523 frame evaluator) and sys.monitoring without C functions, whose
# recording takes no CALL events.
MONITORING_NO_BUILTINS = 3
_MON = (1, MONITORING_NO_BUILTINS)
_recording = {"builtins": True}  # the recording's (start() sets it)
_bg = {"pid": 0, "done": True}  # the background measurement: its process, finished
_mon_state = {}  # the tool id the empty sys.monitoring hook holds


def of(hook_kind, builtins):
    """The kind of figures a recording with this hook kind needs."""
    return MONITORING_NO_BUILTINS if hook_kind == 1 and not builtins else hook_kind


def _loop(n):
    def f(x):
        return x

    for i in range(n):
        f(i)


class _Point:
    def __init__(self):
        self.x, self.y = 1.0, 2.0


def _bytecodes(n):
    p, seq, d, t = _Point(), [1, 2, 3], {"a": 1}, 0.0
    for i in range(n):
        t += p.x * p.y - seq[i % 3] + d["a"]
        p.x = t * 1e-9
    return t


def _timed(n, loop=_loop):
    t = time.thread_time()
    loop(n)
    return time.thread_time() - t


def _best_pair(n, reps, hook, background=False, loop=_loop):
    """The best time of the loop without and with the hook, measured
    alternately (a slow spell of the machine hits both alike); None when
    the hook cannot be set. In the background a pair that a start() of a
    recording came into is measured again (setprofile: our hook put on this
    thread too, taken off), or the whole is given up (None: sys.monitoring,
    interpreter-wide)."""
    base = hooked = float("inf")
    done = tries = 0
    while done < reps and tries < 4 * reps:
        tries += 1
        per_thread = background and hook is _yprof._empty_hook
        if per_thread:
            _yprof._unhook_self()
        b = _timed(n, loop)
        if per_thread and _yprof._unhook_self():
            continue  # a start() put our hook on this thread meanwhile
        if not hook(True):
            return None
        try:
            h = _timed(n, loop)
        finally:
            intact = hook(False)
        if background and not per_thread and _yprof._is_running():
            return None  # sys.monitoring: a recording's callbacks came in
        if not intact:
            continue  # setprofile: a start() replaced the empty hook
        base, hooked, done = min(base, b), min(hooked, h), done + 1
    return (base, hooked) if done else None


def _empty_monitoring(on, calls=True, _state=_mon_state):
    """The empty callback on the events a recording takes: with calls (C
    functions recorded), CALL and C_RETURN/C_RAISE too, CALL firing at every
    call site, a Python function's too."""
    mon = sys.monitoring
    E = mon.events
    evs = (E.PY_START, E.PY_RESUME, E.PY_RETURN, E.PY_YIELD, E.PY_UNWIND)
    if on and calls:
        evs += (E.CALL, E.C_RETURN, E.C_RAISE)
    if on:
        for tool in (5, 4, 3):
            try:
                mon.use_tool_id(tool, "yprof-calibration")
            except ValueError:
                continue
            _state["tool"] = tool
            mask = 0
            for ev in evs:
                mon.register_callback(tool, ev, _yprof._mon_noop)
                mask |= ev
            mon.set_events(tool, mask)
            return True
        return False
    tool = _state.pop("tool", None)
    if tool is not None:
        mon.set_events(tool, 0)
        for ev in evs + (E.CALL, E.C_RETURN, E.C_RAISE):
            mon.register_callback(tool, ev, None)
        mon.free_tool_id(tool)
    return True


def _measure(kind, background=False):
    """(ns per event, bound share, bytecode share) for the hook kind, or
    None (given up, or the empty hook could not be set or stay set)."""
    n = 20000
    hook = {1: _empty_monitoring, MONITORING_NO_BUILTINS: lambda on: _empty_monitoring(on, calls=False),
            2: _yprof._empty_eval}.get(kind, _yprof._empty_hook)
    try:
        pair = _best_pair(n, 5, hook, background)
        # on a machine whose cores are all taken the hooked loop came out
        # faster than the plain one (3 processes of 40, a 3.9 fresh-clone
        # run): noise, measured again, twice at most
        for _ in range(2):
            if not pair or pair[1] > pair[0] or kind == 2:
                break
            pair = _best_pair(n, 5, hook, background)
        # sys.monitoring instruments the events' instructions only: a loop
        # without calls runs as without it (measured: 0), and the tool id
        # is held no longer than needed
        code = _best_pair(n // 4, 5, hook, background, _bytecodes) if pair and kind not in _MON else (1.0, 1.0)
    except Exception:
        return None
    if pair is None or code is None:
        return None
    base, hooked = pair
    if hooked <= base and kind != 2:
        # an empty profile function or monitoring callback in effect costs
        # a call per event: no slower means it was not called, not a figure
        # (the PEP 523 evaluator's cost can be within the noise: 0 is one)
        return None
    bytecode = min(0.9, max(0.0, 1 - code[0] / code[1])) if code[1] > 0 else 0.0
    if bytecode < 0.05:  # noise: 3.8, 3.9 and 3.12 measure under 0.01 on a quiet machine
        bytecode = 0.0
    # events per loop: n calls + n returns of f (the loop's own frame and
    # range() are constant overhead); what the bytecode share explains of
    # the hooked loop's time is not the events'
    extra = max(0.0, hooked * (1 - bytecode) - base) / (1 - bytecode)
    return (extra / (2 * n) * 1e9, max(0.0, hooked - base) / hooked if hooked > 0 else 0.0, bytecode)


def wait(timeout=5.0):
    """Until the background measurement is over: a benchmark timing a
    recording right after the import must not count its 10-20 ms of CPU
    (once per process) as the recording's."""
    if _bg["pid"] != os.getpid():
        return
    deadline = time.monotonic() + timeout
    while not _bg["done"] and time.monotonic() < deadline:
        time.sleep(0.001)


def known(kind):
    """The figures of the hook kind if measured, else None; never waits."""
    return _cost.get(kind)


def interp_cost(kind=0):
    """(extra interpreter ns per recorded event, the share of the hooked
    call loop's time the hook took, the share of Python code's time it
    takes whatever the events), all >= 0, measured once per hook kind (0
    setprofile, 1 sys.monitoring, 2 PEP 523 frame evaluator). Measures now
    if needed, after the background measurement of the same kind: call it
    with no hook of ours on this thread (setprofile) or none at all."""
    if kind not in _cost:
        wait(1.0)
    if kind not in _cost:
        if kind in _MON and _bg["pid"] == os.getpid() and not _bg["done"]:
            return (0.0, 0.0, 0.0)  # still measuring, with the empty tool: not known this time
        r = _measure(kind)
        if r is None:
            return (0.0, 0.0, 0.0)  # not measured this time: not kept, measured again next time
        _cost[kind] = r
    return _cost[kind]


def _background(kinds):
    try:
        for kind in kinds:
            if kind not in _cost:
                r = _measure(kind, background=True)
                if r is None:
                    break
                _cost[kind] = r
                if _yprof._is_running() and of(_yprof._hook_kind(), _recording["builtins"]) == kind:
                    _yprof._set_interp(*r)  # the recording that began meanwhile
    finally:
        _bg["done"] = True


def start_background(monitoring):
    """Measure, in a thread never recorded, the hook kind start() will use
    (import time; a forked child measures for itself when it needs to)."""
    _bg.update(pid=os.getpid(), done=False)
    try:
        _yprof._start_quiet_thread(lambda: _background([1, MONITORING_NO_BUILTINS] if monitoring else [0]))
    except Exception:
        _bg["done"] = True


def _after_fork_child():
    """A child forked while the background thread measured sys.monitoring
    would keep its empty tool, called on every event and its id taken, for
    ever: the thread is not in the child to take it off."""
    _bg["done"] = True
    if _mon_state:
        try:
            _empty_monitoring(False)
        except Exception:
            _mon_state.clear()


os.register_at_fork(after_in_child=_after_fork_child)
