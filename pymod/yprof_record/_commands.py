"""The control channel's commands (_control.py: the channel; docs/api.md:
what each does). Each takes the channel and the request's args (a dict,
checked here) and returns what JSON carries, or raises CommandError with
the reply's one-line error."""

import os
import sys

import yprof_record as yp

class CommandError(Exception):
    pass


def _arg(args, name, kinds, default=None, check=None):
    """args[name] checked: of one of kinds (bool only where named), and check(value)."""
    v = args.get(name, default)
    if v is None:
        return None
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds):
        raise CommandError("%s: wrong type %s" % (name, type(v).__name__))
    if check and not check(v):
        raise CommandError("%s: bad value %r" % (name, v))
    return v


def _all_str(v):
    return all(isinstance(x, str) for x in v)


def _status(ch, args):
    st = yp.status()
    return {
        "pid": os.getpid(), "ppid": os.getppid(), "argv": list(sys.argv), "python": sys.version.split()[0],
        "version": yp.__version__, "running": st["running"], "path": st["path"], "hook": st["hook"],
        "events": st["events_written"], "dropped": st["dropped_events"], "threads": st["threads"],
        "functions": st["functions"], "error": st["error_text"], "pollution": yp.pollution(),
        "include": st["include"], "exclude": st["exclude"], "follow_children": st["follow_children"],
        "channel": {"path": ch.path, "served": ch.served, "rejected": ch.rejected, "faults": ch.faults},
    }


def _start(ch, args):
    path = _arg(args, "path", str, check=os.path.isabs)
    if path is None:
        raise CommandError("path: an absolute path is needed")
    clock = _arg(args, "clock", str, "wall", lambda v: v in ("wall", "cpu"))
    builtins = _arg(args, "builtins", bool, True)
    include = _arg(args, "include", list, [], _all_str)
    exclude = _arg(args, "exclude", list, [], _all_str)
    follow = _arg(args, "follow_children", bool, False)
    if yp.is_running():
        raise CommandError("already recording to %s" % yp.status()["path"])
    try:
        if not yp.start(path, clock=clock, builtins=builtins, include=include, exclude=exclude,
                        follow_children=follow):
            raise CommandError("already recording to %s" % yp.status()["path"])
    except OSError as e:
        raise CommandError("cannot write %s: %s" % (path, e.strerror or e))
    except (TypeError, ValueError) as e:  # a bad pattern, too many different filters
        raise CommandError(str(e))
    return _status(ch, args)


def _stop(ch, args):
    if not yp.stop():
        raise CommandError("not recording")
    return _status(ch, args)


def _clear(ch, args):
    yp.clear_stats()
    return _status(ch, args)


def _thread_of(stats, which):
    if which is None:
        return None
    try:
        return stats.thread(which)
    except KeyError:
        if isinstance(which, str) and which.isdigit():
            try:
                return stats.thread(int(which))
            except KeyError:
                pass
    raise CommandError("no thread %r (threads: %s)" % (which, ", ".join(t.name for t in stats.threads) or "none"))


def _stats(ch, args):
    top = _arg(args, "top", int, 0, lambda v: v >= 0)
    sort = _arg(args, "sort", str, "total", lambda v: v in ("total", "self", "ncalls", "avg"))
    fmt = _arg(args, "format", str, "json", lambda v: v in ("json", "text"))
    width = _arg(args, "width", int, 0, lambda v: 0 <= v <= 10000)
    thread = _arg(args, "thread", (str, int))
    stats = yp.get_stats()
    t = _thread_of(stats, thread)
    if fmt == "text":
        return stats.report(top or 20, sort, t, False, width)
    rows = stats.sorted(sort, t)
    if top:
        rows = rows[:top]
    return {
        "pid": os.getpid(), "running": yp.is_running(), "session": stats.session,
        "thread": t.name if t else None,
        "threads": [{"id": x.id, "name": x.name, "ident": x.ident, "native_id": x.native_id, "wall_s": x.wall_s,
                     "cpu_s": x.cpu_s, "events": x.events} for x in stats.threads],
        "functions": [{"id": f.id, "name": f.name, "module": f.module, "filename": f.filename, "lineno": f.lineno,
                       "builtin": f.builtin, "ncalls": f.ncalls, "primitive_calls": f.primitive_calls,
                       "self_s": f.self_s, "total_s": f.total_s} for f in rows],
    }


def _save(ch, args):
    path = _arg(args, "path", str, check=os.path.isabs)
    if path is None:
        raise CommandError("path: an absolute path is needed")
    try:
        yp.get_stats().save(path)
    except OSError as e:
        raise CommandError("cannot write %s: %s" % (path, e.strerror or e))
    return {"path": path}


COMMANDS = {"status": _status, "start": _start, "stop": _stop, "clear": _clear, "stats": _stats, "save": _save}
