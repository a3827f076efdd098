"""Log lines on stderr (uWSGI and the process manager write it to the log),
and a rate limit for lines that a failing dependency would repeat on every
request."""

import sys
import threading
import time


def log(message):
    sys.stderr.write("store_app: %s\n" % message)
    sys.stderr.flush()


class Throttled:
    """Logs at most one line per ``interval`` seconds; a line says how many
    were held back since the last one.  Thread-safe."""

    def __init__(self, interval, clock=time.monotonic, write=log):
        self.interval = interval
        self._clock = clock
        self._write = write
        self._next = None
        self._held = 0
        self._lock = threading.Lock()

    def __call__(self, message):
        with self._lock:
            now = self._clock()
            if self._next is not None and now < self._next:
                self._held += 1
                return False
            held, self._held = self._held, 0
            self._next = now + self.interval
        if held:
            message += " (%d similar line(s) held back)" % held
        self._write(message)
        return True
