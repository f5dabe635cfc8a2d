"""A stdlib-heavy program for bench/filters.py: its own functions are few
and call json, difflib, email, argparse and re, which do nearly all the
work. Run as a script: `filter_app.py CONFIG` times it under CONFIG (none,
yprof, yprof-include, yprof-include-frame-eval, cProfile) and prints JSON."""
import argparse
import difflib
import email
import json
import os
import re
import sys
import tempfile
import time

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa " * 40).split()


def make_doc(i):
    return {"id": i, "name": "item%d" % i, "tags": WORDS[i % 30:i % 30 + 5], "score": i * 1.5}


def json_round(n):
    docs = [make_doc(i) for i in range(n)]
    return len(json.loads(json.dumps(docs)))


def diff_texts(n):
    a = ["line %d %s" % (i, WORDS[i % 50]) for i in range(n)]
    b = [s.replace("a", "A") if i % 7 == 0 else s for i, s in enumerate(a)]
    return sum(1 for _ in difflib.unified_diff(a, b, lineterm=""))


def parse_mail(n):
    msg = email.message_from_string("Subject: hi\nFrom: a@b\nTo: c@d\n\n" + "body line\n" * n)
    return len(msg.get_payload())


def parse_args(argv):
    p = argparse.ArgumentParser(prog="app")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--name")
    p.add_argument("files", nargs="*")
    return p.parse_args(argv)


def scan(text):
    return len(re.findall(r"\b(\w+)a\b", text)) + len(re.sub(r"[aeiou]", "", text))


def main(rounds=6):
    total = 0
    text = " ".join(WORDS)
    for r in range(rounds):
        total += json_round(2000)
        total += diff_texts(1500)
        total += parse_mail(300)
        for i in range(200):
            total += parse_args(["--count", str(i), "--name", "n", "a", "b"]).count
        total += scan(text)
    return total


def setup(config, tmp):
    if config == "none":
        return lambda: None, lambda: {}
    if config == "cProfile":
        import cProfile
        prof = cProfile.Profile()
        return prof.enable, lambda: (prof.disable(), {})[1]
    import yprof_record as yp
    from yprof_record import _calibrate
    _calibrate.wait()  # the one-time calibration in the background is not the filter's cost
    include = [__name__] if config.startswith("yprof-include") else None
    builtins = config != "yprof-include-frame-eval"
    if not builtins:  # 3.9-3.11: the PEP 523 hook, Python functions only (docs/api.md)
        os.environ["YPROF_HOOK"] = "frame-eval"
    path = os.path.join(tmp, "t.yp")

    def stop():
        yp.stop()
        s = yp.get_stats()
        yp._close()
        mine = sum(f.ncalls for f in s.functions if f.module == __name__)
        return {"events": s.session["events"], "calls_in_app": mine, "functions": len(s.functions)}
    return lambda: yp.start(path, include=include, builtins=builtins), stop


if __name__ == "__main__":
    main(1)  # imports and first-use caches (email's, re's) are not timed
    with tempfile.TemporaryDirectory() as tmp:
        start, stop = setup(sys.argv[1], tmp)
        start()
        t0 = time.perf_counter()
        main()
        t = time.perf_counter() - t0
        extra = stop()
    extra["t"] = t
    print(json.dumps(extra))
