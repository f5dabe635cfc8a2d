"""Benchmark workloads. Each returns nothing; run() times it."""
import threading


def fib_work():
    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)
    fib(24)


class Vec:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x, self.y = x, y

    def add(self, o):
        return Vec(self.x + o.x, self.y + o.y)

    def norm2(self):
        return self.x * self.x + self.y * self.y


def oo_work():
    acc = Vec(0, 0)
    out = []
    for i in range(60000):
        acc = acc.add(Vec(i % 7, i % 5))
        if acc.norm2() > 1000:
            out.append(len(out))
            acc = Vec(0, 0)
    sorted(out)


def _calls(n):
    def leaf(i):
        return i + 1

    def mid(i):
        return leaf(i) + leaf(i + 1)

    s = 0
    for i in range(n):
        s += mid(i)
    return s


def threads_work(k):
    ts = [threading.Thread(target=_calls, args=(240000 // k,)) for _ in range(k)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def threads4_work():
    threads_work(4)


def threads16_work():
    threads_work(16)


def stdlib_work():
    import ast
    import email
    import json
    import textwrap
    with open(textwrap.__file__) as f:
        src = f.read()
    ast.dump(ast.parse(src))
    doc = {"k%d" % i: [i, str(i), {"x": i * 1.5}] for i in range(3000)}
    json.loads(json.dumps(doc))
    msg = email.message_from_string("Subject: hi\nFrom: a@b\n\n" + "body line\n" * 200)
    msg.get_payload()


def tcp_work():
    import socket
    import socketserver

    class H(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                self.wfile.write(line.upper())

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    def client():
        with socket.create_connection(srv.server_address) as s:
            f = s.makefile("rwb")
            for i in range(400):
                f.write(b"ping %d\n" % i)
                f.flush()
                f.readline()

    cs = [threading.Thread(target=client) for _ in range(4)]
    for c in cs:
        c.start()
    for c in cs:
        c.join()
    srv.shutdown()
    srv.server_close()


def _make_functions(n):
    ns = {}
    exec(compile("\n".join("def f%d(x): return x" % i for i in range(n)), "<many>", "exec"), ns)
    return [ns["f%d" % i] for i in range(n)]


_FEW = _MANY = None


def prepare():
    """Built before timing: the per-event cost must not include compiling."""
    global _FEW, _MANY
    _FEW = _make_functions(10)
    _MANY = _make_functions(20000)


def _call_all(fs, rounds):
    for _ in range(rounds):
        for f in fs:
            f(1)
            f(2)


def few_functions_work():
    _call_all(_FEW, 20000)  # 400k calls over 10 functions


def many_functions_work():
    _call_all(_MANY, 10)  # 400k calls over 20,000 functions


WORKLOADS = {
    "fib": fib_work,
    "oo+builtins": oo_work,
    "4 threads": threads4_work,
    "16 threads": threads16_work,
    "stdlib (ast/json/email)": stdlib_work,
    "tcp server": tcp_work,
    "10 functions": few_functions_work,
    "20000 functions": many_functions_work,
}
