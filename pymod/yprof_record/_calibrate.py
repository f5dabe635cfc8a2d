"""Estimate of the interpreter's own slow-down while a profile hook is set.

On 3.12+, where yprof uses sys.monitoring, the empty hook is an empty C
callback registered for the same events under a spare tool id; for the PEP
523 frame evaluator (3.9-3.11, builtins=False) it is an evaluator that only
calls the default one.

On CPython 3.8-3.11 (less so on 3.12+) having any profile hook takes the
interpreter off its fast paths, a cost outside the hook that the hook cannot
time. At the first start() we time a small call-heavy loop with no hook and
with an empty C hook (same machinery, no work): the difference per event is
what any hook costs the interpreter. pollution()["interp_s"] is that figure
times the number of events recorded, but at most the same share of the
recorded time (less the hook's) as the loop lost: on 3.11 the slow-down
follows the bytecodes run, not the events, so per event alone it
over-states code that does less per call than the loop. About 20 ms once
per process; docs/performance.md compares the estimate with the measured
slowdown (bench/pollution.py).
"""

import time

from . import _yprof

_cost = {}  # by hook kind: (ns per event, share)


def _loop(n):
    def f(x):
        return x

    for i in range(n):
        f(i)


def _timed(n):
    t = time.perf_counter()
    _loop(n)
    return time.perf_counter() - t


def _best_pair(n, reps, hook):
    """The best time of the loop without and with the hook, measured
    alternately (a slow spell of the machine hits both alike); None when
    the hook cannot be set."""
    base = hooked = float("inf")
    for _ in range(reps):
        base = min(base, _timed(n))
        if not hook(True):
            return None
        try:
            hooked = min(hooked, _timed(n))
        finally:
            hook(False)
    return base, hooked


def _empty_monitoring(on, _state={}):
    import sys
    mon = sys.monitoring
    E = mon.events
    evs = (E.PY_START, E.PY_RESUME, E.PY_RETURN, E.PY_YIELD, E.PY_UNWIND)
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
        for ev in evs:
            mon.register_callback(tool, ev, None)
        mon.free_tool_id(tool)
    return True


def interp_cost(kind=0):
    """(extra interpreter ns per recorded event, the share of the hooked
    loop's time that extra was), both >= 0, measured once per hook kind (0
    setprofile, 1 sys.monitoring, 2 PEP 523 frame evaluator)."""
    if kind not in _cost:
        n = 20000
        hook = {1: _empty_monitoring, 2: _yprof._empty_eval}.get(kind, _yprof._empty_hook)
        try:
            pair = _best_pair(n, 5, hook)
            if pair is None:
                return (0.0, 0.0)
            base, hooked = pair
            # events per loop: n calls + n returns of f (the loop's own
            # frame and range() are constant overhead)
            extra = max(0.0, hooked - base)
            _cost[kind] = (extra / (2 * n) * 1e9, extra / hooked if hooked > 0 else 0.0)
        except Exception:
            _cost[kind] = (0.0, 0.0)
    return _cost[kind]
