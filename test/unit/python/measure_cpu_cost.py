#!/usr/bin/python3
"""Measure the per-request CPU cost of the store endpoint (no server).

Calls the WSGI app directly with SDK-style gzip events of about 20 KB and
1 MB (uncompressed), spooling to a local directory, and prints per-request
CPU time (this thread, user+system, so the kernel's fsync work counts) and
wall time, plus the split between decode+parse and spooling.

    /usr/bin/python3 test/unit/python/measure_cpu_cost.py [--spool-dir DIR]
"""

import argparse
import gzip
import io
import json
import random
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.dont_write_bytecode = True  # never leave __pycache__ in files/default
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "files"
                       / "default"))

from store_app import body, decode, spool, wsgi  # noqa: E402

KEY = "0123456789abcdef0123456789abcdef"
AUTH = ("Sentry sentry_key=%s, sentry_version=7, "
        "sentry_client=sentry.python/1.9.10" % KEY)


def _word(rng):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_")
                   for _ in range(rng.randint(3, 12)))


def make_event(target_bytes, rng):
    """An SDK-shaped error event padded with frames/breadcrumbs to about
    ``target_bytes`` of JSON; random words keep gzip's ratio realistic."""
    event = {
        "event_id": uuid.uuid4().hex, "level": "error", "platform": "python",
        "timestamp": "2024-01-01T00:00:00.000000Z", "server_name": "web-1",
        "sdk": {"name": "sentry.python", "version": "1.9.10"},
        "contexts": {"runtime": {"name": "CPython", "version": "3.11.2"}},
        "exception": {"values": [{"type": "KeyError", "value": "'missing'",
                                  "stacktrace": {"frames": []}}]},
        "breadcrumbs": {"values": []},
    }
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    crumbs = event["breadcrumbs"]["values"]
    size = len(json.dumps(event))
    while size < target_bytes:
        frame = {"filename": "app/%s/%s.py" % (_word(rng), _word(rng)),
                 "function": _word(rng), "lineno": rng.randint(1, 2000),
                 "context_line": " ".join(_word(rng) for _ in range(8)),
                 "vars": {_word(rng): _word(rng) for _ in range(4)}}
        crumb = {"category": "query", "level": "info",
                 "message": " ".join(_word(rng) for _ in range(12))}
        frames.append(frame)
        crumbs.append(crumb)
        # Running total instead of re-dumping the whole event (quadratic).
        size += len(json.dumps(frame)) + len(json.dumps(crumb)) + 4
    return event


def make_bodies(target_bytes, count, rng):
    """``count`` gzip bodies of the same event shape, distinct event_ids."""
    template = make_event(target_bytes, rng)
    bodies = []
    for _ in range(count):
        template["event_id"] = uuid.uuid4().hex
        bodies.append(gzip.compress(json.dumps(template).encode()))
    return bodies, len(json.dumps(template))


def environ_for(data):
    return {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/1/store/",
            "QUERY_STRING": "", "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(data)), "HTTP_CONTENT_ENCODING": "gzip",
            "HTTP_X_SENTRY_AUTH": AUTH, "wsgi.input": io.BytesIO(data)}


def measure(app, cfg, bodies):
    """Return per-request ms: (user+sys cpu, user, sys, wall, parse cpu,
    spool cpu), all CPU figures for this thread only."""
    statuses = []

    def start_response(status, headers):
        statuses.append(status)

    environs = [environ_for(b) for b in bodies]
    ru0 = resource.getrusage(resource.RUSAGE_THREAD)
    wall0 = time.perf_counter()
    for environ in environs:
        app(environ, start_response)
    ru1, wall = resource.getrusage(resource.RUSAGE_THREAD), \
        time.perf_counter() - wall0
    user = ru1.ru_utime - ru0.ru_utime
    system = ru1.ru_stime - ru0.ru_stime
    assert all(s.startswith("200") for s in statuses), set(statuses)

    # Same work split in two: decode + parse only, then spool only.
    decoded = []
    t0 = time.thread_time()
    budget = body.JSON_BUDGET_FACTOR * cfg.max_event_bytes
    for b in bodies:
        with decode.DecodedBody(b, ["gzip"], cfg.max_event_bytes) as stream:
            data = stream.read_all()
        decoded.append(body.prepare_event(
            body.parse_json_object(data, budget), data, "2"))
    parse = time.thread_time() - t0
    t0 = time.thread_time()
    for event_id, payload in decoded:
        # Fresh ids so this is a real write, not a duplicate.
        spool.spool_event(cfg.spool_dir, "2", uuid.uuid4().hex, payload)
    spooling = time.thread_time() - t0

    n = len(bodies) / 1000.0
    return ((user + system) / n, user / n, system / n, wall / n, parse / n,
            spooling / n)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spool-dir", help="default: a fresh temp dir")
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    spool_dir = Path(args.spool_dir or tempfile.mkdtemp(prefix="store_app-"))
    try:
        app = wsgi.make_app({
            "projects": {"1": {"public_key": KEY}, "2": {"public_key": KEY}},
            "spool_dir": str(spool_dir.resolve()),
            "quota": {"backend": "local",
                      "state_file": str(spool_dir.resolve() / ".quota")}},
            instance="measure")
        rng = random.Random(42)
        print("spool dir: %s" % spool_dir)
        print("%-6s %8s %7s %5s %8s %8s %8s %8s %8s %8s" % (
            "event", "json B", "gzip B", "reqs", "cpu ms", "user ms",
            "sys ms", "wall ms", "parse ms", "spool ms"))
        for label, size, count in (("20 KB", 20_000, args.small),
                                   ("1 MB", 1_000_000, args.large)):
            # Disk timings are noisy: a few rounds show the spread.
            for _ in range(args.rounds):
                bodies, json_size = make_bodies(size, count + 2, rng)
                measure(app, app.cfg, bodies[:2])  # warm up (dirs, caches)
                figures = measure(app, app.cfg, bodies[2:])
                print("%-6s %8d %7d %5d %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f"
                      % ((label, json_size, len(bodies[2]), count) + figures))
        print("cpu = user+sys CPU of the calling thread per request, end to "
              "end (sys is mostly the two fsyncs);\nparse = decompress + "
              "json.loads + event_id; spool = temp write + fsync + link + "
              "dir fsync (same work, timed separately).")
    finally:
        if not args.spool_dir:
            shutil.rmtree(spool_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
