"""Open-loop load generator for the Sentry store endpoint.

Requests go out on a fixed schedule (request i is due at start + i / rate), and
each latency is measured from the request's *intended* send time, so a stalled
server shows up as latency instead of as fewer requests (no coordinated
omission). The generator reports its own lag: how late requests left versus
their schedule, so a run where the generator itself fell behind is visible.

Used by the benchmark harness (bench/run.py) and the reliability tests.
"""
import gzip
import http.client
import itertools
import json
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
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


@dataclass
class Payload:
    event_id: str
    body: bytes          # gzip of the JSON event, as the SDK sends it
    raw_size: int
    tail: bytes = b""    # gzip of the event after its event_id (see fresh_body)

    def fresh_body(self, event_id):
        """The same event under a new event_id, without compressing it again.

        Two gzip members, a tiny one holding '{"event_id": "<id>", ' and the
        precompressed rest: a valid gzip stream (RFC 1952 allows several
        members). Every request is then a new event, as in real traffic,
        instead of a duplicate that the store answers without writing."""
        head = b'{"event_id": "' + event_id.encode() + b'", '
        return gzip.compress(head, 1) + self.tail


def make_payloads(count, seed=1, bands=SIZE_BANDS):
    """`count` distinct gzip events with sizes from the distribution (deterministic per seed)."""
    rng = random.Random(seed)
    payloads = []
    for _ in range(count):
        event = make_event(rng, draw_size(rng, bands))
        raw = json.dumps(event).encode()
        rest = dict(event)
        del rest["event_id"]
        tail = gzip.compress(json.dumps(rest).encode()[1:], 6)
        payloads.append(Payload(event["event_id"], gzip.compress(raw, 6), len(raw), tail))
    return payloads


def store_headers(public_key):
    return {"Content-Type": "application/json", "Content-Encoding": "gzip",
            "X-Sentry-Auth": f"Sentry sentry_key={public_key}, sentry_version=7, "
                             "sentry_client=sentry.python/1.9.10"}


@dataclass
class Result:
    intended: float      # when the request was due (monotonic seconds)
    sent: float          # when it actually left
    done: float          # when the answer (or error) came back
    status: int          # HTTP status, 0 for a connection error
    backend: str = ""    # X-Fleet-Instance of the answer
    event_id: str = ""
    error: str = ""

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
    # run_profile: [(offset from started, duration, rate)] of each segment.
    segments: list = field(default_factory=list)

    def counts(self):
        """requests sent, 2xx, other answers, connection errors."""
        ok = sum(1 for r in self.results if 200 <= r.status < 300)
        errors = sum(1 for r in self.results if r.status == 0)
        return {"sent": len(self.results), "ok": ok, "other": len(self.results) - ok - errors,
                "errors": errors}

    def accepted_event_ids(self):
        return [r.event_id for r in self.results if r.status == 200]

    def lag(self):
        """How late requests left versus their schedule: (p99, max) seconds."""
        lags = sorted(r.sent - r.intended for r in self.results)
        if not lags:
            return 0.0, 0.0
        return lags[min(len(lags) - 1, int(len(lags) * 0.99))], lags[-1]


class _Connections(threading.local):
    conn = None


class LoadGenerator:
    """Sends store requests to host:port at a fixed rate from a pool of payloads."""

    def __init__(self, host, port, project_id, public_key, payloads, timeout=30.0, max_in_flight=512):
        self.host, self.port = host, port
        self.path = f"/api/{project_id}/store/"
        self.headers = store_headers(public_key)
        self.payloads = payloads
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self._local = _Connections()

    def _connection(self, fresh=False):
        if fresh or self._local.conn is None:
            if self._local.conn is not None:
                self._local.conn.close()
            self._local.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._local.conn

    def send_one(self, payload, intended):
        """One store request over this thread's keep-alive connection."""
        event_id = uuid.uuid4().hex
        body = payload.fresh_body(event_id)
        sent = time.monotonic()
        headers = dict(self.headers, **{"Content-Length": str(len(body))})
        for attempt in (0, 1):
            # A keep-alive connection the server closed while idle is retried once
            # on a fresh connection, as HTTP clients (and the SDK's urllib3) do.
            conn = self._connection(fresh=attempt == 1)
            try:
                conn.request("POST", self.path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    self._local.conn = None
                return Result(intended, sent, time.monotonic(), response.status,
                              response.getheader("X-Fleet-Instance", ""), event_id)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                if attempt == 0 and getattr(conn, "_fleet_used", False):
                    continue
                error = repr(e)
            except (OSError, http.client.HTTPException) as e:
                error = repr(e)
            finally:
                conn._fleet_used = True
            conn.close()
            self._local.conn = None
            return Result(intended, sent, time.monotonic(), 0, "", event_id, error)

    def run(self, rate, duration, on_progress=None, payload_offset=0, stop=None):
        """Open loop: request i is due at start + i / rate, for `duration` seconds."""
        return self.run_profile([(duration, rate)], on_progress, payload_offset, stop)

    def run_profile(self, segments, on_progress=None, payload_offset=0, stop=None):
        """Open loop over consecutive (duration, rate) segments, e.g. base load
        with bursts: [(3, 80), (2, 240), (4, 80)]. Within a segment request j is
        due at segment_start + j / rate; a rate of 0 is a pause. Latency is from
        the intended time, as in run(). Returns a Run whose `segments` lists
        (offset from started, duration, rate) for each segment."""
        plan, offset = [], 0.0
        for duration, rate in segments:
            plan.append((offset, float(duration), float(rate)))
            offset += duration
        total = sum(int(d * r) for _, d, r in plan)
        run = Run(rate=total / offset if offset else 0.0, duration=offset, segments=plan)
        futures = []
        pool = ThreadPoolExecutor(max_workers=self.max_in_flight)
        try:
            run.started = start = time.monotonic() + 0.05
            i = 0
            for seg_offset, duration, rate in plan:
                for j in range(int(duration * rate)):
                    if stop is not None and stop.is_set():
                        break
                    intended = start + seg_offset + j / rate
                    delay = intended - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    payload = self.payloads[(payload_offset + i) % len(self.payloads)]
                    futures.append(pool.submit(self.send_one, payload, intended))
                    if on_progress and i % max(1, int(rate)) == 0:
                        on_progress(i, total)
                    i += 1
            end = start + offset
            if time.monotonic() < end and not (stop is not None and stop.is_set()):
                time.sleep(max(0.0, end - time.monotonic()))  # a trailing pause
            run.results = [f.result() for f in futures]
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return run

    def closed_loop(self, concurrency, duration, warmup=0.0, payload_offset=0, stop=None):
        """Closed loop (for finding the saturation throughput, not for latency):
        `concurrency` threads each send the next request as soon as the last one
        is answered, for warmup + duration seconds. Returns a Run whose results
        are the requests started after the warm-up (intended == sent: a closed
        loop has no schedule); Run.started is the end of the warm-up, so the
        throughput is the 2xx answers done in [started, started + duration]."""
        counter = itertools.count(payload_offset)
        begin = time.monotonic()
        measure_from = begin + warmup
        deadline = measure_from + duration
        halt = stop if stop is not None else threading.Event()

        def loop():
            out = []
            while not halt.is_set():
                now = time.monotonic()
                if now >= deadline:
                    break
                payload = self.payloads[next(counter) % len(self.payloads)]
                result = self.send_one(payload, now)
                if result.intended >= measure_from:
                    out.append(result)
            return out

        run = Run(rate=0.0, duration=duration)
        run.started = measure_from
        pool = ThreadPoolExecutor(max_workers=concurrency)
        try:
            futures = [pool.submit(loop) for _ in range(concurrency)]
            run.results = sorted((r for f in futures for r in f.result()), key=lambda r: r.intended)
        except BaseException:
            halt.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        done = sum(1 for r in run.results if 200 <= r.status < 300 and r.done <= deadline)
        run.rate = done / duration if duration else 0.0
        return run


def percentile(values, q):
    """q in [0, 100], nearest-rank on sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(q / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[rank]
