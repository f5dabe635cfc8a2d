"""python -m yprof_record [-o trace.yp] [--clock cpu] [--no-builtins] [--include P] [--exclude P]
                        [--follow-children] script.py [args]
python -m yprof_record [options] -m module [args]
python -m yprof_record --control [--idle] [options] (script.py | -m module) [args]

Runs the target as __main__ with its own argv (as python -m cProfile does),
recording every thread, and finishes the trace when it ends. Everything
after the script or the module's name belongs to the target."""

import argparse
import os
import runpy
import sys

import yprof_record
from yprof_record import _filter

# options that take a value: the split between ours and the target's must
# skip it (python -m yprof_record -o -m.yp script.py is a trace named -m.yp)
_VALUED = {"-o", "--output", "--clock", "--top", "--sort", "--include", "--exclude"}


def build_parser(prog="python -m yprof_record", report=False):
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[1],
                                usage="%(prog)s [options] (script.py | -m module) [args]",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", default="yprof.yp", help="trace file to write (default yprof.yp)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall (monotonic, default) or cpu (per-thread CPU time)")
    p.add_argument("--no-builtins", action="store_true", help="do not record C functions")
    p.add_argument("--include", action="append", metavar="PATTERN",
                   help="record only code of these modules (and their submodules) or files (path globs); "
                        "repeat it or separate patterns with commas; the script itself is __main__")
    p.add_argument("--exclude", action="append", metavar="PATTERN",
                   help="do not record code of these modules or files (as --include)")
    p.add_argument("--follow-children", action="store_true",
                   help="record every Python child process too (multiprocessing, subprocess), each into "
                        "OUTPUT's name with its pid (app.yp: app.<pid>.yp)")
    p.add_argument("-m", dest="module", metavar="module", help="run a library module as a script")
    p.add_argument("--control", action="store_true",
                   help="open the control channel, so yprof ctl / yprof top can start, stop and read it")
    p.add_argument("--idle", action="store_true", help="with --control: record nothing until told")
    if report:
        p.add_argument("--top", type=int, help="report: rows to show (default 20)")
        p.add_argument("--sort", choices=("total", "self", "ncalls", "avg", "cumtime", "tottime", "calls"),
                       help="report: sort key (default total)")
        p.add_argument("--threads", action="store_true", help="report: one table per thread too")
    return p


def split_argv(argv):
    """(our options, target, target's args, is a module): ours end at the
    script, or at -m's module name; '--' ends them too."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest = argv[i + 1:]
            return argv[:i], rest[0] if rest else None, rest[1:], False
        if a == "-m" or (a.startswith("-m") and not a.startswith("--")):
            if a == "-m":
                mod = argv[i + 1] if i + 1 < len(argv) else None
                return argv[:i], mod, argv[i + 2:], True
            return argv[:i], a[2:], argv[i + 1:], True
        if a in _VALUED:
            i += 2
            continue
        if a.startswith("-") and a != "-":
            i += 1
            continue
        return argv[:i], a, argv[i + 1:], False
    return argv, None, [], False


def parse(argv, prog="python -m yprof_record", report=False):
    """The options, with .target, .args and .is_module; exits 2 on bad usage."""
    ours, target, args, is_module = split_argv(list(argv))
    p = build_parser(prog, report)
    opts = p.parse_args(ours)
    if opts.module is not None or is_module:
        if not target:
            p.error("-m needs a module name")
    elif not target:
        p.error("no script to run")
    if opts.idle and not opts.control:
        p.error("--idle needs --control (nothing could start the recording)")
    opts.include, opts.exclude = _filter.from_cli(opts.include), _filter.from_cli(opts.exclude)
    if opts.idle and (opts.include or opts.exclude):
        p.error("--include and --exclude with --idle: give them to yprof ctl PID start")
    if opts.idle and opts.follow_children:
        p.error("--follow-children with --idle: nothing records, so no child would")
    opts.target, opts.args, opts.is_module = target, args, is_module
    opts.started = False  # set by run() once recording has started
    return opts


def fail(msg, status=2):
    print("yprof: " + msg, file=sys.stderr)
    return status


def prepare(opts):
    """(argv0, runner) for the target, or an exit status when it cannot run
    (said in one line; nothing started, nothing written)."""
    if opts.is_module:
        try:  # what runpy.run_module would run, found now: its frames are not the program's
            _, spec, code = runpy._get_module_details(opts.target)
        except (ImportError, ValueError) as e:
            return fail(str(e))
        return module_runner(spec, code)
    path = opts.target
    if os.path.isdir(path):
        return fail("%s is a directory, not a script" % path)
    try:
        with open(path, "rb") as f:
            code = compile(f.read(), path, "exec")
    except OSError as e:
        return fail("cannot read %s: %s" % (path, e.strerror or e))
    except (SyntaxError, ValueError) as e:
        return fail("cannot compile %s: %s" % (path, e))
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    return path, main_runner(code, __file__=path, __package__=None, __cached__=None, __spec__=None)


def module_runner(spec, code):
    """(argv0, runner) for a module's code run as __main__, as
    `python -m` runs it."""
    return spec.origin or spec.name, main_runner(code, __file__=spec.origin, __cached__=spec.cached,
                                                 __loader__=spec.loader, __package__=spec.parent, __spec__=spec)


def main_runner(code, **attrs):
    """Runs code in a fresh __main__ module that is sys.modules["__main__"]
    while it runs, as python runs a script: pickle finds its functions
    (multiprocessing sends them to workers) and a spawned child re-imports
    the script, not this tool."""
    import types
    main = types.ModuleType("__main__")
    main.__dict__.update(__doc__=None, __builtins__=__builtins__, **attrs)

    def runner():
        saved = sys.modules.get("__main__")
        sys.modules["__main__"] = main
        try:
            exec(code, main.__dict__)
        finally:
            sys.modules["__main__"] = saved
    return runner


def run(opts):
    """Record the target; returns its exit status."""
    prepared = prepare(opts)
    if isinstance(prepared, int):
        return prepared
    argv0, runner = prepared
    sys.argv = [argv0] + opts.args
    status = 0
    if opts.control:
        from yprof_record import _control
        try:
            _control.serve()
        except _control.Refused as e:
            return fail("control channel not opened: %s" % e, 1)
    try:
        # the frames running now are this tool's, not the program's
        if not opts.idle:
            yprof_record.start(opts.output, clock=opts.clock, builtins=not opts.no_builtins,
                               include=opts.include, exclude=opts.exclude,
                               follow_children=opts.follow_children, _open_frames=False)
    except OSError as e:
        return fail("cannot write %s: %s" % (opts.output, e.strerror or e), 1)
    opts.started = True
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
    return run(parse(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
