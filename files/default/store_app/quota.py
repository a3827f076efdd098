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
does not exclude them, they share the descriptor).  A forked child opens the
file again: a descriptor inherited across fork shares its lock too.  Time is CLOCK_MONOTONIC,
which is the same clock in every process of a boot; the header records the
kernel's boot id, and a file from an earlier boot is reset (full buckets).

``redis``: one bucket per project in a Redis
hash (``<key_prefix><project id>``), updated by one Lua script in one round
trip (EVALSHA, EVAL when the server does not know the script) on the Redis
server's clock, so the nodes' clocks do not matter.  An idle bucket expires
once it would be full again.

Redis unreachable, slow (``timeout_ms``) or failing: the check fails open to
the node's local bucket (``state_file``), so a request is never answered 5xx
or 429 because Redis is down, and the node still holds each project to its
rate.  With K nodes sharing it, they then admit at most K times the rate.  After
a failure the process leaves Redis alone for RETRY_SECONDS, so an outage
costs one timeout per process per RETRY_SECONDS, not one per request.  The
failures are counted (``status()``, shown in /_health) and logged at most
once every LOG_SECONDS.
"""

import fcntl
import hashlib
import math
import os
import struct
import threading
import time
import uuid
import weakref

from . import log, redisconn


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


# -- local: the node's buckets in a state file ------------------------------

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
        self._offsets = {}  # project id -> slot offset (slots never move)
        self._keys = {}
        self._fd = None
        self._open()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: ref() and ref()._open())

    def _open(self):
        """(Re)open the file: at start, and in a forked child, whose copy of
        the descriptor would share the parent's flock."""
        self._lock = threading.Lock()
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                           0o640)
        with self._locked():
            self._check_header()

    def __del__(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

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


# -- redis: buckets shared through Redis -------------------------------------

# The same step as take(), in Redis, on the server's clock.  KEYS[1]: the
# bucket; ARGV: rate, burst.  Returns the wait as a string (Lua numbers
# become integers in Redis replies).
_TAKE_SCRIPT = redisconn.LuaScript("""
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(state[1]), tonumber(state[2])
if tokens == nil or ts == nil then tokens, ts = burst, now end
if now > ts then tokens = tokens + (now - ts) * rate; ts = now end
if tokens > burst then tokens = burst end
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'ts', string.format('%.17g', ts))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst / rate + 1) * 1000))
return string.format('%.17g', wait)
""")


class RedisQuota:
    """The fleet's buckets in Redis; the node's (a LocalQuota) when Redis
    cannot answer in time."""

    backend = "redis"
    RETRY_SECONDS = 1.0
    LOG_SECONDS = 10.0

    def __init__(self, url, key_prefix, timeout_ms, state_file,
                 clock=time.monotonic):
        self._url = url
        self._prefix = key_prefix
        self._client = redisconn.connect(url, timeout_ms / 1000.0)
        self._errors = redisconn.redis_module().RedisError
        self._fallback = LocalQuota(state_file, clock)
        self._clock = clock
        self._log = log.Throttled(self.LOG_SECONDS, clock)
        self._lock = threading.Lock()
        self._retry_at = None
        self._counts = {"redis_errors": 0, "fallback_checks": 0}
        self._last_error = None

    def check(self, project_id, rate, burst):
        retry_at = self._retry_at
        if retry_at is None or self._clock() >= retry_at:
            try:
                wait = float(_TAKE_SCRIPT(self._client,
                                          [self._prefix + project_id],
                                          [repr(rate), repr(burst)]))
            except self._errors as e:
                self._failed(e)
            else:
                self._retry_at = None
                return wait
        with self._lock:
            self._counts["fallback_checks"] += 1
        return self._fallback.check(project_id, rate, burst)

    def _failed(self, error):
        message = redisconn.scrub("%s: %s" % (type(error).__name__, error),
                                  self._url)
        with self._lock:
            self._counts["redis_errors"] += 1
            self._last_error = {"error": message, "at": time.time()}
            self._retry_at = self._clock() + self.RETRY_SECONDS
            errors = self._counts["redis_errors"]
        self._log("quota: redis %s failed (%s); using the node's local "
                  "bucket, %d failure(s) so far"
                  % (redisconn.redact(self._url), message, errors))

    def status(self):
        with self._lock:
            return dict(self._counts, backend=self.backend,
                        redis=redisconn.redact(self._url),
                        state_file=self._fallback.path,
                        last_error=self._last_error,
                        using_fallback=self._retry_at is not None)


def make_quota(quota_config):
    """The backend a config.Quota names."""
    if quota_config.backend == "redis":
        return RedisQuota(quota_config.url, quota_config.key_prefix,
                          quota_config.timeout_ms, quota_config.state_file)
    return LocalQuota(quota_config.state_file)
