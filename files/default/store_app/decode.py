"""Content-Encoding: which codings a request used, and the decoded body as a
stream that is only ever decoded as far as it is read, with hard caps.

Relay is the reference (relay-server/src/middlewares/decompression.rs and
tower-http's RequestDecompression): gzip, deflate (zlib-wrapped; raw deflate
is accepted too), br and zstd are decoded; an empty value and "UTF-8" (sent
by sentry-ruby 5.x and sentry.java.android 2.0.0) are ignored; anything else
is 415.  Unlike Relay, which matches one token, a list such as
"gzip, identity" is read as RFC 9110 says: codings in the order applied,
"identity" a no-op.

Caps, so that no body can cost more than its limit:
* the decoded size (``limit``): decoding stops one byte past it (413);
* gzip members and zstd frames: at most 64 per body (400).  A body may
  legally be several concatenated members, and each member's end is handled
  without re-slicing the rest of the body, so the work is linear;
* at most two codings layered (e.g. "gzip, br").

The body itself comes from a reader (body.RequestBody: wsgi.input in bounded
chunks) or, in tests and tools, from bytes.  Everything that scans the
decoded bytes (lines, whitespace, skipped payloads) works one buffered chunk
at a time with C-speed calls (bytes.find, a compiled regex, count), so the
Python work per request is proportional to the decoded size divided by
READ_BYTES, not to the number of bytes or lines in it.
"""

import re
import zlib

from . import native
from .errors import HttpError

# Compressed bytes handed to zlib per call.  Bounds what zlib copies into
# unused_data when a gzip member ends, so a member costs O(its size + this).
FEED_BYTES = 16 * 1024
MAX_GZIP_MEMBERS = 64
MAX_LAYERS = 2
IGNORED = frozenset(("", "identity", "utf-8"))
ZLIB_CODINGS = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}


SUPPORTED = frozenset(ZLIB_CODINGS) | native.available()


def content_codings(environ):
    """The codings to undo, outermost (applied last) first, or raise 415."""
    value = environ.get("HTTP_CONTENT_ENCODING", "")
    codings = []
    for token in value.split(","):
        token = token.strip().lower()
        if token in IGNORED:
            continue
        if token not in SUPPORTED:
            raise HttpError(415, "unsupported Content-Encoding",
                            discard="content_encoding")
        codings.append(ZLIB_CODINGS.get(token, token))
    if len(codings) > MAX_LAYERS:
        raise HttpError(415, "more than %d content codings" % MAX_LAYERS,
                        discard="content_encoding")
    return codings[::-1]


class _Raw:
    """The request body as the innermost source: zero-copy slices."""

    def __init__(self, data):
        self._view = memoryview(data)
        self._pos = 0

    def read(self, size):
        chunk = self._view[self._pos:self._pos + size]
        self._pos += len(chunk)
        return chunk

    def close(self):
        self._view.release()


def _looks_like_zlib(data):
    # RFC 1950 header: CM=8 (deflate), window <= 32K, and the 16-bit header
    # is a multiple of 31.  "deflate" in HTTP is officially zlib-wrapped, but
    # some clients send a raw deflate stream; this tells them apart (a raw
    # stream would need a non-final stored block with non-zero padding bits
    # to pass, which real encoders do not produce).
    return (len(data) >= 2 and (data[0] & 0x0F) == 8 and (data[0] >> 4) <= 7
            and ((data[0] << 8) | data[1]) % 31 == 0)


class _Zlib:
    """gzip (several members allowed) or deflate, pulled from ``source``."""

    def __init__(self, source, coding):
        self._source = source
        self._gzip = coding == "gzip"
        self._members = 0
        self._pending = b""   # input read from the source, not yet fed
        self._finished = False
        self._d = None

    def _new_stream(self, first):
        if self._gzip:
            self._members += 1
            if self._members > MAX_GZIP_MEMBERS:
                raise HttpError(400, "more than %d gzip members"
                                % MAX_GZIP_MEMBERS, discard="payload")
            wbits = 16 + zlib.MAX_WBITS
        else:
            wbits = zlib.MAX_WBITS if _looks_like_zlib(first) \
                else -zlib.MAX_WBITS
        self._d = zlib.decompressobj(wbits)

    def _next_input(self):
        data = self._pending or self._source.read(FEED_BYTES)
        self._pending = b""
        return data

    def _only_padding_follows(self, first):
        """After a gzip member: True if nothing but NUL bytes follow (some
        writers pad the last member)."""
        data = first
        while data:
            if bytes(data).strip(b"\0"):
                return False
            data = self._source.read(FEED_BYTES)
        return True

    def read(self, size):
        while not self._finished:
            tail = self._d.unconsumed_tail if self._d is not None else b""
            data = tail or self._next_input()
            if not data:
                raise HttpError(400, "truncated compressed body",
                                discard="payload")
            if self._d is None:
                self._new_stream(data)
            try:
                out = self._d.decompress(data, size)
            except zlib.error:
                raise HttpError(400, "corrupt compressed body",
                                discard="payload") from None
            if self._d.eof:
                self._end_of_stream()
            if out:
                return out
        return b""

    def _end_of_stream(self):
        rest = self._d.unused_data or self._source.read(FEED_BYTES)
        if not rest:
            self._finished = True
        elif self._gzip and rest[0] != 0:
            # The next member: feed what zlib did not use, no re-slicing.
            self._pending = rest
            self._new_stream(rest)
        elif self._gzip and self._only_padding_follows(rest):
            self._finished = True
        else:
            raise HttpError(400, "trailing data after compressed body",
                            discard="payload")

    def close(self):
        pass


def _stage(source, coding):
    if coding in ("gzip", "deflate"):
        return _Zlib(source, coding)
    return native.Brotli(source) if coding == "br" else native.Zstd(source)


# JSON's whitespace: what Relay's parser (serde_json) skips before an item
# header.  One match consumes a whole run of it in the buffer.
_WHITESPACE = re.compile(rb"[ \t\r\n]*")


class DecodedBody:
    """The decoded request body, decoded on demand, at most ``limit`` bytes.

    ``raw``: the body as bytes, or a reader with read(size) and close()
    (body.RequestBody), closed with this object.  Decoding stops one byte
    past ``limit`` (413).  The buffer holds at most one line or one item
    payload, never the whole body, so skipping an item costs no memory.
    Use as a context manager: native decoders hold C memory until closed,
    and the reader reads what is left of the request (see RequestBody).
    """

    READ_BYTES = 64 * 1024

    def __init__(self, raw, codings, limit):
        self.limit = limit
        reader = hasattr(raw, "read")
        self._raw = raw if not (codings or reader) else None
        self._stages = [raw if reader else _Raw(raw)]
        for coding in codings:
            self._stages.append(_stage(self._stages[-1], coding))
        self._top = self._stages[-1]
        self._buf = bytearray()
        self._pos = 0
        self._decoded = 0
        self._eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for stage in reversed(self._stages):
            stage.close()

    def _read_top(self, size):
        """Up to ``size`` newly decoded bytes (b"" at the end), counted
        against the limit."""
        if self._eof:
            return b""
        # Ask for no more than one byte past the limit: that byte proves it
        # is exceeded, and nothing further is ever decoded.
        chunk = self._top.read(min(size, self.limit - self._decoded + 1))
        if not chunk:
            self._eof = True
            return b""
        self._decoded += len(chunk)
        if self._decoded > self.limit:
            raise HttpError(413, "decoded body larger than %d bytes"
                            % self.limit, discard="too_large")
        return chunk

    def _pull(self):
        """Append the next decoded chunk to the buffer; False at the end."""
        chunk = self._read_top(self.READ_BYTES)
        if not chunk:
            return False
        if self._pos:
            del self._buf[:self._pos]  # drop what was consumed
            self._pos = 0
        self._buf += chunk
        return True

    def _take(self, end):
        """Bytes from the read position to ``end``, consumed."""
        with memoryview(self._buf) as view:
            data = bytes(view[self._pos:end])
        self._pos = end
        return data

    def readline(self, max_bytes, too_long=None):
        """The next line without its newline, or None at the end.  A line
        longer than ``max_bytes`` raises ``too_long`` (default 400), found
        without decoding further."""
        searched = 0
        while True:
            end = self._buf.find(b"\n", self._pos + searched)
            if end >= 0:
                if end - self._pos > max_bytes:
                    break
                line = self._take(end)
                self._pos += 1
                return line
            searched = len(self._buf) - self._pos
            if searched > max_bytes:
                break
            if not self._pull():
                return self._take(len(self._buf)) if searched else None
        raise too_long or HttpError(400, "line longer than %d bytes"
                                    % max_bytes, discard="invalid_envelope")

    def read_exact(self, size):
        """Exactly ``size`` bytes, or 400 if the body ends first."""
        available = len(self._buf) - self._pos
        if available >= size:
            return self._take(self._pos + size)
        parts = [self._take(len(self._buf))]
        missing = size - available
        while missing:
            chunk = self._read_top(max(missing, self.READ_BYTES))
            if not chunk:
                raise HttpError(400, "body ends inside an item",
                                discard="invalid_envelope")
            if len(chunk) > missing:
                # Keep the rest for the next read.
                self._buf = bytearray(chunk[missing:])
                self._pos = 0
                chunk = chunk[:missing]
            parts.append(chunk)
            missing -= len(chunk)
        return b"".join(parts)

    def skip(self, size):
        """Discard ``size`` bytes without keeping them (400 if too few).
        Past what is buffered they are decoded and dropped READ_BYTES at a
        time, never buffered (larger reads measured no faster)."""
        step = min(size, len(self._buf) - self._pos)
        self._pos += step
        size -= step
        while size:
            chunk = self._read_top(min(size, self.READ_BYTES))
            if not chunk:
                raise HttpError(400, "body ends inside an item",
                                discard="invalid_envelope")
            size -= len(chunk)

    def skip_line(self):
        """Discard up to and including the next newline; return how many
        bytes the line had (without its newline)."""
        skipped = 0
        while True:
            end = self._buf.find(b"\n", self._pos)
            if end >= 0:
                skipped += end - self._pos
                self._pos = end + 1
                return skipped
            skipped += len(self._buf) - self._pos
            self._pos = len(self._buf)
            if not self._pull():
                return skipped

    def skip_whitespace(self, max_newlines):
        """Discard the run of JSON whitespace (spaces, tabs, CR, LF) that
        starts here; return how many newlines it held.  One regex match and
        one count per buffered chunk, however long the run.  Stops (and
        returns a count over ``max_newlines``) without decoding further once
        the run has more newlines than that."""
        newlines = 0
        while self._pos < len(self._buf) or self._pull():
            end = _WHITESPACE.match(self._buf, self._pos).end()
            newlines += self._buf.count(b"\n", self._pos, end)
            self._pos = end
            if end < len(self._buf) or newlines > max_newlines:
                break
        return newlines

    def peek_byte(self):
        """The next byte, without consuming it, or None at the end."""
        if self._pos == len(self._buf) and not self._pull():
            return None
        return self._buf[self._pos]

    def read_all(self):
        """Everything that is left (at most ``limit`` bytes)."""
        if self._raw is not None and self._decoded == 0:
            # Identity, nothing read yet: the body itself, no copy.
            if len(self._raw) > self.limit:
                raise HttpError(413, "decoded body larger than %d bytes"
                                % self.limit, discard="too_large")
            self._decoded = len(self._raw)
            self._eof = True
            return self._raw
        parts = [self._take(len(self._buf))]
        while True:
            chunk = self._read_top(self.READ_BYTES)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
