"""Runs one workload under one profiler configuration in this process and
prints one JSON line: {"t": seconds, ...}. Used by bench.py."""
import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads  # noqa: E402


def setup(config, tmp, extra):
    """(start, stop) for one configuration; stop() adds yprof's figures to
    `extra`. Also used by gap.py, which switches configurations in one
    process."""
    start = stop = lambda: None
    if config.endswith("-read"):  # an ideal recorder plus a thread reading its records
        import emptyhook
        start0, stop0 = setup(config[:-len("-read")], tmp, extra)

        def start():
            emptyhook.reader(True)
            start0()

        def stop():
            stop0()
            emptyhook.reader(False)
    elif config in ("floor", "floor-tsc"):
        import emptyhook
        how = "tsc" if config == "floor-tsc" else True

        prev = []  # another configuration's thread hook (VizTracer sets its own once)

        def start():
            emptyhook.set(how)
            prev[:] = [getattr(threading, "getprofile", lambda: threading._profile_hook)()]
            threading.setprofile(lambda *a: emptyhook.thread())

        def stop():
            emptyhook.set(False)
            threading.setprofile(prev[0] if prev else None)
    elif config in ("floor-pep523", "floor-pep523-tsc"):
        import emptyhook
        how = "tsc" if config == "floor-pep523-tsc" else True

        def start():
            emptyhook.eval(how)

        def stop():
            emptyhook.eval(False)
    elif config in ("floor-mon", "floor-mon-tsc"):
        import emptyhook
        mon = sys.monitoring
        E = mon.events
        noop = emptyhook.noop("tsc") if config == "floor-mon-tsc" else emptyhook.noop()
        evs = [E.PY_START, E.PY_RESUME, E.PY_THROW, E.PY_RETURN, E.PY_YIELD, E.PY_UNWIND, E.CALL,
               E.C_RETURN, E.C_RAISE]

        def start():
            mon.use_tool_id(4, "floor")
            for ev in evs:
                mon.register_callback(4, ev, noop)
            mask = 0
            for ev in evs:
                mask |= ev
            mon.set_events(4, mask)

        def stop():
            mon.set_events(4, 0)
            mon.free_tool_id(4)
    elif config.startswith("yprof"):
        if config == "yprof-setprofile":
            os.environ["YPROF_HOOK"] = "setprofile"
        if config == "yprof-frame-eval":  # opt-in PEP 523 hook, Python frames only (3.9-3.11)
            os.environ["YPROF_HOOK"] = "frame-eval"
        import yprof_record as yp
        from yprof_record import _calibrate
        _calibrate.wait()  # its one-time 10-20 ms of CPU in the background is not the per-event cost
        clock = "cpu" if config == "yprof-cpu" else "wall"
        builtins = config not in ("yprof-nobuiltins", "yprof-frame-eval")
        path = os.path.join(tmp, "t.yp")

        def start():
            yp.start(path, clock=clock, builtins=builtins)

        def stop():
            yp.stop()
            s = yp.get_stats()
            p = yp.pollution()
            yp._close()
            extra.update(events=s.session["events"], trace_bytes=os.path.getsize(path),
                         pollution_pct=p["pct"], hook_s=p["hook_s"], flusher_s=p["flusher_s"],
                         profiler_bytes=p["bytes"])
    elif config == "cProfile":
        import cProfile
        pr = cProfile.Profile()
        start, stop = pr.enable, pr.disable
    elif config.startswith("yappi"):
        import yappi
        yappi.set_clock_type("cpu" if config == "yappi-cpu" else "wall")
        start, stop = yappi.start, yappi.stop
    elif config == "viztracer":
        from viztracer import VizTracer
        tr = VizTracer(output_file=os.path.join(tmp, "v.json"), verbose=0, tracer_entries=2000000)
        # before 3.12 its tracer sets threading's profile function once, when
        # made; in one process (gap.py) another configuration's stop (yappi's)
        # clears it, so each start puts it back
        thread_hook = getattr(threading, "getprofile", lambda: threading._profile_hook)()

        def start():
            threading.setprofile(thread_hook)
            tr.start()

        def stop():
            tr.stop()
            threading.setprofile(None)
    elif config == "pyinstrument":
        from pyinstrument import Profiler
        pr = Profiler(interval=0.001)
        start, stop = pr.start, pr.stop
    elif config == "control-idle":
        # what YPROF_CONTROL=1 leaves in a program while nothing records: the
        # module imported and the control channel's thread waiting on its socket
        import yprof_record
        if not yprof_record.serve_control():
            raise SystemExit("the control channel did not open")

        def stop():  # what the run had: a channel, and nothing recording
            extra["channel"] = os.path.exists(yprof_record.control_path())
            extra["recording"] = yprof_record.is_running() or yprof_record.status()["events_written"] > 0
    elif config != "none":
        raise SystemExit("unknown config " + config)
    return start, stop


def main():
    config, name = sys.argv[1], sys.argv[2]
    work = workloads.WORKLOADS[name]
    workloads.prepare(name)
    extra = {}
    start, stop = setup(config, tempfile.mkdtemp(prefix="ypbench"), extra)
    start()
    t0 = time.perf_counter()
    work()
    t = time.perf_counter() - t0
    stop()
    extra["t"] = t
    print(json.dumps(extra))


if __name__ == "__main__":
    main()
