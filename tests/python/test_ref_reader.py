"""docs/format.md is complete: a reader written from it alone
(ref_reader.py) gets the analyzer's per-function, per-edge and per-thread
numbers on every kind of trace the tests make: threads, recursion,
generators, exceptions, coroutines, C functions, frames open at start(),
several recording intervals, the CPU clock, drops, a damaged chunk, a
missing chunk and the version 1 format."""
import ctypes
import os
import sqlite3
import struct
import zlib

import pytest

import ref_reader
from conftest import analyze, run_py

HERE = os.path.dirname(os.path.abspath(__file__))

WORKLOAD = """
import sys, threading
sys.path.insert(0, %r)
import workload_mix, yprof_record as yp
clock, ring_bits, flush_ms, wait_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def worker():
    for _ in range(3):
        workload_mix.main()
def outer():  # open when recording starts: OPEN frames
    yp.start("t.yp", clock=clock, _ring_bits=ring_bits, _flush_ms=flush_ms, _wait_ms=wait_ms)
    ts = [threading.Thread(target=worker, name="w%%d" %% i) for i in range(3)]
    for t in ts: t.start()
    worker()
    for t in ts: t.join()
    yp.stop()
    workload_mix.main()  # not recorded
    yp.start("t.yp", clock=clock, _ring_bits=ring_bits, _flush_ms=flush_ms, _wait_ms=wait_ms)
    worker()
outer()
yp.stop()
""" % HERE


def db_rows(db):
    con = sqlite3.connect(str(db))
    funcs = {(r[1], r[0]): r[2:] for r in con.execute(
        "SELECT function_id, thread_id, ncalls, primitive_calls, self_s, total_s, awaited_s FROM function_stats")}
    edges = {(r[2], r[0], r[1]): r[3:] for r in con.execute(
        "SELECT caller_id, callee_id, thread_id, ncalls, primitive_calls, self_s, total_s FROM edges")}
    threads = {r[0]: r[1:] for r in con.execute(
        "SELECT id, wall_s, events, dropped, unmatched_returns, open_frames FROM threads")}
    con.close()
    return funcs, edges, threads


def ref_rows(trace):
    r = ref_reader.read(str(trace))
    k = r["ns_per_tick"]
    funcs, edges, threads = {}, {}, {}
    for tid, t in r["threads"].items():
        threads[tid] = (ref_reader.secs(t.wall, k), t.events, t.dropped, t.unmatched, t.open_frames)
        for table, out, key in ((t.funcs, funcs, lambda f: (tid, f)), (t.edges, edges, lambda e: (tid,) + e)):
            for f, (n, rec, s, tot, aw) in table.items():
                if n or s or tot:
                    row = (n, n - rec, ref_reader.secs(s, k), ref_reader.secs(tot, k))
                    out[key(f)] = row + (ref_reader.secs(aw, k),) if table is t.funcs else row
    return funcs, edges, threads


def assert_same(trace, db):
    mine, theirs = ref_rows(trace), db_rows(db)
    for name, a, b in zip(("function_stats", "edges", "threads"), mine, theirs):
        assert a.keys() == b.keys(), name
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-12, abs=1e-15), (name, key, a[key], b[key])
    return mine


def record(tmp_path, clock="wall", ring_bits=0, flush_ms=0, wait_ms=0):
    run_py(tmp_path, WORKLOAD, clock, ring_bits, flush_ms, wait_ms, timeout=300)
    return tmp_path / "t.yp"


@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_reference_reader_agrees_on_threads_and_intervals(tmp_path, clock):
    trace = record(tmp_path, clock)
    analyze(trace, "-q")
    funcs, edges, threads = assert_same(trace, tmp_path / "t.db")
    assert len(threads) >= 4 and len(funcs) > 30 and len(edges) > 30
    assert any(row[0] == 0 and row[3] > 0 for row in funcs.values())  # an OPEN frame: timed, no call


def zstd_compress(raw):
    z = ref_reader._zstd
    z.ZSTD_compressBound.restype = ctypes.c_size_t
    z.ZSTD_compress.restype = ctypes.c_size_t
    z.ZSTD_compress.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    cap = z.ZSTD_compressBound(ctypes.c_size_t(len(raw)))
    out = ctypes.create_string_buffer(cap)
    k = z.ZSTD_compress(out, cap, raw, len(raw), 3)
    assert not z.ZSTD_isError(k)
    return out.raw[:k]


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def rewrite_events_chunk(data, off, events, dropped):
    """The EVENTS chunk at off, coded again (format version 2) with these
    events and this `dropped` field: a chunk as the writer would make it."""
    tid, seq = struct.unpack_from("<II", data, off + 8)
    comp_old = struct.unpack_from("<I", data, off + 24)[0]
    raw, prev = bytearray(), events[0][0]
    for ts, _, _ in events:
        raw += varint(ts - prev)
        prev = ts
    for _, func, kind in events:
        raw += varint(func << 4 | kind)
    comp = zstd_compress(bytes(raw))
    head = struct.pack("<4sBBHIIIIIIQQI", b"YPCK", 1, 0, 56, tid, seq, len(events), len(raw), len(comp), dropped,
                       events[0][0], max(e[0] for e in events), zlib.crc32(comp))
    head += struct.pack("<I", zlib.crc32(head))
    return data[:off] + head + comp + data[off + 56 + comp_old:]


def test_reference_reader_agrees_where_events_were_dropped(tmp_path):
    # drops as the recorder writes them, in the middle of a busy thread's
    # stream: a DROPPED record (its frames close there), one between a CORO
    # and the RESUME it names (the RESUME, no longer named, opens a frame
    # that is not a call) and a chunk whose `dropped` field is set (its
    # frames close before it)
    trace = record(tmp_path, ring_bits=10)
    data = trace.read_bytes()
    version = struct.unpack_from("<I", data, 8)[0]
    chunks = event_chunks(data)
    tid = max(set(c[1] for c in chunks), key=lambda t: sum(c[3] for c in chunks if c[1] == t))
    mine = [c for c in chunks if c[1] == tid]
    assert len(mine) >= 4
    analyze(trace, "-q")
    before = db_rows(tmp_path / "t.db")[2][tid]

    def events_of(c):
        off, _, _, n, comp = c
        raw = ref_reader.inflate(data[off + 56:off + 56 + comp], struct.unpack_from("<I", data, off + 20)[0])
        return ref_reader.decode_events(raw, n, struct.unpack_from("<Q", data, off + 32)[0], version)

    def named_resume(events):  # the index of a RESUME right after its CORO
        return next((i for i in range(1, len(events)) if events[i][2] == ref_reader.RESUME
                     and events[i - 1][2] == ref_reader.CORO), None)

    middle = mine[len(mine) // 2]
    coro = next(c for c in reversed(mine[2:]) if c != middle and named_resume(events_of(c)))
    edits = {middle[0]: (0, 1234, None), coro[0]: (0, 55, named_resume), mine[1][0]: (77, 0, None)}
    # the later chunks first: rewriting one moves no offset of an earlier one
    for c in sorted((c for c in mine if c[0] in edits), reverse=True):
        dropped, lost, where = edits[c[0]]
        events = events_of(c)
        if lost:
            at = where(events) if where else len(events) // 2
            events.insert(at, (events[at][0], lost, ref_reader.DROPPED))
        data = rewrite_events_chunk(data, c[0], events, dropped)
    trace.write_bytes(data)
    analyze(trace, "-q")
    _, _, threads = assert_same(trace, tmp_path / "t.db")
    assert threads[tid][2] == before[2] + sum(d + n for d, n, _ in edits.values())
    assert threads[tid][3] > before[3]  # returns after a drop find their frames closed


def event_chunks(data):
    """(offset, thread, seq, n, comp_bytes) of each EVENTS chunk."""
    off, out = 64 + struct.unpack_from("<I", data, 20)[0], []
    while off + 56 <= len(data):
        kind, tid, seq, n, comp = data[off + 4], *struct.unpack_from("<III", data, off + 8), \
            struct.unpack_from("<I", data, off + 24)[0]
        if kind == 1:
            out.append((off, tid, seq, n, comp))
        off += 56 + comp
    return out


@pytest.mark.parametrize("damage", ["payload", "whole chunk"])
def test_reference_reader_agrees_across_a_hole(tmp_path, damage):
    trace = record(tmp_path, ring_bits=10)
    data = bytearray(trace.read_bytes())
    chunks = event_chunks(data)
    assert len(chunks) >= 6
    off, tid, seq, n, comp = chunks[len(chunks) // 2]
    if damage == "payload":
        data[off + 56 + comp // 2] ^= 0xFF
    else:
        del data[off:off + 56 + comp]
    trace.write_bytes(bytes(data))
    analyze(trace, "-q")
    _, _, threads = assert_same(trace, tmp_path / "t.db")
    if damage == "payload":
        assert threads[tid][2] >= n  # the damaged chunk's events are counted lost


def test_reference_reader_agrees_on_the_version_1_format(tmp_path):
    trace = os.path.join(HERE, "..", "data", "trace_v1.yp")
    analyze(trace, "-q", "--db", tmp_path / "v1.db")
    funcs, _, _ = assert_same(trace, tmp_path / "v1.db")
    assert funcs
