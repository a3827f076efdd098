"""Issue 13, part 2: the hot path does not re-serialise JSON it already
holds as bytes."""

import json

import pytest

from store_app import body
from support import KEY, SDK_AUTH, call, spooled, store


@pytest.fixture
def no_dumps(monkeypatch):
    """json.dumps of an event fails the test (the answer's small body may use it)."""
    real = json.dumps

    def guarded(obj, *args, **kwargs):
        assert not (isinstance(obj, dict) and "message" in obj), "the event was re-serialised"
        return real(obj, *args, **kwargs)
    monkeypatch.setattr(json, "dumps", guarded)


@pytest.mark.parametrize("data", [
    b'{"message": "no id", "n": 1.50, "big": 123456789012345678901234567890}',
    b'  \n{ "message" : "spaced",\n  "caf\xc3\xa9": "\xf0\x9f\x98\x80" }\n',
])
def test_an_event_without_id_is_stored_as_received_with_the_id_spliced_in(app, spool, no_dumps, data):
    resp = store(app, data)
    assert resp.status == 200, resp
    event_id = resp.json["id"]
    stored = (spool / "1" / (event_id + ".json")).read_bytes()
    start = data.index(b"{") + 1
    assert stored == data[:start] + b'"event_id":"%s",' % event_id.encode() + data[start:]
    assert json.loads(stored)["event_id"] == event_id


def test_an_envelope_item_without_id_takes_the_header_id_without_re_serialising(app, spool, no_dumps):
    event_id = "ab" * 16
    payload = b'{"message": "from an envelope", "x": 1e5}'
    data = b'{"event_id": "%s"}\n{"type": "event", "length": %d}\n%s\n' % (event_id.encode(), len(payload), payload)
    resp = call(app, path="/api/1/envelope/", body=data, headers={"X-Sentry-Auth": SDK_AUTH % KEY})
    assert resp.json == {"id": event_id}
    assert (spool / "1" / (event_id + ".json")).read_bytes() == \
        b'{"event_id":"%s","message": "from an envelope", "x": 1e5}' % event_id.encode()


@pytest.mark.parametrize("data, expected", [
    (b"{}", b'{"event_id":"%s"}'),
    (b" { \n } ", b' {"event_id":"%s" \n } '),
    (b'{"a":{}}', b'{"event_id":"%s","a":{}}'),
])
def test_splicing_keeps_the_object_valid(data, expected):
    event_id = "0f" * 16
    out = body.with_event_id(data, event_id)
    assert out == expected % event_id.encode()
    assert json.loads(out)["event_id"] == event_id


def test_a_null_or_dashed_id_is_still_rewritten_once(app, spool):
    """A key that is there with another value cannot be spliced over: the
    event is re-serialised, and the file agrees with its name."""
    dashed = "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE"
    for data in (b'{"event_id": null, "message": "null id"}',
                 b'{"event_id": "%s", "message": "dashed"}' % dashed.encode()):
        resp = store(app, data)
        assert resp.status == 200
        stored = json.loads((spool / "1" / (resp.json["id"] + ".json")).read_bytes())
        assert stored["event_id"] == resp.json["id"]
    assert len(spooled(spool)) == 2


# The parser stays the standard library's: Debian 12's python3-ujson (5.7.0)
# accepts each of these, which are not JSON (and NaN, Infinity, 1e999, see
# test_stored_data.py), and on the bench's events it was slower (0.146 ms
# against 0.116 ms per event; faster only on number-heavy events).
@pytest.mark.parametrize("data", [
    b'{"message": "raw \x01 control character"}',
    b'{"message": "raw\ttab"}',
    b'{"message": "leading zero", "n": 01}',
    b'{"message": "encoded surrogate \xed\xa0\x80"}',
    b'{"message": "nan", "n": NaN}',
    b'{"message": "overflow", "n": -1e999}',
])
def test_what_ujson_would_let_through_is_refused(app, spool, data):
    resp = store(app, data)
    assert resp.status == 400, resp
    assert spooled(spool) == []
