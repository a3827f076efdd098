"""Open-loop load generator for the Sentry store endpoint (bench/run.py and the
reliability tests). Requests go out on a fixed schedule and each latency counts
from the request's *intended* send time, so a stalled server shows up as
latency, not as fewer requests (no coordinated omission). One thread drives
every connection through an epoll loop with a minimal HTTP/1.1 client, so the
generator's own CPU stays small."""
import collections
import errno
import json
import os
import random
import selectors
import socket
import struct
import time
import uuid
import zlib
import gzip
from dataclasses import dataclass, field

# Event sizes (uncompressed JSON bytes): (share, low, high), log-uniform inside a band.
# Most Sentry events are small; a few carry big breadcrumbs or stack locals.
SIZE_BANDS = ((0.60, 20_000, 50_000), (0.30, 50_000, 200_000), (0.10, 200_000, 1_000_000))
WORDS = ("frame", "module", "lineno", "context", "request", "breadcrumb", "exception", "value",
         "thread", "locals", "user", "release", "environment", "tags", "extra", "timestamp")


def draw_size(rng, bands=SIZE_BANDS):
    """One event size from the mixed distribution."""
    pick = rng.random()
    for share, low, high in bands:
        if pick < share:
            return int(low * (high / low) ** rng.random())
        pick -= share
    return bands[-1][2]


def make_event(rng, size):
    """A Sentry-like event of about `size` bytes of JSON, with an event_id."""
    event = {"event_id": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
             "platform": "python", "level": "error", "logger": "bench",
             "message": "benchmark event", "breadcrumbs": []}
    filler = len(json.dumps(event))
    while filler < size:
        crumb = {"category": rng.choice(WORDS),
                 "message": " ".join(rng.choice(WORDS) + str(rng.randrange(10**6)) for _ in range(12))}
        event["breadcrumbs"].append(crumb)
        filler += len(json.dumps(crumb)) + 2
    return event


def gzip_stored(data):
    """A gzip member holding `data` in one stored (uncompressed) deflate block:
    no compressor to set up, so a fresh event id costs microseconds."""
    n = len(data)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\x01" + struct.pack("<HH", n, n ^ 0xFFFF)
            + data + struct.pack("<II", zlib.crc32(data), n))


@dataclass
class Payload:
    raw_size: int        # bytes of the JSON event
    tail: bytes          # gzip of the event after its event_id (see fresh_body)

    def fresh_body(self, event_id):
        """The same event under a new event_id, without compressing it again.

        Two gzip members, a tiny one holding '{"event_id": "<id>", ' and the
        precompressed rest: a valid gzip stream (RFC 1952 allows several
        members). Every request is then a new event, as in real traffic,
        instead of a duplicate that the store answers without writing."""
        return gzip_stored(b'{"event_id": "' + event_id.encode() + b'", ') + self.tail


def make_payloads(count, seed=1, bands=SIZE_BANDS):
    """`count` distinct gzip events with sizes from the distribution (deterministic per seed)."""
    rng, payloads = random.Random(seed), []
    for _ in range(count):
        event = make_event(rng, draw_size(rng, bands))
        rest = json.dumps({k: v for k, v in event.items() if k != "event_id"}).encode()[1:]
        payloads.append(Payload(len(json.dumps(event)), gzip.compress(rest, 6)))
    return payloads


@dataclass(slots=True)
class Result:
    intended: float      # when the request was due (monotonic seconds)
    sent: float          # when it actually left
    done: float          # when the answer (or error) came back
    status: int          # HTTP status, 0 for a connection error
    backend: str = ""    # X-Fleet-Instance of the answer
    event_id: str = ""
    error: str = ""
    retry_after: str = ""  # Retry-After of the answer (shed answers)

    @property
    def latency(self):
        """Seconds from the intended send time: no coordinated omission."""
        return self.done - self.intended


@dataclass
class Run:
    rate: float
    duration: float
    results: list = field(default_factory=list)
    started: float = 0.0

    def counts(self):
        """requests sent, 2xx, other answers, connection errors."""
        ok = sum(1 for r in self.results if 200 <= r.status < 300)
        errors = sum(1 for r in self.results if r.status == 0)
        return {"sent": len(self.results), "ok": ok, "other": len(self.results) - ok - errors, "errors": errors}

    def accepted_event_ids(self):
        return [r.event_id for r in self.results if r.status == 200]


class _Conn:
    """A keep-alive connection and the request it carries, with its answer so far."""
    __slots__ = ("sock", "used", "refused", "intended", "sent", "event_id", "data", "offset", "buf", "retried")

    def __init__(self, addr):
        self.sock = socket.socket()
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.used = self.retried = False
        self.refused = self.sock.connect_ex(addr) not in (0, errno.EINPROGRESS)

    def load(self, intended, sent, event_id, data):
        self.intended, self.sent, self.event_id, self.data, self.buf, self.offset = intended, sent, event_id, data, b"", 0


class LoadGenerator:
    """Sends store requests to host:port at a fixed rate from a pool of payloads."""

    def __init__(self, host, port, project_id, public_key, payloads, timeout=30.0, max_in_flight=512):
        self.addr, self.payloads, self.timeout, self.max_in_flight = (host, port), payloads, timeout, max_in_flight
        self.head = (f"POST /api/{project_id}/store/ HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     "Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
                     f"X-Sentry-Auth: Sentry sentry_key={public_key}, sentry_version=7, "
                     "sentry_client=sentry.python/1.9.10\r\n").encode()

    def run(self, rate, duration, payload_offset=0, stop=None):
        """Open loop: request i is due at start + i / rate, for `duration` seconds."""
        return self.run_profile([(duration, rate)], payload_offset, stop)

    def run_profile(self, segments, payload_offset=0, stop=None):
        """Open loop over consecutive (duration, rate) segments, e.g. base load
        with bursts: [(3, 80), (2, 240), (4, 80)]. Within a segment request j is
        due at segment_start + j / rate; a rate of 0 is a pause."""
        offsets = [sum(d for d, _ in segments[:k]) for k in range(len(segments) + 1)]
        run = Run(rate=sum(int(d * r) for d, r in segments) / (offsets[-1] or 1), duration=offsets[-1],
                  started=time.monotonic() + 0.05)
        schedule = (run.started + o + j / r for o, (d, r) in zip(offsets, segments) for j in range(int(d * r)))
        run.results = self._loop(schedule, payload_offset, stop, run.started + offsets[-1])
        return run

    def closed_loop(self, concurrency, duration, warmup=0.0, payload_offset=0, stop=None):
        """Closed loop (a first guess of the saturation, not for latency):
        `concurrency` requests in flight, each answer followed at once by the
        next request, for warmup + duration seconds. Run.results are the
        requests started after the warm-up; Run.rate the 2xx answers per second."""
        begin = time.monotonic()
        results = self._loop(iter(()), payload_offset, stop, begin + warmup + duration, closed=concurrency)
        run = Run(rate=0.0, duration=duration, started=begin + warmup)
        run.results = [r for r in results if r.intended >= run.started]
        deadline = run.started + duration
        run.rate = sum(1 for r in run.results if 200 <= r.status < 300 and r.done <= deadline) / duration
        return run

    def _loop(self, schedule, offset, stop, end, closed=0):
        """Send each request when due (or, closed, when one is answered) on an
        idle connection or a new one, up to max_in_flight; a request due while
        all are busy waits for one (its lag shows it)."""
        sel, results, idle, waiting, busy = selectors.EpollSelector(), [], [], collections.deque(), set()
        prefix, count, nxt, sweep = os.urandom(8).hex(), 0, next(schedule, None), time.monotonic()
        try:
            while True:
                now, stopped = time.monotonic(), stop is not None and stop.is_set()
                if stopped:
                    nxt, closed = None, 0
                while nxt is not None and nxt <= now:
                    waiting.append(nxt)
                    nxt = next(schedule, None)
                if closed and now < end:
                    waiting.extend([now] * (closed - len(busy) - len(waiting)))
                while waiting and (idle or len(busy) < self.max_in_flight):
                    event_id = f"{prefix}{count:016x}"
                    body = self.payloads[(offset + count) % len(self.payloads)].fresh_body(event_id)
                    count += 1
                    conn = idle.pop() if idle else self._connect(sel)
                    conn.load(waiting.popleft(), time.monotonic(), event_id,
                              b"%sContent-Length: %d\r\n\r\n%s" % (self.head, len(body), body))
                    busy.add(conn)
                    self._write(sel, conn, busy, results)
                if nxt is None and not waiting and not busy and (now >= end or stopped):
                    return sorted(results, key=lambda r: r.intended)
                if now - sweep > 0.5:
                    sweep = now
                    for conn in [c for c in busy if now - c.sent > self.timeout]:
                        self._fail(sel, conn, busy, results, "timeout", retry=False)
                wait = 0.05 if nxt is None else min(0.05, max(0.0, nxt - time.monotonic()))
                for key, mask in sel.select(wait):
                    conn = key.data
                    if conn not in busy:        # an idle connection closed by the server
                        sel.unregister(conn.sock)
                        conn.sock.close()
                        idle.remove(conn)
                    elif mask & selectors.EVENT_WRITE:
                        self._write(sel, conn, busy, results)
                    else:
                        self._read(sel, conn, busy, idle, results)
        finally:
            for conn in list(busy) + idle:
                conn.sock.close()
            sel.close()

    def _connect(self, sel):
        conn = _Conn(self.addr)
        sel.register(conn.sock, selectors.EVENT_WRITE, conn)
        return conn

    def _write(self, sel, conn, busy, results):
        try:
            if conn.refused or not conn.used and conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                raise ConnectionRefusedError("connect failed")
            conn.offset += conn.sock.send(memoryview(conn.data)[conn.offset:])
        except BlockingIOError:
            pass
        except OSError as e:
            return self._fail(sel, conn, busy, results, repr(e))
        want = selectors.EVENT_READ if conn.offset == len(conn.data) else selectors.EVENT_WRITE
        if sel.get_key(conn.sock).events != want:
            sel.modify(conn.sock, want, conn)

    def _read(self, sel, conn, busy, idle, results):
        try:
            chunk = conn.sock.recv(262144)
        except BlockingIOError:
            return
        except OSError as e:
            return self._fail(sel, conn, busy, results, repr(e))
        if not chunk:
            return self._fail(sel, conn, busy, results, "connection closed by the server")
        conn.buf += chunk
        end = conn.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = conn.buf[:end].decode("latin-1").split("\r\n")
        head = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if len(conn.buf) - end - 4 < int(head.get("content-length", 0)):
            return
        results.append(Result(conn.intended, conn.sent, time.monotonic(), int(lines[0].split(" ", 2)[1]),
                              head.get("x-fleet-instance", ""), conn.event_id, "", head.get("retry-after", "")))
        busy.discard(conn)
        conn.used = True
        if head.get("connection", "").lower() == "close":
            sel.unregister(conn.sock)
            conn.sock.close()
        else:
            idle.append(conn)           # stays registered for reading: an EOF while idle closes it

    def _fail(self, sel, conn, busy, results, error, retry=True):
        """A connection error. A keep-alive connection that the server closed
        while idle is retried once on a fresh one, as HTTP clients do."""
        busy.discard(conn)
        sel.unregister(conn.sock)
        conn.sock.close()
        if retry and conn.used and not conn.retried and not conn.buf:
            fresh = self._connect(sel)
            fresh.load(conn.intended, conn.sent, conn.event_id, conn.data)
            fresh.retried = True
            busy.add(fresh)
            return self._write(sel, fresh, busy, results)
        results.append(Result(conn.intended, conn.sent, time.monotonic(), 0, "", conn.event_id, error))


def percentile(values, q):
    """q in [0, 100], nearest-rank on sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(q / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[rank]
