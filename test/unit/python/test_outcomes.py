"""Issue 10, item 5: what the store did with each thing it was sent is
counted as Sentry counts it (outcome, reason, data category) and shown in
/_health, including the items it answers 200 for but does not keep."""

import json

from support import KEY, SDK_AUTH, call, event_bytes, gz, make_app


def outcomes(app):
    rows = call(app, "GET", "/_health").json["outcomes"]
    return {(r["outcome"], r["reason"], r["category"]): r["quantity"]
            for r in rows}


def envelope(*items):
    out = [b"{}"]
    for item_type, payload in items:
        out += [b'{"type":"%s","length":%d}' % (item_type.encode(),
                                                len(payload)), payload]
    return b"\n".join(out) + b"\n"


def post_envelope(app, data):
    return call(app, path="/api/1/envelope/", body=data,
                headers={"X-Sentry-Auth": SDK_AUTH % KEY})


def test_dropped_items_are_counted_by_category(app):
    sent = [("session", b'{"sid":"a"}'), ("attachment", b"\x00\x01"),
            ("attachment", b"log"), ("client_report", b'{"discarded_events":[]}'),
            ("event", event_bytes()), ("transaction_v9", b"{}")]
    assert post_envelope(app, envelope(*sent)).status == 200
    expected = {("accepted", None, "error"): 1,
                ("filtered", "not_stored", "session"): 1,
                ("filtered", "not_stored", "attachment"): 2,
                ("filtered", "not_stored", "client_report"): 1,
                ("filtered", "not_stored", "unknown"): 1}
    assert outcomes(app) == expected


def test_refusals_are_counted_with_their_reason(tmp_path):
    app = make_app(tmp_path, projects={"1": {
        "public_key": KEY, "rate_limit": {"events_per_second": 0.001,
                                          "burst": 1}}})
    store = {"Content-Encoding": "gzip", "X-Sentry-Auth": SDK_AUTH % KEY}
    ev = event_bytes()
    statuses = [
        call(app, body=gz(ev), headers=store).status,                 # 200
        call(app, body=gz(ev), headers=store).status,                 # 429
        call(app, body=gz(b"{nope"), headers=store).status,           # 400
        call(app, body=b"x", headers=dict(store, **{
            "Content-Encoding": "compress"})).status,                 # 415
        call(app, body=gz(ev), headers={
            "Content-Encoding": "gzip",
            "X-Sentry-Auth": SDK_AUTH % ("0" * 32)}).status,          # 403
        post_envelope(app, envelope(("event", event_bytes()),
                                    ("event", event_bytes()))).status,  # 413
    ]
    assert statuses == [200, 429, 400, 415, 403, 413]
    assert outcomes(app) == {
        ("accepted", None, "error"): 1,
        ("rate_limited", "project_quota", "error"): 1,
        ("invalid", "invalid_json", "error"): 1,
        ("invalid", "content_encoding", "error"): 1,
        ("invalid", "auth", "error"): 1,
        ("invalid", "too_large", "unknown"): 1,
    }


def test_a_retried_event_is_counted_as_a_duplicate(app):
    store = {"Content-Encoding": "gzip", "X-Sentry-Auth": SDK_AUTH % KEY}
    body = gz(event_bytes())
    assert [call(app, body=body, headers=store).status
            for _ in range(2)] == [200, 200]
    assert outcomes(app) == {("accepted", None, "error"): 1,
                             ("invalid", "duplicate", "error"): 1}


def test_health_says_since_when_it_counts(app):
    health = call(app, "GET", "/_health").json
    assert health["outcomes"] == []
    assert isinstance(health["outcomes_since"], float)
    json.dumps(health)  # plain JSON, for uwsgi-fleetctl outcomes
