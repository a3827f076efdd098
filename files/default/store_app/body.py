"""Read the request body, undo Content-Encoding with a size cap, parse JSON.

Every failure is an HttpError (400/413/415), never an unhandled exception,
because all of this is driven by untrusted input.
"""

import json
import re
import uuid
import zlib

from .errors import HttpError

READ_CHUNK = 256 * 1024

_EVENT_ID_RE = re.compile(r"[0-9a-f]{32}\Z")


def read_body(environ, max_body_bytes):
    """Return exactly Content-Length bytes from wsgi.input.

    The size is judged from the header *before* reading, so an oversized
    upload is refused without buffering it.
    """
    header = environ.get("CONTENT_LENGTH", "")
    if not (header.isascii() and header.isdigit()):
        raise HttpError(400, "missing or invalid Content-Length")
    # A 16+ digit length is over any sane limit (and int() of thousands of
    # digits is slow), so do not convert it.
    length = int(header) if len(header) < 16 else max_body_bytes + 1
    if length == 0:
        raise HttpError(400, "empty body")
    if length > max_body_bytes:
        raise HttpError(413, "body larger than %d bytes" % max_body_bytes)

    stream = environ["wsgi.input"]
    chunks = []
    remaining = length
    try:
        while remaining:
            chunk = stream.read(min(remaining, READ_CHUNK))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError:
        # uWSGI raises OSError when the client disconnects or times out
        # mid-body; that is the client's fault, not ours.
        raise HttpError(400, "error reading body") from None
    if remaining:
        raise HttpError(400, "body shorter than Content-Length")
    # The common small body arrives in one read: no join copy.
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def check_encoding(environ):
    """Return the normalised Content-Encoding, or raise 415."""
    encoding = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        return ""
    if encoding == "x-gzip":
        return "gzip"
    if encoding in ("gzip", "deflate"):
        return encoding
    raise HttpError(415, "unsupported Content-Encoding")


def _looks_like_zlib(data):
    # RFC 1950 header: CM=8 (deflate), window <= 32K, and the 16-bit header
    # is a multiple of 31.  "deflate" in HTTP is officially zlib-wrapped, but
    # some clients send a raw deflate stream; this tells them apart (a raw
    # stream would need a non-final stored block with non-zero padding bits
    # to pass, which real encoders do not produce).
    return (len(data) >= 2 and (data[0] & 0x0F) == 8 and (data[0] >> 4) <= 7
            and ((data[0] << 8) | data[1]) % 31 == 0)


def _inflate(data, wbits, limit):
    """Decompress one stream, producing at most ``limit`` bytes.

    Returns (output, unused_trailing_bytes).  Raises 413 as soon as the
    output would exceed the limit: max_length stops zlib there, so a
    decompression bomb costs at most ``limit`` bytes of memory and the CPU
    to produce them.
    """
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error:
        raise HttpError(400, "corrupt compressed body") from None
    if len(out) > limit:
        raise HttpError(413, "decompressed event too large")
    if not d.eof:
        raise HttpError(400, "truncated compressed body")
    return out, d.unused_data


def decode_body(raw, encoding, max_event_bytes):
    """Undo ``encoding`` ("", "gzip" or "deflate") on ``raw``."""
    if encoding == "":
        if len(raw) > max_event_bytes:
            raise HttpError(413, "event too large")
        return raw
    if encoding == "deflate":
        wbits = zlib.MAX_WBITS if _looks_like_zlib(raw) else -zlib.MAX_WBITS
        out, rest = _inflate(raw, wbits, max_event_bytes)
        if rest:
            raise HttpError(400, "trailing data after compressed body")
        return out
    # gzip: a body may legally be several concatenated gzip members.
    out, rest = _inflate(raw, 16 + zlib.MAX_WBITS, max_event_bytes)
    if not rest:
        return out
    parts = [out]
    total = len(out)
    # Some gzip writers pad with NUL bytes after the last member.
    while rest.strip(b"\0"):
        out, rest = _inflate(rest, 16 + zlib.MAX_WBITS,
                             max_event_bytes - total)
        parts.append(out)
        total += len(out)
    return b"".join(parts)


def _reject_constant(name):
    # json accepts NaN/Infinity, which are not JSON and would be re-emitted
    # as invalid JSON when an event is re-serialised.
    raise ValueError("invalid constant %s" % name)


def parse_json_object(data):
    """json.loads ``data`` (bytes) and require a JSON object, else 400."""
    try:
        obj = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        # RecursionError: deeply nested arrays; UnicodeDecodeError is a
        # ValueError.
        raise HttpError(400, "invalid JSON") from None
    if not isinstance(obj, dict):
        raise HttpError(400, "event must be a JSON object")
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


def prepare_event(event, payload, fallback_id=None):
    """Return (event_id, bytes to spool) for a parsed event.

    When the event carries a canonical event_id its received bytes are
    stored as they are (no re-serialisation cost on the hot path).  When the
    id is missing (one is assigned: ``fallback_id`` or a new uuid4) or had to
    be normalised, the event is re-serialised with the final id so the file
    agrees with its name.
    """
    raw_id = event.get("event_id")
    if raw_id is None:
        event_id = fallback_id or uuid.uuid4().hex
    else:
        event_id = normalize_event_id(raw_id)
        if event_id is None:
            raise HttpError(400, "invalid event_id")
        if event_id == raw_id:
            return event_id, payload
    event["event_id"] = event_id
    try:
        data = json.dumps(event, separators=(",", ":"))
    except (ValueError, RecursionError):
        raise HttpError(400, "event cannot be re-serialised") from None
    return event_id, data.encode("ascii")
