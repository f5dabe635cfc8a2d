"""A small multi-threaded TCP game server with client threads on loopback,
profiled on the fly: a console thread starts and stops yprof while the
server runs, and reads live statistics from its own thread.

    python examples/game_server.py --trace game.yp --seconds 2
    yprof-analyze game.yp --threads

Protocol: one line per request, "MOVE dx dy" or "LOOK"; the server answers
with one line. Each connection has its own server thread (ThreadingTCPServer).
"""

import argparse
import json
import math
import random
import socket
import socketserver
import threading
import time

import yprof_record


class World:
    def __init__(self, size=64):
        self.size = size
        self.lock = threading.Lock()
        self.players = {}
        self.items = [(random.randrange(size), random.randrange(size)) for _ in range(200)]

    def join(self, name):
        with self.lock:
            self.players[name] = [self.size // 2, self.size // 2, 0]

    def move(self, name, dx, dy):
        with self.lock:
            p = self.players[name]
            p[0] = (p[0] + dx) % self.size
            p[1] = (p[1] + dy) % self.size
            p[2] += self.pick_up(p[0], p[1])
            return p[2]

    def pick_up(self, x, y):
        hits = [i for i in self.items if i == (x, y)]
        for h in hits:
            self.items.remove(h)
            self.items.append((random.randrange(self.size), random.randrange(self.size)))
        return len(hits)

    def look(self, name, radius=6):
        with self.lock:
            x, y, _ = self.players[name]
            near = [i for i in self.items if self.distance(i, (x, y)) <= radius]
            others = [n for n, p in self.players.items() if n != name and self.distance(p, (x, y)) <= radius]
        return {"items": sorted(near), "players": sorted(others)}

    @staticmethod
    def distance(a, b):
        return math.hypot(a[0] - b[0], a[1] - b[1])


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        name = self.rfile.readline().decode().strip()
        self.server.world.join(name)
        for line in self.rfile:
            reply = self.dispatch(name, line.decode().split())
            self.wfile.write((reply + "\n").encode())

    def dispatch(self, name, words):
        if words[0] == "MOVE":
            return str(self.server.world.move(name, int(words[1]), int(words[2])))
        if words[0] == "LOOK":
            return json.dumps(self.server.world.look(name))
        return "ERR"


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def client(port, name, stop, counts):
    rng = random.Random(name)
    with socket.create_connection(("127.0.0.1", port)) as s:
        f = s.makefile("rw")
        f.write(name + "\n")
        f.flush()
        n = 0
        while not stop.is_set():
            if rng.random() < 0.7:
                f.write("MOVE %d %d\n" % (rng.randint(-1, 1), rng.randint(-1, 1)))
            else:
                f.write("LOOK\n")
            f.flush()
            f.readline()
            n += 1
        counts[name] = n


def console(trace, seconds, out):
    """Operator thread: profiling switched on and off while the game runs."""
    time.sleep(seconds * 0.1)
    yprof_record.start(trace)                 # from this thread, for every thread
    time.sleep(seconds * 0.3)
    stats = yprof_record.get_stats()          # live, while recording
    top = stats.sorted("self")[:3]
    out.append("live after %.1fs: %s" % (seconds * 0.3, ", ".join("%s %d calls" % (f.name, f.ncalls) for f in top)))
    yprof_record.stop()                       # the trace is complete here
    time.sleep(seconds * 0.2)                 # not recorded
    yprof_record.start(trace)                 # same path: a second interval
    time.sleep(seconds * 0.3)
    yprof_record.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trace", default="game.yp")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--clients", type=int, default=6)
    args = ap.parse_args()

    server = Server(("127.0.0.1", 0), Handler)
    server.world = World()
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, name="acceptor", daemon=True).start()
    stop, counts, out = threading.Event(), {}, []
    clients = [threading.Thread(target=client, args=(port, "player%d" % i, stop, counts), name="client-%d" % i)
               for i in range(args.clients)]
    for c in clients:
        c.start()
    op = threading.Thread(target=console, args=(args.trace, args.seconds, out), name="console")
    op.start()
    op.join()
    stop.set()
    for c in clients:
        c.join()
    server.shutdown()
    server.server_close()
    for line in out:
        print(line)
    print("requests served: %d by %d clients; pollution: %s" % (
        sum(counts.values()), len(counts),
        ", ".join("%s=%.3g" % kv for kv in sorted(yprof_record.pollution().items()))))
    print("trace: %s" % args.trace)


if __name__ == "__main__":
    main()
