"""What happened to the data each request carried, counted the way Sentry
counts it: an outcome, a reason and a data category, with a quantity.

Outcomes (Sentry's names): ``accepted`` (spooled), ``filtered`` (answered 200
but deliberately not kept: this store keeps only events and transactions),
``rate_limited`` (429, and 503 when the instance sheds a request that
queued too long: overload.py) and ``invalid`` (refused with a 4xx, or a 500 when the
spool failed).  Reasons are Relay's DiscardReason names where one fits
(``invalid_json``, ``invalid_envelope``, ``too_large``, ``payload``,
``duplicate``, ``internal``), plus this store's own: ``not_stored``, ``auth``,
``content_encoding``, ``overloaded`` and ``project_quota`` (Sentry's reason code for a project
rate limit).  Categories are Sentry's data categories (``error``,
``transaction``, ``session``, ``attachment``, ...; ``unknown`` when a request
was refused before its items could be read).  An attachment over
max_attachment_bytes is ``invalid``/``too_large``/``attachment``: dropped,
while the event that came with it is stored.

The counters live in each instance's memory since it started; /_health shows
them and ``uwsgi-fleetctl outcomes`` sums them over the node's instances.
"""

import threading
import time
from collections import Counter


class Outcomes:
    """Thread-safe counters keyed by (outcome, reason, category)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts = Counter()
        self.since = time.time()

    def add(self, outcome, reason, category, quantity=1):
        with self._lock:
            self._counts[(outcome, reason, category)] += quantity

    def snapshot(self):
        """A JSON-ready list, sorted, one dict per (outcome, reason, category)."""
        with self._lock:
            items = sorted(self._counts.items(),
                           key=lambda kv: tuple(x or "" for x in kv[0]))
        return [{"outcome": o, "reason": r, "category": c, "quantity": q}
                for (o, r, c), q in items]
