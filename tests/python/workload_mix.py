"""A program exercising every kind of call the recorder must count exactly
as cProfile does. Imported by test_counts.py in a fresh interpreter."""
import asyncio
import functools


def leaf(x):
    return x + 1


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def ping(n):
    return 0 if n == 0 else pong(n - 1)


def pong(n):
    return 0 if n == 0 else ping(n - 1)


def gen(n):
    for i in range(n):
        yield leaf(i)


class Shape:
    def __init__(self, k):
        self.k = k

    def area(self):
        return self.k * self.k

    @staticmethod
    def unit():
        return Shape(1)

    @property
    def double(self):
        return self.k * 2


def boom(depth):
    if depth == 0:
        raise ValueError("boom")
    return boom(depth - 1)


def catcher():
    try:
        boom(3)
    except ValueError:
        return "caught"


# The coroutine objects main() makes: yprof counts one call per coroutine
# object, cProfile one per resume (docs/api.md, "Coroutines").
COROUTINES = {"sub": 5, "amain": 1}


async def sub(i):
    await asyncio.sleep(0)
    return leaf(i)


async def amain():
    out = 0
    for i in range(5):
        out += await sub(i)
    return out


def decorated(f):
    @functools.wraps(f)
    def wrapper(*a):
        return f(*a)
    return wrapper


@decorated
def wrapped(x):
    return x * 3


def main():
    total = 0
    for i in range(50):
        total += leaf(i)
    total += fib(12)
    total += ping(9)
    total += sum(gen(20))
    total += sum(x for x in range(10))
    sq = lambda v: v * v
    total += sum(map(sq, range(7)))
    shapes = [Shape(i) for i in range(6)]
    total += sum(s.area() for s in shapes) + Shape.unit().double
    for _ in range(4):
        catcher()
    total += asyncio.run(amain())
    total += wrapped(2)
    lst = []
    for i in range(30):
        lst.append(len(lst))
    return total
