"""WSGI entry point: routing, request handling and JSON responses.

uWSGI loads ``store_app.wsgi:application``.  The configuration is loaded on
the first request (see config.py) rather than at import so that even a
config failure is answered in this app's JSON format with the
X-Fleet-Instance header (500, reason logged to stderr) instead of uWSGI's
generic error page.

Request pipeline for the intake endpoints (cheap checks first, and the key is
checked before the body is decoded):
route (OPTIONS: CORS preflight) -> time queued (503, overload.py)
-> auth (401/403) -> simulated hops
-> Content-Encoding (415) -> read body (400/413) -> decode (400/413)
-> parse (400/413) -> quota (429) -> spool (500 on disk failure) -> 200.
Envelopes whose key is only in the envelope header's ``dsn`` are the one
exception: their first line (bounded) is decoded and parsed to find the key,
and nothing else before it is checked.  Every intake response carries
Relay's CORS headers, and every outcome is counted (outcomes.py).
"""

import json
import os
import re
import threading
import time
import traceback

from . import (auth, body, config, decode, envelope, outcomes, overload,
               protocol, quota, spool)
from .errors import HttpError
from .log import log as log_error

# The fleet names each instance (its port) in the environment (libraries/fleet.rb).
INSTANCE_ENV = "UWSGI_FLEET_INSTANCE"


def code_digest():
    """Digest of this package's source and the data it reads (cors.json): /_health
    shows which code a worker runs, so a rolling deploy can be checked instance
    by instance."""
    import hashlib
    digest = hashlib.sha256()
    package_dir = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(package_dir)):
        if name.endswith((".py", ".json")):
            with open(os.path.join(package_dir, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()[:16]


CODE_DIGEST = code_digest()

# Any digits: whether a project exists is the config's to say (auth.py
# answers 403 for one it does not list), not a second copy of Chef's rule.
_API_RE = re.compile(r"/api/([0-9]+)/(store|envelope)/?\Z")
_STATUS = {200: "200 OK", 400: "400 Bad Request", 401: "401 Unauthorized",
           403: "403 Forbidden", 404: "404 Not Found",
           405: "405 Method Not Allowed", 413: "413 Payload Too Large",
           415: "415 Unsupported Media Type", 429: "429 Too Many Requests",
           500: "500 Internal Server Error", 503: "503 Service Unavailable"}
# The reason counted for a refusal that names none (see outcomes.py).
_DEFAULT_DISCARD = {400: "invalid", 401: "auth", 403: "auth",
                    413: "too_large", 415: "content_encoding",
                    429: protocol.QUOTA_REASON, 500: "internal",
                    503: protocol.SHED_REASON}
# A request refused with these statuses was rate limited (its data may come
# again after Retry-After); any other refusal is counted invalid.
_RATE_LIMITED = frozenset((429, protocol.SHED_STATUS))


class _Intake:
    """What one intake request has established so far: the data category
    its outcome is counted under."""

    def __init__(self, endpoint):
        # A store request is one error event; an envelope's items are
        # unknown until read.
        self.category = "error" if endpoint == "store" else "unknown"


class StoreApp:
    """The WSGI application for one process and one validated Config."""

    def __init__(self, cfg, instance):
        self.cfg = cfg
        self.instance = instance
        self.outcomes = outcomes.Outcomes()
        self._instance_header = ("X-Fleet-Instance", instance)
        self._quota = quota.make_quota(cfg.quota)
        self._queue = overload.QueueGate()
        self._limits = {pid: (p.rate_limit.events_per_second,
                              p.rate_limit.burst)
                        for pid, p in cfg.projects.items() if p.rate_limit}
        self._hop_seconds = cfg.simulated_hop_ms / 1000.0
        self._json_budget = body.JSON_BUDGET_FACTOR * cfg.max_event_bytes
        self._health = {"status": "ok", "instance": instance, "code": CODE_DIGEST}

    def _health_body(self, environ):
        """Health, the code digest, the client as the app sees it (what nginx
        passed, so operators can check forwarded headers), the outcomes
        counted since this instance started, and the quota backend's state
        (with the redis backend: its failures and fallbacks)."""
        client = {"remote_addr": environ.get("REMOTE_ADDR"),
                  "x_real_ip": environ.get("HTTP_X_REAL_IP"),
                  "x_forwarded_for": environ.get("HTTP_X_FORWARDED_FOR")}
        return dict(self._health, client=client,
                    outcomes_since=self.outcomes.since,
                    outcomes=self.outcomes.snapshot(),
                    quota=self._quota.status())

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
        api = _API_RE.match(environ.get("PATH_INFO", ""))
        cors = protocol.CORS_HEADERS if api else ()
        try:
            return self._dispatch(environ, start_response, api)
        except HttpError as e:
            # Whoever raises a deliberate 5xx has already logged the detail.
            # X-Sentry-Error carries the reason where browsers let SDKs read
            # it (see protocol.EXPOSE_HEADERS).
            return self._respond(start_response, e.status,
                                 {"error": e.reason, **e.extra},
                                 [*e.headers, *cors,
                                  ("X-Sentry-Error", e.reason)])
        except Exception:
            # A bug or an environment fault (disk full, permissions): log the
            # traceback for the operator, never send it to the client.
            log_error("unhandled error on %s %s\n%s" % (
                environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"),
                traceback.format_exc()))
            return self._respond(start_response, 500,
                                 {"error": "internal error"}, cors)

    # -- routing -----------------------------------------------------------

    def _dispatch(self, environ, start_response, api):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/_health":
            if method not in ("GET", "HEAD"):
                raise HttpError(405, "method not allowed",
                                [("Allow", "GET, HEAD")])
            return self._respond(start_response, 200, self._health_body(environ),
                                 head=(method == "HEAD"))
        if api is None:
            raise HttpError(404, "not found")
        if method == "OPTIONS":
            # A browser's CORS preflight (answered like Relay, whatever the
            # request asks: the allowed lists do not depend on it).
            return self._respond(start_response, 200, b"", [
                *protocol.PREFLIGHT_HEADERS, ("Allow", "OPTIONS, POST")])
        if method != "POST":
            raise HttpError(405, "method not allowed",
                            [("Allow", "OPTIONS, POST")])
        project_id, endpoint = api.groups()
        intake = _Intake(endpoint)
        try:
            # First: a request that queued too long costs nothing more.
            self._queue.admit(environ)
            if endpoint == "store":
                event_id = self._store(environ, project_id, intake)
            else:
                event_id = self._envelope(environ, project_id, intake)
        except HttpError as e:
            outcome = "rate_limited" if e.status in _RATE_LIMITED else "invalid"
            self.outcomes.add(outcome, e.discard or _DEFAULT_DISCARD[e.status],
                              intake.category)
            raise
        except Exception:
            self.outcomes.add("invalid", "internal", intake.category)
            raise
        return self._respond(start_response, 200, {"id": event_id},
                             protocol.CORS_HEADERS)

    # -- endpoints ---------------------------------------------------------

    def _check_key(self, project_id, key):
        auth.check_key(self.cfg.projects.get(project_id), key)
        self._simulate_hops()

    def _raw_body(self, environ):
        """The codings to undo (415 first) and the body as received: a
        reader (400/413 on its Content-Length), never the whole body."""
        codings = decode.content_codings(environ)
        return codings, body.RequestBody(environ, self.cfg.max_body_bytes)

    def _store(self, environ, project_id, intake):
        self._check_key(project_id, auth.key_from_environ(environ))
        codings, raw = self._raw_body(environ)
        with decode.DecodedBody(raw, codings, self.cfg.max_event_bytes) as b:
            data = b.read_all()
        event = body.parse_json_object(data, self._json_budget)
        event_id, payload = body.prepare_event(event, data, project_id)
        self._accept(project_id, event_id, payload, intake)
        return event_id

    def _envelope(self, environ, project_id, intake):
        key = auth.key_from_environ(environ)
        if key:
            self._check_key(project_id, key)
        codings, raw = self._raw_body(environ)
        with decode.DecodedBody(raw, codings, self.cfg.envelope_limit) as b:
            header = envelope.read_header(b, self._json_budget)
            if not key:
                # The key may be in the header's dsn: nothing past that
                # first line has been decoded yet.
                self._check_key(project_id,
                                auth.key_from_dsn(header.get("dsn")))
            item, dropped = envelope.read_items(
                b, self.cfg.max_event_bytes, self.cfg.max_attachment_bytes,
                self._json_budget)
        header_id = body.normalize_event_id(header.get("event_id"))
        for outcome, reason, category in dropped:
            # Sessions, client reports, attachments...: answered 200 (SDKs
            # would otherwise retry or count them lost) but not kept.
            self.outcomes.add(outcome, reason, category)
        if item is None:
            return header_id
        item_type, payload = item
        intake.category = protocol.item_category(item_type)
        # The header's event_id names the envelope's one event.
        event_id, payload = body.prepare_event(
            body.parse_json_object(payload, self._json_budget), payload,
            project_id, fallback_id=header_id)
        self._accept(project_id, event_id, payload, intake)
        return event_id

    # -- steps -------------------------------------------------------------

    def _simulate_hops(self):
        # Stand-in for the auth and quota network round trips of a real
        # Sentry; sleeping releases the GIL like real I/O would.
        for _ in range(self.cfg.simulated_hops):
            time.sleep(self._hop_seconds)

    def _accept(self, project_id, event_id, payload, intake):
        """Quota, then the spool: on return the event is on disk."""
        self._take_quota(project_id)
        if self._spool(project_id, event_id, payload):
            self.outcomes.add("accepted", None, intake.category)
        else:
            # Already stored (a retry): acknowledged again, kept once.
            self.outcomes.add("invalid", "duplicate", intake.category)

    def _take_quota(self, project_id):
        limit = self._limits.get(project_id)
        if limit is None:
            return
        # One token: an envelope carries at most one event (envelope.py),
        # and Chef holds burst to at least one, so any request can be
        # accepted once tokens refill.
        wait = self._quota.check(project_id, *limit)
        if wait:
            seconds = quota.retry_after_seconds(wait)
            raise HttpError(429, "rate limit exceeded",
                            [("Retry-After", str(seconds)),
                             ("X-Sentry-Rate-Limits",
                              protocol.rate_limits_header(seconds))],
                            {"retry_after": seconds})

    def _spool(self, project_id, event_id, payload):
        try:
            return spool.spool_event(self.cfg.spool_dir, project_id, event_id,
                                     payload)
        except OSError as e:
            # Not on disk, so not acknowledged: the client will retry.
            log_error("spool write failed for %s/%s: %s"
                      % (project_id, event_id, e))
            raise HttpError(500, "could not store event",
                            discard="internal") from None


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
            except (config.ConfigError, OSError, ImportError) as e:
                # A config not of Chef's shape, or a quota backend that
                # cannot start (its state file; python3-redis missing).
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
