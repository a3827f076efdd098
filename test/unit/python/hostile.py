"""Hostile request bodies, and a child process that measures what one request
costs the store app: peak RSS above the idle process (VmHWM, reset through
/proc/self/clear_refs before each request) and CPU seconds.

Used by test_hostile_bodies.py (the bound) and measure_hostile.py (figures).
A fresh interpreter per run, so one request's garbage does not hide another's
peak; the app package is imported from ``app_dir``, so the same bodies can be
measured against another checkout's files/default (e.g. main's).
"""

import gzip
import json
import os
import subprocess
import sys
import tempfile
import uuid
import zlib
from pathlib import Path

FILES_DEFAULT = Path(__file__).resolve().parents[3] / "files" / "default"
INTEGRATION = Path(__file__).resolve().parents[2] / "integration"
KEY = "0123456789abcdef0123456789abcdef"
AUTH = "Sentry sentry_key=%s, sentry_version=7, sentry_client=hostile/1" % KEY


def fill(unit, size, head=b"[", tail=b"]", sep=b","):
    """``head unit,unit,... tail`` of about ``size`` bytes."""
    count = max(1, (size - len(head) - len(tail)) // (len(unit) + len(sep)))
    return head + sep.join([unit] * count) + tail


def unique_key_dicts(size):
    """``[{"0":0},{"1":0},...]`` of about ``size`` bytes: every key new."""
    parts, total, i = [], 2, 0
    while total < size:
        part = b'{"%x":0}' % i
        parts.append(part)
        total += len(part) + 1
        i += 1
    return b"[" + b",".join(parts[:-1]) + b"]"


def deep_gzip(data):
    """gzip at level 9: repetitive bodies shrink about 1000 to 1."""
    return gzip.compress(data, 9)


def empty_gzip_members(count):
    """``count`` concatenated gzip members of nothing (20 bytes each)."""
    return gzip.compress(b"", 9) * count


def empty_items_envelope(count):
    """An envelope header and ``count`` items with an empty payload line."""
    return b"{}\n" + b'{"type":"session"}\n\n' * count


def blank_lines_envelope(newlines, event=b'{"message": "after the blank lines"}'):
    """An envelope header, ``newlines`` blank lines, then one event item
    (issue 18, item 1: 20 MiB of them gzip to 20 KB)."""
    return (b"{}\n" + b"\n" * newlines + b'{"type": "event"}\n' + event
            + b"\n")


def spaces_envelope(spaces, event=b'{"message": "after the spaces"}'):
    """The same with a run of ``spaces`` spaces instead: whitespace between
    items that is not a line."""
    return (b"{}\n" + b" " * spaces + b'{"type": "event"}\n' + event
            + b"\n")


def float_headers_envelope(items, header_bytes=64 * 1024 - 64):
    """``items`` session items, each header about ``header_bytes`` of
    ``[0.5,0.5,...]`` (issue 18, item 2: 100 of them gzip to 8 KB)."""
    header = b'{"type": "session", "pad": ' + fill(
        b"0.5", header_bytes - 32) + b"}\n"
    return b"{}\n" + (header + b"{}\n") * items


def attachment_envelope(attachment_bytes, fill_byte=b"\0",
                        event=b'{"message": "with an attachment"}'):
    """An event item, then one attachment item of ``attachment_bytes``
    (with its length), as the SDKs send them (issue 18, item 7)."""
    return b"".join((
        b'{"event_id": "%s"}\n' % uuid.uuid4().hex.encode(),
        b'{"type": "event", "length": %d}\n' % len(event), event, b"\n",
        b'{"type": "attachment", "length": %d, "filename": "big.bin"}\n'
        % attachment_bytes, fill_byte * attachment_bytes, b"\n"))


def store_request(body, encoding="gzip", key=True):
    headers = {"HTTP_CONTENT_ENCODING": encoding} if encoding else {}
    if key:
        headers["HTTP_X_SENTRY_AUTH"] = AUTH
    return {"path": "/api/1/store/", "headers": headers, "body": body}


def envelope_request(body, encoding="gzip", key=True):
    headers = {"HTTP_CONTENT_ENCODING": encoding} if encoding else {}
    query = "sentry_key=%s&sentry_version=7" % KEY if key else ""
    return {"path": "/api/1/envelope/", "headers": headers, "query": query,
            "body": body}


_CHILD = r"""
import ctypes, gc, io, json, os, resource, sys, time
libc = ctypes.CDLL("libc.so.6")
spec = json.load(sys.stdin)
sys.dont_write_bytecode = True
sys.path.insert(0, spec["app_dir"])
from store_app import wsgi

def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])

def call(app, req, body):
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": req["path"],
               "QUERY_STRING": req.get("query", ""), "SCRIPT_NAME": "",
               "SERVER_NAME": "x", "SERVER_PORT": "80",
               "SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_TYPE": "",
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
               "wsgi.errors": sys.stderr, "wsgi.url_scheme": "http"}
    environ.update(req["headers"])
    seen = []
    data = b"".join(app(environ, lambda s, h, e=None: seen.append(s)))
    return int(seen[0].split()[0]), data

app = wsgi.make_app(spec["config"], instance="hostile")
warm = {"path": "/api/1/store/", "headers": {"HTTP_X_SENTRY_AUTH": spec["auth"]}}
call(app, warm, b'{"message": "warm up"}')
for req in spec["requests"]:
    with open(req["body_file"], "rb") as f:
        body = f.read()
    # Give what earlier requests freed back to the system, so that this
    # request's allocations show up in RSS instead of reusing that memory.
    gc.collect()
    libc.malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    base = status_kb("VmRSS")
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    status, data = call(app, req, body)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    peak = status_kb("VmHWM")
    del data, body
    print(json.dumps({"status": status, "peak_kb": peak - base,
                      "cpu_s": (ru1.ru_utime - ru0.ru_utime)
                      + (ru1.ru_stime - ru0.ru_stime), "wall_s": wall}),
          flush=True)
"""


def measure(app_dir, config, requests, timeout=120):
    """Run ``requests`` (dicts from store_request/envelope_request) one after
    another in a fresh interpreter; return one result dict per request:
    status, peak_kb (peak RSS above the RSS just before it), cpu_s, wall_s."""
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        reqs = []
        for i, req in enumerate(requests):
            path = os.path.join(tmp, "body%d" % i)
            with open(path, "wb") as f:
                f.write(req["body"])
            reqs.append({k: v for k, v in req.items() if k != "body"}
                        | {"body_file": path})
        cfg = dict(config, spool_dir=config.get("spool_dir")
                   or os.path.join(tmp, "spool"))
        os.makedirs(cfg["spool_dir"], exist_ok=True)
        cfg.setdefault("quota", {"backend": "local", "state_file":
                                 os.path.join(cfg["spool_dir"], ".quota")})
        spec = {"app_dir": str(app_dir), "config": cfg, "auth": AUTH,
                "requests": reqs}
        out = subprocess.run(
            [sys.executable, "-c", _CHILD], input=json.dumps(spec), text=True,
            capture_output=True, timeout=timeout,
            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        if out.returncode != 0:
            raise RuntimeError("child failed:\n" + out.stderr[-4000:])
        return [json.loads(line) for line in out.stdout.splitlines()]


def cookbook_max_event_bytes():
    """The app's max_event_bytes as the cookbook sets it by default
    (attributes/default.rb's ['app']['max_event_bytes'], read through ruby by
    test/integration/expected.py), not support.config_dict's test value."""
    if str(INTEGRATION) not in sys.path:
        sys.path.insert(0, str(INTEGRATION))
    import expected
    return expected.cookbook_defaults()["app"]["max_event_bytes"]


def config(**overrides):
    """A whole config (the app has no defaults: support.config_dict's),
    project 1 only; measure() fills in the spool and the quota."""
    from support import config_dict
    cfg = config_dict("", projects={"1": {"public_key": KEY}}, **overrides)
    cfg.update(spool_dir=None)
    del cfg["quota"]
    return cfg


def raw_deflate(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()
