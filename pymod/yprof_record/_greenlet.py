"""Greenlet switches traced (docs/api.md, "Greenlets").

greenlet's tracer is per thread (greenlet.settrace), so yprof's C tracer
(_yprof.GreenletTracer, in front of any tracer already set) goes into each
thread where greenlet is in use: the thread calling start(), each thread
at its first recorded event (in C), and, when greenlet is imported only
after recording began (a gevent program run by `yprof run`), the thread
importing it: an import hook that sees greenlet._greenlet loaded.
"""
import importlib.machinery
import sys

from . import _yprof

_MODULE = "greenlet._greenlet"


class _Loader:
    """The extension's own loader, then the tracer for this thread."""

    def __init__(self, inner):
        self._inner = inner

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        self._inner.exec_module(module)
        try:
            _yprof._trace_greenlets()
        except Exception:  # the application never sees the profiler's failure
            pass

    def __getattr__(self, name):
        return getattr(self._inner, name)


class _Watch:
    """A meta path finder that only wraps greenlet._greenlet's loader."""

    def find_spec(self, name, path=None, target=None):
        if name != _MODULE:
            return None
        _unwatch()
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Loader(spec.loader)
        return spec


_watch = _Watch()


def _unwatch():
    try:
        sys.meta_path.remove(_watch)
    except ValueError:
        pass


def trace():
    """This thread's switches traced now if greenlet is imported, else
    the thread importing it later."""
    if _MODULE in sys.modules or hasattr(sys.modules.get("greenlet"), "settrace"):
        _unwatch()
        try:
            _yprof._trace_greenlets()
        except Exception:
            pass
    elif _watch not in sys.meta_path:
        sys.meta_path.insert(0, _watch)
