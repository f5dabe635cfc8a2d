"""The include / exclude filters of start() and the command lines.

A pattern is a module name or a file path glob. A module name matches the
module and its submodules ("myapp" matches "myapp" and "myapp.db", not
"myapplication"). A pattern with a "/", a "*", "?" or "[", or ending in
".py" is a file path glob, matched against the code's file name with
fnmatch rules ("*" also matches "/"); a relative one is taken from the
current directory at start().
"""

import os
import re

_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\Z")


def is_glob(pattern):
    return not _MODULE.match(pattern) or pattern.endswith(".py")


def patterns(value, what):
    """The patterns of an include= or exclude= argument: None, a str (one
    pattern) or an iterable of str; a tuple of them."""
    if value is None:
        return ()
    if isinstance(value, (str, bytes, os.PathLike)):
        value = [value]
    try:
        items = list(value)
    except TypeError:
        raise TypeError("%s must be a str or a list of str, not %s" % (what, type(value).__name__)) from None
    out = []
    for item in items:
        if isinstance(item, os.PathLike):
            item = os.fspath(item)
        if isinstance(item, bytes):
            item = os.fsdecode(item)
        if not isinstance(item, str):
            raise TypeError("%s patterns must be str, not %s" % (what, type(item).__name__))
        item = item.strip()
        if not item:
            raise ValueError("%s patterns must not be empty" % what)
        if "\0" in item:
            raise ValueError("%s patterns must not contain NUL" % what)
        out.append(item)
    return tuple(out)


def split(pats):
    """(module names, absolute path globs) of a tuple of patterns."""
    mods, globs = [], []
    for p in pats:
        if not is_glob(p):
            mods.append(p)
            continue
        p = os.path.expanduser(p)
        if not p.startswith(("/", "*")):
            p = os.path.join(os.getcwd(), p)
        globs.append(p)
    return tuple(mods), tuple(globs)


def from_cli(values):
    """The patterns of repeated --include/--exclude options, each of which
    may hold several separated by commas."""
    out = []
    for v in values or ():
        out.extend(p for p in (s.strip() for s in v.split(",")) if p)
    return tuple(out)
