"""The /envelope/ endpoint (what sentry-sdk 2.x posts)."""

import json
import uuid

import pytest

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
