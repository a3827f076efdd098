"""Read Sentry envelopes (what sentry-sdk 2.x and the JavaScript SDKs post to
/envelope/) from a DecodedBody, one line or one item at a time.

Layout: one JSON header line, then items.  Each item is a JSON header line
with ``type`` and optionally ``length``, followed by the payload: exactly
``length`` bytes (then an optional newline) or, without ``length``, the rest
of the line.  See https://develop.sentry.dev/sdk/envelopes/

Limits, from Relay (relay-server/src/utils/sizes.rs,
check_envelope_size_limits, and relay-config's defaults):
* at most one event-like item ("event" or "transaction") per envelope:
  Relay's event limit has total_count 1, and a second one is 413 there too.
  It also keeps every envelope within one quota token (quota.py);
* an event payload is at most max_event_bytes (Relay's max_event_size,
  1 MiB by default);
* at most MAX_ITEMS items: Relay's largest per-type count is
  max_session_count (100); no SDK sends more in one envelope;
* a header line (envelope or item) is at most MAX_HEADER_BYTES.
Items of other types are skipped without being kept in memory, and reported
as dropped.
"""

from . import protocol
from .body import parse_json_object
from .errors import HttpError

EVENT_TYPES = frozenset(("event", "transaction"))
MAX_ITEMS = 100
MAX_HEADER_BYTES = 64 * 1024


def read_header(stream, budget):
    """The envelope header (a dict): the first line, and nothing more is
    decoded.  It may carry the DSN, so it is read before authentication."""
    line = stream.readline(MAX_HEADER_BYTES)
    if line is None:
        raise HttpError(400, "empty envelope", discard="empty_envelope")
    return parse_json_object(line, budget, "envelope header")


def _item_length(header):
    length = header.get("length")
    if length is None:
        return None
    if isinstance(length, int) and not isinstance(length, bool) \
            and length >= 0:
        return length
    raise HttpError(400, "invalid envelope item length",
                    discard="invalid_envelope")


def read_items(stream, max_event_bytes, budget):
    """Read every item after the header.

    Returns (event, dropped): event is (item type, payload bytes) or None;
    dropped lists the data category of each other item.
    """
    event = None
    dropped = []
    count = 0
    while True:
        first = stream.peek_byte()
        if first is None:
            return event, dropped
        if first == 0x0A:  # blank line between or after items
            stream.skip(1)
            continue
        count += 1
        if count > MAX_ITEMS:
            raise HttpError(413, "more than %d envelope items" % MAX_ITEMS,
                            discard="too_large")
        header = parse_json_object(stream.readline(MAX_HEADER_BYTES), budget,
                                   "envelope item header")
        item_type = header.get("type")
        if not isinstance(item_type, str):
            raise HttpError(400, "envelope item without type",
                            discard="invalid_envelope")
        length = _item_length(header)
        if item_type in EVENT_TYPES:
            if event is not None:
                raise HttpError(413, "more than one event item",
                                discard="too_large")
            event = (item_type, _read_payload(stream, length,
                                              max_event_bytes))
        else:
            _skip_payload(stream, length)
            dropped.append(protocol.item_category(item_type))


def _read_payload(stream, length, max_bytes):
    too_large = HttpError(413, "event larger than %d bytes" % max_bytes,
                          discard="too_large")
    if length is None:
        return stream.readline(max_bytes, too_long=too_large) or b""
    if length > max_bytes:
        raise too_large
    payload = stream.read_exact(length)
    if stream.peek_byte() == 0x0A:
        stream.skip(1)
    return payload


def _skip_payload(stream, length):
    if length is None:
        stream.skip_line()
        return
    stream.skip(length)
    if stream.peek_byte() == 0x0A:
        stream.skip(1)
