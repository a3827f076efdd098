"""Per-project rate limiting with a thread-safe token bucket.

The fleet is N independent uWSGI instances (config ``instances``) behind
nginx, and they share no memory.  Rather than a network round trip to a
shared counter, each instance enforces 1/N of the project's fleet-wide limit:
``events_per_second / instances`` refill rate and ``burst / instances``
bucket size.  With nginx spreading requests evenly across instances the fleet
as a whole admits about the configured rate; when traffic is uneven an
instance may refuse (429) while the fleet is below its total, never the
reverse, so the configured limit is an upper bound.
"""

import math
import threading
import time


class TokenBucket:
    """Token bucket: ``rate`` tokens/second, holding at most ``burst``.

    Starts full.  Safe to share between threads; the lock is held only for a
    few arithmetic operations.
    """

    def __init__(self, rate, burst, clock=time.monotonic):
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = self.burst
        self._updated = clock()
        self._lock = threading.Lock()

    def try_acquire(self, count=1):
        """Take ``count`` tokens; return 0.0 on success, else the seconds
        until that many tokens will be available (nothing is taken)."""
        with self._lock:
            now = self._clock()
            # Refill for the time since the last call, capped at the bucket
            # size so an idle project cannot bank an unbounded burst.
            tokens = self._tokens + (now - self._updated) * self.rate
            if tokens > self.burst:
                tokens = self.burst
            self._updated = now
            if tokens >= count:
                self._tokens = tokens - count
                return 0.0
            self._tokens = tokens
            return (count - tokens) / self.rate


def make_bucket(rate_limit, instances):
    """Return this instance's share of a fleet-wide RateLimit (or None)."""
    if rate_limit is None:
        return None
    return TokenBucket(rate_limit.events_per_second / instances,
                       rate_limit.burst / instances)


def retry_after_seconds(wait):
    """Retry-After header value: whole seconds, at least 1."""
    return max(1, math.ceil(wait))
