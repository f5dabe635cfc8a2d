"""The pprof export: the gzip and protobuf decoded here (a reader written
for the test from profile.proto's field numbers, not the writer's code),
compared with the database of the same trace; then read by a real consumer,
`go tool pprof` (Debian's golang-go, which ./run.sh test installs)."""
import gzip
import shutil
import sqlite3
import subprocess

import pytest

from conftest import SANITIZER, analyze, run_py, tool_env

PROGRAM = """
import os, threading, yprof_record as yp
def leaf(i): return i * 2
def mid(n): return sum(leaf(i) for i in range(n))
def rec(n): return rec(n - 1) if n else mid(3)
def worker(k):
    for _ in range(k): mid(10)
yp.start("app.yp")
ts = [threading.Thread(target=worker, args=(20,), name="worker-%d" % i) for i in range(2)]
for t in ts: t.start()
for t in ts: t.join()
for _ in range(5): rec(4)
if not os.environ.get("YP_SANITIZER"):  # (a sanitizer build cannot follow a fork: run.sh)
    pid = os.fork()
    if pid == 0:
        for _ in range(7): leaf(1)
        os._exit(0)
    os.waitpid(pid, 0)
yp.stop()
"""
FORKS = not SANITIZER  # the program's fork child (7 more leaf calls, a process of its own)


def fields(buf):
    """(field, wire type, value) of a protobuf message: varints as ints,
    length-delimited as bytes."""
    i, out = 0, []

    def varint():
        nonlocal i
        shift = v = 0
        while True:
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return v

    while i < len(buf):
        key = varint()
        f, wt = key >> 3, key & 7
        if wt == 0:
            out.append((f, wt, varint()))
        elif wt == 2:
            n = varint()
            out.append((f, wt, buf[i:i + n]))
            i += n
        else:
            raise AssertionError("wire type %d not written by yprof" % wt)
    return out


def unpack(b):
    """A packed repeated varint field's values."""
    vals, v, shift = [], 0, 0
    for x in b:
        v |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            vals.append(v)
            v = shift = 0
    return vals


def decode(path):
    raw = gzip.decompress(path.read_bytes())
    prof = {"sample_type": [], "sample": [], "location": {}, "function": {}, "strings": []}
    for f, _, v in fields(raw):
        if f == 1:
            d = dict((k, x) for k, _, x in fields(v))
            prof["sample_type"].append((d[1], d[2]))
        elif f == 2:
            s = {"loc": [], "val": [], "labels": {}}
            for k, _, x in fields(v):
                if k == 1:
                    s["loc"] += unpack(x)
                elif k == 2:
                    s["val"] += unpack(x)
                elif k == 3:
                    d = dict((a, b) for a, _, b in fields(x))
                    s["labels"][d[1]] = d[2]
            prof["sample"].append(s)
        elif f == 4:
            d = fields(v)
            lid = [x for k, _, x in d if k == 1][0]
            line = dict((a, b) for a, _, b in fields([x for k, _, x in d if k == 4][0]))
            prof["location"][lid] = line[1]
        elif f == 5:
            d = dict((k, x) for k, _, x in fields(v))
            prof["function"][d[1]] = d
        elif f == 6:
            prof["strings"].append(v.decode())
        elif f in (9, 10, 14):
            prof[f] = v
    return prof


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    d = tmp_path_factory.mktemp("pp")
    run_py(d, PROGRAM)
    analyze(d, "-q", "-o", d / "app.db", "--pprof", d / "app.pb.gz")
    return d


def test_pprof_samples_equal_the_database(profile):
    p = decode(profile / "app.pb.gz")
    st = p["strings"]
    assert st[0] == "" and [(st[a], st[b]) for a, b in p["sample_type"]] == [("calls", "count"),
                                                                             ("wall", "nanoseconds")]
    assert st[p[14]] == "wall"  # the default sample type: time
    name = {fid: st[f[2]] for fid, f in p["function"].items()}
    calls, self_ns, by_thread = {}, {}, {}
    for s in p["sample"]:
        leaf = name[p["location"][s["loc"][0]]]
        calls[leaf] = calls.get(leaf, 0) + s["val"][0]
        self_ns[leaf] = self_ns.get(leaf, 0) + s["val"][1]
        key = (st[s["labels"][next(k for k in s["labels"] if st[k] == "thread")]],
               st[s["labels"][next(k for k in s["labels"] if st[k] == "process")]])
        by_thread.setdefault(key, {}).setdefault(leaf, 0)
        by_thread[key][leaf] += s["val"][0]
    con = sqlite3.connect(str(profile / "app.db"))
    for fn, n in con.execute("SELECT name, ncalls FROM function_totals WHERE name IN ('leaf','mid','rec')"):
        assert calls["__main__." + fn] == n
    assert calls["__main__.leaf"] == 2 * 20 * 10 + 5 * 3 + (7 if FORKS else 0)
    assert calls["__main__.rec"] == 25
    got = con.execute("SELECT self_s FROM function_totals WHERE name = 'mid'").fetchone()[0]
    assert abs(self_ns["__main__.mid"] - got * 1e9) <= len(p["sample"])  # ns rounding per sample
    # labels: each thread with its process; the fork child's leaf calls its own
    threads = con.execute("SELECT t.name, p.pid FROM threads t JOIN processes p ON p.id = t.process_id").fetchall()
    assert {(n, str(pid)) for n, pid in threads} >= set(by_thread)
    worker0 = next(k for k in by_thread if k[0] == "worker-0")
    assert by_thread[worker0]["__main__.leaf"] == 200
    if FORKS:
        child = [k for k in by_thread if k[0] == "MainThread" and by_thread[k].get("__main__.leaf") == 7]
        assert len(child) == 1 and worker0[1] != child[0][1]
    # a recursive stack, leaf first: rec x5 under <module>
    deep = max((s for s in p["sample"] if name[p["location"][s["loc"][0]]] == "__main__.leaf"),
               key=lambda s: len(s["loc"]))
    names = [name[p["location"][loc]] for loc in deep["loc"]]
    # (3.8 has no co_qualname: the generator expression is <genexpr> there)
    assert names[0] == "__main__.leaf" and names[1] in ("__main__.mid.<locals>.<genexpr>", "__main__.<genexpr>")
    assert names[2] == "sum", names
    assert names.count("__main__.rec") == 5 and names[-1] == "__main__.<module>", names


GO = shutil.which("go")


@pytest.mark.skipif(not GO, reason="go (Debian golang-go) not installed: ./run.sh test installs it")
def test_go_tool_pprof_reads_it(profile, tmp_path):
    env = tool_env(HOME=str(tmp_path), GOCACHE=str(tmp_path / "gocache"), GOFLAGS="")

    def pprof(*args):
        p = subprocess.run([GO, "tool", "pprof", "-symbolize=none"] + list(args) + [str(profile / "app.pb.gz")],
                           capture_output=True, text=True, env=env, timeout=120)
        assert p.returncode == 0, p.stderr
        return p.stdout

    top = pprof("-top", "-sample_index=calls", "-nodecount=100")
    row = [line.split() for line in top.splitlines() if line.endswith(" __main__.leaf")]
    assert row and row[0][0] == str(2 * 20 * 10 + 5 * 3 + (7 if FORKS else 0)), top
    tags = pprof("-tags")
    assert "worker-0" in tags and "worker-1" in tags and "MainThread" in tags, tags
    assert "Type: wall" in pprof("-top")


def test_a_profile_of_several_gzip_blocks_reads_back_whole(tmp_path):
    # 3,000 functions: the string table alone is beyond one 64 KiB stored block
    run_py(tmp_path, """
        import yprof_record as yp
        ns = {}
        exec("\\n".join("def function_with_a_long_name_%d(): return %d" % (i, i) for i in range(3000)), ns)
        yp.start("many.yp")
        for i in range(3000):
            for _ in range(i % 3 + 1):
                ns["function_with_a_long_name_%d" % i]()
        yp.stop()
    """)
    analyze(tmp_path / "many.yp", "-q", "--no-db", "--pprof", tmp_path / "many.pb.gz")
    assert (tmp_path / "many.pb.gz").stat().st_size > 3 * 65536
    p = decode(tmp_path / "many.pb.gz")  # gzip checks every block, the CRC and the size
    st = p["strings"]
    name = {fid: st[f[2]] for fid, f in p["function"].items()}
    calls = {}
    for s in p["sample"]:
        leaf = name[p["location"][s["loc"][0]]]
        calls[leaf] = calls.get(leaf, 0) + s["val"][0]
    mine = {k.rsplit("_", 1)[1]: v for k, v in calls.items() if "function_with_a_long_name_" in k}
    assert len(mine) == 3000 and all(v == int(k) % 3 + 1 for k, v in mine.items())
