"""The SVG flame graph: its frames against the database, then opened in
headless Chromium (Debian's, which ./run.sh test installs): its script runs
without an error, fits the window, searches and zooms; a screenshot is
taken (build it with --keep to look at it)."""
import re
import shutil
import sqlite3
import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import SANITIZER, analyze, run_py, tool_env

PROGRAM = """
import os, threading, yprof_record as yp
def leaf(i): return i * 2
def mid(n): return sum(leaf(i) for i in range(n))
def rec(n): return rec(n - 1) if n else mid(50)
def worker():
    for _ in range(300): rec(3)
yp.start("app.yp")
t = threading.Thread(target=worker, name="worker-1")
t.start(); t.join()
for _ in range(200): mid(20)
if not os.environ.get("YP_SANITIZER"):  # (a sanitizer build cannot follow a fork: run.sh)
    pid = os.fork()
    if pid == 0:
        for _ in range(100): mid(20)
        os._exit(0)
    os.waitpid(pid, 0)
yp.stop()
"""

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    d = tmp_path_factory.mktemp("fg")
    run_py(d, PROGRAM)
    analyze(d / "app.yp", "-q", "-o", d / "app.db", "--flamegraph", d / "app.svg")
    analyze(d, "-q", "-o", d / "all.db", "--flamegraph", d / "all.svg")  # the process and its child
    return d


def frames(path):
    root = ET.parse(str(path)).getroot()
    return [g for g in root.iter(SVG + "g") if g.get("class") == "f"]


def test_thread_roots_are_labelled_and_widths_are_inclusive_times(graphs):
    fs = frames(graphs / "app.svg")
    roots = {g.get("data-n"): float(g.get("data-w")) for g in fs if g.get("data-d") == "0"}
    con = sqlite3.connect(str(graphs / "app.db"))
    per_thread = dict(con.execute("SELECT t.name, sum(c.total_s) FROM call_tree c JOIN threads t"
                                  " ON t.id = c.thread_id WHERE c.parent_id IS NULL GROUP BY t.name"))
    total = sum(per_thread.values())
    assert set(roots) == {"MainThread", "worker-1"}
    for name, w in roots.items():
        assert abs(w - per_thread[name] / total) < 1e-6
    # every frame lies inside its thread's root, one level above its caller
    rec = [g for g in fs if g.get("data-n").startswith("rec ")]
    worker = [int(g.get("data-d")) for g in fs if g.get("data-n").startswith("worker ")]
    # (above the thread's root: the frames of threading's bootstrap the hook sees, by version)
    assert len(worker) == 1 and sorted({int(g.get("data-d")) for g in rec}) == [worker[0] + k for k in (1, 2, 3, 4)]
    # several processes (the program and its fork child): roots say whose
    names = {g.get("data-n") for g in frames(graphs / "all.svg") if g.get("data-d") == "0"}
    if not SANITIZER:
        assert len(names) == 3 and all(re.match(r"^(MainThread|worker-1) \(pid \d+\)$", n) for n in names), names


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(url, *args):
    p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                        "--window-size=900,500"] + list(args) + [url], capture_output=True, text=True,
                       timeout=120, env=tool_env())
    assert "Uncaught" not in p.stderr, p.stderr  # the script ran without an error
    return p


@pytest.mark.skipif(not CHROMIUM, reason="chromium (Debian) not installed: ./run.sh test installs it")
def test_flame_graph_in_a_browser_fits_searches_and_zooms(graphs):
    url = "file://" + str(graphs / "app.svg")
    dom = chromium(url + "?s=%5Eleaf", "--dump-dom").stdout
    svg = re.search(r"<svg[^>]*>", dom).group(0)
    assert 'data-ready="1"' in svg and 'width="900"' in svg  # fits the window, not 1200
    # search: every drawn frame of leaf, purple, and the share they cover
    leaves = [g for g in frames(graphs / "app.svg") if g.get("data-n").startswith("leaf ")]
    assert re.search(r'data-matched="%d"' % len(leaves), svg), svg
    assert dom.count('fill="rgb(230,0,230)"') == len(leaves)
    # zoom: to worker-1's thread, the main thread's frames are hidden and
    # "Reset zoom" shows; the height is the stacks' own
    dom = chromium(url + "?z=%5Eworker%20", "--dump-dom").stdout
    main = re.search(r'<g class="f"[^>]*data-n="MainThread"[^>]*>', dom).group(0)
    assert 'display="none"' in main
    assert re.search(r'<text id="reset"[^>]*display="inline"', dom)
    height = int(re.search(r'<svg[^>]*height="(\d+)"', dom).group(1))
    levels = max(int(g.get("data-d")) for g in frames(graphs / "app.svg")) + 1
    assert height <= 44 + levels * 16 + 8
    shot = graphs / "app.png"
    chromium(url + "?s=mid", "--screenshot=" + str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000
