"""The command line as a cProfile user expects it: everything after the
script or the module belongs to the target; a target that cannot run, or a
trace that cannot be written, is one line on stderr, a non-zero status and
no file left behind; `yprof run` passes the report's options on."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import ANALYZE, PY

YPROF = os.path.join(os.path.dirname(PY), "yprof")
HERE = os.path.dirname(os.path.abspath(__file__))


def rec(tmp_path, *args, cmd=None, timeout=120):
    cmd = cmd or [PY, "-m", "yprof_record"]
    return subprocess.run(cmd + [str(a) for a in args], cwd=str(tmp_path), capture_output=True, text=True,
                          timeout=timeout)


def ncalls(db, name):
    con = sqlite3.connect(str(db))
    row = con.execute("SELECT SUM(ncalls) FROM function_totals WHERE name = ?", (name,)).fetchone()
    con.close()
    return row[0] or 0


def test_options_after_the_module_are_the_modules(tmp_path):
    (tmp_path / "f.json").write_text('{"b": 1, "a": 2}')
    p = rec(tmp_path, "-o", "t.yp", "-m", "json.tool", "--sort-keys", "f.json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"a": 2, "b": 1}
    assert p.stdout.index('"a"') < p.stdout.index('"b"')  # --sort-keys reached json.tool
    subprocess.run([ANALYZE, "-q", str(tmp_path / "t.yp")], check=True)
    assert ncalls(tmp_path / "t.db", "main") >= 1  # json.tool's main, recorded


def test_help_after_the_module_is_the_modules_help(tmp_path):
    p = rec(tmp_path, "-o", "t.yp", "-m", "json.tool", "--help")
    assert p.returncode == 0, p.stderr
    assert "json.tool" in p.stdout and "--sort-keys" in p.stdout
    assert "--no-builtins" not in p.stdout  # not yprof's


def test_pytest_runs_under_the_recorder_with_its_own_options(tmp_path):
    (tmp_path / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    p = rec(tmp_path, "-o", "t.yp", "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_one.py")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "1 passed" in p.stdout


def test_a_scripts_options_even_yprofs_own_names_are_the_scripts(tmp_path):
    (tmp_path / "prog.py").write_text("import json, sys\nprint(json.dumps(sys.argv))\n")
    p = rec(tmp_path, "--clock", "cpu", "prog.py", "-o", "x", "--clock", "-m", "y", "--help")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == ["prog.py", "-o", "x", "--clock", "-m", "y", "--help"]
    assert (tmp_path / "yprof.yp").exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize("case", ["directory", "no such module", "no such script", "unwritable trace"])
def test_a_target_or_trace_that_cannot_be_is_one_line_and_leaves_nothing(tmp_path, case):
    (tmp_path / "adir").mkdir()
    (tmp_path / "prog.py").write_text("print('ran')\n")
    args = {"directory": ["adir"], "no such module": ["-m", "nosuchmodule_yp"],
            "no such script": ["missing.py"],
            "unwritable trace": ["-o", "/nonexistent/dir/t.yp", "prog.py"]}[case]
    before = sorted(os.listdir(str(tmp_path)))
    p = rec(tmp_path, *args)
    assert p.returncode == (1 if case == "unwritable trace" else 2)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("yprof: "), p.stderr
    assert "Traceback" not in p.stderr and "ran" not in p.stdout
    assert sorted(os.listdir(str(tmp_path))) == before  # no yprof.yp left behind
    q = rec(tmp_path, *args, cmd=[YPROF, "run"])  # the same through yprof run
    assert q.returncode == p.returncode and q.stderr == p.stderr
    assert sorted(os.listdir(str(tmp_path))) == before


def test_yprof_run_passes_the_report_options(tmp_path):
    (tmp_path / "prog.py").write_text(
        "import threading\n"
        "def a(): pass\n"
        "def b(): a()\n"
        "def work():\n"
        "    for _ in range(100): b()\n"
        "t = threading.Thread(target=work, name='worker'); t.start(); t.join()\n"
        "for _ in range(50): a()\n")
    p = rec(tmp_path, "-o", "r.yp", "--top", "2", "--sort", "ncalls", "--threads", "prog.py", cmd=[YPROF, "run"])
    assert p.returncode == 0, p.stderr
    ref = subprocess.run([ANALYZE, "--top", "2", "--sort", "ncalls", "--threads", "--no-db", "r.yp"],
                         cwd=str(tmp_path), capture_output=True, text=True, check=True).stdout
    assert p.stdout.split("\ndatabase:")[0].strip() == ref.strip()
    assert "worker" in ref  # the per-thread table is there


def test_yprof_help_and_usage(tmp_path):
    p = rec(tmp_path, "--help", cmd=[YPROF])
    assert p.returncode == 0 and p.stdout.startswith("usage: yprof run")
    assert "--top" in p.stdout and '"""' not in p.stdout
    q = rec(tmp_path, cmd=[YPROF])
    assert q.returncode == 2 and q.stderr.startswith("usage: yprof run")
    r = rec(tmp_path, "frobnicate", cmd=[YPROF])
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_analyzer_help_needs_no_docs_folder():
    p = subprocess.run([ANALYZE, "--help"], capture_output=True, text=True)
    assert p.returncode == 0
    assert "docs/" not in p.stdout and "function_totals" in p.stdout


DEB_CONTROL = """Package: yprof-test-dummy
Version: 1.0
Architecture: all
Maintainer: yprof tests <tests@example.invalid>
Description: a package the tests install, remove and purge
"""


@pytest.mark.skipif(not shutil.which("dpkg-deb") or os.geteuid() != 0, reason="needs dpkg and root")
def test_run_sh_sees_a_removed_but_not_purged_package_as_missing(tmp_path):
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(DEB_CONTROL)
    (root / "etc").mkdir()
    (root / "etc" / "yprof-test-dummy.conf").write_text("x=1\n")
    (root / "DEBIAN" / "conffiles").write_text("/etc/yprof-test-dummy.conf\n")
    # system tools, not the program under test: without a sanitizer's preload
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    deb = tmp_path / "dummy.deb"
    subprocess.run(["dpkg-deb", "--build", str(root), str(deb)], check=True, capture_output=True, env=env)
    repo = os.path.dirname(os.path.dirname(HERE))
    check = ('eval "$(sed -n \'/^deb_installed()/,/^}/p\' %s/run.sh)"; deb_installed yprof-test-dummy'
             % repo)

    def installed():
        return subprocess.run(["bash", "-c", check], env=env).returncode == 0

    def dpkg(*args):
        # an apt-get elsewhere on the machine holds dpkg's lock for a while: wait for it
        deadline = time.monotonic() + 300
        while True:
            p = subprocess.run(["dpkg"] + list(args), capture_output=True, text=True, env=env)
            if p.returncode == 0 or "lock" not in p.stderr or time.monotonic() > deadline:
                assert p.returncode == 0, p.stderr
                return
            time.sleep(1)

    try:
        dpkg("-i", str(deb))
        assert installed()
        dpkg("-r", "yprof-test-dummy")
        # removed, its conffile kept: dpkg -s still succeeds, the files are gone
        assert subprocess.run(["dpkg", "-s", "yprof-test-dummy"], capture_output=True, env=env).returncode == 0
        assert not installed()
    finally:
        subprocess.run(["dpkg", "--purge", "yprof-test-dummy"], capture_output=True, env=env)
    assert not installed()


LONG = """
class AVeryLongClassNameThatFillsTheColumn:
    class AndANestedClassWithALongNameToo:
        def own_name_kept(self):
            return 1
for _ in range(30):
    AVeryLongClassNameThatFillsTheColumn.AndANestedClassWithALongNameToo().own_name_kept()
"""
QUAL = "AVeryLongClassNameThatFillsTheColumn.AndANestedClassWithALongNameToo.own_name_kept"


def report_row(out):
    rows = [line for line in out.splitlines() if "own_name_kept" in line]
    assert len(rows) == 1, out
    return rows[0]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="qualified names of nested classes come with 3.11")
def test_report_fits_the_width_cutting_the_middle_of_names(tmp_path):
    (tmp_path / "prog.py").write_text(LONG)
    assert rec(tmp_path, "-o", "t.yp", "prog.py").returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}

    def report(*args, columns=None):
        e = dict(env, **({"COLUMNS": str(columns)} if columns else {}))
        return subprocess.run([ANALYZE, "--no-db", "t.yp"] + list(args), cwd=str(tmp_path), capture_output=True,
                              text=True, check=True, env=e).stdout

    # not a terminal and no COLUMNS: whole names
    assert report_row(report()).endswith(QUAL + "  prog.py:4")
    assert report_row(report("--width", "0")).endswith(QUAL + "  prog.py:4")
    for width, args, columns, place in ((120, ["--width", "120"], None, True), (100, [], 100, True),
                                        (84, ["-w", "84"], 50, False)):
        row = report_row(report(*args, columns=columns))
        assert len(row) <= width, (width, row)
        label = row[60:].strip()  # the numbers take 60 columns
        assert label.startswith("AVeryLo"), row
        assert label.endswith("...own_name_kept" + ("  prog.py:4" if place else "")), row
    # too narrow for the place and much of the name: the own name stays whole
    row = report_row(report("--width", "40"))
    assert row.rstrip().endswith("...own_name_kept")
    # the live report takes the same width
    (tmp_path / "live.py").write_text(
        "import yprof_record as yp\nyp.start('live.yp')\n" + LONG + "\nyp.stop()\ns = yp.get_stats()\n"
        "print(s.report(width=84))\nprint('=====')\nprint(s.report())\n")
    out = subprocess.run([PY, "live.py"], cwd=str(tmp_path), capture_output=True, text=True, check=True).stdout
    cut, whole = out.split("=====")
    assert len(report_row(cut)) <= 84 and "...own_name_kept" in report_row(cut)
    assert report_row(whole).endswith(QUAL + "  live.py:6")


def profiled_names(tmp_path, trace):
    subprocess.run([ANALYZE, "-q", trace], cwd=str(tmp_path), check=True)
    con = sqlite3.connect(str(tmp_path / trace.replace(".yp", ".db")))
    names = {r[0] for r in con.execute("SELECT name FROM function_totals WHERE ncalls > 0 OR total_s > 0")}
    con.close()
    return names


PLAIN = "def f(i):\n    return i\nfor i in range(100):\n    f(i)\n"


@pytest.mark.parametrize("how", ["python -m yprof_record", "yprof run", "-m module"])
def test_the_command_lines_own_frames_are_not_in_the_profile(tmp_path, how):
    # no runpy frames, no exec, no `<module> yprof:1`, nothing start() or
    # stop() run: the program's <module> is the root
    (tmp_path / "prog.py").write_text(PLAIN)
    (tmp_path / "progmod.py").write_text(PLAIN)
    args = {"python -m yprof_record": ["-o", "t.yp", "prog.py"], "yprof run": ["-o", "t.yp", "prog.py"],
            "-m module": ["-o", "t.yp", "-m", "progmod"]}[how]
    p = rec(tmp_path, *args, cmd=[YPROF, "run"] if how == "yprof run" else None)
    assert p.returncode == 0, p.stderr
    assert profiled_names(tmp_path, "t.yp") == {"<module>", "f"}


def test_start_and_stops_own_calls_are_not_in_the_profile(tmp_path):
    (tmp_path / "api.py").write_text(
        "import yprof_record as yp\n"
        "def f(i):\n    return i\n"
        "def main():\n    yp.start('api.yp')\n    for i in range(100):\n        f(i)\n    yp.stop()\n"
        "    yp.start('api.yp')\n    f(0)\n    yp.stop()\n"
        "main()\n")
    p = subprocess.run([PY, "api.py"], cwd=str(tmp_path), capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    # main and <module> were running when recording began: timed, 0 calls
    assert profiled_names(tmp_path, "api.yp") == {"<module>", "main", "f"}
