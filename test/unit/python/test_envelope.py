"""The /envelope/ endpoint (what sentry-sdk 2.x posts)."""

import json
import uuid

import pytest

import hostile
from store_app import decode
from store_app import envelope as envelope_mod
from support import (KEY, SDK_AUTH, call, gz, make_app, make_event, spooled,
                     all_files)

PATH = "/api/1/envelope/"


def item(item_type, payload, with_length=True):
    header = {"type": item_type}
    if with_length:
        header["length"] = len(payload)
    return json.dumps(header).encode() + b"\n" + payload + b"\n"


def envelope(items, **header):
    return json.dumps(header).encode() + b"\n" + b"".join(items)


def post(app, data, key=KEY, encoding="gzip", **kw):
    headers = {"Content-Type": "application/x-sentry-envelope"}
    if key:
        headers["X-Sentry-Auth"] = SDK_AUTH % key
    if encoding:
        headers["Content-Encoding"] = encoding
    return call(app, path=PATH, body=gz(data) if encoding == "gzip" else data,
                headers=headers, **kw)


def test_event_envelope_is_spooled(app, spool):
    event_id = uuid.uuid4().hex
    payload = json.dumps(make_event(event_id)).encode()
    data = envelope([item("event", payload)], event_id=event_id,
                    sent_at="2024-01-01T00:00:00Z")
    resp = post(app, data)
    assert resp.status == 200, resp
    assert resp.json == {"id": event_id}
    assert resp.headers["x-fleet-instance"] == "9000"
    assert (spool / "1" / (event_id + ".json")).read_bytes() == payload


def test_envelope_without_trailing_slash_and_uncompressed(app, spool):
    payload = json.dumps(make_event()).encode()
    resp = call(app, path="/api/1/envelope", body=envelope(
        [item("event", payload, with_length=False)]),
        headers={"X-Sentry-Auth": SDK_AUTH % KEY})
    assert resp.status == 200, resp
    assert spooled(spool) == [resp.json["id"] + ".json"]


def test_auth_from_envelope_dsn(app, spool):
    payload = json.dumps(make_event()).encode()
    dsn = "https://%s@o1.ingest.example/1" % KEY
    resp = post(app, envelope([item("event", payload)], dsn=dsn), key=None)
    assert resp.status == 200, resp
    assert len(spooled(spool)) == 1

    bad = "https://%s@o1.ingest.example/1" % ("e" * 32)
    assert post(app, envelope([item("event", payload)], dsn=bad),
                key=None).status == 403
    assert post(app, envelope([item("event", payload)]), key=None).status \
        == 401


def test_the_event_item_is_spooled_and_other_items_are_skipped(app, spool):
    ev = make_event()
    data = envelope([
        item("session", b'{"sid": "x", "status": "ok"}'),
        item("attachment", b"\x00binary\nwith newline\x00"),
        item("event", json.dumps(ev).encode()),
        item("client_report", b'{"discarded_events": []}', with_length=False),
    ])
    resp = post(app, data)
    assert resp.status == 200, resp
    assert resp.json == {"id": ev["event_id"]}
    assert spooled(spool) == [ev["event_id"] + ".json"]


def test_transaction_item_is_spooled(app, spool):
    tx = make_event(type="transaction", spans=[])
    data = envelope([item("transaction", json.dumps(tx).encode(),
                          with_length=False),
                     item("client_report", b'{"discarded_events": []}')])
    resp = post(app, data)
    assert resp.status == 200, resp
    assert spooled(spool) == [tx["event_id"] + ".json"]


def test_envelope_without_events_is_accepted_and_stores_nothing(app, spool):
    data = envelope([item("session", b'{"sid": "x"}')])
    resp = post(app, data)
    assert resp.status == 200
    assert resp.json == {"id": None}
    assert all_files(spool) == []


def test_item_without_event_id_takes_envelope_event_id(app, spool):
    event_id = uuid.uuid4().hex
    payload = json.dumps(make_event(None, message="m")).encode()
    resp = post(app, envelope([item("event", payload)], event_id=event_id))
    assert resp.json == {"id": event_id}
    stored = json.loads((spool / "1" / (event_id + ".json")).read_bytes())
    assert stored["event_id"] == event_id and stored["message"] == "m"


@pytest.mark.parametrize("data", [
    b"",
    b"not json\n",
    b"[]\n",
    b"{}\n{not json}\n{}\n",
    b'{}\n{"length": 2}\n{}\n',                      # item without type
    b'{}\n{"type": "event", "length": 999}\n{}\n',   # length past the end
    b'{}\n{"type": "event", "length": -1}\n{}\n',
    b'{}\n{"type": "event", "length": "2"}\n{}\n',
    b'{}\n{"type": "event"}\n[1,2]\n',               # event not an object
    b'{}\n{"type": "event"}\n{bad\n',
    b'{}\n{"type": "event"}\n{"event_id": "zz"}\n',
])
def test_malformed_envelope_is_400(app, spool, data):
    resp = post(app, data)
    assert resp.status == 400, resp
    assert resp.headers["content-type"] == "application/json"
    assert "error" in resp.json
    assert all_files(spool) == []


def test_envelope_events_count_against_quota(tmp_path):
    burst = 2
    app = make_app(tmp_path, projects={"1": {
        "public_key": KEY,
        "rate_limit": {"events_per_second": 0.01, "burst": burst}}})

    def one_event():
        return envelope([item("event", json.dumps(make_event()).encode())])

    assert [post(app, one_event()).status for _ in range(burst + 1)] == \
        [200] * burst + [429]
    sessions = envelope([item("session", b"{}")])
    assert post(app, sessions).status == 200  # no events: no quota needed


# -- issue 18, item 1: whitespace and blank lines between items ---------------

def test_whitespace_and_blank_lines_between_items_are_skipped(app, spool):
    """As Relay's parser: any JSON whitespace before an item header."""
    ev = make_event()
    data = envelope([b" \t\r\n\n", item("session", b'{"sid": "x"}'),
                     b"\n\n  \t", item("event", json.dumps(ev).encode()),
                     b"\r\n  \n"])
    resp = post(app, data)
    assert resp.status == 200, resp
    assert spooled(spool) == [ev["event_id"] + ".json"]


def lines_envelope(blank_lines, items=1):
    """``items`` session items, then ``blank_lines`` blank lines, then the
    event: 1 + 2 x (items + 1) + blank_lines lines in all."""
    return envelope([item("session", b"{}")] * items + [b"\n" * blank_lines,
                    item("event", json.dumps(make_event()).encode())])


def test_lines_are_bounded_blank_ones_included(app, spool):
    items = envelope_mod.MAX_ITEMS - 1
    room = envelope_mod.MAX_LINES - 1 - 2 * (items + 1)
    assert post(app, lines_envelope(room, items)).status == 200
    resp = post(app, lines_envelope(room + 1, items))
    assert resp.status == 400, resp
    assert "lines" in resp.json["error"]
    assert len(spooled(spool)) == 1


def test_too_many_blank_lines_are_refused_without_decoding_them(tmp_path):
    """The issue's body: 20 MiB of newlines in 20 KB of gzip.  Refused once
    the lines allowed are past, within the first chunk decoded."""
    seen = []
    real = decode.DecodedBody._read_top

    def counting(self, size):
        chunk = real(self, size)
        seen.append(len(chunk))
        return chunk

    app = make_app(tmp_path)
    data = hostile.blank_lines_envelope(20 * 1024 * 1024)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(decode.DecodedBody, "_read_top", counting)
        resp = post(app, data)
    assert resp.status == 400, resp
    assert sum(seen) <= 2 * decode.DecodedBody.READ_BYTES, sum(seen)


# -- issue 18, item 2: item headers -----------------------------------------

def header_of(size):
    """An item header line of ``size`` bytes (a session's, padded)."""
    pad = size - len(b'{"type": "session", "pad": ""}')
    return b'{"type": "session", "pad": "%s"}' % (b"x" * pad)


def test_item_headers_are_bounded_in_total(app, spool):
    event = item("event", json.dumps(make_event()).encode())
    # The event's header, and sessions' filling the rest of the budget.
    room = envelope_mod.MAX_ITEM_HEADER_BYTES - len(event.split(b"\n")[0])
    sizes = [room // 4] * 3 + [room - 3 * (room // 4)]
    fits = envelope([event] + [header_of(n) + b"\n{}\n" for n in sizes])
    assert post(app, fits).status == 200
    over = envelope([event] + [header_of(n) + b"\n{}\n"
                               for n in sizes[:-1] + [sizes[-1] + 1]])
    resp = post(app, over)
    assert resp.status == 400, resp
    assert "headers" in resp.json["error"]
    assert len(spooled(spool)) == 1


def test_headers_may_hold_any_json_numbers_they_are_not_stored(app, spool):
    """Headers are parsed without the event's number checks (which cost a
    Python call per number): NaN or 1e999 in a header is no reason to lose
    the event; in the event it still is."""
    ev = json.dumps(make_event()).encode()
    data = (b'{"sdk": {"x": [NaN, 1e999, 0.5]}}\n'
            b'{"type": "event", "length": %d, "x": -Infinity}\n' % len(ev)
            + ev + b"\n")
    assert post(app, data).status == 200
    bad = envelope([item("event", b'{"message": "m", "x": 1e999}')])
    assert post(app, bad).status == 400
    assert len(spooled(spool)) == 1


# -- issue 18, item 7: an attachment over its limit costs only itself --------

ATTACHMENT_CAP = 64 * 1024


@pytest.mark.parametrize("with_length", [True, False])
@pytest.mark.parametrize("encoding", ["gzip", None])
def test_attachment_over_its_limit_is_dropped_and_the_event_stored(
        tmp_path, with_length, encoding):
    app = make_app(tmp_path, max_attachment_bytes=ATTACHMENT_CAP)
    ev = make_event()
    data = envelope([item("event", json.dumps(ev).encode()),
                     item("attachment", b"a" * (ATTACHMENT_CAP + 1),
                          with_length),
                     item("attachment", b"b" * ATTACHMENT_CAP, with_length)])
    resp = post(app, data, encoding=encoding)
    assert resp.status == 200, resp
    assert spooled(tmp_path / "spool") == [ev["event_id"] + ".json"]
    counted = {(r["outcome"], r["reason"], r["category"]): r["quantity"]
               for r in app.outcomes.snapshot()}
    assert counted == {("accepted", None, "error"): 1,
                       ("invalid", "too_large", "attachment"): 1,
                       ("filtered", "not_stored", "attachment"): 1}


def test_an_event_over_its_limit_still_refuses_the_envelope(tmp_path):
    """As Relay: the event is what the envelope is for."""
    app = make_app(tmp_path, max_event_bytes=4096)
    data = envelope([item("event", json.dumps(make_event(
        message="m" * 4096)).encode()), item("attachment", b"a")])
    assert post(app, data).status == 413
    assert spooled(tmp_path / "spool") == []
