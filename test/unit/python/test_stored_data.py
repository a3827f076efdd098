"""Issue 10, items 10 and 11: what a 200 promises about the spool.

* every file is valid UTF-8 JSON (item 10);
* a retried event without an event_id is stored once (item 11).
"""

import codecs
import json

import pytest

from support import (KEY, SDK_AUTH, all_files, call, gz, make_event,
                     spooled, store)


def strict_json(data):
    """What any JSON reader accepts: UTF-8, no NaN/Infinity."""
    def refuse(name):
        raise ValueError(name)
    return json.loads(data.decode("utf-8"), parse_constant=refuse)


# -- item 10 -------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    b'{"message": "huge", "value": 1e999}',             # parses as inf
    b'{"message": "tiny", "value": -1e999}',
    b'{"event_id": "%s", "value": 1e999}' % (b"c" * 32),
    b'{"message": "x", "value": NaN}',
    codecs.BOM_UTF16_LE + '{"message": "utf-16"}'.encode("utf-16-le"),
    '{"message": "utf-16, no BOM"}'.encode("utf-16-le"),
    '{"message": "utf-32"}'.encode("utf-32"),
    codecs.BOM_UTF8 + b'{"message": "utf-8 with a BOM"}',
    b'{"message": "cp1252 \xe9t\xe9"}',
])
def test_only_utf8_json_is_accepted(app, spool, data):
    resp = store(app, data)
    assert resp.status == 400, resp
    assert all_files(spool) == []


def test_what_is_accepted_is_stored_as_valid_utf8_json(app, spool):
    events = [
        {"message": "caf\u00e9 \U0001f600", "value": 1e308},   # no id
        {"message": "\ud83d", "extra": {"n": -0.0}},           # lone surrogate
        make_event(message="plain"),
    ]
    for event in events:
        assert store(app, json.dumps(event).encode()).status == 200
    files = spooled(spool)
    assert len(files) == len(events)
    for name in files:
        strict_json((spool / "1" / name).read_bytes())


# -- item 11 -------------------------------------------------------------------

def test_a_retried_event_without_id_is_stored_once(app, spool):
    data = json.dumps(make_event(None, message="no id")).encode()
    first, retry = store(app, data), store(app, data)
    assert first.status == retry.status == 200
    assert first.json == retry.json
    assert spooled(spool) == [first.json["id"] + ".json"]
    # A different event gets a different id.
    other = store(app, json.dumps(make_event(None, message="other")).encode())
    assert other.json["id"] != first.json["id"]


def test_a_retried_envelope_without_ids_is_stored_once(app, spool):
    payload = json.dumps(make_event(None, message="envelope, no id")).encode()
    data = b'{}\n{"type":"event","length":%d}\n%s\n' % (len(payload), payload)
    headers = {"X-Sentry-Auth": SDK_AUTH % KEY}
    answers = [call(app, path="/api/1/envelope/", body=data, headers=headers)
               for _ in range(2)]
    assert [a.status for a in answers] == [200, 200]
    assert answers[0].json == answers[1].json
    assert spooled(spool) == [answers[0].json["id"] + ".json"]


def test_derived_ids_differ_between_projects(tmp_path):
    from support import KEY2, make_app
    app = make_app(tmp_path)
    data = json.dumps(make_event(None)).encode()
    ids = [call(app, path="/api/%s/store/" % project, body=gz(data), headers={
        "Content-Encoding": "gzip", "X-Sentry-Auth": SDK_AUTH % key}).json["id"]
        for project, key in (("1", KEY), ("2", KEY2))]
    assert ids[0] != ids[1]
