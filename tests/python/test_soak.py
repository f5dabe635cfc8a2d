"""The soak (bench/soak.py) for 20 seconds: 64 threads with churn; start/stop,
get_stats and clear_stats from random threads; a fork every 3 s; a full disk
for a while. Its own checks are exact: live counts equal the workers' own
counters at every round, the last trace read back by yprof-analyze agrees,
no child hangs or fails, memory does not grow after the first quarter."""
import json
import os
import subprocess
import sys

from conftest import SANITIZER

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench")


def test_soak_20s_threads_churn_forks_full_disk(tmp_path):
    args = [sys.executable, os.path.join(BENCH, "soak.py"), "--seconds", "20", "--dir", str(tmp_path)]
    if SANITIZER:  # its allocator keeps freed memory: RSS growth says nothing there
        args += ["--max-growth-mib", "1000000"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=300)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert p.returncode == 0, out
    assert out["ok"] and out["errors"] == [], out
    assert out["checks"] >= 5 and out["check_failures"] == 0, out
    assert out["forks"] >= 4 and out["hung"] == 0 and out["child_failures"] == 0, out
    assert out["threads_started"] > 64, out  # threads were replaced
    assert out["start_stop"] > 50 and out["get_stats"] > 50 and out["clears"] > 10, out
    assert out["full_disk"] and out["write_errors"] >= 1, out  # counted, never raised
