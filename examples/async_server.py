"""An asyncio TCP server and its clients on loopback, profiled: which
handler, for which kind of request, takes how long, and how much of that
is waiting.

    python examples/async_server.py --trace async.yp --clients 20 --requests 10
    yprof-analyze async.yp --tags

Protocol: one line per request, "FAST key" or "SLOW key"; the server
answers with one line. A FAST request looks its key up in a cache (a short
wait for a simulated store); a SLOW one waits longer and computes a
digest. Each coroutine is one call however often it awaits: the report's
total time for `handle_request` includes its waits, and `awaited_s` (in the
database, get_stats()) says how much of it was waiting. Each request is
handled under its kind's tag ("fast", "slow"): `--tags` says how long each
kind took, waits included (wall_s), and how much of that ran (active_s).
"""

import argparse
import asyncio
import hashlib
import json

import yprof_record


async def fetch(key, delay):
    """The store: a round trip that takes `delay` seconds."""
    await asyncio.sleep(delay)
    return key.encode() * 64


def digest(data, rounds):
    for _ in range(rounds):
        data = hashlib.sha256(data).digest()
    return data.hex()[:16]


async def handle_request(kind, key):
    if kind == "FAST":
        data = await fetch(key, 0.002)
        return data[:8].decode()
    data = await fetch(key, 0.02)
    return digest(data, 2000)


async def serve_client(reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        kind, key = line.decode().split()
        with yprof_record.tag(kind.lower()):  # this request's calls: under its kind
            answer = await handle_request(kind, key)
        writer.write((answer + "\n").encode())
        await writer.drain()
    writer.close()


async def client(port, n, slow_every):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for i in range(n):
        kind = "SLOW" if i % slow_every == 0 else "FAST"
        writer.write(("%s k%d\n" % (kind, i)).encode())
        await writer.drain()
        await reader.readline()
    writer.close()


async def main(args):
    server = await asyncio.start_server(serve_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await asyncio.gather(*(client(port, args.requests, args.slow_every) for _ in range(args.clients)))


def run(args):
    yprof_record.start(args.trace)
    asyncio.run(main(args))
    yprof_record.stop()
    stats = yprof_record.get_stats()
    out = {}
    for name in ("handle_request", "fetch", "digest", "serve_client"):
        f = stats.function(name)
        out[name] = {"ncalls": f.ncalls, "total_s": round(f.total_s, 4), "awaited_s": round(f.awaited_s, 4),
                     "self_s": round(f.self_s, 4)}
    out["tags"] = {row["tag"]: {"handle_request": stats.function("handle_request", tag=row["tag"]).ncalls,
                                "wall_s": round(row["wall_s"], 4), "active_s": round(row["active_s"], 4)}
                   for row in stats.tag_summary()}
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trace", default="async.yp")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=10, help="per client")
    ap.add_argument("--slow-every", type=int, default=5, help="every Nth request of a client is SLOW")
    print(json.dumps(run(ap.parse_args()), indent=1))
