import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap

import pytest

PY = sys.executable
# "asan" or "tsan" when run.sh runs the tests on a sanitizer build of the
# module: its allocator keeps freed memory, so memory-growth limits don't hold
SANITIZER = os.environ.get("YP_SANITIZER", "")
ANALYZE = os.path.join(os.path.dirname(PY), "yprof-analyze")
if not os.path.exists(ANALYZE):
    ANALYZE = shutil.which("yprof-analyze")


def run_py(tmp_path, code, *args, timeout=120, check=True, env=None, name="prog.py"):
    """Run `code` as a script in a fresh interpreter; returns CompletedProcess."""
    script = tmp_path / name
    script.write_text(textwrap.dedent(code))
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([PY, str(script)] + [str(a) for a in args], cwd=str(tmp_path), capture_output=True,
                       text=True, timeout=timeout, env=e)
    if check and p.returncode != 0:
        raise AssertionError("script failed (%d):\n%s\n%s" % (p.returncode, p.stdout, p.stderr))
    return p


def analyze(*args, check=True, timeout=120):
    p = subprocess.run([ANALYZE] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("yprof-analyze failed (%d):\n%s\n%s" % (p.returncode, p.stdout, p.stderr))
    return p


def db_counts(db, where="1"):
    """{name: (ncalls, primitive_calls)} from function_totals."""
    con = sqlite3.connect(str(db))
    rows = con.execute("SELECT name, ncalls, primitive_calls FROM function_totals WHERE " + where).fetchall()
    con.close()
    return {r[0]: (r[1], r[2]) for r in rows}


@pytest.fixture
def yp():
    """The module, left as a fresh process has it: recording stopped, the
    trace closed (footer written), statistics cleared."""
    import yprof_record
    yprof_record.stop()
    yprof_record._close()
    yprof_record.clear_stats()
    yield yprof_record
    yprof_record.stop()
    yprof_record._close()
    yprof_record.clear_stats()


@pytest.fixture(autouse=True)
def _nothing_left_in_the_cwd():
    """Tests write into their tmp_path: a trace, database or export that a
    test (or a program it runs) leaves in the directory the suite runs from
    fails that test."""
    kinds = (".yp", ".db", ".json", ".svg", ".pstats", ".out")
    before = set(os.listdir("."))
    yield
    new = sorted(f for f in set(os.listdir(".")) - before if f.endswith(kinds))
    for f in new:
        os.remove(f)
    assert not new, "left in the working directory: %s" % ", ".join(new)


def tool_env(**more):
    """The environment for a program that is not ours (Chromium, go, perl's
    callgrind_annotate): without the sanitizer runtime a sanitizer run
    preloads into every process."""
    e = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    e.update(more)
    return e
