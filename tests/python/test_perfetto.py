"""The Perfetto export read back with Perfetto's own generated protobuf
classes (the `perfetto` package on PyPI, which ./run.sh test installs):
every call a begin and an end on its thread's track, nested, named,
timed as the database says; and the size against the JSON's."""
import sqlite3

import pytest

from conftest import analyze, run_py

try:
    from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb
except Exception as e:  # not installed, or (3.8) a protobuf older than the classes were made for
    pytest.skip("perfetto's generated classes do not load here: %s" % e, allow_module_level=True)

PROGRAM = """
import threading, time, yprof_record as yp
def leaf(i): return i * 2
def mid(n): return sum(leaf(i) for i in range(n))
def slow(): time.sleep(0.02)
def worker(k):
    for _ in range(k): mid(10)
    slow()
yp.start("app.yp")
ts = [threading.Thread(target=worker, args=(30,), name="worker-%d" % i) for i in range(2)]
for t in ts: t.start()
for t in ts: t.join()
mid(5)
yp.stop()
"""


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    d = tmp_path_factory.mktemp("pf")
    run_py(d, PROGRAM)
    analyze(d / "app.yp", "-q", "-o", d / "app.db")
    return d


def read(path):
    """{track name: [(ns, 'B'|'E', name)]} with timestamps made absolute
    from the sequences' incremental clocks, as trace_processor does."""
    t = pb.Trace.FromString(path.read_bytes())
    names, tracks, clock, track_of, out = {}, {}, {}, {}, {}
    for p in t.packet:
        seq = p.trusted_packet_sequence_id
        if p.HasField("clock_snapshot"):
            inc = [c for c in p.clock_snapshot.clocks if c.is_incremental]
            assert len(inc) == 1 and inc[0].clock_id >= 64
            clock[seq] = inc[0].timestamp
        if p.HasField("trace_packet_defaults"):
            d = p.trace_packet_defaults
            assert d.timestamp_clock_id == 64
            track_of[seq] = d.track_event_defaults.track_uuid
        if p.HasField("track_descriptor") and p.track_descriptor.HasField("thread"):
            tracks[p.track_descriptor.uuid] = p.track_descriptor.thread.thread_name
        if p.HasField("interned_data"):
            for n in p.interned_data.event_names:
                names[(seq, n.iid)] = n.name
        if p.HasField("track_event"):
            assert p.sequence_flags == 2  # needs the sequence's interned names and defaults
            clock[seq] += p.timestamp  # a delta on the sequence's clock
            e = p.track_event
            kind = {1: "B", 2: "E"}[e.type]
            name = names[(seq, e.name_iid)] if kind == "B" else None
            out.setdefault(tracks[track_of[seq]], []).append((clock[seq], kind, name))
    return out


def slices(events):
    """[(name, start, end)] from one track's begins and ends, checking they nest."""
    stack, done = [], []
    last = 0
    for ns, kind, name in events:
        assert ns >= last  # in time order
        last = ns
        if kind == "B":
            stack.append((name, ns))
        else:
            name, start = stack.pop()
            done.append((name, start, ns))
    assert not stack
    return done


def test_perfetto_tracks_and_slices_equal_the_database(trace):
    analyze(trace / "app.yp", "-q", "--no-db", "--perfetto", trace / "app.pftrace", "--chrome", trace / "app.json")
    tracks = read(trace / "app.pftrace")
    assert set(tracks) == {"MainThread", "worker-0", "worker-1"}
    con = sqlite3.connect(str(trace / "app.db"))
    per_thread = dict(((t, f), n) for t, f, n in con.execute(
        "SELECT t.name, f.name, s.ncalls FROM function_stats s JOIN functions f ON f.id = s.function_id"
        " JOIN threads t ON t.id = s.thread_id"))
    for track, events in tracks.items():
        sl = slices(events)
        for fn in ("mid", "leaf", "slow"):
            assert sum(1 for n, _, _ in sl if n == fn) == per_thread.get((track, fn), 0), (track, fn)
    # times: slow() sleeps 20 ms; the database says how long each took
    slow = [e - s for n, s, e in slices(tracks["worker-0"]) if n == "slow"]
    total = con.execute("SELECT total_s FROM function_stats s JOIN functions f ON f.id = s.function_id"
                        " JOIN threads t ON t.id = s.thread_id WHERE f.name = 'slow' AND t.name = 'worker-0'"
                        ).fetchone()[0]
    assert len(slow) == 1 and abs(slow[0] * 1e-9 - total) < 1e-6 and slow[0] >= 20e6
    # a third of the JSON's bytes or less
    assert (trace / "app.pftrace").stat().st_size * 2.5 < (trace / "app.json").stat().st_size


def test_perfetto_narrowed_like_the_json(trace):
    analyze(trace / "app.yp", "-q", "--no-db", "--perfetto", trace / "w.pftrace", "--thread", "worker-1",
            "--min-duration", "1000")
    tracks = read(trace / "w.pftrace")
    assert list(tracks) == ["worker-1"]
    sl = slices(tracks["worker-1"])
    # only calls of 1 ms or more: slow(), its sleep, what holds them
    analyze(trace / "app.yp", "-q", "--no-db", "--perfetto", trace / "all.pftrace")
    full = slices(read(trace / "all.pftrace")["worker-1"])
    assert sorted(sl) == sorted(s for s in full if s[2] - s[1] >= 1e6)
    assert {"slow", "sleep", "worker"} <= {n for n, _, _ in sl} and "mid" not in {n for n, _, _ in sl}
    p = analyze(trace / "app.yp", "-q", "--no-db", "--perfetto", trace / "big.pftrace", "--max-size", "1K",
                check=False)
    assert p.returncode == 1 and "not written" in p.stderr and not (trace / "big.pftrace").exists()
