"""Read Sentry envelopes (what sentry-sdk 2.x and the JavaScript SDKs post to
/envelope/) from a DecodedBody, one line or one item at a time.

Layout: one JSON header line, then items.  Each item is a JSON header line
with ``type`` and optionally ``length``, followed by the payload: exactly
``length`` bytes (then an optional newline) or, without ``length``, the rest
of the line.  Whitespace before an item header, blank lines included, is
skipped, as Relay's parser (serde_json) skips it.
See https://develop.sentry.dev/sdk/envelopes/

Limits.  Relay's (relay-server/src/utils/sizes.rs,
check_envelope_size_limits, and relay-config's defaults), and where this
store differs:
* the whole envelope: at most the config's envelope_limit once decoded
  (Relay's max_envelope_size; the cookbook writes client_max_body_size, so
  that nginx and the app refuse the same envelopes);
* at most one event-like item ("event" or "transaction") per envelope:
  Relay's event limit has total_count 1, and a second one is 413 there too.
  It also keeps every envelope within one quota token (quota.py);
* an event payload is at most max_event_bytes (Relay's max_event_size,
  1 MiB by default); over it, 413 for the whole envelope, as Relay;
* an attachment is at most max_attachment_bytes.  Over it, the item alone
  is dropped and counted (invalid, too_large) and the event that came with
  it is stored.  Relay refuses the whole envelope (413) instead; this store
  keeps no attachment, so refusing would only lose the event;
* at most MAX_ITEMS items: Relay's largest per-type count is
  max_session_count (100); no SDK sends more in one envelope;
Bounds of this store, so that reading an envelope costs time in proportion
to its decoded size at C speed, whatever its shape:
* at most MAX_LINES lines: Relay allows any number of blank lines (its
  parser skips them at Rust speed); here a run of them is skipped in one
  call, and they count;
* a header line (envelope or item) is at most MAX_HEADER_BYTES, and all the
  item headers together at most MAX_ITEM_HEADER_BYTES.  Headers are parsed
  at C speed (body.parse_json_object, stored=False).
Items of other types are skipped without being kept in memory, and reported
as dropped.
"""

from . import protocol
from .body import parse_json_object
from .errors import HttpError

EVENT_TYPES = frozenset(("event", "transaction"))
MAX_ITEMS = 100
MAX_HEADER_BYTES = 64 * 1024
# Real item headers are 20 to 200 bytes ({"type":"attachment","length":N,
# "filename":...,"content_type":...}): 100 of them fit many times over.
MAX_ITEM_HEADER_BYTES = 64 * 1024
# The envelope header's line, and per item its header line, its payload's
# line and one blank line: SDKs write no blank line at all, and Relay's
# parser would read each as a separator.
MAX_LINES = 1 + 3 * MAX_ITEMS
# Outcomes of the items other than the event (outcomes.py).
NOT_STORED = ("filtered", "not_stored")
TOO_LARGE = ("invalid", "too_large")


def read_header(stream, budget):
    """The envelope header (a dict): the first line, and nothing more is
    decoded.  It may carry the DSN, so it is read before authentication."""
    line = stream.readline(MAX_HEADER_BYTES)
    if line is None:
        raise HttpError(400, "empty envelope", discard="empty_envelope")
    return parse_json_object(line, budget, "envelope header", stored=False)


def _item_length(header):
    length = header.get("length")
    if length is None:
        return None
    if isinstance(length, int) and not isinstance(length, bool) \
            and length >= 0:
        return length
    raise HttpError(400, "invalid envelope item length",
                    discard="invalid_envelope")


class _Budget:
    """What the rest of the envelope may still use: lines and item header
    bytes."""

    def __init__(self):
        self.lines = MAX_LINES - 1  # the envelope header's
        self.header_bytes = MAX_ITEM_HEADER_BYTES

    def take_lines(self, count):
        self.lines -= count
        if self.lines < 0:
            raise HttpError(400, "more than %d lines in envelope" % MAX_LINES,
                            discard="invalid_envelope")

    def header_too_long(self):
        return HttpError(400, "envelope item headers longer than %d bytes in"
                         " total" % MAX_ITEM_HEADER_BYTES,
                         discard="invalid_envelope")


def read_items(stream, max_event_bytes, max_attachment_bytes, budget):
    """Read every item after the header.

    Returns (event, dropped): event is (item type, payload bytes) or None;
    dropped lists (outcome, reason, data category) for each other item.
    """
    event = None
    dropped = []
    count = 0
    left = _Budget()
    while True:
        left.take_lines(stream.skip_whitespace(left.lines))
        if stream.peek_byte() is None:
            return event, dropped
        count += 1
        if count > MAX_ITEMS:
            raise HttpError(413, "more than %d envelope items" % MAX_ITEMS,
                            discard="too_large")
        # Its header line and its payload's.
        left.take_lines(2)
        line = stream.readline(min(MAX_HEADER_BYTES, left.header_bytes),
                               too_long=left.header_too_long())
        left.header_bytes -= len(line)
        header = parse_json_object(line, budget, "envelope item header",
                                   stored=False)
        item_type = header.get("type")
        if not isinstance(item_type, str):
            raise HttpError(400, "envelope item without type",
                            discard="invalid_envelope")
        length = _item_length(header)
        category = protocol.item_category(item_type)
        if item_type in EVENT_TYPES:
            if event is not None:
                raise HttpError(413, "more than one event item",
                                discard="too_large")
            event = (item_type, _read_payload(stream, length,
                                              max_event_bytes))
            continue
        size = _skip_payload(stream, length)
        if category == "attachment" and size > max_attachment_bytes:
            dropped.append(TOO_LARGE + (category,))
        else:
            dropped.append(NOT_STORED + (category,))


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
    """Skip an item's payload; return its size."""
    if length is None:
        return stream.skip_line()
    stream.skip(length)
    if stream.peek_byte() == 0x0A:
        stream.skip(1)
    return length
