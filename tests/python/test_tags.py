"""Tags: per-request statistics. A threaded server and an asyncio server
each serve two kinds of request concurrently under different tags; the
calls of each kind are counted under its tag exactly, the rest under none,
in the live statistics and in the database; the command line's --tags and
--tag."""
import json
import sqlite3

import pytest
from conftest import analyze, run_py
from test_counts import HOOKS

THREADED = r"""
import json, socket, socketserver, sys, threading
import yprof_record as yp

def work(n):
    return sum(range(n))

def untagged():
    return work(3)

class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            kind, n = line.decode().split()
            with yp.tag(kind):
                for _ in range(int(n)):
                    work(50)
            untagged()
            self.wfile.write(b"ok\n")

def client(port, kind, n, requests):
    with socket.create_connection(("127.0.0.1", port)) as s:
        f = s.makefile("rwb")
        for _ in range(requests):
            f.write(("%s %d\n" % (kind, n)).encode())
            f.flush()
            f.readline()

yp.start("t.yp")
srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
port = srv.server_address[1]
clients = [threading.Thread(target=client, args=(port, "search" if i % 2 else "upload", 3 + i, 7))
           for i in range(4)]
for c in clients: c.start()
for c in clients: c.join()
srv.shutdown()
srv.server_close()
yp.stop()
s = yp.get_stats()
out = {str(t): {f.name: f.ncalls for f in s.filter(tag=t)} for t in s.tags}
out["all"] = {n: s.function(n).ncalls for n in ("work", "untagged")}
print(json.dumps(out))
"""


def db_tag_counts(db):
    con = sqlite3.connect(str(db))
    rows = con.execute("SELECT tag, name, ncalls FROM tag_function_totals").fetchall()
    con.close()
    out = {}
    for tag, name, n in rows:
        out.setdefault(tag, {})[name] = n
    return out


def test_a_threaded_servers_requests_are_counted_under_their_tags(tmp_path):
    p = run_py(tmp_path, THREADED)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    # clients 1 and 3 send search requests of 4 and 6 calls, 0 and 2 upload ones of 3 and 5; 7 each
    assert out["search"] == {"work": 7 * (4 + 6), "sum": 7 * (4 + 6)}
    assert out["upload"] == {"work": 7 * (3 + 5), "sum": 7 * (3 + 5)}
    # untagged(): after each request, under no tag
    assert out["all"] == {"work": 7 * 18 + 28, "untagged": 28}
    analyze(tmp_path / "t.yp", "-q")
    db = db_tag_counts(tmp_path / "t.db")
    assert db == {"search": out["search"], "upload": out["upload"]}


ASYNC = r"""
import asyncio, json, sys
import yprof_record as yp

def work(n):
    return sum(range(n))

def tick():              # a plain callback the loop runs: the loop thread's tag
    work(1)

async def store(n):
    await asyncio.sleep(0.001)
    return work(n)

async def handle(reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        kind, n = line.decode().split()
        with yp.tag(int(kind) if kind.isdigit() else kind):
            for _ in range(int(n)):
                await store(10)
        asyncio.get_running_loop().call_soon(tick)
        writer.write(b"ok\n")
        await writer.drain()
    writer.close()

@yp.tag("decorated")
async def decorated():
    await asyncio.sleep(0)
    work(2)

async def client(port, kind, n, requests):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(requests):
        writer.write(("%s %d\n" % (kind, n)).encode())
        await writer.drain()
        await reader.readline()
    writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await asyncio.gather(*(client(port, "read" if i % 2 else 404, 2 + i, 5) for i in range(4)),
                             decorated(), decorated())

yp.start("a.yp", builtins=sys.argv[1] == "1")
asyncio.run(main())
yp.stop()
s = yp.get_stats()
assert 404 in s.tags  # an int tag stays an int
names = ("store", "work", "handle", "tick", "decorated")
out = {str(t): {f.name: f.ncalls for f in s.filter(tag=t) if f.name in names} for t in s.tags}
out["all"] = {n: s.function(n).ncalls for n in names}
print(json.dumps({"hook": yp.status()["hook"], "tags": out}))
"""


@pytest.mark.parametrize("builtins,env,hook", HOOKS)
def test_an_asyncio_servers_requests_are_counted_under_their_tags(tmp_path, builtins, env, hook):
    p = run_py(tmp_path, ASYNC, "1" if builtins else "0", env={"YPROF_HOOK": env})
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["hook"] == hook
    out = res["tags"]
    # clients 1 and 3: "read" requests of 3 and 5 stores, 0 and 2: 404 ones of 2 and 4; 5 requests each
    assert out["read"] == {"store": 5 * 8, "work": 5 * 8}
    assert out["404"] == {"store": 5 * 6, "work": 5 * 6}
    assert out["decorated"] == {"decorated": 2, "work": 2}  # the wrapper set it before the call
    # handle() started under no tag, and the loop's callbacks run under the loop thread's (none)
    assert out["all"]["tick"] == 20 and out["all"]["handle"] == 4
    assert out["all"]["work"] == 5 * 14 + 20 + 2
    assert set(out) == {"404", "read", "decorated", "all"}
    analyze(tmp_path / "a.yp", "-q")
    db = db_tag_counts(tmp_path / "a.db")
    for tag in ("read", "404", "decorated"):
        assert {k: v for k, v in db[tag].items() if k in out[tag]} == out[tag], (tag, db[tag])


API = r"""
import json, threading
import yprof_record as yp

def f():
    return 1

@yp.tag("deco")
def g():
    return f()

errors = []
for bad in (1.5, True, b"x", [1]):
    try:
        yp.set_tag(bad)
    except TypeError as e:
        errors.append(str(e))
yp.set_tag("before")          # set before start(): in effect from it
yp.start("api.yp")
f()
yp.set_tag(None)
f()
with yp.tag(7):
    f()
    with yp.tag("inner"):
        f(); f()
    f()
g()
t = threading.Thread(target=f)  # a new thread: no tag
t.start(); t.join()
yp.stop()
s = yp.get_stats()
print(json.dumps({"errors": errors, "tags": [repr(t) for t in s.tags],
                  "f": {repr(t): s.function("f", tag=t).ncalls for t in s.tags if s.function("f", tag=t)},
                  "all": s.function("f").ncalls}))
"""


def test_set_tag_and_tag_nest_restore_and_refuse_what_is_not_a_tag(tmp_path):
    p = run_py(tmp_path, API)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["errors"] == ["a tag is a str or an int (or None), not %s" % t
                             for t in ("float", "bool", "bytes", "list")]
    assert out["tags"] == ["7", "'before'", "'deco'", "'inner'"]
    assert out["f"] == {"'before'": 1, "7": 2, "'inner'": 2, "'deco'": 1}
    assert out["all"] == 8  # and 2 under no tag (after set_tag(None), and the new thread)
    r = analyze(tmp_path / "api.yp", "--tags", "--tag", "inner", "-n", "3")
    table = r.stdout.split("tag ")[1]
    rows = {ln.split()[0]: ln.split()[1:3] for ln in table.splitlines()[1:] if ln.strip()}
    assert rows["inner"] == ["1", "2"] and rows["7"] == ["1", "2"]
    assert "tag inner: the calls made under it" in r.stdout
    bad = analyze(tmp_path / "api.yp", "-q", "--tag", "nope", check=False)
    assert bad.returncode == 2 and bad.stderr == \
        "yprof-analyze: no calls under tag 'nope' in %s (see --tags)\n" % (tmp_path / "api.yp")


# A tag's wall time is its requests' time, waits included; its active time
# the time its calls ran. Five requests wait 0.1 s, five burn 20 ms.
WALL = r"""
import asyncio, json, time
import yprof_record as yp

took = {"slow": 0.0, "busy": 0.0}

def burn(s):
    t = time.thread_time() + s
    while time.thread_time() < t:
        pass

async def handle(kind):
    if kind == "slow":
        await asyncio.sleep(0.1)
    else:
        burn(0.02)

async def request(kind):
    with yp.tag(kind):
        t0 = time.monotonic()
        await handle(kind)
        took[kind] += time.monotonic() - t0

async def main():
    await asyncio.gather(*(request("slow" if i % 2 else "busy") for i in range(10)))

yp.start("w.yp")
asyncio.run(main())
yp.stop()
print(json.dumps({"took": took, "summary": yp.get_stats().tag_summary()}))
"""


def test_a_tags_wall_time_includes_its_waits_and_its_active_time_does_not(tmp_path):
    p = run_py(tmp_path, WALL)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    took, summary = out["took"], {row["tag"]: row for row in out["summary"]}
    slow, busy = summary["slow"], summary["busy"]
    assert slow["wall_s"] == pytest.approx(took["slow"], rel=0.10) and slow["wall_s"] >= 0.5, out
    assert slow["active_s"] < 0.02, out
    assert busy["wall_s"] == pytest.approx(took["busy"], rel=0.10), out
    assert busy["active_s"] == pytest.approx(busy["wall_s"], rel=0.10), out
    r = analyze(tmp_path / "w.yp", "--tags", "-n", "1")
    lines = r.stdout.split("\ntag ")[1].splitlines()
    assert lines[0].split() == ["functions", "calls", "wall_s", "active_s"]
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[1:] if ln.strip()}
    for tag, row in summary.items():  # the command line's table = the live one
        assert [int(row["functions"]), int(row["calls"])] == [int(v) for v in rows[tag][:2]], (tag, rows)
        assert [float(v) for v in rows[tag][2:]] == pytest.approx([row["wall_s"], row["active_s"]], abs=2e-5)
