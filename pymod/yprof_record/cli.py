"""The `yprof` command: record a program and report on it, or analyze a
trace (the same as yprof-analyze)."""

import os
import shutil
import subprocess
import sys

USAGE = """\
usage: yprof run [options] (script.py | -m module) [args]
       yprof analyze TRACE.yp [yprof-analyze options]
       yprof ctl PID start|stop|status|stats|save|clear [options]
       yprof top PID [options]
       yprof list

commands:
  run       record the program (every thread), then print the report and
            write the database next to the trace; everything after the
            script or the module's name is the program's
  analyze   read a trace: report, database, exports (yprof analyze --help)
  ctl       start, stop and read the profiler of a running process through
            its control channel (yprof ctl --help)
  top       a live view of a running process's functions (yprof top --help)
  list      the processes with a control channel (pid, state, command)

run's options (before the script):
  -o, --output PATH   trace file to write (default yprof.yp)
  --clock wall|cpu    wall (monotonic, default) or per-thread CPU time
  --no-builtins       do not record C functions
  --include PATTERN   record only these modules (and submodules) or files
                      (path globs); repeat, or separate with commas; the
                      script itself is __main__
  --exclude PATTERN   do not record these modules or files
  --follow-children   record every Python child process too (multiprocessing
                      with fork, spawn or forkserver; subprocess running
                      Python), each into OUTPUT.<pid>.yp; the report and the
                      database then cover the whole family
  -m module           run a library module as a script
  --top N             report: rows to show (default 20)
  --sort KEY          report: total (default), self, ncalls or avg
  --threads           report: one table per thread too
  --control           open the control channel (yprof ctl) while it runs
  --idle              with --control: record nothing until yprof ctl starts it

exit status: the program's (run), 1 when the profiler failed, 2 bad usage.
"""


def analyzer_path():
    """yprof-analyze: beside this Python's scripts, else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "yprof-analyze")
    if os.path.exists(here):
        return here
    return shutil.which("yprof-analyze")


def report_args(opts):
    """yprof-analyze's options for the report yprof run asked for."""
    out = []
    if opts.top is not None:
        out += ["--top", str(opts.top)]
    if opts.sort:
        out += ["--sort", opts.sort]
    if opts.threads:
        out.append("--threads")
    return out


def trace_header(path):
    """(pid, ppid, start_wall_ns) from a trace's header, None when it is not
    one (docs/format.md, "File header")."""
    import struct
    try:
        with open(path, "rb") as f:
            h = f.read(64)
    except OSError:
        return None
    if len(h) < 64 or h[:8] != b"YPROF\x00\r\n":
        return None
    wall, = struct.unpack_from("<Q", h, 32)
    pid, ppid = struct.unpack_from("<II", h, 48)
    return pid, ppid, wall


def family(output):
    """The children's traces of the run that wrote output: named
    <stem>.<pid>[.<pid>...].yp beside it and started after it (older ones
    are an earlier run's)."""
    import re
    root = trace_header(output)
    if root is None:
        return []
    stem, ext = os.path.splitext(os.path.abspath(output))
    d, base = os.path.split(stem)
    pat = re.compile(re.escape(base) + r"(\.\d+)+" + re.escape(ext or ".yp") + "$")
    out = []
    for name in sorted(os.listdir(d or ".")):
        path = os.path.join(d, name)
        h = pat.match(name) and trace_header(path)
        if h and h[2] >= root[2]:
            out.append(path)
    return out


def end_multiprocessing_helpers():
    """multiprocessing's resource tracker and fork server (Python processes
    the program started, recorded with it) end when this process does; the
    report is made before, so they are ended now, as at exit: their traces
    are then whole."""
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return
    try:  # what multiprocessing does at exit (atexit): pools finished, semaphores let go
        sys.modules["multiprocessing.util"]._exit_function()
    except Exception:
        return
    for name, attr in (("multiprocessing.forkserver", "_forkserver"),
                       ("multiprocessing.resource_tracker", "_resource_tracker")):
        helper = getattr(sys.modules.get(name), attr, None)
        try:
            helper._stop()
        except Exception:  # not running, or a Python whose helper differs
            pass


def run_command(rest):
    from .__main__ import parse, run

    opts = parse(rest, "yprof run", report=True)
    exe = analyzer_path()
    status = run(opts)
    try:
        sys.stdout.flush()
    except (OSError, ValueError):  # the program closed it (json.tool does): fd 1 is still ours
        pass
    if not opts.started:  # the target never ran: said already
        return status
    end_multiprocessing_helpers()
    if not os.path.exists(opts.output):  # --idle, and nothing recorded it
        print("yprof: nothing was recorded (no %s)" % opts.output, file=sys.stderr)
        return status
    if exe:
        traces = [opts.output] + family(opts.output)  # fork children record even without --follow-children
        if len(traces) > 1:
            print("yprof: %d processes recorded" % len(traces), file=sys.stderr)
        rc = subprocess.call([exe] + report_args(opts) + (["--processes"] if len(traces) > 1 else []) + traces)
        if rc and not status:
            status = rc
    else:
        print("yprof: yprof-analyze not found; trace in %s" % opts.output, file=sys.stderr)
    return status


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        (sys.stdout if argv else sys.stderr).write(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "run":
        return run_command(rest)
    if cmd in ("ctl", "list", "top"):
        from . import _ctl, _top
        return {"ctl": _ctl.ctl_main, "list": _ctl.list_main, "top": _top.top_main}[cmd](rest)
    if cmd == "analyze":
        exe = analyzer_path()
        if not exe:
            print("yprof: yprof-analyze not found", file=sys.stderr)
            return 1
        return subprocess.call([exe] + rest)
    print("yprof: unknown command %r (run, analyze, ctl, top, list; see yprof --help)" % cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
