"""The soak: yprof under everything a long-running server does to it at once.

    python bench/soak.py [--seconds 600] [--threads 64] [--json FILE]

For --seconds, --threads worker threads call Python functions; they exit
after a random number of rounds and are replaced (churn). Controller threads
chosen at random start and stop the profiler, read stats, clear them; every
few seconds the main thread forks a child (which must run, record its own
trace when the parent was recording, and count exactly); for a while the
trace goes to a full disk (a 1 MiB tmpfs when this process may mount one,
else RLIMIT_FSIZE). Every round ends with a check: the chaos pauses, the
profiler records a batch of calls each worker counts itself, and the live
stats must equal the workers' counters exactly. The last check is made on a
fresh trace too, read back by yprof-analyze.

It prints one JSON line (rounds, checks, forks, hung children, memory at
the start and the end, the profiler's peak, drops, write errors) and exits
non-zero when a check failed, a child hung, the application saw an
exception, or memory grew by more than --max-growth-mib after the first
quarter of the run.
"""
import argparse
import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import yprof_record as yp

warnings.simplefilter("ignore")  # the drop and write-error warnings are expected here


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def leaf(i):
    return i + 1


def counted(i):
    return leaf(i)


class Soak:
    def __init__(self, args, workdir):
        self.args = args
        self.dir = workdir
        self.rng = random.Random(args.seed)
        self.quit = threading.Event()
        self.pause = threading.Event()  # set: workers stop the free-running loop
        self.lock = threading.Lock()
        self.errors = []
        self.counts = {}  # worker id -> calls of counted() in the current batch
        self.batch = 0
        self.workers = {}
        self.next_id = 0
        self.out = dict(rounds=0, checks=0, check_failures=0, forks=0, forks_recorded=0, hung=0,
                        child_failures=0, threads_started=0, start_stop=0, get_stats=0, clears=0,
                        full_disk=None, write_errors=0, dropped=0, alloc_failures=0)
        self.full_dir = None
        self.ctl_busy = 0  # controllers inside an operation (under self.lock)
        self.inflight = 0  # workers inside a batch (under self.lock)
        self.peak = 0  # the profiler's peak memory, the most seen at a check

    # ---- workers ------------------------------------------------------------------

    def worker(self, wid, rounds):
        try:
            seen = self.batch
            while rounds > 0 and not self.quit.is_set():
                if self.pause.is_set():  # a check: exactly N counted calls, once per batch
                    with self.lock:
                        b = self.batch
                        if b == seen:
                            b = None
                        else:
                            self.inflight += 1
                    if b is not None:
                        seen = b
                        for i in range(self.args.batch):
                            counted(i)
                        with self.lock:
                            self.counts[wid] = self.counts.get(wid, 0) + self.args.batch
                            self.inflight -= 1
                    time.sleep(0.001)
                    continue
                rounds -= 1  # only free-running rounds: a worker never exits inside a check
                for i in range(200):
                    leaf(i)
                time.sleep(0.0005 * self.rng.random())
        except BaseException as e:  # the application must never see one
            self.errors.append("worker: %r" % (e,))
        finally:
            with self.lock:
                self.workers.pop(wid, None)

    def keep_workers(self):
        while len(self.workers) < self.args.threads:
            with self.lock:
                wid = self.next_id
                self.next_id += 1
                t = threading.Thread(target=self.worker, args=(wid, self.rng.randint(50, 2000)),
                                     name="worker-%d" % wid, daemon=True)
                self.workers[wid] = t
            t.start()
            self.out["threads_started"] += 1

    # ---- chaos ------------------------------------------------------------------------

    def trace_path(self):
        # one trace on the full disk for the whole period: a start() on the
        # same path continues it, so it fills up (a new path would truncate)
        if self.full_dir:
            return os.path.join(self.full_dir, "full.yp")
        return os.path.join(self.dir, "soak.yp")

    def controller(self):
        try:
            while not self.quit.is_set():
                with self.lock:
                    busy = not self.pause.is_set()
                    self.ctl_busy += busy
                if not busy:
                    time.sleep(0.005)
                    continue
                try:
                    self.chaos_step()
                finally:
                    with self.lock:
                        self.ctl_busy -= 1
                time.sleep(0.02 * self.rng.random())
        except BaseException as e:
            self.errors.append("controller: %r" % (e,))

    def chaos_step(self):
        r = self.rng.random()
        if r < 0.35:
            if yp.is_running():
                yp.stop()
                if yp.status()["error"]:  # the full disk: counted, never raised
                    self.out["write_errors"] += 1
            else:
                yp.start(self.trace_path())
            self.out["start_stop"] += 1
        elif r < 0.7:
            yp.get_stats(timeout=2.0).functions
            self.out["get_stats"] += 1
        elif r < 0.8:
            yp.clear_stats()
            self.out["clears"] += 1
        else:
            yp.pollution()

    def fork_one(self):
        self.out["forks"] += 1
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                rec = yp.is_running()
                for i in range(1000):
                    counted(i)
                if rec:
                    f = yp.get_stats().function("counted")
                    code = 0 if f is not None and f.ncalls == 1000 else 3
                    yp.stop()
                    yp._close()
                code += 10 if rec else 0
            except BaseException:
                code = 4
            os._exit(code)
        deadline = time.monotonic() + 30
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = status >> 8 if os.WIFEXITED(status) else 99
                if code >= 10:
                    self.out["forks_recorded"] += 1
                    code -= 10
                if code:
                    self.out["child_failures"] += 1
                return
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                self.out["hung"] += 1
                return
            time.sleep(0.005)

    # ---- full disk --------------------------------------------------------------------

    def make_full_disk(self):
        d = tempfile.mkdtemp(prefix="yprof-full-", dir=self.dir)
        if os.geteuid() == 0 and shutil.which("mount"):
            p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", d], capture_output=True)
            if p.returncode == 0:
                self.out["full_disk"] = "tmpfs 1 MiB"
                return d, lambda: subprocess.run(["umount", "-l", d], capture_output=True)
        # else: a file size limit for this process while the period lasts
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
        self.out["full_disk"] = "RLIMIT_FSIZE 1 MiB"
        return d, lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

    # ---- checks -----------------------------------------------------------------------

    def check(self, path=None):
        """Pause the chaos; record one batch every worker counts; compare."""
        with self.lock:
            self.pause.set()
        while True:  # no controller inside a start/stop any more
            with self.lock:
                if self.ctl_busy == 0:
                    break
            time.sleep(0.002)
        if path:
            yp.stop()
            yp.start(path)
        elif not yp.is_running():
            yp.start(self.trace_path())
        yp.clear_stats()
        with self.lock:
            self.counts = {}
            self.batch += 1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # every live worker has done this batch
            with self.lock:
                if self.inflight == 0 and all(w in self.counts for w in self.workers):
                    break
            time.sleep(0.01)
        with self.lock:
            want = sum(self.counts.values())
        f = yp.get_stats(timeout=5.0).function("counted")
        got = f.ncalls if f else 0
        self.out["checks"] += 1
        if got != want:
            self.out["check_failures"] += 1
            self.errors.append("check %d: live stats %d calls, workers counted %d" % (self.batch, got, want))
        self.pause.clear()
        return want

    def run(self):
        a = self.args
        t_end = time.monotonic() + a.seconds
        ctl = [threading.Thread(target=self.controller, name="ctl-%d" % i, daemon=True) for i in range(3)]
        self.keep_workers()
        for t in ctl:
            t.start()
        rss, quarter = [], time.monotonic() + a.seconds / 4
        rss_after_quarter = None
        next_fork = time.monotonic() + a.fork_every
        full_from, full_until, undo = time.monotonic() + a.seconds * 0.4, time.monotonic() + a.seconds * 0.6, None
        while time.monotonic() < t_end - 1.0:
            self.out["rounds"] += 1
            round_end = min(time.monotonic() + a.round_seconds, t_end - 1.0)
            while time.monotonic() < round_end:
                self.keep_workers()
                now = time.monotonic()
                if undo is None and full_from <= now < full_until:
                    self.full_dir, undo = self.make_full_disk()
                elif undo and now >= full_until:
                    was = yp.is_running()
                    yp.stop()
                    self.full_dir = None
                    undo()
                    undo = False  # done: not again
                    if was:
                        yp.start(self.trace_path())
                if now >= next_fork:
                    self.fork_one()
                    next_fork = now + a.fork_every
                time.sleep(0.02)
            self.check()
            rss.append(rss_kib())
            self.peak = max(self.peak, yp.pollution()["peak_bytes"])
            if rss_after_quarter is None and time.monotonic() >= quarter:
                rss_after_quarter = rss[-1]
        if undo:
            undo()
        # the last check on a fresh trace, read back by the analyzer
        final = os.path.join(self.dir, "final.yp")
        want = self.check(path=final)
        self.quit.set()
        yp.stop()
        st = yp.status()
        self.out["dropped"] = st["dropped_events"]
        self.out["alloc_failures"] = st["alloc_failures"]
        p = yp.pollution()
        self.out["peak_bytes"] = max(p["peak_bytes"], self.peak)
        self.out["bytes_end"] = p["bytes"]
        for t in ctl:
            t.join(timeout=10)
        analyze = shutil.which("yprof-analyze") or os.path.join(os.path.dirname(sys.executable), "yprof-analyze")
        db = os.path.join(self.dir, "final.db")
        subprocess.run([analyze, final, "-q", "-o", db], check=True, capture_output=True)
        con = sqlite3.connect(db)
        (got,) = con.execute("SELECT COALESCE(SUM(ncalls), 0) FROM function_totals WHERE name='counted'").fetchone()
        con.close()
        if got != want:
            self.out["check_failures"] += 1
            self.errors.append("final trace: %d calls, workers counted %d" % (got, want))
        self.out["rss_start_mib"] = round(rss[0] / 1024, 1) if rss else None
        self.out["rss_after_quarter_mib"] = round((rss_after_quarter or 0) / 1024, 1)
        self.out["rss_end_mib"] = round(rss[-1] / 1024, 1) if rss else None
        self.out["rss_max_mib"] = round(max(rss) / 1024, 1) if rss else None
        step = max(1, len(rss) // 12)
        self.out["rss_series_mib"] = [round(x / 1024, 1) for x in rss[::step]]
        self.out["errors"] = self.errors[:10]
        grew = (rss[-1] - (rss_after_quarter or rss[-1])) / 1024 if rss else 0
        self.out["rss_growth_after_quarter_mib"] = round(grew, 1)
        ok = (not self.errors and not self.out["hung"] and not self.out["child_failures"]
              and grew <= a.max_growth_mib)
        return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--threads", type=int, default=64)
    ap.add_argument("--round-seconds", type=float, default=2.0)
    ap.add_argument("--fork-every", type=float, default=3.0)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--max-growth-mib", type=float, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the result here")
    ap.add_argument("--dir", help="where traces go (default: a new temporary directory, removed)")
    a = ap.parse_args()
    workdir = a.dir or tempfile.mkdtemp(prefix="yprof-soak-")
    t0 = time.monotonic()
    try:
        s = Soak(a, workdir)
        ok = s.run()
        s.out["seconds"] = round(time.monotonic() - t0, 1)
        s.out["python"] = sys.version.split()[0]
        s.out["ok"] = ok
        line = json.dumps(s.out)
        print(line, flush=True)
        if a.json:
            with open(a.json, "w") as f:
                f.write(line + "\n")
    finally:
        if not a.dir:
            shutil.rmtree(workdir, ignore_errors=True)
    os._exit(0 if ok else 1)  # daemon workers may still be finishing a round


if __name__ == "__main__":
    main()
