"""The manylinux wheel (./run.sh test builds it with `pip wheel` and
`auditwheel repair`), installed into a fresh virtualenv: it carries its own
zstd and SQLite, so it runs where the -dev packages are not, and it records
and analyzes with exact counts from outside the source tree.

Run with that virtualenv's Python (YP_WHEEL names the wheel installed)."""
import glob
import os
import re
import sqlite3
import subprocess
import sys
import sysconfig
import zipfile

import pytest

WHEEL = os.environ.get("YP_WHEEL", "")
pytestmark = pytest.mark.skipif(not WHEEL, reason="run by ./run.sh test with YP_WHEEL set")
BIN = os.path.dirname(sys.executable)
SITE = sysconfig.get_path("platlib")


def deps(elf):
    """{library name: path it resolves to} from ldd."""
    out = subprocess.run(["ldd", elf], capture_output=True, text=True, check=True).stdout
    return dict(re.findall(r"^\s*(\S+) => (\S+)", out, re.M))


def test_the_wheel_is_manylinux_and_carries_its_libraries():
    assert re.search(r"-cp3\d+-cp3\d+-manylinux_2_\d+_x86_64\.whl$", WHEEL), WHEEL
    names = zipfile.ZipFile(WHEEL).namelist()
    assert any(re.match(r"yprof\.libs/libzstd-[0-9a-f]+\.so", n) for n in names), names
    assert any(re.match(r"yprof\.libs/libsqlite3-[0-9a-f]+\.so", n) for n in names), names
    assert any(re.match(r"yprof-[0-9.]+\.dist-info/licenses/LICENSE$", n) for n in names), names


def test_the_module_and_the_analyzer_load_the_wheels_own_zstd_and_sqlite():
    import yprof_record
    assert yprof_record.__file__.startswith(SITE), yprof_record.__file__
    ext = glob.glob(os.path.join(SITE, "yprof_record", "_yprof*.so"))
    tool = os.path.join(SITE, "yprof.scripts", "yprof-analyze")
    libs = os.path.realpath(os.path.join(SITE, "yprof.libs"))
    for elf in ext + [tool]:
        d = deps(elf)
        for lib in ("libzstd", "libsqlite3"):
            path = [p for n, p in d.items() if n.startswith(lib)]
            assert len(path) == 1 and os.path.realpath(path[0]).startswith(libs + os.sep), (elf, d)


def test_it_records_and_analyzes_exact_counts(tmp_path):
    (tmp_path / "app.py").write_text("def f(i): return i\nfor i in range(1234): f(i)\n")
    subprocess.run([os.path.join(BIN, "yprof"), "run", "-o", "app.yp", "app.py"], cwd=str(tmp_path),
                   check=True, capture_output=True)
    subprocess.run([os.path.join(BIN, "yprof-analyze"), "app.yp", "-q"], cwd=str(tmp_path), check=True)
    con = sqlite3.connect(str(tmp_path / "app.db"))
    assert con.execute("SELECT ncalls FROM function_totals WHERE name = 'f'").fetchone() == (1234,)
