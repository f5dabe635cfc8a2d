"""A slow, independent reader of yprof traces, written from docs/format.md
alone (no code of the analyzer's): the file and chunk layout, the event
coding, holes, and the event semantics that turn events into per-function,
per-edge and per-thread statistics. test_ref_reader.py checks that it agrees
with yprof-analyze's database on every test trace.

    python tests/python/ref_reader.py TRACE   prints what it read

zstd comes from the system's libzstd (ctypes); everything else is the
standard library.
"""
import ctypes
import ctypes.util
import struct
import sys
import zlib

FILE_MAGIC, CHUNK_MAGIC = b"YPROF\0\r\n", b"YPCK"
EVENTS, SYMBOLS, THREADS = 1, 2, 3
CALL, RETURN, C_CALL, C_RETURN, UNWIND = 1, 2, 3, 4, 5
THREAD_END, REC_STOP, DROPPED, OPEN = 7, 9, 10, 11
CORO, SUSPEND, RESUME = 12, 13, 14
SWITCH, VAL_MAX = 0, (1 << 48) - 1  # a SWITCH: a sub-kind in bits 48-55, a value below
CLOCK_THREAD_CPU = 2
CAP = 64 << 20

_zstd = ctypes.CDLL(ctypes.util.find_library("zstd") or "libzstd.so.1")
_zstd.ZSTD_decompress.restype = ctypes.c_size_t
_zstd.ZSTD_decompress.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
_zstd.ZSTD_isError.argtypes = [ctypes.c_size_t]
_zstd.ZSTD_getFrameContentSize.restype = ctypes.c_ulonglong
_zstd.ZSTD_getFrameContentSize.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def inflate(comp, raw_bytes):
    """The payload, or None when it is not one zstd frame of raw_bytes."""
    if _zstd.ZSTD_getFrameContentSize(comp, len(comp)) != raw_bytes:
        return None
    out = ctypes.create_string_buffer(raw_bytes + 1)
    k = _zstd.ZSTD_decompress(out, raw_bytes + 1, comp, len(comp))
    return None if _zstd.ZSTD_isError(k) or k != raw_bytes else out.raw[:raw_bytes]


def varints(buf, pos, n):
    out = []
    for _ in range(n):
        v = shift = 0
        while True:
            if pos >= len(buf):
                raise ValueError("varint past the end")
            b = buf[pos]
            pos += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        out.append(v)
    return out, pos


def decode_events(raw, n, first_ts, version):
    """[(ts, func_id, kind)]; ValueError when the payload is not n events."""
    if version == 1:
        vals, pos = varints(raw, 0, 2 * n)
        deltas, codes = vals[0::2], vals[1::2]
    else:
        deltas, pos = varints(raw, 0, n)
        codes, pos = varints(raw, pos, n)
    if pos != len(raw):
        raise ValueError("bytes left over")
    events, ts = [], first_ts
    for d, c in zip(deltas, codes):
        ts += d
        events.append((ts, c >> 4, c & 15))
    return events


def chunk_header(data, off):
    """The chunk header at off as a dict, or None when it is not a valid one."""
    if len(data) - off < 56 or data[off:off + 4] != CHUNK_MAGIC:
        return None
    if zlib.crc32(data[off:off + 52]) != struct.unpack_from("<I", data, off + 52)[0]:
        return None
    kind, flags, hsize, tid, seq, n, raw_b, comp_b, dropped, first_ts, last_ts, pcrc = struct.unpack_from(
        "<BBHIIIIIIQQI", data, off + 4)
    if hsize != 56 or raw_b > CAP or comp_b > CAP:
        return None
    if kind == EVENTS and not (1 <= n <= 1 << 23 and raw_b >= 2 * n and last_ts >= first_ts):
        return None
    return dict(kind=kind, tid=tid, seq=seq, n=n, raw=raw_b, comp=comp_b, dropped=dropped, first_ts=first_ts,
                crc=pcrc)


def chunks(data, version):
    """(status, header, payload or events) for each chunk: status 'ok',
    'damaged' (header whole, payload bad) or 'lost-header'."""
    off = 64 + struct.unpack_from("<I", data, 20)[0]
    while off < len(data):
        h = chunk_header(data, off)
        if h is None:  # scan for the next valid header
            nxt = off + 1
            while nxt < len(data) and chunk_header(data, nxt) is None:
                nxt += 1
            yield "lost-header", None, None
            off = nxt
            continue
        body = off + 56
        if len(data) - body < h["comp"]:
            return  # cut short
        comp = data[body:body + h["comp"]]
        off = body + h["comp"]
        raw = inflate(comp, h["raw"]) if zlib.crc32(comp) == h["crc"] else None
        if raw is None:
            yield "damaged", h, None
            continue
        if h["kind"] == EVENTS:
            try:
                raw = decode_events(raw, h["n"], h["first_ts"], version)
            except ValueError:
                yield "damaged", h, None
                continue
        yield "ok", h, raw


class Thread:
    def __init__(self, cpu_clock=False):
        self.stack = []  # [func, start, counted, child, caller, on_stack_since, awaited]
        self.parked = {}  # coroutine -> (frame, suspended at)
        self.coro = None  # named by the last CORO, not used yet
        self.glets = {}  # switched-out greenlet -> (its stack, switched out at)
        self.glet = self.glet_from = None  # the greenlet running; the last SWITCH FROM's
        self.cpu_clock = cpu_clock
        self.last = None
        self.in_ival = False
        self.ival_start = self.wall = 0
        self.events = self.dropped = self.unmatched = self.open_frames = 0
        self.funcs, self.edges = {}, {}  # key -> [ncalls, recursive, self, total, awaited]

    def event(self, ts, func, kind):
        if self.last is not None and ts < self.last:
            ts = self.last
        self.last = ts
        if not self.in_ival:
            self.in_ival, self.ival_start = True, ts
        co = None
        if kind in (SUSPEND, RESUME):
            co, self.coro = self.coro, None
        if kind == CORO:
            self.coro = func
        elif kind == SWITCH:
            self.switch(func, ts)
        elif kind == RESUME and co is not None:
            parked = self.parked.pop(co, None)
            if parked is not None and parked[0][0] != func:  # another function's: it ended unseen
                self.close_parked(*parked, parked[1])
                parked = None
            if parked is None:
                self.open(func, ts, False)
            else:
                frame, since = parked
                if self.cpu_clock:
                    frame[1] += ts - since
                else:
                    frame[6] += ts - since
                frame[5] = ts
                self.stack.append(frame)
        elif kind in (CALL, C_CALL, OPEN, RESUME):  # a RESUME not named: like OPEN
            self.open(func, ts, kind in (CALL, C_CALL))
        elif kind in (RETURN, C_RETURN, UNWIND, SUSPEND):
            ids = [f[0] for f in self.stack]
            if func not in ids:
                self.unmatched += 1
                return
            depth = len(ids) - ids[::-1].index(func)  # innermost frame of func, 1-based
            while len(self.stack) > depth:
                self.close(ts)
            if kind == SUSPEND and co is not None:
                frame = self.stack.pop()
                if self.stack:
                    self.stack[-1][3] += ts - frame[5]
                self.parked[co] = (frame, ts)
            else:
                self.close(ts)
        elif kind in (REC_STOP, THREAD_END, DROPPED):
            self.end(ts)
            if kind == DROPPED:
                self.dropped += func

    def switch(self, v, ts):
        sub, g = v >> 48, v & VAL_MAX
        if sub & 0x80:  # GLET_OUT: the greenlet left
            self.glet_from = g
            return
        if sub > 1:  # not GLET_IN or GLET_MAIN_IN: tasks' records
            return
        left = self.glet_from if self.glet_from is not None else self.glet
        self.glet_from = None
        if left == g and left:
            return
        if self.stack and left:
            self.glets[left], self.stack = (self.stack, ts), []
        while self.stack:  # not named: its frames close
            self.close(ts)
        self.glet = g
        self.glet_back(g, ts)

    def glet_back(self, g, ts):
        """Greenlet g's frames are the stack again; its time away awaited."""
        stack, since = self.glets.pop(g, ([], ts))
        for frame in stack:
            if self.cpu_clock:
                frame[1] += ts - since
            else:
                frame[6] += ts - since
            frame[5] += ts - since
        self.stack = stack

    def open(self, func, ts, counted):
        caller = self.stack[-1][0] if self.stack else None
        self.stack.append([func, ts, counted, 0, caller, ts, 0])

    def close(self, ts):
        func, start, counted, child, caller, since, awaited = self.stack.pop()
        if self.stack:
            self.stack[-1][3] += ts - since  # the stretch since it went on the stack
        self.account(func, caller, counted, ts - start, child, awaited)

    def close_parked(self, frame, since, ts):
        func, start, counted, child, caller, _, awaited = frame
        if self.cpu_clock:
            start += ts - since
        else:
            awaited += ts - since
        self.account(func, caller, counted, ts - start, child, awaited)

    def account(self, func, caller, counted, elapsed, child, awaited):
        self_t = max(elapsed - child - awaited, 0)
        still = any(f[0] == func for f in self.stack)
        self.add(self.funcs, func, counted, self_t, elapsed, still, awaited)
        if caller is not None:
            still = any(f[0] == func and f[4] == caller for f in self.stack)
            self.add(self.edges, (caller, func), counted, self_t, elapsed, still, awaited)

    @staticmethod
    def add(table, key, counted, self_t, elapsed, still_open, awaited):
        row = table.setdefault(key, [0, 0, 0, 0, 0])
        row[0] += counted
        row[2] += self_t
        row[4] += awaited
        if not still_open:
            row[3] += elapsed
        elif counted:
            row[1] += 1

    def end(self, ts):
        while self.stack:
            self.close(ts)
        for g in list(self.glets):
            self.glet_back(g, ts)
            while self.stack:
                self.close(ts)
        self.glet = self.glet_from = None
        for frame, since in self.parked.values():
            self.close_parked(frame, since, ts)
        self.parked.clear()
        self.coro = None
        if self.in_ival:
            self.wall += ts - self.ival_start
        self.in_ival = False

    def brk(self, lost):
        self.end(self.last if self.last is not None else 0)
        self.dropped += lost


def read(path):
    """{'ns_per_tick', 'threads': {tid: Thread}, 'names': {tid: name}}."""
    data = open(path, "rb").read()
    if data[:8] != FILE_MAGIC:
        raise ValueError("not a yprof trace")
    version = struct.unpack_from("<I", data, 8)[0]
    ns_per_tick = struct.unpack_from("<d", data, 24)[0]
    cpu_clock = struct.unpack_from("<I", data, 16)[0] == CLOCK_THREAD_CPU
    threads, names, next_seq = {}, {}, {}
    for status, h, body in chunks(data, version):
        if h is None:
            continue
        if h["kind"] == EVENTS:
            t = threads.setdefault(h["tid"], Thread(cpu_clock))
            hole = h["seq"] > next_seq.get(h["tid"], 0) or status != "ok"
            next_seq[h["tid"]] = h["seq"] + 1
            if hole:
                t.brk(h["n"] + h["dropped"] if status != "ok" else 0)
            if status != "ok":
                continue
            if h["dropped"]:
                t.brk(h["dropped"])
            for ts, func, kind in body:
                t.event(ts, func, kind)
            t.events += len(body)
        elif h["kind"] == THREADS and status == "ok":
            pos = 0
            for _ in range(h["n"]):
                tid, _ident, _native, _cpu, nlen = struct.unpack_from("<IQQQH", body, pos)
                pos += 30
                names[tid] = body[pos:pos + nlen].decode("utf-8", "replace")
                pos += nlen + 1
                threads.setdefault(tid, Thread(cpu_clock))
    for t in threads.values():  # the end of the stream
        t.open_frames = len(t.stack)
        while t.stack:
            t.close(t.last)
        for frame, since in t.parked.values():
            t.close_parked(frame, since, t.last)
        if t.in_ival:
            t.wall += t.last - t.ival_start
    return {"ns_per_tick": ns_per_tick, "threads": threads, "names": names}


def secs(ticks, ns_per_tick):
    return ticks * ns_per_tick * 1e-9


if __name__ == "__main__":
    r = read(sys.argv[1])
    for tid, t in sorted(r["threads"].items()):
        print("thread %d %s: events %d dropped %d unmatched %d wall %.6f s" %
              (tid, r["names"].get(tid, ""), t.events, t.dropped, t.unmatched, secs(t.wall, r["ns_per_tick"])))
        for func, (n, rec, s, tot, _aw) in sorted(t.funcs.items()):
            print("  %6d  ncalls %d/%d self %.6f total %.6f" %
                  (func, n, n - rec, secs(s, r["ns_per_tick"]), secs(tot, r["ns_per_tick"])))
