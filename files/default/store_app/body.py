"""Read the request body; turn decoded bytes into a validated event.

Every failure is an HttpError (400/413), never an unhandled exception,
because all of this is driven by untrusted input.  Only valid UTF-8 JSON
objects get through: a 200 promises a spool file that any JSON reader can
load.
"""

import hashlib
import json
import math
import re
import uuid

from . import jsoncost
from .errors import HttpError

# The most one read from wsgi.input asks for: what a request holds of its
# body at once, whatever the body's size (nginx passes up to
# client_max_body_size; see RequestBody).
READ_CHUNK = 256 * 1024

# json.loads may use this multiple of max_event_bytes (jsoncost's estimate).
# Real events, compact JSON as SDKs send it, estimate at 2.5x to 13x their
# size, so every event up to the cap fits; a hostile document gets 413
# before it is parsed, and the worst that passes uses under 14x the cap.
JSON_BUDGET_FACTOR = 16

_EVENT_ID_RE = re.compile(r"[0-9a-f]{32}\Z")
# Namespace of the event ids derived for events sent without one.
_DERIVED_ID_NAMESPACE = uuid.UUID("6f1b5a3e-54c1-4f0e-9a7c-3d2f8b1e0c55")


def content_length(environ, max_body_bytes):
    """The body's length from Content-Length: 400 without one, 413 over
    ``max_body_bytes``.

    The size is judged from the header *before* reading, so an oversized
    upload is refused without buffering it.  (nginx de-chunks request
    bodies and passes their length, so chunked uploads arrive with one.)
    """
    header = environ.get("CONTENT_LENGTH", "")
    if not (header.isascii() and header.isdigit()):
        raise HttpError(400, "missing or invalid Content-Length",
                        discard="no_data")
    # A 16+ digit length is over any sane limit (and int() of thousands of
    # digits is slow), so do not convert it.
    length = int(header) if len(header) < 16 else max_body_bytes + 1
    if length == 0:
        raise HttpError(400, "empty body", discard="no_data")
    if length > max_body_bytes:
        raise HttpError(413, "body larger than %d bytes" % max_body_bytes,
                        discard="too_large")
    return length


class RequestBody:
    """The request body as a reader: wsgi.input, read only as the decoders
    ask for it, at most READ_CHUNK bytes at a time.

    So a request never holds its whole body: an envelope as large as nginx
    lets through (an event and a big attachment) costs the same memory as a
    small one, the attachment being read and dropped chunk by chunk.

    close() reads and drops whatever the request did not read (a body
    refused part-way, say an event over max_event_bytes at the start of a
    100 MiB identity body).  uWSGI closes the connection when the request
    ends, and closing a socket with unread data resets it: nginx, still
    writing the body, would see an error instead of the answer and try the
    next instance.  Reading the rest costs socket reads, no decoding.
    """

    def __init__(self, environ, max_body_bytes):
        self._left = content_length(environ, max_body_bytes)
        self._stream = environ["wsgi.input"]

    def _read(self, size):
        try:
            return self._stream.read(min(size, self._left, READ_CHUNK))
        except OSError:
            # uWSGI raises OSError when the client disconnects or times
            # out mid-body; that is the client's fault, not ours.
            raise HttpError(400, "error reading body",
                            discard="no_data") from None

    def read(self, size):
        """Up to ``size`` bytes of the body; b"" once Content-Length bytes
        were read.  400 if the body ends before that."""
        if not self._left:
            return b""
        chunk = self._read(size)
        if not chunk:
            raise HttpError(400, "body shorter than Content-Length",
                            discard="no_data")
        self._left -= len(chunk)
        return chunk

    def close(self):
        """Read and drop the rest of the body (see the class)."""
        try:
            while self._left and self.read(READ_CHUNK):
                pass
        except HttpError:
            pass  # the client is gone: nothing left to read
        self._left = 0


def _reject_constant(name):
    # json accepts NaN/Infinity, which are not JSON.
    raise ValueError("invalid constant %s" % name)


def _finite_float(text):
    # 1e999 is valid JSON text but parses to inf, which json.dumps would
    # write back as Infinity (not JSON); Relay refuses it too.
    value = float(text)
    if math.isinf(value):
        raise ValueError("number out of range")
    return value


_STORED_HOOKS = {"parse_constant": _reject_constant,
                 "parse_float": _finite_float}


def parse_json_object(data, budget, what="event", stored=True):
    """Parse ``data`` (bytes) as one JSON object, else 400.

    413 when parsing could use more than ``budget`` bytes (see jsoncost).
    The bytes must be UTF-8: json.loads alone would also take UTF-16/32.
    (Debian's python3-ujson is not a drop-in: it takes NaN, 1e999, raw
    control characters, leading zeros and UTF-8-encoded surrogates, and was
    slower on string-heavy events; test_hot_path.py.)

    ``stored``: the bytes are kept (an event), so NaN, Infinity and numbers
    out of range are refused, which costs a Python call per number.  Headers
    (``stored=False``) are read, never kept: parsed at C speed, so that
    64 KiB of ``[0.5,0.5,...]`` costs microseconds, not 16,000 calls.
    """
    if not jsoncost.fits(data, budget):
        raise HttpError(413, "%s too large to parse within %d bytes"
                        % (what, budget), discard="too_large")
    hooks = _STORED_HOOKS if stored else {}
    try:
        text = data.decode("utf-8")
        obj = json.loads(text, **hooks)
    except (ValueError, RecursionError):
        # RecursionError: deeply nested arrays; UnicodeDecodeError and a
        # leading BOM are ValueErrors.
        raise HttpError(400, "invalid JSON in %s" % what,
                        discard="invalid_json") from None
    if not isinstance(obj, dict):
        raise HttpError(400, "%s must be a JSON object" % what,
                        discard="invalid_json")
    return obj


def normalize_event_id(value):
    """Return ``value`` as 32 lowercase hex chars, or None if it is not an
    event id (dashed and upper-case UUIDs are accepted)."""
    if not isinstance(value, str):
        return None
    if len(value) == 32 and _EVENT_ID_RE.match(value):
        return value
    value = value.replace("-", "").lower() if len(value) <= 40 else ""
    return value if _EVENT_ID_RE.match(value) else None


def derived_event_id(project_id, payload):
    """The id of an event sent without one: a UUID from the project and the
    exact bytes, so a retry of the same request is the same event (and is
    stored once).  Two events with identical bytes are one event."""
    digest = hashlib.sha256(payload).hexdigest()
    return uuid.uuid5(_DERIVED_ID_NAMESPACE,
                      "%s:%s" % (project_id, digest)).hex


def with_event_id(payload, event_id):
    """``payload`` (the bytes of a JSON object without an "event_id" key)
    with ``"event_id":"<event_id>"`` spliced in as its first member."""
    start = payload.index(b"{") + 1
    empty = payload[start:].lstrip(b" \t\r\n").startswith(b"}")
    return b"".join((payload[:start], b'"event_id":"', event_id.encode("ascii"),
                     b'"' if empty else b'",', payload[start:]))


def prepare_event(event, payload, project_id, fallback_id=None):
    """Return (event_id, bytes to spool) for a parsed event.

    When the event carries a canonical event_id its received bytes are
    stored as they are (no re-serialisation cost on the hot path).  When it
    has no "event_id" key, the final id (``fallback_id``, else one derived
    from the payload) is spliced into the received bytes, which are already
    valid JSON: no re-serialisation either.  Only an id that is null or had
    to be normalised makes the event re-serialised, so that the file agrees
    with its name.
    """
    raw_id = event.get("event_id")
    if raw_id is None:
        event_id = fallback_id or derived_event_id(project_id, payload)
        if "event_id" not in event:
            return event_id, with_event_id(payload, event_id)
    else:
        event_id = normalize_event_id(raw_id)
        if event_id is None:
            raise HttpError(400, "invalid event_id", discard="invalid_json")
        if event_id == raw_id:
            return event_id, payload
    event["event_id"] = event_id
    # ASCII output (escaped non-ASCII), and no NaN/Infinity: valid JSON.
    try:
        data = json.dumps(event, separators=(",", ":"), allow_nan=False)
    except (ValueError, RecursionError):
        raise HttpError(400, "event cannot be re-serialised",
                        discard="invalid_json") from None
    return event_id, data.encode("ascii")
