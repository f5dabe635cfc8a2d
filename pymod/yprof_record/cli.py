"""The `yprof` command.

    yprof run [-o trace.yp] [--clock cpu] [--no-builtins] script.py [args]
    yprof run [options] -m module [args]
        record the program, then print yprof-analyze's report and write the
        database next to the trace.
    yprof analyze TRACE [yprof-analyze options]
        the same as yprof-analyze.
"""

import os
import shutil
import subprocess
import sys


def analyzer_path():
    """yprof-analyze: beside this Python's scripts, else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "yprof-analyze")
    if os.path.exists(here):
        return here
    return shutil.which("yprof-analyze")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    exe = analyzer_path()
    if cmd == "analyze":
        if not exe:
            print("yprof: yprof-analyze not found", file=sys.stderr)
            return 1
        return subprocess.call([exe] + rest)
    if cmd != "run":
        print("yprof: unknown command %r (run, analyze)" % cmd, file=sys.stderr)
        return 2
    from .__main__ import build_parser, run

    opts = build_parser("yprof run").parse_args(rest)
    status = run(opts)
    sys.stdout.flush()
    if exe:
        rc = subprocess.call([exe, opts.output])
        if rc and not status:
            status = rc
    else:
        print("yprof: yprof-analyze not found; trace in %s" % opts.output, file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
