"""Shed on time spent waiting, not on how many requests are in flight.

nginx passes each request to an instance with the time it did so
(``uwsgi_param FLEET_QUEUE_START $msec``) and the fleet's two bounds
(``FLEET_QUEUE_MS "<burst> <sustained>"``; templates/nginx_site.conf.erb).
The request then waits in the instance's listen queue until one of its
threads is free.  Before anything else is read (auth, body), a request that
waited longer than the bound in force is answered 503 with Retry-After, as
nginx answers when no instance can take it (libraries/nginx.rb, SHED_*).

Which bound is in force follows Facebook's adaptive queue timeout
("Fail at Scale", controlled delay): while the queue has been empty within
the last ``burst`` ms, a request may wait ``burst`` ms, so a burst of many
simultaneous events (a batch job's errors, a page reporting several) is
stored whole; once it has not been empty for that long (sustained
overload), only ``sustained`` ms, so the accepted requests stay fast and the
excess is shed.  The queue cannot be read directly; a request found it
empty when it was queued after every earlier request had been taken off it
(the listen queue is first in, first out): its start is not before the
last time a thread took a request.  An idle instance's queue is empty, so
a burst after a quiet spell gets the burst bound, however slow the node.

A stall is not overload: when no thread took a request for longer than the
burst bound (a rolling reload replaces the worker; requests hold every
thread), the requests that queued meanwhile count their wait from when the
instance took requests again, and the queue counts as emptied then.  They
were never more than the instance serves; shedding them would lose events
to a deploy.  (An app whose every request takes over T x the burst bound is
bounded by nginx's max_conns only.)

Why not nginx's max_conns alone: it refuses the (N x max_conns + 1)-th
request in flight at once, however short its wait would have been, and
SDKs drop an event answered 503.  Without FLEET_QUEUE_START (a request sent
to the instance's port directly) nothing is shed.
"""

import time

from . import protocol
from .errors import HttpError

START_VAR = "FLEET_QUEUE_START"
LIMITS_VAR = "FLEET_QUEUE_MS"
# nginx's $msec is its event loop's cached time, in whole ms: a request
# queued this little before the last take still found the queue empty.  In a
# standing queue requests wait far longer than this.
CLOCK_SLACK = 0.005


def _parse_limits(value):
    """(burst, sustained) in seconds from "<burst ms> <sustained ms>", or
    None (shedding off) for 0 or a value not of that shape."""
    try:
        burst, sustained = (int(v) for v in value.split())
    except ValueError:
        return None
    if burst <= 0 or not 0 <= sustained <= burst:
        return None
    return burst / 1000.0, sustained / 1000.0


def _start(environ):
    """When nginx passed the request on (its $msec), or None."""
    try:
        return float(environ.get(START_VAR) or "x")
    except ValueError:
        return None


class QueueGate:
    """One per process: its threads share when a request was last taken off
    the queue and when the queue was last seen empty."""

    def __init__(self, clock=time.time):
        self._clock = clock
        self._last_taken = float("-inf")
        self._last_empty = float("-inf")
        self._resumed = float("-inf")
        self._limits = ("", None)   # the last LIMITS_VAR value, parsed

    def _limits_of(self, value):
        if value != self._limits[0]:
            self._limits = (value, _parse_limits(value))
        return self._limits[1]

    def admit(self, environ):
        """Return if the request may proceed; raise the shed 503 if it
        waited longer than the bound in force."""
        limits = self._limits_of(environ.get(LIMITS_VAR, ""))
        start = _start(environ)
        if limits is None or start is None:
            return
        now = self._clock()
        burst, sustained = limits
        # Benign races between threads: each value only moves forward.
        if now - self._last_taken > burst:
            self._resumed = now           # after a stall (or idle): see above
        found_empty = start + CLOCK_SLACK >= self._last_taken
        self._last_taken = max(self._last_taken, now)
        if found_empty:
            self._last_empty = max(self._last_empty, start)
        self._last_empty = max(self._last_empty, self._resumed)
        waited = now - max(start, self._resumed)
        bound = burst if now - self._last_empty <= burst else sustained
        if waited > bound:
            raise HttpError(protocol.SHED_STATUS, protocol.SHED_REASON,
                            protocol.SHED_HEADERS,
                            {"retry_after": protocol.SHED_RETRY_AFTER,
                             "queued_ms": int(waited * 1000)},
                            discard="overloaded")
