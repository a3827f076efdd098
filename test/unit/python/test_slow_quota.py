"""Slow (about 2 s): one bucket per project for every process on the node.

Several processes of several threads each hammer one project through their
own LocalQuota on one state file, as the instances of a node do.  The node
admits the burst plus rate x time, within the width of one call at each end
and one token, never more.
"""

import multiprocessing
import threading
import time

from store_app.quota import LocalQuota

PROCESSES, THREADS = 4, 4


def _hammer(path, project, rate, burst, start_at, stop_at, results):
    """One process: THREADS threads calling check() from start_at to stop_at;
    puts (admitted, first call start, first call end, last call start,
    last call end) on ``results``."""
    quota = LocalQuota(path)
    lock = threading.Lock()
    record = {"ok": 0, "first": [], "last": []}

    def thread():
        ok, first, last = 0, None, None
        while time.monotonic() < start_at:
            pass
        while True:
            t0 = time.monotonic()
            if t0 >= stop_at:
                break
            if quota.check(project, rate, burst) == 0.0:
                ok += 1
            t1 = time.monotonic()
            first = first or (t0, t1)
            last = (t0, t1)
        with lock:
            record["ok"] += ok
            record["first"].append(first)
            record["last"].append(last)

    threads = [threading.Thread(target=thread) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put((record["ok"], min(f[0] for f in record["first"]),
                 min(f[1] for f in record["first"]),
                 max(la[0] for la in record["last"]),
                 max(la[1] for la in record["last"])))


def run_processes(target, args, seconds):
    """Run PROCESSES copies of target(*args, start_at, stop_at, results);
    return the bucket's observed window and the sum of what they admitted."""
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    start_at = time.monotonic() + 0.3   # every process is running by then
    stop_at = start_at + seconds
    procs = [ctx.Process(target=target, args=(*args, start_at, stop_at,
                                              results))
             for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    rows = [results.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    admitted = sum(r[0] for r in rows)
    first_start, first_end = min(r[1] for r in rows), min(r[2] for r in rows)
    last_start, last_end = max(r[3] for r in rows), max(r[4] for r in rows)
    return admitted, (first_start, first_end, last_start, last_end)


def assert_one_bucket(admitted, window, rate, burst):
    """The bucket is made full by the first call and drained to below one
    token by the hammering, so what the node admitted lies between what
    refills between the calls' ends and what refills between their starts."""
    first_start, first_end, last_start, last_end = window
    most = burst + rate * (last_end - first_start)
    least = burst + rate * (last_start - first_end) - 1
    assert least <= admitted <= most, (least, admitted, most)
    return least, most


def test_every_process_on_the_node_draws_on_one_bucket(tmp_path):
    rate, burst, seconds = 2000.0, 100.0, 1.0
    admitted, window = run_processes(
        _hammer, (str(tmp_path / "quota"), "1", rate, burst), seconds)
    least, most = assert_one_bucket(admitted, window, rate, burst)
    # Per-process buckets would have admitted about PROCESSES times this.
    assert admitted < 1.5 * (burst + rate * seconds)
    # Tight: the bounds differ by a few calls' worth of refill.
    assert most - least < 0.05 * admitted, (least, admitted, most)
