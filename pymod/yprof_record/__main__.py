"""python -m yprof_record [-o trace.yp] [--clock cpu] [--no-builtins] script.py [args]
python -m yprof_record [options] -m module [args]

Runs the target as __main__ with its own argv (as python -m cProfile does),
recording every thread, and finishes the trace when it ends."""

import argparse
import os
import runpy
import sys

import yprof_record


def build_parser(prog="python -m yprof_record"):
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", default="yprof.yp", help="trace file to write (default yprof.yp)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall (monotonic, default) or cpu (per-thread CPU time)")
    p.add_argument("--no-builtins", action="store_true", help="do not record C functions")
    p.add_argument("-m", dest="module", help="run a library module as a script")
    p.add_argument("target", nargs="?", help="the script to run (unless -m)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the target")
    return p


def run(opts):
    """Record the target; returns its exit status."""
    if opts.module:
        argv0 = opts.module
        args = ([opts.target] if opts.target else []) + opts.args
        runner = lambda: runpy.run_module(opts.module, run_name="__main__", alter_sys=True)
    else:
        if not opts.target:
            print("yprof: no script to run (see --help)", file=sys.stderr)
            return 2
        argv0 = opts.target
        args = opts.args
        if not os.path.exists(argv0):
            print("yprof: no such script: %s" % argv0, file=sys.stderr)
            return 2
        sys.path.insert(0, os.path.dirname(os.path.abspath(argv0)))
        with open(argv0, "rb") as f:
            code = compile(f.read(), argv0, "exec")
        globs = {"__name__": "__main__", "__file__": argv0, "__package__": None,
                 "__cached__": None, "__builtins__": __builtins__}
        runner = lambda: exec(code, globs)
    sys.argv = [argv0] + args
    status = 0
    yprof_record.start(opts.output, clock=opts.clock, builtins=not opts.no_builtins)
    try:
        runner()
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
    finally:
        yprof_record.stop()
        yprof_record._close()
    return status


def main(argv=None):
    opts = build_parser().parse_args(argv)
    return run(opts)


if __name__ == "__main__":
    sys.exit(main())
