"""The machine's own ceilings for this workload, measured in the same run with
the app's own code (files/default/store_app), so they cannot drift from it.
CPU floor: events/s that all cores inflate, parse and prepare (body.py), with
no server, one process per core. I/O floor: events/s that the spool's disk
stores durably (spool.py: temp file, fsync, link, directory fsync) from T
threads in each of N processes, as the instances write."""
import multiprocessing
import os
import shutil
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "files", "default"))
from store_app import body, spool, wsgi  # noqa: E402  (the app's own code)

APP_CODE = wsgi.CODE_DIGEST     # what /_health reports for the same code


def decode(raw, max_event_bytes):
    """The app's hot path for a store body, without HTTP: inflate, parse, prepare."""
    data = body.decode_body(raw, "gzip", max_event_bytes)
    return body.prepare_event(body.parse_json_object(data), data)[1]


_JOB = {}     # what the forked workers run (set before the fork: nothing is pickled)


def _until(start, seconds, work):
    """Call work(i) from `start` until start + seconds; (calls per second, CPU seconds per call)."""
    time.sleep(max(0.0, start - time.monotonic()))
    n, cpu, begin = 0, time.process_time(), time.monotonic()
    while time.monotonic() < start + seconds:
        work(n)
        n += 1
    return n / (time.monotonic() - begin), (time.process_time() - cpu) / max(n, 1)


def _cpu_worker(k):
    j = _JOB
    return _until(j["start"], j["seconds"], lambda i: decode(j["bodies"][(k * 97 + i) % len(j["bodies"])],
                                                             j["max_event_bytes"]))


def _io_worker(k):
    j, counts = _JOB, []

    def thread(t):
        prefix = f"{k:04x}{t:04x}{os.urandom(4).hex()}"
        counts.append(_until(j["start"], j["seconds"], lambda i: spool.spool_event(
            j["spool_dir"], "42", f"{prefix}{i:016x}", j["events"][(k * 31 + t * 7 + i) % len(j["events"])]))[0])
    pool = [threading.Thread(target=thread, args=(t,)) for t in range(j["threads"])]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts)


def _forked(count, worker, **job):
    """worker(k) in `count` forked processes at once, all starting together."""
    _JOB.clear()
    _JOB.update(job, start=time.monotonic() + 0.3)
    with multiprocessing.get_context("fork").Pool(count) as pool:
        return pool.map(worker, range(count))


def measure(payloads, *, seconds, processes, threads, cores, max_event_bytes, spool_dir):
    """CPU floor (one process per core), then I/O floor (N processes x T threads), and which is lower."""
    bodies = [p.fresh_body(os.urandom(16).hex()) for p in payloads]
    runs = _forked(cores, _cpu_worker, bodies=bodies, seconds=seconds, max_event_bytes=max_event_bytes)
    cpu_s = sum(c for _, c in runs) / len(runs)     # CPU per event: what the cores could do if all ours
    cpu = {"events_per_s": round(sum(r for r, _ in runs), 1), "processes": cores,
           "cpu_ms_per_event": round(cpu_s * 1000, 3), "capacity_events_per_s": round(cores / cpu_s, 1)}
    os.makedirs(spool_dir, exist_ok=True)
    try:
        stored = sum(_forked(processes, _io_worker, events=[decode(b, max_event_bytes) for b in bodies],
                             seconds=seconds, threads=threads, spool_dir=spool_dir))   # events per second
    finally:
        shutil.rmtree(spool_dir, ignore_errors=True)
        os.sync()
    io = {"events_per_s": round(stored, 1), "processes": processes, "threads": threads,
          "spool_dir": spool_dir}
    lower = "cpu" if cpu["events_per_s"] <= io["events_per_s"] else "io"
    return {"cpu": cpu, "io": io, "lower": lower, "lower_events_per_s": min(cpu["events_per_s"], io["events_per_s"])}
