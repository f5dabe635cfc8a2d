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
    if not os.path.exists(opts.output):  # --idle, and nothing recorded it
        print("yprof: nothing was recorded (no %s)" % opts.output, file=sys.stderr)
        return status
    if exe:
        rc = subprocess.call([exe] + report_args(opts) + [opts.output])
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
