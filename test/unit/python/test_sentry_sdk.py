"""Feed the app the exact bytes the real sentry-sdk (1.9.10, Debian) sends.

The SDK's HttpTransport builds the request (URL, X-Sentry-Auth, gzip body)
and hands it to its urllib3 pool; we replace the pool's ``request`` to
capture it instead of opening a socket, then replay it into the WSGI app.
"""

import gzip
import json
import threading
from urllib.parse import urlsplit

import sentry_sdk

from support import KEY, call, make_app, spooled


class _FakeResponse:
    status = 200
    headers = {}
    data = b""

    def close(self):
        pass


def capture_sdk_requests(send, **options):
    """Run ``send(hub)`` with a real SDK client; return captured requests."""
    captured = []
    lock = threading.Lock()

    def fake_request(method, url, body=None, headers=None, **kw):
        with lock:
            captured.append((method, url, dict(headers), body))
        return _FakeResponse()

    # Port 9500 is never contacted: the pool's request is replaced.
    client = sentry_sdk.Client(
        dsn="http://%s@127.0.0.1:9500/1" % KEY, default_integrations=False,
        auto_enabling_integrations=False, **options)
    client.transport._pool.request = fake_request
    hub = sentry_sdk.Hub(client)
    try:
        send(hub)
        client.flush(timeout=10)
    finally:
        client.close(timeout=10)
    return captured


def replay(app, request):
    method, url, headers, body = request
    parts = urlsplit(url)
    return call(app, method, parts.path, body=body, headers=headers,
                query=parts.query)


def test_real_sdk_error_event_is_stored(tmp_path):
    def send(hub):
        try:
            {}["missing"]
        except KeyError:
            hub.capture_exception()
        hub.capture_message("hello from sentry-sdk")

    requests = capture_sdk_requests(send)
    store_requests = [r for r in requests if r[1].endswith("/store/")]
    assert len(store_requests) == 2
    method, url, headers, body = store_requests[0]
    # This is the SDK 1.x wire format the endpoint is built for.
    assert method == "POST" and url == "http://127.0.0.1:9500/api/1/store/"
    assert headers["Content-Encoding"] == "gzip"
    assert headers["X-Sentry-Auth"].startswith("Sentry sentry_key=" + KEY)
    assert "sentry_client=sentry.python/1.9" in headers["X-Sentry-Auth"]

    app = make_app(tmp_path)
    for request in requests:
        resp = replay(app, request)
        assert resp.status == 200, resp

    spool = tmp_path / "spool"
    for _, _, _, body in store_requests:
        sent = gzip.decompress(body)
        event_id = json.loads(sent)["event_id"]
        stored = (spool / "1" / (event_id + ".json")).read_bytes()
        assert stored == sent
    events = [json.loads((spool / "1" / n).read_bytes())
              for n in spooled(spool)]
    assert any(e.get("message") == "hello from sentry-sdk" for e in events)
    assert any(e.get("exception", {}).get("values", [{}])[0].get("type")
               == "KeyError" for e in events)


def test_real_sdk_transaction_envelope_is_stored(tmp_path):
    def send(hub):
        with hub.start_transaction(name="bench", op="test"):
            pass

    requests = capture_sdk_requests(send, traces_sample_rate=1.0)
    envelopes = [r for r in requests if r[1].endswith("/envelope/")]
    assert envelopes, requests
    assert envelopes[0][2]["Content-Type"] == "application/x-sentry-envelope"

    app = make_app(tmp_path)
    ids = []
    for request in requests:
        resp = replay(app, request)
        assert resp.status == 200, resp
        ids.append(resp.json["id"])

    stored = [json.loads((tmp_path / "spool" / "1" / n).read_bytes())
              for n in spooled(tmp_path / "spool")]
    assert [e["type"] for e in stored] == ["transaction"]
    assert stored[0]["transaction"] == "bench"
    assert stored[0]["event_id"] in ids


def test_real_sdk_with_wrong_key_is_refused(tmp_path):
    requests = capture_sdk_requests(lambda hub: hub.capture_message("x"))
    method, url, headers, body = requests[0]
    headers["X-Sentry-Auth"] = headers["X-Sentry-Auth"].replace(KEY, "0" * 32)
    resp = replay(make_app(tmp_path), (method, url, headers, body))
    assert resp.status == 403
    assert spooled(tmp_path / "spool") == []
