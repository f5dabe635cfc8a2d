"""The Stats snapshot returned by yprof_record.get_stats()."""

import sys

from . import _yprof

_SORTS = {"total": 0, "self": 1, "ncalls": 2, "avg": 3}


class FunctionStats:
    """One function's statistics (over all threads, or one thread)."""

    __slots__ = ("id", "name", "module", "filename", "lineno", "builtin",
                 "ncalls", "primitive_calls", "self_s", "total_s", "awaited_s")

    def __init__(self, fn, ncalls=0, primitive_calls=0, self_s=0.0, total_s=0.0, awaited_s=0.0):
        self.id, self.name, self.module, self.filename, self.lineno, builtin = fn
        self.builtin = bool(builtin)
        self.ncalls, self.primitive_calls = ncalls, primitive_calls
        self.self_s, self.total_s = self_s, total_s
        self.awaited_s = awaited_s  # of total_s, the time its coroutines were suspended

    @property
    def avg_s(self):
        """Cumulative time per call."""
        return self.total_s / self.ncalls if self.ncalls else 0.0

    def __repr__(self):
        return ("<FunctionStats %s ncalls=%d primitive=%d self=%.6fs total=%.6fs>"
                % (self.name, self.ncalls, self.primitive_calls, self.self_s, self.total_s))


class ThreadStats:
    """One thread: name, ident, native_id, wall_s, cpu_s, events, dropped and
    .functions for that thread alone."""

    __slots__ = ("id", "name", "ident", "native_id", "wall_s", "cpu_s", "events",
                 "dropped", "unmatched_returns", "functions")

    def __init__(self, row):
        (self.id, self.name, self.ident, self.native_id, self.wall_s, self.cpu_s,
         self.events, self.dropped, self.unmatched_returns) = row
        self.functions = []

    def __repr__(self):
        return "<ThreadStats %s id=%d events=%d>" % (self.name, self.id, self.events)


class TaskStats:
    """One asyncio task or greenlet (docs/api.md, "Tasks"): kind ("asyncio"
    or "greenlet"), name (None: none), function (its root's name), module,
    thread (its name), tag (None: none), created_s (None: not seen),
    first_run_s, done_s (None: not done), wall_s, active_s, steps. Times in
    seconds since the first event recorded."""

    __slots__ = ("kind", "name", "function", "module", "thread", "tag", "created_s", "first_run_s", "done_s",
                 "wall_s", "active_s", "steps")

    def __repr__(self):
        return "<TaskStats %s %s %s steps=%d wall=%.6fs active=%.6fs>" % (
            self.kind, self.name, self.function, self.steps, self.wall_s, self.active_s)


def _add_row(totals, fi, fn, ncalls, prim, self_s, total_s, awaited_s):
    """Add a thread's row of function fi into totals (by function index)."""
    t = totals.get(fi)
    if t is None:
        totals[fi] = FunctionStats(fn, ncalls, prim, self_s, total_s, awaited_s)
        return
    t.ncalls += ncalls
    t.primitive_calls += prim
    t.self_s += self_s
    t.total_s += total_s
    t.awaited_s += awaited_s


def _key(sort):
    if sort not in _SORTS:
        raise ValueError("sort must be one of %s, not %r" % (", ".join(_SORTS), sort))
    return {
        "total": lambda f: f.total_s,
        "self": lambda f: f.self_s,
        "ncalls": lambda f: f.ncalls,
        "avg": lambda f: f.avg_s,
    }[sort]


class Stats:
    """A snapshot of the live statistics; numbers are those yprof-analyze
    computes from the same trace."""

    def __init__(self, capsule):
        # Rows become Python objects on first use, not here: get_stats() stays
        # cheap for a monitor thread competing for the GIL with busy threads.
        self._cap = capsule
        self._rows = None
        self._tagged = None

    def _load(self):
        if self._rows is not None:
            return self._rows
        funcs, threads, fstats, edges, session = _yprof._stats_data(self._cap)
        tstats = [ThreadStats(t) for t in threads]
        totals = {}
        for fi, ti, *row in fstats:
            tstats[ti].functions.append(FunctionStats(funcs[fi], *row))
            _add_row(totals, fi, funcs[fi], *row)
        self._rows = (sorted(totals.values(), key=lambda f: -f.total_s), tstats, session, funcs, edges)
        return self._rows

    def _tag_rows(self):
        """{tag value: (FunctionStats over threads by function index, {thread index: [FunctionStats]})}."""
        if self._tagged is None:
            funcs = self._load()[3]
            out = {}
            wall = self._tag_wall = {}
            for gi, fi, ti, root_s, *row in _yprof._tag_data(self._cap):
                g = funcs[gi]
                value = int(g[1]) if g[5] == 5 else g[1]  # builtin 5: an int tag
                wall[value] = wall.get(value, 0.0) + root_s
                totals, per_thread = out.setdefault(value, ({}, {}))
                per_thread.setdefault(ti, []).append(FunctionStats(funcs[fi], *row))
                _add_row(totals, fi, funcs[fi], *row)
            self._tagged = out
        return self._tagged

    @property
    def tags(self):
        """The tags calls were made under (set_tag, tag), str and int values."""
        return sorted(self._tag_rows(), key=lambda v: (isinstance(v, str), v))

    def tag_summary(self):
        """One dict per tag, as `yprof-analyze --tags` prints them: tag,
        functions, calls, wall_s (from the start to the end of the calls
        that began its work, their callers under another tag or none: a
        request's time, waits included) and active_s (the time its calls
        ran)."""
        rows = self._tag_rows()
        return [{"tag": v, "functions": len(rows[v][0]), "calls": sum(f.ncalls for f in rows[v][0].values()),
                 "wall_s": self._tag_wall[v], "active_s": sum(f.self_s for f in rows[v][0].values())}
                for v in self.tags]

    @property
    def tasks(self):
        """TaskStats of every asyncio task and greenlet, per thread in the
        order they first ran."""
        funcs, threads = self._load()[3], self._load()[1]
        out = []
        for ti, kind, fi, gi, ni, number, created, first, done, wall, active, steps in _yprof._task_data(self._cap):
            k = TaskStats()
            k.kind = "greenlet" if kind == 2 else "asyncio"
            k.name = funcs[ni][1] if ni >= 0 else "Task-%d" % number if number else None
            k.function, k.module = (funcs[fi][1], funcs[fi][2]) if fi >= 0 else (None, None)
            k.thread = threads[ti].name
            k.tag = (int(funcs[gi][1]) if funcs[gi][5] == 5 else funcs[gi][1]) if gi >= 0 else None
            k.created_s = created if created >= 0 else None
            k.done_s = done if done >= 0 else None
            k.first_run_s, k.wall_s, k.active_s, k.steps = first, wall, active, steps
            out.append(k)
        return out

    @property
    def functions(self):
        """FunctionStats summed over threads, largest total time first."""
        return self._load()[0]

    @property
    def threads(self):
        """ThreadStats of every thread recorded."""
        return self._load()[1]

    @property
    def session(self):
        """dict: trace_path, python_version, clock, duration_s, events, ..."""
        return self._load()[2]

    # ---- queries ---------------------------------------------------------------

    def sorted(self, sort="total", thread=None):
        """Functions (of one thread if given: a name, id or ThreadStats),
        largest first by total, self, ncalls or avg."""
        rows = self.thread(thread).functions if thread is not None else self.functions
        return sorted(rows, key=_key(sort), reverse=True)

    def filter(self, *, thread=None, module=None, name=None, tag=None):
        """Functions matching all given criteria: thread (name, id or
        ThreadStats), module (exact), name (exact qualified name, or a
        substring when it starts with '*'), tag (the calls made under that
        tag alone)."""
        if tag is not None:
            totals, per_thread = self._tag_rows().get(tag, ({}, {}))
            if thread is not None:
                ti = self.threads.index(self.thread(thread))
                rows = per_thread.get(ti, [])
            else:
                rows = sorted(totals.values(), key=lambda f: -f.total_s)
        else:
            rows = self.thread(thread).functions if thread is not None else self.functions
        out = []
        for f in rows:
            if module is not None and f.module != module:
                continue
            if name is not None:
                if name.startswith("*"):
                    if name[1:] not in f.name:
                        continue
                elif f.name != name:
                    continue
            out.append(f)
        return out

    def function(self, name, thread=None, tag=None):
        """The FunctionStats of the function with this qualified name (the
        sum if several share it; under `tag` alone if given), or None."""
        rows = self.filter(thread=thread, name=name, tag=tag)
        if not rows:
            return None
        if len(rows) == 1:
            return rows[0]
        first = rows[0]
        agg = FunctionStats((first.id, first.name, first.module, first.filename, first.lineno, first.builtin))
        for f in rows:
            agg.ncalls += f.ncalls
            agg.primitive_calls += f.primitive_calls
            agg.self_s += f.self_s
            agg.total_s += f.total_s
            agg.awaited_s += f.awaited_s
        return agg

    def thread(self, which):
        """A ThreadStats by name, recorder id, or itself."""
        if isinstance(which, ThreadStats):
            return which
        for t in self.threads:
            if t.name == which or t.id == which:
                return t
        raise KeyError("no thread %r in these stats" % (which,))

    def callers(self, name):
        """(caller name, ncalls) pairs over all threads for callee `name`."""
        out = {}
        funcs, edges = self._load()[3:]
        for caller, callee, _t, ncalls, _p, _s, _tot in edges:
            if funcs[callee][1] == name:
                cn = funcs[caller][1]
                out[cn] = out.get(cn, 0) + ncalls
        return sorted(out.items(), key=lambda kv: -kv[1])

    # ---- output ------------------------------------------------------------------

    def report(self, top=20, sort="total", thread=None, threads=False, width=0):
        """The yprof-analyze report, as a string; width: fit the function
        rows in that many columns (long names cut in the middle, never the
        function's own name); 0: no cut."""
        _key(sort)
        ti = -1
        if thread is not None:
            ti = self.threads.index(self.thread(thread))
        return _yprof._stats_report(self._cap, int(top), _SORTS[sort], ti, bool(threads), int(width))

    def print(self, top=20, sort="total", thread=None, threads=False, file=None, width=None):
        """Print the same table as yprof-analyze; width None: the terminal's
        when file is one, else no cut."""
        file = file or sys.stdout
        if width is None:
            isatty = getattr(file, "isatty", None)
            import shutil  # here: shutil is 7 ms of start-up for YPROF_CONTROL=1 programs
            width = shutil.get_terminal_size((0, 0)).columns if isatty and isatty() else 0
        file.write(self.report(top, sort, thread, threads, width))

    def save(self, path):
        """Write the SQLite database yprof-analyze writes (docs/schema.md)."""
        _yprof._stats_save(self._cap, str(path))

    def to_pstats(self, path):
        """Write a pstats file (pstats.Stats(path) loads it)."""
        _yprof._stats_export(self._cap, "pstats", str(path))

    def export(self, kind, path):
        """kind: pstats, callgrind, collapsed or flamegraph."""
        _yprof._stats_export(self._cap, kind, str(path))

    def __repr__(self):
        return "<Stats %d functions, %d threads, %d events>" % (
            len(self.functions), len(self.threads), self.session["events"])
