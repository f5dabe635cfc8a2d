"""The docs are checked against the code: every ```python example in
README.md and docs/ runs, and every command of every ```sh block either runs
(yprof's own commands, sqlite3 queries) or, when it takes minutes (the
benchmarks, the fuzzer, the two ./run.sh commands, which CI runs), is checked
against what it names: the script exists, takes each option given, and
knows each workload, configuration, CMake variable and target named.
A command of a kind this file does not know fails the test: a new one gets
a rule here."""
import glob
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import time

import pytest
from conftest import ANALYZE, PY, run_py

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(PY)
DOCS = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))


def blocks(lang):
    out = []
    for doc in DOCS:
        text = open(os.path.join(ROOT, doc)).read()
        for i, m in enumerate(re.finditer(r"^```%s\n(.*?)^```" % lang, text, re.S | re.M)):
            out.append(pytest.param(m.group(1), id="%s#%d" % (doc, i + 1)))
    return out


def source(*paths):
    return "".join(open(os.path.join(ROOT, p)).read() for p in paths)


APP = """
import asyncio, sys, threading
import yprof_record as yp
def handle(n): return sum(i * i for i in range(n))
def serve():
    for _ in range(50):
        with yp.tag("request"):  # for the docs' queries of tags
            handle(200)
ts = [threading.Thread(target=serve) for _ in range(2)]
for t in ts: t.start()
for t in ts: t.join()
asyncio.run(asyncio.sleep(0))  # a task, for the docs' queries of tasks
assert sys.argv[1:] in ([], ["arg1", "arg2"]), sys.argv
"""


@pytest.mark.parametrize("code", blocks("python"))
def test_python_example_runs(tmp_path, code):
    run_py(tmp_path, code, name="example.py")


def lines(body):
    """The block's commands: continuation lines joined, blank lines dropped."""
    return [l for l in body.replace("\\\n", " ").splitlines() if l.strip()]


def run(tmp, argv):
    p = subprocess.run(argv, cwd=str(tmp), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, (argv, p.stdout, p.stderr)


def check_sqlite(tmp, words, expected):
    con = sqlite3.connect(str(tmp / words[1]))
    rows = con.execute(words[2]).fetchall()
    con.close()
    assert rows, words
    if expected is not None:
        assert str(rows[0][0]) == expected, (words, rows)


def check_bench(words):
    """A benchmark command: the script exists and knows what it is given."""
    script = words[1] if words[0].endswith("python") else words[0]
    assert os.path.exists(os.path.join(ROOT, script)), script
    known = source(*(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "bench", "*.py"))))
    known += source("bench/run.sh")
    for i, w in enumerate(words):
        if w.startswith("--"):
            assert "%r" % w.split("=")[0] in known or '"%s"' % w.split("=")[0] in known \
                or w.split("=")[0] + ")" in known, w
        if words[i - 1] in ("--workloads", "--configs") and not w.startswith("<"):
            for name in w.split(","):
                name = name[:-len("-read")] if name.endswith("-read") else name
                assert '"%s"' % name in known, (words[i - 1], name)


def check_cmake(words):
    cm = source("CMakeLists.txt")
    for i, w in enumerate(words):
        if w.startswith("-D"):
            var = w[2:].split("=")[0]
            assert var in cm or var.startswith("CMAKE_"), var
        if words[i - 1] == "--target":
            assert re.search(r"add_executable\(%s\b" % re.escape(w), cm), w
        if words[i - 1] == "--preset":
            assert '"name": "%s"' % w in source("CMakePresets.json"), w


SERVER = """
import time
def handle(n): return sum(i * i for i in range(n))
while True:
    handle(200)
    time.sleep(0.001)
"""


def start_background(tmp, words, env, bg):
    """`python prog &` with its VAR=value prefix: started, and when it opens a
    control channel, waited for; `$!` is its pid from then on."""
    assert words[0] == "python", words
    p = subprocess.Popen([PY] + words[1:], cwd=str(tmp), env=dict(os.environ, **env), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    bg.append(p)
    if env.get("YPROF_CONTROL"):
        import yprof_record
        deadline = time.monotonic() + 30
        while not os.path.exists(yprof_record.control_path(p.pid)):
            assert p.poll() is None and time.monotonic() < deadline, p.stderr.read() if p.poll() else "no channel"
            time.sleep(0.05)


def run_sh_line(tmp, line, bg):
    words = shlex.split(line, comments=True)
    env = {}
    while words and re.match(r"^[A-Z_]+=", words[0]):  # CC=clang-14 cmake ...
        k, _, v = words.pop(0).partition("=")
        env[k] = v
    if bg:
        words = [w.replace("$!", str(bg[-1].pid)) for w in words]
    if words[-1] == "&":
        return start_background(tmp, words[:-1], env, bg)
    expected = re.search(r"#\s*(\S+)\s*$", line)
    cmd = words[0]
    if cmd == "./run.sh":
        arms = re.findall(r"^\s+(\w+)\) ", source("run.sh"), re.M)
        assert words[1:] and words[1] in arms, (line, arms)
    elif cmd.startswith("bench/") or (cmd.endswith("python") and words[1].startswith("bench/")):
        check_bench(words)
    elif cmd == "python":
        run(tmp, [PY] + words[1:])
    elif cmd in ("yprof", "yprof-analyze"):
        run(tmp, [ANALYZE if cmd == "yprof-analyze" else os.path.join(BIN, cmd)] + words[1:])
    elif cmd == "sqlite3":
        check_sqlite(tmp, words, expected.group(1) if expected else None)
    elif cmd in ("cmake", "ctest"):
        check_cmake(words)
    elif cmd == "pip":
        assert words == ["pip", "install", "."], words  # what ./run.sh test does
    elif cmd.startswith("build/fuzz/"):
        assert re.search(r"add_executable\(%s\b" % os.path.basename(cmd), source("CMakeLists.txt")), cmd
    elif cmd in ("mkdir", "cp"):
        pass  # file shuffling around the fuzzer's run
    else:
        raise AssertionError("a command test_docs.py has no rule for: %s" % line)


@pytest.mark.parametrize("body", blocks("sh"))
def test_shell_commands_run_or_name_what_exists(tmp_path, body):
    (tmp_path / "app.py").write_text(APP)
    shutil.copytree(os.path.join(ROOT, "examples"), str(tmp_path / "examples"))  # the lines that run one
    run(tmp_path, [PY, "-m", "yprof_record", "-o", "trace.yp", "app.py"])  # trace.yp and trace.db to query
    run(tmp_path, [ANALYZE, "trace.yp", "-q"])
    (tmp_path / "server.py").write_text(SERVER)
    bg = []
    try:
        for line in lines(body):
            run_sh_line(tmp_path, line, bg)
    finally:
        for p in bg:
            p.kill()
            p.wait()
