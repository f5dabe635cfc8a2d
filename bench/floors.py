"""The empty hook the benchmarks' children install: sys.monitoring's on
3.12+ (the cheaper hook there, yprof's own kind), setprofile's before;
`how` True for the empty hook, "tsc" for the ideal recorder (the same hook
reading the TSC and storing 16 bytes per event). emptyhook is built by
bench/run.sh."""
import sys


def install(how=True):
    import emptyhook
    if sys.version_info < (3, 12):
        emptyhook.set(how)
        return
    mon = sys.monitoring
    E = mon.events
    mon.use_tool_id(4, "floor")
    mask = 0
    for ev in (E.PY_START, E.PY_RESUME, E.PY_THROW, E.PY_RETURN, E.PY_YIELD, E.PY_UNWIND, E.CALL, E.C_RETURN,
               E.C_RAISE):
        mon.register_callback(4, ev, emptyhook.noop("tsc") if how == "tsc" else emptyhook.noop())
        mask |= ev
    mon.set_events(4, mask)
