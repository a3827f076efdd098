#!/usr/bin/python3
"""Measure what the quota check alone costs, in-process: the old in-memory
bucket (a threading.Lock around quota.take, as before issue 12), the node's
state file (LocalQuota), and Redis on loopback (RedisQuota), with the
persistence the cookbook asks for (appendfsync always) and without any.

    /usr/bin/python3 test/unit/python/measure_quota_cost.py \
        [--checks N] [--threads T]

Starts its own redis-servers (Debian's redis-server) in a temporary
directory.  Every check is admitted (a rate no test reaches), so each one
writes.  Prints p50, p99 and p99.9 of one check, in microseconds, per
backend; with --threads T, T threads check at once and every call counts.
"""

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.dont_write_bytecode = True  # never leave __pycache__ in files/default
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "files" / "default"))
sys.path.insert(0, str(HERE))

from store_app import quota  # noqa: E402
from redis_server import RedisServer  # noqa: E402

RATE, BURST = 1e9, 1e9


class MemoryBucket:
    """The old per-process bucket: a lock and the same arithmetic."""

    def __init__(self):
        self._lock = threading.Lock()
        self._tokens, self._updated = BURST, time.monotonic()

    def check(self, project_id, rate, burst):
        with self._lock:
            now = time.monotonic()
            self._tokens, wait = quota.take(self._tokens, self._updated, now,
                                            rate, burst)
            self._updated = now
            return wait


def timings(backend, checks, threads):
    """Nanoseconds of each check, from ``threads`` threads at once."""
    for _ in range(min(1000, checks)):     # warm up: connections, caches
        backend.check("1", RATE, BURST)
    results = []
    barrier = threading.Barrier(threads)

    def worker():
        own = []
        barrier.wait()
        clock, check = time.perf_counter_ns, backend.check
        for _ in range(checks // threads):
            t0 = clock()
            check("1", RATE, BURST)
            own.append(clock() - t0)
        results.extend(own)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sorted(results)


def percentile(sorted_ns, p):
    return sorted_ns[min(len(sorted_ns) - 1, int(p / 100 * len(sorted_ns)))] \
        / 1000.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="quota-cost-") as tmp:
        servers = [RedisServer(os.path.join(tmp, "aof"), appendonly=True),
                   RedisServer(os.path.join(tmp, "mem"), appendonly=False)]
        try:
            for s in servers:
                s.start()
            backends = [
                ("in-memory bucket (before)", MemoryBucket()),
                ("local state file", quota.LocalQuota(
                    os.path.join(tmp, "state"))),
                ("redis, appendfsync always", quota.RedisQuota(
                    servers[0].url, "q:", 1000, os.path.join(tmp, "f0"))),
                ("redis, no persistence", quota.RedisQuota(
                    servers[1].url, "q:", 1000, os.path.join(tmp, "f1"))),
            ]
            print("%d checks, %d thread(s); microseconds per check"
                  % (args.checks, args.threads))
            print("%-28s %9s %9s %9s" % ("backend", "p50", "p99", "p99.9"))
            for name, backend in backends:
                ns = timings(backend, args.checks, args.threads)
                fallbacks = backend.status().get("fallback_checks", 0) \
                    if hasattr(backend, "status") else 0
                assert not fallbacks, "%s fell back to the node" % name
                print("%-28s %9.1f %9.1f %9.1f" % (
                    name, percentile(ns, 50), percentile(ns, 99),
                    percentile(ns, 99.9)))
        finally:
            for s in servers:
                s.kill()


if __name__ == "__main__":
    main()
