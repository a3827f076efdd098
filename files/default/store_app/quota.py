"""Per-project rate limits: one token bucket per project, shared by every
process that enforces it, never divided between instances.

A bucket holds at most ``burst`` tokens, gains ``events_per_second`` a
second and starts full; a stored event takes one token.  ``check`` answers 0
(take it) or the seconds until a token will be there (429).  The backend is
chosen by the config's ``quota`` (config.py):

``local``: one bucket per project for the node.  The buckets live in a small
file (``state_file``) that every process using it shares: all instances of
every fleet on the node whose config names that file.  Fixed-size slots, one
per project, read and written with pread/pwrite under an exclusive flock
(other processes) and a threading.Lock (other threads of this process: flock
does not exclude them, they share the descriptor).  Time is CLOCK_MONOTONIC,
which is the same clock in every process of a boot; the header records the
kernel's boot id, and a file from an earlier boot is reset (full buckets).
"""

import fcntl
import hashlib
import math
import os
import struct
import threading
import time
import uuid


def take(tokens, updated, now, rate, burst):
    """One step of a bucket last seen at ``updated`` holding ``tokens``:
    refill for the time since (capped at ``burst``), take one token if there
    is one.  Returns (tokens left, wait): wait 0.0 means taken."""
    if now > updated:
        tokens += (now - updated) * rate
    if tokens > burst:
        tokens = burst
    if tokens >= 1:
        return tokens - 1, 0.0
    return tokens, (1 - tokens) / rate


def retry_after_seconds(wait):
    """Retry-After header value: whole seconds, at least 1."""
    return max(1, math.ceil(wait))


# -- local: the node's buckets in a state file -----------------------------------

_MAGIC = b"UWFQUOT1"
_HEADER = struct.Struct("<8s16sI")     # magic, boot id, slot count
_HEADER_SIZE = 64
_SLOT = struct.Struct("<16sdd")        # project key, tokens, updated
SLOTS = 16384                          # projects per file (512 KiB, sparse)
_EMPTY = bytes(16)


def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return uuid.UUID(f.read().strip()).bytes
    except (OSError, ValueError):
        return _EMPTY


def _slot_key(project_id):
    # Fixed size whatever the id; a zero key marks an empty slot.
    return hashlib.blake2b(project_id.encode("utf-8"), digest_size=16).digest()


class LocalQuota:
    """The node's buckets, in the state file at ``path`` (created 0640)."""

    backend = "local"

    def __init__(self, path, clock=time.monotonic):
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._offsets = {}  # project id -> slot offset (slots never move)
        self._keys = {}
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        with self._locked():
            self._check_header()

    def close(self):
        os.close(self._fd)

    def _locked(self):
        return _FileLock(self._lock, self._fd)

    def _check_header(self):
        header = _HEADER.pack(_MAGIC, _boot_id(), SLOTS)
        if os.pread(self._fd, len(header), 0) != header:
            # New, from an earlier boot (another monotonic clock) or another
            # layout: start again with every bucket full.  No fsync: losing
            # the state costs at most one burst.
            os.ftruncate(self._fd, 0)
            os.ftruncate(self._fd, _HEADER_SIZE + SLOTS * _SLOT.size)
            os.pwrite(self._fd, header, 0)

    def _find_slot(self, key):
        """(offset, slot bytes) of ``key``'s slot, else of the empty slot
        where it goes (open addressing, linear probing)."""
        index = int.from_bytes(key[:8], "little") % SLOTS
        for step in range(SLOTS):
            offset = _HEADER_SIZE + ((index + step) % SLOTS) * _SLOT.size
            data = os.pread(self._fd, _SLOT.size, offset)
            if data[:16] in (key, _EMPTY) or len(data) < _SLOT.size:
                return offset, data
        raise RuntimeError("quota state file %s has no free slot (%d projects)"
                           % (self.path, SLOTS))

    def check(self, project_id, rate, burst):
        key = self._keys.get(project_id)
        if key is None:
            key = self._keys[project_id] = _slot_key(project_id)
        with self._locked():
            offset = self._offsets.get(project_id)
            data = None if offset is None else \
                os.pread(self._fd, _SLOT.size, offset)
            if data is None or data[:16] != key:
                offset, data = self._find_slot(key)
                self._offsets[project_id] = offset
            now = self._clock()
            if data[:16] == key:
                _, tokens, updated = _SLOT.unpack(data)
            else:
                tokens, updated = burst, now   # a new bucket starts full
            tokens, wait = take(tokens, updated, now, rate, burst)
            os.pwrite(self._fd, _SLOT.pack(key, tokens, max(now, updated)),
                      offset)
        return wait

    def status(self):
        return {"backend": self.backend, "state_file": self.path}


class _FileLock:
    """The thread lock, then the exclusive flock, released in reverse."""

    def __init__(self, lock, fd):
        self._lock, self._fd = lock, fd

    def __enter__(self):
        self._lock.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, *exc):
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()


def make_quota(quota_config):
    """The backend a config.Quota names."""
    return LocalQuota(quota_config.state_file)
