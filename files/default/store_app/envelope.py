"""Parse Sentry envelopes (the format sentry-sdk 2.x posts to /envelope/).

Layout: one JSON header line, then items.  Each item is a JSON header line
with ``type`` and optionally ``length``, followed by the payload: exactly
``length`` bytes (then an optional newline) or, without ``length``, the rest
of the line.  See https://develop.sentry.dev/sdk/envelopes/
"""

import json

from .errors import HttpError

# Item types spooled as events; everything else (sessions, client reports,
# attachments, ...) is accepted and dropped.
EVENT_TYPES = frozenset(("event", "transaction"))


def _json_line(data, start, what):
    """Parse the JSON object on the line starting at ``start``.

    Returns (object, index just past the line's newline or end of data).
    """
    end = data.find(b"\n", start)
    if end < 0:
        end = len(data)
    try:
        obj = json.loads(data[start:end])
    except (ValueError, RecursionError):
        raise HttpError(400, "invalid envelope %s" % what) from None
    if not isinstance(obj, dict):
        raise HttpError(400, "envelope %s must be a JSON object" % what)
    return obj, end + 1


def parse_envelope_header(data):
    """Return (envelope header dict, offset of the first item)."""
    return _json_line(data, 0, "header")


def iter_event_items(data, pos):
    """Yield (item type, payload bytes) for event/transaction items.

    Payloads of other item types are skipped without being copied, so a big
    attachment costs no more than scanning past it.
    """
    size = len(data)
    while pos < size:
        if data[pos] == 0x0A:  # blank line between/after items
            pos += 1
            continue
        header, pos = _json_line(data, pos, "item header")
        item_type = header.get("type")
        if not isinstance(item_type, str):
            raise HttpError(400, "envelope item without type")
        length = header.get("length")
        if length is None:
            end = data.find(b"\n", pos)
            end = size if end < 0 else end
            nxt = end + 1
        elif isinstance(length, int) and not isinstance(length, bool) \
                and 0 <= length <= size - pos:
            end = pos + length
            nxt = end + 1 if data[end:end + 1] == b"\n" else end
        else:
            raise HttpError(400, "invalid envelope item length")
        if item_type in EVENT_TYPES:
            yield item_type, data[pos:end]
        pos = nxt
