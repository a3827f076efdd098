"""Brotli and zstd decoders with a hard cap on every call's output.

Both are bound with ctypes to the C libraries Debian ships (libbrotli1:
libbrotlidec.so.1, libzstd1: libzstd.so.1) rather than to Python packages,
because the cap must hold per call:

* python3-brotli 1.0.9 (Debian 12) has no output limit: Decompressor.process()
  turned a 14-byte input into 16 MiB in one call when measured here, so a
  request could allocate far past max_event_bytes before any check ran.
* BrotliDecoderDecompressStream and ZSTD_decompressStream write into a
  buffer we size, so a read never produces more than it asked for.

A library that is missing makes that coding unsupported (415), nothing else.
ctypes releases the GIL during the calls, so other threads keep serving.
"""

import ctypes
from ctypes import POINTER, byref, c_int, c_size_t, c_void_p

from .errors import HttpError

# Compressed bytes handed to the C decoder per call (copied into its buffer).
FEED_BYTES = 16 * 1024

# zstd: refuse frames whose window is over 8 MiB (windowLog 23, what zstd
# levels up to 19 use).  The default limit is 128 MiB; the window is memory
# the decoder reserves for one request.
ZSTD_WINDOW_LOG_MAX = 23
# Concatenated zstd frames, like gzip members, are capped (see decode.py).
MAX_FRAMES = 64


def _load(name):
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


_brotli = _load("libbrotlidec.so.1")
if _brotli is not None:
    _brotli.BrotliDecoderCreateInstance.restype = c_void_p
    _brotli.BrotliDecoderCreateInstance.argtypes = [c_void_p, c_void_p,
                                                     c_void_p]
    _brotli.BrotliDecoderDestroyInstance.restype = None
    _brotli.BrotliDecoderDestroyInstance.argtypes = [c_void_p]
    _brotli.BrotliDecoderDecompressStream.restype = c_int
    _brotli.BrotliDecoderDecompressStream.argtypes = [
        c_void_p, POINTER(c_size_t), POINTER(c_void_p), POINTER(c_size_t),
        POINTER(c_void_p), c_void_p]

_zstd = _load("libzstd.so.1")
if _zstd is not None:
    _zstd.ZSTD_createDStream.restype = c_void_p
    _zstd.ZSTD_createDStream.argtypes = []
    _zstd.ZSTD_freeDStream.restype = c_size_t
    _zstd.ZSTD_freeDStream.argtypes = [c_void_p]
    _zstd.ZSTD_DCtx_setParameter.restype = c_size_t
    _zstd.ZSTD_DCtx_setParameter.argtypes = [c_void_p, c_int, c_int]
    _zstd.ZSTD_decompressStream.restype = c_size_t
    _zstd.ZSTD_decompressStream.argtypes = [c_void_p, c_void_p, c_void_p]
    _zstd.ZSTD_isError.restype = ctypes.c_uint
    _zstd.ZSTD_isError.argtypes = [c_size_t]

_BROTLI_ERROR, _BROTLI_SUCCESS, _BROTLI_NEEDS_INPUT, _BROTLI_NEEDS_OUTPUT = \
    0, 1, 2, 3
_ZSTD_D_WINDOW_LOG_MAX = 100  # ZSTD_d_windowLogMax


class _ZstdBuffer(ctypes.Structure):
    # ZSTD_inBuffer and ZSTD_outBuffer have the same layout.
    _fields_ = [("ptr", c_void_p), ("size", c_size_t), ("pos", c_size_t)]


def available():
    """The codings this process can decode natively."""
    return {name for name, lib in (("br", _brotli), ("zstd", _zstd))
            if lib is not None}


class _Stage:
    """Common part: pull compressed input from ``source`` (an object with
    read(n)), keep it in a C buffer, free the C state on close()."""

    def __init__(self, source):
        self._source = source
        # The current chunk of input; a 1-byte placeholder so the pointer
        # handed to C is always valid, even with nothing to read.
        self._input = ctypes.create_string_buffer(1)
        self._in_len = 0
        self._in_pos = 0
        self._finished = False

    def _refill(self):
        """Load the next chunk of input; False at the end of the source."""
        chunk = self._source.read(FEED_BYTES)
        if not chunk:
            return False
        self._input = (ctypes.c_char * len(chunk)).from_buffer_copy(chunk)
        self._in_len, self._in_pos = len(chunk), 0
        return True

    def _check_no_trailing_data(self):
        if self._in_pos < self._in_len or self._source.read(1):
            raise HttpError(400, "trailing data after compressed body",
                            discard="payload")


def _truncated():
    return HttpError(400, "truncated compressed body", discard="payload")


def _corrupt():
    return HttpError(400, "corrupt compressed body", discard="payload")


class Brotli(_Stage):
    def __init__(self, source):
        super().__init__(source)
        self._state = _brotli.BrotliDecoderCreateInstance(None, None, None)
        if not self._state:
            raise MemoryError("BrotliDecoderCreateInstance")

    def read(self, size):
        """Up to ``size`` decoded bytes; b"" at the end of the stream."""
        if self._finished:
            return b""
        out = ctypes.create_string_buffer(size)
        avail_out = c_size_t(size)
        next_out = c_void_p(ctypes.addressof(out))
        while True:
            avail_in = c_size_t(self._in_len - self._in_pos)
            next_in = c_void_p(ctypes.addressof(self._input) + self._in_pos)
            result = _brotli.BrotliDecoderDecompressStream(
                self._state, byref(avail_in), byref(next_in),
                byref(avail_out), byref(next_out), None)
            self._in_pos = self._in_len - avail_in.value
            produced = size - avail_out.value
            if result == _BROTLI_ERROR:
                raise _corrupt()
            if result == _BROTLI_SUCCESS:
                self._finished = True
                self._check_no_trailing_data()
                return ctypes.string_at(out, produced)
            if result == _BROTLI_NEEDS_OUTPUT or produced:
                return ctypes.string_at(out, produced)
            # Needs more input, and has produced nothing yet.
            if not self._refill():
                raise _truncated()

    def close(self):
        if self._state:
            _brotli.BrotliDecoderDestroyInstance(self._state)
            self._state = None


class Zstd(_Stage):
    def __init__(self, source):
        super().__init__(source)
        self._state = _zstd.ZSTD_createDStream()
        if not self._state:
            raise MemoryError("ZSTD_createDStream")
        _zstd.ZSTD_DCtx_setParameter(self._state, _ZSTD_D_WINDOW_LOG_MAX,
                                     ZSTD_WINDOW_LOG_MAX)
        self._frames = 0
        self._in_frame = False  # inside a frame that has not ended yet
        self._unflushed = False  # the last call filled the output buffer

    def read(self, size):
        if self._finished:
            return b""
        out = ctypes.create_string_buffer(size)
        outbuf = _ZstdBuffer(ctypes.addressof(out), size, 0)
        while True:
            # Call the decoder without input only to flush what it holds:
            # after a finished frame, a call with no input would start the
            # next frame and make a complete stream look truncated.
            if self._in_pos == self._in_len and not self._unflushed \
                    and not self._refill():
                if self._in_frame or not self._frames:
                    raise _truncated()
                self._finished = True
                return ctypes.string_at(out, outbuf.pos)
            inbuf = _ZstdBuffer(ctypes.addressof(self._input), self._in_len,
                                self._in_pos)
            hint = _zstd.ZSTD_decompressStream(self._state, byref(outbuf),
                                               byref(inbuf))
            self._in_pos = inbuf.pos
            if _zstd.ZSTD_isError(hint):
                raise _corrupt()
            self._in_frame = hint != 0
            self._unflushed = outbuf.pos == size and hint != 0
            if hint == 0:  # a frame ended and all of it was flushed
                self._frames += 1
                if self._frames > MAX_FRAMES:
                    raise HttpError(400, "more than %d zstd frames"
                                    % MAX_FRAMES, discard="payload")
            if outbuf.pos == size or (outbuf.pos
                                      and self._in_pos == self._in_len):
                return ctypes.string_at(out, outbuf.pos)

    def close(self):
        if self._state:
            _zstd.ZSTD_freeDStream(self._state)
            self._state = None
