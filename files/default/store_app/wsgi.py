"""WSGI entry point: routing, request handling and JSON responses.

uWSGI loads ``store_app.wsgi:application``.  The configuration is loaded on
the first request (see config.py) rather than at import so that even a
config failure is answered in this app's JSON format with the
X-Fleet-Instance header (500, reason logged to stderr) instead of uWSGI's
generic error page.

Request pipeline for the intake endpoints (cheap checks first, and the key is
checked before the body is decompressed or parsed):
route -> auth (401/403) -> simulated hops -> Content-Encoding (415)
-> read body (400/413) -> decompress (400/413) -> parse (400)
-> quota (429) -> spool (500 on disk failure) -> 200.
Envelopes whose key is only in the envelope header's ``dsn`` are the one
exception: their body must be decoded to find the key (still size-capped).
"""

import json
import os
import re
import sys
import threading
import time
import traceback

from . import auth, body, config, envelope, quota, spool
from .errors import HttpError

INSTANCE_ENV = "STORE_APP_INSTANCE"


def code_digest():
    """Digest of this package's source: /_health shows which code a worker runs,
    so a rolling deploy can be checked instance by instance."""
    import hashlib
    digest = hashlib.sha256()
    package_dir = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(package_dir)):
        if name.endswith(".py"):
            with open(os.path.join(package_dir, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()[:16]


CODE_DIGEST = code_digest()

_API_RE = re.compile(r"/api/([0-9]{1,20})/(store|envelope)/?\Z")
_STATUS = {200: "200 OK", 400: "400 Bad Request", 401: "401 Unauthorized",
           403: "403 Forbidden", 404: "404 Not Found",
           405: "405 Method Not Allowed", 413: "413 Payload Too Large",
           415: "415 Unsupported Media Type", 429: "429 Too Many Requests",
           500: "500 Internal Server Error"}


def log_error(message):
    """Server faults go to stderr, which uWSGI writes to its log."""
    sys.stderr.write("store_app: %s\n" % message)
    sys.stderr.flush()


class StoreApp:
    """The WSGI application for one process and one validated Config."""

    def __init__(self, cfg, instance):
        self.cfg = cfg
        self.instance = instance
        self._instance_header = ("X-Fleet-Instance", instance)
        self._buckets = {pid: quota.make_bucket(p.rate_limit, cfg.instances)
                         for pid, p in cfg.projects.items()}
        self._hop_seconds = cfg.simulated_hop_ms / 1000.0
        self._health = {"status": "ok", "instance": instance, "code": CODE_DIGEST}

    def _health_body(self, environ):
        """Health, the code digest, and the client as the app sees it (what
        nginx passed), so operators can check forwarded headers."""
        client = {"remote_addr": environ.get("REMOTE_ADDR"),
                  "x_real_ip": environ.get("HTTP_X_REAL_IP"),
                  "x_forwarded_for": environ.get("HTTP_X_FORWARDED_FOR")}
        return dict(self._health, client=client)

    # -- responses ---------------------------------------------------------

    def _respond(self, start_response, status, payload, headers=(),
                 head=False):
        data = payload if isinstance(payload, bytes) else \
            json.dumps(payload).encode("utf-8")
        start_response(_STATUS[status], [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            self._instance_header, *headers])
        return [] if head else [data]

    def __call__(self, environ, start_response):
        try:
            return self._dispatch(environ, start_response)
        except HttpError as e:
            # Whoever raises a deliberate 5xx has already logged the detail.
            return self._respond(start_response, e.status,
                                 {"error": e.reason, **e.extra}, e.headers)
        except Exception:
            # A bug or an environment fault (disk full, permissions): log the
            # traceback for the operator, never send it to the client.
            log_error("unhandled error on %s %s\n%s" % (
                environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"),
                traceback.format_exc()))
            return self._respond(start_response, 500,
                                 {"error": "internal error"})

    # -- routing -----------------------------------------------------------

    def _dispatch(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/_health":
            if method not in ("GET", "HEAD"):
                raise HttpError(405, "method not allowed",
                                [("Allow", "GET, HEAD")])
            return self._respond(start_response, 200, self._health_body(environ),
                                 head=(method == "HEAD"))
        match = _API_RE.match(path)
        if match is None:
            raise HttpError(404, "not found")
        if method != "POST":
            raise HttpError(405, "method not allowed", [("Allow", "POST")])
        project_id, endpoint = match.groups()
        if endpoint == "store":
            event_id = self._store(environ, project_id)
        else:
            event_id = self._envelope(environ, project_id)
        return self._respond(start_response, 200, {"id": event_id})

    # -- endpoints ---------------------------------------------------------

    def _authorized_body(self, environ, project_id, key):
        """Auth, simulated hops, then the decoded body (in that order)."""
        auth.check_key(self.cfg.projects.get(project_id), key)
        self._simulate_hops()
        encoding = body.check_encoding(environ)
        raw = body.read_body(environ, self.cfg.max_body_bytes)
        return body.decode_body(raw, encoding, self.cfg.max_event_bytes)

    def _store(self, environ, project_id):
        key = auth.key_from_environ(environ)
        data = self._authorized_body(environ, project_id, key)
        event_id, payload = body.prepare_event(
            body.parse_json_object(data), data)
        self._take_quota(project_id, 1)
        self._spool(project_id, event_id, payload)
        return event_id

    def _envelope(self, environ, project_id):
        key = auth.key_from_environ(environ)
        if key:
            data = self._authorized_body(environ, project_id, key)
            header, pos = envelope.parse_envelope_header(data)
        else:
            # The key may be in the envelope header's dsn: decode first
            # (bounded by the same size limits), then authenticate.
            encoding = body.check_encoding(environ)
            raw = body.read_body(environ, self.cfg.max_body_bytes)
            data = body.decode_body(raw, encoding, self.cfg.max_event_bytes)
            header, pos = envelope.parse_envelope_header(data)
            auth.check_key(self.cfg.projects.get(project_id),
                           auth.key_from_dsn(header.get("dsn")))
            self._simulate_hops()

        header_id = body.normalize_event_id(header.get("event_id"))
        items = list(envelope.iter_event_items(data, pos))
        # The header's event_id names the envelope's event; it can only
        # stand in for a missing item event_id when there is one event.
        fallback = header_id if len(items) == 1 else None
        events = [body.prepare_event(body.parse_json_object(payload), payload,
                                     fallback_id=fallback)
                  for _type, payload in items]
        if not events:
            return header_id  # sessions, client reports...: nothing to keep
        self._take_quota(project_id, len(events))
        for event_id, payload in events:
            self._spool(project_id, event_id, payload)
        return header_id or events[0][0]

    # -- steps -------------------------------------------------------------

    def _simulate_hops(self):
        # Stand-in for the auth and quota network round trips of a real
        # Sentry; sleeping releases the GIL like real I/O would.
        for _ in range(self.cfg.simulated_hops):
            time.sleep(self._hop_seconds)

    def _take_quota(self, project_id, count):
        bucket = self._buckets.get(project_id)
        if bucket is None:
            return
        wait = bucket.try_acquire(count)
        if wait:
            seconds = quota.retry_after_seconds(wait)
            raise HttpError(429, "rate limit exceeded",
                            [("Retry-After", str(seconds))],
                            {"retry_after": seconds})

    def _spool(self, project_id, event_id, payload):
        try:
            spool.spool_event(self.cfg.spool_dir, project_id, event_id,
                              payload)
        except OSError as e:
            # Not on disk, so not acknowledged: the client will retry.
            log_error("spool write failed for %s/%s: %s"
                      % (project_id, event_id, e))
            raise HttpError(500, "could not store event") from None


def make_app(cfg, instance=None):
    """Build the app for ``cfg`` (a Config or a raw config dict)."""
    if isinstance(cfg, dict):
        cfg = config.parse_config(cfg)
    if instance is None:
        instance = os.environ.get(INSTANCE_ENV) or "unknown"
    return StoreApp(cfg, instance)


class LazyApp:
    """``application``: builds the real app from the config file on the
    first request, once per process, and answers 500 (with the instance
    header) while the configuration cannot be loaded."""

    def __init__(self):
        self._app = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._app is None:
                self._app = make_app(config.get_config())
            return self._app

    def __call__(self, environ, start_response):
        app = self._app
        if app is None:
            try:
                app = self._load()
            except config.ConfigError as e:
                log_error("configuration error: %s" % e)
                instance = os.environ.get(INSTANCE_ENV) or "unknown"
                data = b'{"error": "configuration error"}'
                start_response(_STATUS[500], [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(data))),
                    ("X-Fleet-Instance", instance)])
                return [data]
        return app(environ, start_response)


application = LazyApp()
