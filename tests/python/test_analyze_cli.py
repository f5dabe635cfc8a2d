"""yprof-analyze end to end: report, database, every export, bad input."""
import json
import os
import pstats
import random
import re
import sqlite3
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import ANALYZE, PY, analyze, db_counts, run_py, tool_env

PROGRAM = """
import threading, yprof_record as yp
def leaf(i): return i * 2
def mid(n): return sum(leaf(i) for i in range(n))
def fib(n): return n if n < 2 else fib(n - 1) + fib(n - 2)
def worker(k):
    for _ in range(k): mid(10)
yp.start("app.yp")
ts = [threading.Thread(target=worker, args=(20,), name="worker-%d" % i) for i in range(3)]
for t in ts: t.start()
for t in ts: t.join()
fib(15)
yp.stop()
"""


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    d = tmp_path_factory.mktemp("app")
    run_py(d, PROGRAM)
    return d / "app.yp"


def test_report_database_and_every_export_in_one_run(trace, tmp_path):
    out = {k: tmp_path / ("out." + k) for k in ("pstats", "callgrind", "folded", "json", "svg")}
    p = analyze(trace, "-o", tmp_path / "x.db", "--threads", "--top", "5", "--sort", "ncalls",
                "--pstats", out["pstats"], "--callgrind", out["callgrind"], "--collapsed", out["folded"],
                "--chrome", out["json"], "--flamegraph", out["svg"])
    lines = p.stdout.splitlines()
    assert all(len(l) <= 100 for l in lines), max(lines, key=len)
    assert "worker-2" in p.stdout and "top 5 functions by ncalls" in p.stdout
    rows = [l for l in lines if re.match(r"\s+\d", l) and "leaf" in l]
    assert rows and rows[0].split()[0] == "600"  # 3 threads x 20 x 10
    # pstats loads with the same counts as the database
    st = pstats.Stats(str(out["pstats"])).stats
    fib = [v for k, v in st.items() if k[2] == "fib"][0]
    assert fib[:2] == (1, 1973)  # primitive, total
    con = sqlite3.connect(str(tmp_path / "x.db"))
    assert con.execute("SELECT ncalls, primitive_calls FROM function_totals WHERE name='fib'").fetchone() == (1973, 1)
    total = con.execute("SELECT sum(total_s) FROM call_tree WHERE parent_id IS NULL").fetchone()[0]
    # collapsed stacks add up to the total time (microseconds, rounded per line)
    folded = out["folded"].read_text().splitlines()
    us = sum(int(l.rsplit(" ", 1)[1]) for l in folded)
    assert abs(us - total * 1e6) <= len(folded) + 1
    assert any(l.startswith("worker-1;") and ";mid (" in l for l in folded)
    # chrome trace: valid JSON, one complete event per call (fib's 1973 of
    # them), one named track per thread
    ev = json.loads(out["json"].read_text())["traceEvents"]
    assert sum(e["ph"] == "X" and e["name"] == "fib" for e in ev) == 1973
    assert all(e["dur"] >= 0 for e in ev if e["ph"] == "X")
    names = {e["args"]["name"] for e in ev if e.get("name") == "thread_name"}
    assert {"MainThread", "worker-0", "worker-1", "worker-2"} <= names
    # SVG parses as XML and has hover titles
    root = ET.parse(str(out["svg"])).getroot()
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert any(t.startswith("fib") for t in titles)
    assert "# callgrind format" in out["callgrind"].read_text()


@pytest.mark.parametrize("kind", ["pstats", "callgrind", "collapsed", "chrome", "flamegraph"])
def test_an_export_to_dash_is_standard_output_byte_for_byte(trace, tmp_path, kind):
    analyze(trace, "--no-db", "-q", "--" + kind, tmp_path / "file")
    p = subprocess.run([ANALYZE, str(trace), "--no-db", "--" + kind, "-"], capture_output=True, timeout=120)
    assert p.returncode == 0 and p.stderr == b""
    assert p.stdout == (tmp_path / "file").read_bytes()  # nothing else on stdout: no report, no "wrote"
    if kind == "pstats":  # and it loads
        (tmp_path / "from_stdout.pstats").write_bytes(p.stdout)
        st = pstats.Stats(str(tmp_path / "from_stdout.pstats"))
        assert [v[1] for k, v in st.stats.items() if k[2] == "leaf"] == [600]


@pytest.mark.parametrize("args, message", [
    (["--callgrind", "/dev/full"], "cannot write /dev/full: No space left on device"),
    (["--chrome", "/dev/full"], "cannot write /dev/full: No space left on device"),
    (["--flamegraph", "/nonexistent-dir/x.svg"], "cannot write /nonexistent-dir/x.svg: No such file or directory"),
    (["--pstats", "/"], "cannot write /: Is a directory"),
    (["--collapsed", "-"], "cannot write standard output: No space left on device"),
])
def test_a_write_error_names_its_reason(trace, args, message):
    with open("/dev/full", "wb") as full:
        p = subprocess.run([ANALYZE, str(trace), "--no-db", "-q"] + args, stdout=full, stderr=subprocess.PIPE,
                           text=True, timeout=120)
    assert p.returncode == 1 and p.stderr == "yprof-analyze: %s\n" % message


def test_stdout_is_for_one_export_and_never_the_database(trace):
    p = subprocess.run([ANALYZE, str(trace), "--pstats", "-", "--collapsed", "-"], capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr == "yprof-analyze: only one export can go to standard output (-)\n"
    q = subprocess.run([ANALYZE, str(trace), "-o", "-"], capture_output=True, text=True)
    assert q.returncode == 2 and q.stderr == ("yprof-analyze: the database cannot go to standard output (-o -); "
                                              "--no-db writes none\n")
    assert p.stdout == q.stdout == ""


def test_stats_export_raises_the_oserror_of_its_errno(yp, tmp_path):
    import errno
    yp.start(str(tmp_path / "t.yp"))
    sum(range(10))
    yp.stop()
    stats = yp.get_stats()
    with pytest.raises(OSError) as e:
        stats.export("collapsed", "/dev/full")
    assert e.value.errno == errno.ENOSPC and e.value.filename == "/dev/full"
    with pytest.raises(FileNotFoundError):
        stats.to_pstats(str(tmp_path / "no" / "such" / "dir.pstats"))


TWICE = """
import os, sys
import yprof_record as yp

def work():
    return 1

def drive(f, n):
    for _ in range(n):
        f()

if __name__ == "__main__":
    yp.start("twice.yp")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import twice  # this file again, as a module of its own: the same file, lines and names
    drive(work, 3)
    twice.drive(twice.work, 5)
    yp.stop()
"""


def test_pstats_sums_functions_that_share_file_line_and_name(tmp_path):
    run_py(tmp_path, TWICE, name="twice.py")
    analyze(tmp_path / "twice.yp", "-o", tmp_path / "twice.db", "--pstats", tmp_path / "twice.pstats")
    con = sqlite3.connect(str(tmp_path / "twice.db"))  # the database keeps them apart
    rows = con.execute("SELECT module, ncalls FROM function_totals WHERE name = 'work' ORDER BY module").fetchall()
    con.close()
    assert rows == [("__main__", 3), ("twice", 5)]
    st = pstats.Stats(str(tmp_path / "twice.pstats")).stats
    work = [v for k, v in st.items() if k[2] == "work"]
    assert len(work) == 1 and work[0][:2] == (8, 8)  # (primitive calls, calls): both, not the last one
    drive = [(k, v) for k, v in st.items() if k[2] == "drive"]
    assert len(drive) == 1 and drive[0][1][1] == 2
    callers = work[0][4]
    assert list(callers) == [drive[0][0]] and callers[drive[0][0]][:2] == (8, 8)


def test_default_database_beside_the_trace_and_thread_filter(trace):
    p = analyze(trace, "--thread", "worker-1")
    assert "thread" in p.stdout and "fib" not in p.stdout.split("top")[1]
    assert os.path.exists(str(trace).replace(".yp", ".db"))
    bad = analyze(trace, "--thread", "nope", check=False)
    assert bad.returncode == 2 and "no thread" in bad.stderr


def test_help_and_usage_errors():
    h = analyze("--help")
    for opt in ("--top", "--sort", "--thread", "--threads", "--pstats", "--callgrind", "--collapsed", "--chrome",
                "--flamegraph", "--db"):
        assert opt in h.stdout
    assert analyze(check=False).returncode == 2
    assert analyze("--sort", "bogus", "x.yp", check=False).returncode == 2


def test_schema_doc_example_queries_run(trace, tmp_path):
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "schema.md")).read()
    queries = re.findall(r"```sql\n(.*?)```", doc, re.S)
    assert len(queries) >= 3
    db = tmp_path / "q.db"
    analyze(trace, "-o", db, "-q")
    con = sqlite3.connect(str(db))
    for q in queries:
        rows = con.execute(q).fetchall()
        assert rows, q


ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_database_records_the_schema_version_the_doc_states(trace, tmp_path):
    doc = open(os.path.join(ROOT, "docs", "schema.md")).read()
    stated = int(re.search(r"`PRAGMA user_version` is \*\*(\d+)\*\*", doc).group(1))
    analyze(trace, "-o", tmp_path / "a.db", "-q")
    run_py(tmp_path, """
        import yprof_record as yp
        def f(): pass
        yp.start("live.yp"); f(); yp.get_stats().save("live.db"); yp.stop()
    """)
    for db in ("a.db", "live.db"):
        con = sqlite3.connect(str(tmp_path / db))
        assert con.execute("PRAGMA user_version").fetchone()[0] == stated >= 1
        con.close()


def test_one_version_everywhere():
    toml = open(os.path.join(ROOT, "pyproject.toml")).read()
    version = re.search(r'^version = "([0-9.]+)"$', toml, re.M).group(1)
    assert analyze("--version").stdout == "yprof-analyze %s\n" % version
    p = subprocess.run([PY, "-c", "import importlib.metadata as m, yprof_record as yp;"
                        "print(yp.__version__, m.version('yprof'))"], capture_output=True, text=True)
    assert p.stdout.split() == [version, version], p.stderr


def one_line_error(p):
    assert p.returncode == 1, (p.returncode, p.stderr)
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("yprof-analyze: "), p.stderr
    return err[0]


@pytest.mark.parametrize("content", [b"", b"hello world\n" * 10, bytes(range(256)) * 4,
                                     b"YPROF\x00\r\n" + b"\x00" * 10])
def test_foreign_and_damaged_files_fail_with_one_line(tmp_path, content):
    f = tmp_path / "bad.yp"
    f.write_bytes(content)
    one_line_error(analyze(f, check=False))


def test_directory_and_missing_path(tmp_path):
    # a directory is read as every *.yp in it (test_processes.py); none: said
    assert "no traces (*.yp) in this directory" in one_line_error(analyze(tmp_path, check=False))
    os.mkfifo(str(tmp_path / "fifo.yp"))
    assert "not a regular file" in one_line_error(analyze(tmp_path / "fifo.yp", check=False))
    assert "No such file" in one_line_error(analyze(tmp_path / "missing.yp", check=False))


def test_header_then_garbage(trace, tmp_path):
    data = trace.read_bytes()
    hdr_len = 64 + int.from_bytes(data[20:24], "little")
    f = tmp_path / "g.yp"
    f.write_bytes(data[:hdr_len] + bytes(random.Random(1).getrandbits(8) for _ in range(5000)))
    one_line_error(analyze(f, check=False))


def test_truncation_at_every_offset_of_a_small_trace(tmp_path):
    run_py(tmp_path, """
        import yprof_record as yp
        def f(n): return n
        yp.start("small.yp")
        for i in range(5): f(i)
        yp.stop()
    """)
    data = (tmp_path / "small.yp").read_bytes()
    assert len(data) < 3000
    cut_short = ok = failed = 0
    for cut in range(len(data) + 1):
        f = tmp_path / "cut.yp"
        f.write_bytes(data[:cut])
        p = analyze(f, "-q", "--no-db", check=False)
        assert p.returncode in (0, 1), (cut, p.returncode, p.stderr)
        assert len(p.stderr.strip().splitlines()) <= 1, p.stderr
        if p.returncode == 1:
            failed += 1
        elif "cut short" in p.stderr:
            cut_short += 1
        else:
            ok += 1
    assert ok == 1 and cut_short > 0 and failed > 0  # only the whole file is complete


def test_random_byte_flips_never_crash(trace, tmp_path):
    data = bytearray(trace.read_bytes())
    rng = random.Random(7)
    for i in range(60):
        d = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
        f = tmp_path / "flip.yp"
        f.write_bytes(bytes(d))
        p = analyze(f, "-q", "--no-db", check=False)
        assert p.returncode in (0, 1), (i, p.returncode, p.stderr)


def test_format_version_1_traces_stay_readable(tmp_path):
    # tests/data/trace_v1.yp was written by the version 1 recorder (ts and id
    # varints interleaved); this build writes version 2 (two columns)
    v1 = os.path.join(os.path.dirname(__file__), "..", "data", "trace_v1.yp")
    p = analyze(v1, "--db", tmp_path / "v1.db", "-q")
    assert p.returncode == 0, p.stderr
    got = db_counts(tmp_path / "v1.db", "name IN ('f', 'lock.acquire')")
    assert got == {"f": (24, 2), "lock.acquire": (5, 5)}
    con = sqlite3.connect(str(tmp_path / "v1.db"))
    assert con.execute("SELECT events FROM session").fetchone()[0] == 193
    con.close()


def test_chrome_timeline_narrowed_and_refused_over_its_size_limit(trace, tmp_path):
    out = tmp_path / "t.json"
    p = analyze(trace, "-q", "--no-db", "--chrome", out, "--max-size", "2K", check=False)
    assert p.returncode == 1 and not out.exists()
    assert "t.json not written: the timeline would take" in p.stderr and "--min-duration" in p.stderr, p.stderr
    assert len(p.stderr.splitlines()) == 1
    # one thread, calls of 0 us or more: only worker-1's; its mid calls are 20
    analyze(trace, "-q", "--no-db", "--chrome", out, "--thread", "worker-1")
    ev = [e for e in json.loads(out.read_text())["traceEvents"] if e["ph"] == "X"]
    tids = {e["tid"] for e in ev}
    assert len(tids) == 1 and sum(e["name"] == "mid" for e in ev) == 20
    # a window: every call cut to it
    full = [e for e in json.loads(analyze_json(trace, tmp_path))["traceEvents"] if e["ph"] == "X"]
    t_end = max(e["ts"] + e["dur"] for e in full) / 1e6
    since, until = t_end * 0.25, t_end * 0.5
    analyze(trace, "-q", "--no-db", "--chrome", out, "--since", str(since), "--until", str(until))
    ev = [e for e in json.loads(out.read_text())["traceEvents"] if e["ph"] == "X"]
    # (to the trace's time unit: a few ns)
    assert ev and all(since * 1e6 - 0.01 <= e["ts"] and e["ts"] + e["dur"] <= until * 1e6 + 0.01 for e in ev)
    overlapping = [e for e in full if e["ts"] < until * 1e6 and e["ts"] + e["dur"] > since * 1e6]
    assert len(ev) == len(overlapping)
    # the shortest calls left out
    analyze(trace, "-q", "--no-db", "--chrome", out, "--min-duration", "50")
    ev = [e for e in json.loads(out.read_text())["traceEvents"] if e["ph"] == "X"]
    assert ev and all(e["dur"] >= 50 - 1e-3 for e in ev) and len(ev) == sum(e["dur"] >= 50 for e in full)
    for bad in (["--since", "x"], ["--max-size", "3Q"], ["--since", "2", "--until", "1"]):
        p = analyze(trace, "--chrome", out, *bad, check=False)
        assert p.returncode == 2 and len(p.stderr.splitlines()) == 1, (bad, p.stderr)


def analyze_json(trace, tmp_path):
    full = tmp_path / "full.json"
    analyze(trace, "-q", "--no-db", "--chrome", full)
    return full.read_text()


def test_thread_option_narrows_the_exports_too_and_the_database_keeps_all(trace, tmp_path):
    analyze(trace, "-q", "-o", tmp_path / "t.db", "--thread", "worker-1", "--pstats", tmp_path / "w1.pstats")
    st = pstats.Stats(str(tmp_path / "w1.pstats")).stats
    leaf = [v for k, v in st.items() if k[2] == "leaf"]
    assert leaf and leaf[0][1] == 200  # 20 x 10 calls in worker-1 alone
    assert not [k for k in st if k[2] == "fib"]  # the main thread's
    assert db_counts(tmp_path / "t.db")["leaf"] == (600, 600)


def test_a_window_splits_the_calls_exactly(trace, tmp_path):
    # the split: when the middle one of leaf's calls began (seconds from
    # the trace's start, as the Chrome export says)
    full = json.loads(analyze_json(trace, tmp_path))["traceEvents"]
    starts = sorted(e["ts"] for e in full if e.get("ph") == "X" and e["name"] == "leaf")
    mid = "%.6f" % (starts[len(starts) // 2] / 1e6)
    analyze(trace, "-q", "-o", tmp_path / "a.db", "--until", mid)
    analyze(trace, "-q", "-o", tmp_path / "b.db", "--since", mid)
    a, b = db_counts(tmp_path / "a.db"), db_counts(tmp_path / "b.db")
    for fn, total in (("leaf", 600), ("mid", 60), ("fib", 1973)):
        # a call open at the boundary counts in the first window (closed at
        # its last event), its return is unmatched in the second
        assert a.get(fn, (0, 0))[0] + b.get(fn, (0, 0))[0] == total, (fn, a.get(fn), b.get(fn))
    assert a and b and a != b


CALLGRIND_PROGRAM = """
import yprof_record as yp
def fib(n): return n if n < 2 else fib(n - 1) + fib(n - 2)
def main():
    yp.start("cg.yp")   # main and <module> are open frames: entered, never counted as calls
    for _ in range(3): fib(12)
    yp.stop()
main()
"""


def callgrind_costs(path):
    """{function: (self ns, inclusive ns as callgrind tools add it)}, and the calls= counts."""
    self_ns, calls_out, counts, fn = {}, {}, [], None
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("fn="):
            fn = line[3:]
            self_ns[fn] = self_ns.get(fn, 0) + int(lines[i + 1].split()[1])
            i += 2
            continue
        if line.startswith("calls="):
            counts.append(int(line.split("=")[1].split()[0]))
            calls_out[fn] = calls_out.get(fn, 0) + int(lines[i + 1].split()[1])
            i += 2
            continue
        i += 1
    return {f: (s, s + calls_out.get(f, 0)) for f, s in self_ns.items()}, counts


def test_callgrind_totals_equal_the_trace_with_open_frames_and_recursion(tmp_path):
    run_py(tmp_path, CALLGRIND_PROGRAM)
    analyze(tmp_path / "cg.yp", "-q", "-o", tmp_path / "cg.db", "--callgrind", tmp_path / "cg.out")
    costs, counts = callgrind_costs(tmp_path / "cg.out")
    con = sqlite3.connect(str(tmp_path / "cg.db"))
    total = con.execute("SELECT sum(total_s) FROM call_tree WHERE parent_id IS NULL").fetchone()[0] * 1e9
    fib_total = con.execute("SELECT total_s FROM function_totals WHERE name = 'fib'").fetchone()[0] * 1e9
    con.close()
    assert 0 not in counts  # callgrind_annotate takes a calls=0 cost for the caller's own
    assert abs(sum(s for s, _ in costs.values()) - total) <= len(costs)  # exclusive: the trace's time, once
    assert abs(costs["fib"][1] - fib_total) <= 2  # recursion counted once
    assert abs(costs["<module>"][1] - total) <= 2 and abs(costs["main"][1] - total) <= 2
    tool = shutil.which("callgrind_annotate")
    if tool:  # the real consumer agrees
        out = subprocess.run([tool, str(tmp_path / "cg.out")], capture_output=True, text=True, timeout=120,
                             env=tool_env()).stdout
        shown = int(re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", out).group(1).replace(",", ""))
        assert abs(shown - total) <= len(costs)
