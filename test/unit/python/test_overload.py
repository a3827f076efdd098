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


def queued(ms, clock, limits=LIMITS):
    """The environ nginx passes: sent on ``ms`` before the clock's now."""
    return {overload.START_VAR: "%.3f" % (clock.now - ms / 1000.0),
            overload.LIMITS_VAR: limits}


def admitted(gate, environ):
    try:
        gate.admit(environ)
        return True
    except Exception as e:  # the shed answer is an HttpError
        assert e.status == protocol.SHED_STATUS
        return False


def test_a_burst_may_wait_the_burst_bound_while_the_queue_emptied_within_it():
    clock = Clock()
    gate = overload.QueueGate(clock)
    assert admitted(gate, queued(0, clock))                  # found the queue empty
    clock.now += 0.4                                         # 400 ms into the burst
    assert admitted(gate, queued(BURST_MS - 10, clock))
    assert not admitted(gate, queued(BURST_MS + 10, clock))  # waited past the burst bound


def test_once_the_queue_has_not_emptied_for_the_burst_bound_only_the_sustained_one_holds():
    clock = Clock()
    gate = overload.QueueGate(clock)
    assert admitted(gate, queued(0, clock))
    clock.now += BURST_MS / 1000.0 + 0.1                     # no request found it empty since
    assert not admitted(gate, queued(SUSTAINED_MS + 10, clock))
    assert admitted(gate, queued(SUSTAINED_MS - 10, clock))
    # The queue empties again (a request waited under EMPTY_SECONDS): bursts may wait again.
    assert admitted(gate, queued(0, clock))
    clock.now += 0.1
    assert admitted(gate, queued(SUSTAINED_MS + 100, clock))


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
    fresh = with_environ(app, queued(0, Clock(time.time())))
    assert call(fresh, body=data, headers=sdk_headers()).status == 200
    assert len(spooled(tmp_path / "spool")) == 1
