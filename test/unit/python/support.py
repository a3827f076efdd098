"""Helpers shared by the store_app tests: configs, WSGI calls, payloads."""

import gzip
import io
import json
import os
import struct
import sys
import uuid
import zlib
from pathlib import Path
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

sys.dont_write_bytecode = True
FILES_DEFAULT = Path(__file__).resolve().parents[3] / "files" / "default"
if str(FILES_DEFAULT) not in sys.path:
    sys.path.insert(0, str(FILES_DEFAULT))

from store_app import wsgi  # noqa: E402

KEY = "0123456789abcdef0123456789abcdef"
KEY2 = "fedcba9876543210fedcba9876543210"
SDK_AUTH = ("Sentry sentry_key=%s, sentry_version=7, "
            "sentry_client=sentry.python/1.9.10")
_OMIT = object()


def config_dict(spool_dir, **overrides):
    """A raw config of Chef's shape (config.schema.json: every key), project
    1 and 2 (own keys, no limit), the node-local quota with its state file in
    the spool (a dot-file), no stream.  Projects in ``overrides`` without a
    rate_limit get none (null).  Without max_envelope_bytes, the envelope
    cap is what Chef renders when max_envelope_size is unset: the body's
    size, at least one event (libraries/store_app.rb)."""
    cfg = {
        "config_version": 1,
        "projects": {"1": {"public_key": KEY},
                     "2": {"public_key": KEY2}},
        "spool_dir": str(spool_dir),
        "quota": local_quota(spool_dir),
        "stream": None,
        "max_body_bytes": 2 * 1024 * 1024,
        "max_event_bytes": 20 * 1024 * 1024,
        "max_attachment_bytes": 20 * 1024 * 1024,
        "simulated_hops": 0,
        "simulated_hop_ms": 2.0,
    }
    cfg.update(overrides)
    cfg.setdefault("max_envelope_bytes",
                   max(cfg["max_body_bytes"], cfg["max_event_bytes"]))
    if isinstance(cfg["projects"], dict):
        cfg["projects"] = {
            pid: dict({"rate_limit": None}, **p) if isinstance(p, dict) else p
            for pid, p in cfg["projects"].items()}
    return cfg


def local_quota(spool_dir):
    return {"backend": "local",
            "state_file": os.path.join(str(spool_dir), ".quota")}


def limited(rate, burst, key=KEY):
    """A project entry with a rate limit."""
    return {"public_key": key,
            "rate_limit": {"events_per_second": rate, "burst": burst}}


def make_app(tmp_path, instance="9000", **overrides):
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    return wsgi.make_app(config_dict(spool, **overrides), instance=instance)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # keys lower-cased
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:200])


def call(app, method="POST", path="/api/1/store/", body=b"", headers=None,
         query="", content_length=_OMIT, stream=None, validate=True):
    """Call ``app`` like a WSGI server would and collect the response.

    ``content_length``: default len(body); None omits the header; a string
    is sent verbatim.  ``headers`` are HTTP header names -> values.
    """
    if stream is None:
        stream = io.BytesIO(body)
    environ = {"REQUEST_METHOD": method, "SCRIPT_NAME": "",
               "PATH_INFO": path, "QUERY_STRING": query, "wsgi.input": stream}
    if content_length is _OMIT:
        environ["CONTENT_LENGTH"] = str(len(body))
    elif content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        environ[key] = value
    setup_testing_defaults(environ)
    environ.setdefault("CONTENT_TYPE", "application/json")

    captured = []

    def start_response(status, response_headers, exc_info=None):
        captured.append((status, response_headers))

    # wsgiref's validator checks we obey the WSGI spec on every call (it
    # rejects non-numeric Content-Length itself, so not for those tests).
    if not environ.get("CONTENT_LENGTH", "0").isdigit():
        validate = False
    target = validator(app) if validate else app
    result = target(environ, start_response)
    try:
        data = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    assert len(captured) == 1, "start_response must be called exactly once"
    status, response_headers = captured[0]
    return Response(int(status.split()[0]),
                    {k.lower(): v for k, v in response_headers}, data)


def sdk_headers(key=KEY, encoding="gzip"):
    """The headers sentry-sdk 1.9.10 sends to the store endpoint."""
    headers = {"Content-Type": "application/json",
               "X-Sentry-Auth": SDK_AUTH % key,
               "User-Agent": "sentry.python/1.9.10"}
    if encoding:
        headers["Content-Encoding"] = encoding
    return headers


def make_event(event_id=_OMIT, message="hello", **extra):
    event = {"level": "error", "platform": "python",
             "message": message, "timestamp": "2024-01-01T00:00:00Z"}
    if event_id is _OMIT:
        event_id = uuid.uuid4().hex
    if event_id is not None:
        event["event_id"] = event_id
    event.update(extra)
    return event


def event_bytes(event_id=_OMIT, **kw):
    return json.dumps(make_event(event_id, **kw)).encode()


def gz(data):
    return gzip.compress(data)


def zlib_deflate(data):
    return zlib.compress(data)


def raw_deflate(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def store(app, data, key=KEY, project="1", encoding="gzip", **kw):
    """POST ``data`` (uncompressed bytes) the way the SDK does."""
    if encoding == "gzip":
        body = gz(data)
    elif encoding == "deflate":
        body = zlib_deflate(data)
    else:
        body = data
    return call(app, path="/api/%s/store/" % project, body=body,
                headers=sdk_headers(key, encoding), **kw)


def gzip_zero_bomb(gib=1):
    """A valid gzip stream of ``gib`` GiB of zeros (about 1 MB), built
    without compressing a GiB: after a full flush, deflate emits identical
    bytes for each identical 1 MiB block, so one block is repeated."""
    block = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    repeat = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.flush(zlib.Z_FINISH)
    blocks = gib * 1024
    crc = zlib.crc32(block)
    for _ in range(blocks - 1):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = struct.pack("<II", crc, (blocks << 20) & 0xFFFFFFFF)
    return header + first + repeat * (blocks - 1) + tail + trailer


def spooled(spool_dir, project="1"):
    """Names of published events (dot-files excluded, as readers must)."""
    d = Path(spool_dir) / project
    if not d.exists():
        return []
    return sorted(p.name for p in d.iterdir() if not p.name.startswith("."))


def all_files(spool_dir, project="1"):
    d = Path(spool_dir) / project
    return sorted(os.listdir(d)) if d.exists() else []
