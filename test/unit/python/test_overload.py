"""Shedding on time queued (store_app/overload.py, issue 18 item 0): a burst
is stored whole, sustained overload is shed fast, and the shed answer is
nginx's own (libraries/nginx.rb)."""

import io
import time

from store_app import overload, protocol

from support import call, event_bytes, gz, make_app, sdk_headers, spooled
from test_shed_answer import shed_answer

BURST_MS, SUSTAINED_MS = 500, 50
LIMITS = "%d %d" % (BURST_MS, SUSTAINED_MS)


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def request(start, limits=LIMITS):
    """The environ nginx passes for a request it passed on at ``start``."""
    return {overload.START_VAR: "%.3f" % start, overload.LIMITS_VAR: limits}


def queued(ms, clock, limits=LIMITS):
    """A request passed on ``ms`` before the clock's now."""
    return request(clock.now - ms / 1000.0, limits)


def admitted(gate, environ):
    try:
        gate.admit(environ)
        return True
    except Exception as e:  # the shed answer is an HttpError
        assert e.status == protocol.SHED_STATUS
        return False


def take(gate, clock, starts, seconds_each):
    """A thread takes the queued requests (their starts) in order, one every
    ``seconds_each``: which were admitted."""
    out = []
    for start in starts:
        clock.now += seconds_each
        out.append(admitted(gate, request(start)))
    return out


def test_a_burst_may_wait_the_burst_bound_even_on_a_slow_node_after_a_quiet_spell():
    clock = Clock()
    gate = overload.QueueGate(clock)
    assert admitted(gate, queued(0, clock))
    clock.now += 600                     # quiet: the queue is empty
    # 50 requests queued at once; each takes 12 ms, so the later ones wait past the bound.
    burst_start, each = clock.now, 0.012
    results = take(gate, clock, [burst_start] * 50, each)
    # The first take ends the quiet spell: waits count from it, and the queue was empty then.
    expected = [i * each <= BURST_MS / 1000.0 for i in range(50)]
    assert results == expected and expected[:40] == [True] * 40 and not expected[-1]


def warm(gate, clock):
    """An instance that has been taking requests: one taken now, found the queue empty."""
    assert admitted(gate, request(clock.now))


def test_once_the_queue_has_not_emptied_for_the_burst_bound_only_the_sustained_one_holds():
    clock = Clock()
    gate = overload.QueueGate(clock)
    warm(gate, clock)
    last_empty = clock.now
    # A standing queue: every request was queued before the previous one was taken
    # and waits 100 ms (between the two bounds).
    wait = 2 * SUSTAINED_MS / 1000.0
    results, expected = [], []
    for _ in range(100):                 # 1 s of it, one take every 10 ms
        clock.now += 0.010
        results.append(admitted(gate, queued(wait * 1000, clock)))
        expected.append(clock.now - last_empty <= BURST_MS / 1000.0)
    assert results == expected
    assert expected[:30] == [True] * 30 and expected[-30:] == [False] * 30
    assert admitted(gate, queued(SUSTAINED_MS - 10, clock))
    # A request that finds the queue empty (queued after the last take): bursts may wait again.
    assert admitted(gate, request(clock.now))
    clock.now += 0.1
    assert admitted(gate, queued(SUSTAINED_MS + 100, clock))


def test_a_stall_is_not_overload_what_queued_during_a_reload_is_taken_whole():
    clock = Clock()
    gate = overload.QueueGate(clock)
    for _ in range(50):                  # busy: a take every 10 ms
        clock.now += 0.010
        assert admitted(gate, request(clock.now - 0.002))
    # A rolling reload: no take for 1.2 s (over the burst bound) while 40 requests queue.
    stalled_from = clock.now
    queued_during = [stalled_from + 0.03 * i for i in range(40)]
    clock.now += 1.2
    assert take(gate, clock, queued_during, 0.002) == [True] * 40
    # Without the stall rule the first of them waited 1.2 s, past the 500 ms bound.
    assert clock.now - queued_during[0] > BURST_MS / 1000.0


def test_nothing_is_shed_without_nginx_times_or_with_bounds_0_or_malformed():
    clock = Clock()
    gate = overload.QueueGate(clock)
    clock.now += 3600
    late = queued(60_000, clock)
    assert admitted(gate, {})                                             # straight to the port
    assert admitted(gate, {overload.START_VAR: late[overload.START_VAR]})  # no bounds
    for limits in ("0 0", "", "50 500", "x y", "500", "-1 0"):
        assert admitted(gate, queued(60_000, clock, limits)), limits
    assert admitted(gate, {overload.START_VAR: "soon", overload.LIMITS_VAR: LIMITS})


def with_environ(app, extra):
    return lambda environ, start_response: app(dict(environ, **extra), start_response)


class Unreadable(io.RawIOBase):
    def read(self, size=-1):
        raise AssertionError("the body of a shed request was read")


def test_the_app_sheds_a_request_that_queued_too_long_with_nginxs_answer_unread(tmp_path):
    app = make_app(tmp_path)
    clock = Clock(time.time())
    app._queue = overload.QueueGate(clock)
    for _ in range(BURST_MS * 6 // 10):      # an instance taking a request every 10 ms
        clock.now += 0.010
        warm(app._queue, clock)
    late = with_environ(app, queued(BURST_MS * 4, clock))
    data = gz(event_bytes())
    r = call(late, body=data, headers=sdk_headers(), stream=Unreadable(), validate=False)
    status, headers = shed_answer()
    assert r.status == status
    assert {k: r.headers[k] for k in headers} == headers
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.json["retry_after"] == int(headers["retry-after"]) and r.json["queued_ms"] > BURST_MS
    assert spooled(tmp_path / "spool") == []
    assert {"outcome": "rate_limited", "reason": "overloaded", "category": "error", "quantity": 1} \
        in app.outcomes.snapshot()
    # The same request, passed on just now, is stored.
    fresh = with_environ(app, request(clock.now))
    assert call(fresh, body=data, headers=sdk_headers()).status == 200
    assert len(spooled(tmp_path / "spool")) == 1
