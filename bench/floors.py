"""The machine's own floors for this workload, measured in the same run with
the app's own code (files/default/store_app), so they cannot drift from it.
A floor is the least the machine spends per event, given as the most events/s
that spending allows: no topology can serve more (each topology's saturation
is reported as a fraction of the lower of the two).
CPU floor: events/s that all cores push through the app's WSGI callable
in-process (auth, inflate, parse, store), one process per core, no server, no
hops, the spool on tmpfs so that no fsync waits. I/O floor: events/s that the
spool's disk stores durably with the app's spool_event (temp file, fsync, link,
directory fsync) from T threads in each of N processes, as the instances write."""
import gzip
import io
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

import topology

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "files", "default"))
from store_app import spool, wsgi  # noqa: E402  (the app's own code)

APP_CODE = wsgi.CODE_DIGEST     # what /_health reports for the same code
_JOB = {}     # what the forked workers run (set before the fork: nothing is pickled)


def _until(start, seconds, work):
    """Call work(i) from `start` until start + seconds; (calls per second, CPU seconds per call)."""
    time.sleep(max(0.0, start - time.monotonic()))
    n, cpu, begin = 0, time.process_time(), time.monotonic()
    while time.monotonic() < start + seconds:
        work(n)
        n += 1
    return n / (time.monotonic() - begin), (time.process_time() - cpu) / max(n, 1)


def poster(app, project, auth):
    """post(gzip body): the app's WSGI callable answers one store request, in-process; BenchError unless 200."""
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": f"/api/{project}/store/", "QUERY_STRING": "",
               "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
               "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": "application/json", "HTTP_CONTENT_ENCODING": "gzip",
               "HTTP_X_SENTRY_AUTH": auth, "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr}

    def post(body):
        status = []
        answer = b"".join(app(dict(environ, CONTENT_LENGTH=str(len(body)), **{"wsgi.input": io.BytesIO(body)}),
                              lambda s, h, e=None: status.append(s)))
        if not status[0].startswith("200"):
            raise topology.BenchError(f"the app answered {status[0]}: {answer[:200]!r}")
        return answer
    return post


def _cpu_worker(k):
    j, prefix = _JOB, f"{k:08x}{os.urandom(4).hex()}"
    app, project = wsgi.make_app(j["config"], instance=f"floor{k}"), next(iter(j["config"]["projects"]))
    post = poster(app, project, j["auth"])

    def store(i):
        event_id = f"{prefix}{i:016x}"
        post(j["payloads"][(k * 97 + i) % len(j["payloads"])].fresh_body(event_id))
        os.unlink(os.path.join(j["config"]["spool_dir"], project, event_id + ".json"))
    return _until(j["start"], j["seconds"], store)


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
    with multiprocessing.get_context("fork").Pool(count, _quiet) as pool:
        return pool.map(worker, range(count))


def _quiet():
    """Workers leave Ctrl-C to the harness and die plainly when the pool ends them."""
    for sig, action in ((signal.SIGINT, signal.SIG_IGN), (signal.SIGTERM, signal.SIG_DFL), (signal.SIGHUP, signal.SIG_DFL)):
        signal.signal(sig, action)


def measure(payloads, fleet, *, seconds, processes, threads, cores, spool_dir):
    """CPU floor (one process per core), then I/O floor (N processes x T threads), and which is lower."""
    shm = tempfile.mkdtemp(prefix="uwsgi_fleet_bench_floor.", dir="/dev/shm")
    key = os.urandom(16).hex()
    try:
        runs = _forked(cores, _cpu_worker, payloads=payloads, seconds=seconds,
                       config=topology.app_config(fleet, shm, "42", key, 0, 0),
                       auth=f"Sentry sentry_key={key}, sentry_version=7, sentry_client=sentry.python/1.9.10")
    finally:
        shutil.rmtree(shm, ignore_errors=True)
    cpu_s = sum(c for _, c in runs) / len(runs)     # CPU per event: what the cores could do if all ours
    cpu = {"events_per_s": round(sum(r for r, _ in runs), 1), "processes": cores,
           "cpu_ms_per_event": round(cpu_s * 1000, 3), "capacity_events_per_s": round(cores / cpu_s, 1)}
    os.makedirs(spool_dir, exist_ok=True)
    try:
        stored = sum(_forked(processes, _io_worker, seconds=seconds, threads=threads, spool_dir=spool_dir,
                             events=[gzip.decompress(p.fresh_body("0" * 32)) for p in payloads]))
    finally:
        shutil.rmtree(spool_dir, ignore_errors=True)
        os.sync()
    io_ = {"events_per_s": round(stored, 1), "processes": processes, "threads": threads, "spool_dir": spool_dir}
    lower = "cpu" if cpu["events_per_s"] <= io_["events_per_s"] else "io"
    return {"cpu": cpu, "io": io_, "lower": lower, "lower_events_per_s": min(cpu["events_per_s"], io_["events_per_s"])}
