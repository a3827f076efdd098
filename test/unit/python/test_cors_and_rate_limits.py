"""Issue 10, items 2 to 4: browsers can talk to the intake (CORS as Relay
answers it), a 429 says which categories are limited (X-Sentry-Rate-Limits),
and an envelope never needs more than one token."""

import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta

import pytest
from sentry_sdk.transport import _parse_rate_limits

from store_app import protocol
from support import (KEY, SDK_AUTH, call, event_bytes, gz, limited, make_app,
                     spooled)

# relay-server/src/middlewares/cors.rs
RELAY_ALLOWED_HEADERS = {"x-sentry-auth", "x-requested-with", "x-forwarded-for",
                         "origin", "referer", "accept", "content-type",
                         "authentication", "authorization", "content-encoding",
                         "transfer-encoding"}
RELAY_EXPOSED_HEADERS = {"x-sentry-error", "x-sentry-rate-limits",
                         "retry-after"}
ORIGIN = {"Origin": "http://app.example:8080"}


def header_set(value):
    return {h.strip().lower() for h in value.split(",")}


def limited_app(tmp_path, burst=2, rate=0.001):
    return make_app(tmp_path, projects={"1": limited(rate, burst)})


def browser_post(app, data, path="/api/1/envelope/"):
    """What @sentry/browser sends: the key in the query string, a text/plain
    body (a "simple" request, so no preflight) from another origin."""
    return call(app, path=path, body=data,
                query="sentry_key=%s&sentry_version=7" % KEY,
                headers={"Content-Type": "text/plain;charset=UTF-8", **ORIGIN})


def event_envelope(*events):
    lines = [b"{}"]
    for ev in events:
        lines += [b'{"type":"event","length":%d}' % len(ev), ev]
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("path", ["/api/1/envelope/", "/api/1/store/",
                                  "/api/77/envelope/"])
def test_preflight_is_answered_like_relay(app, path):
    resp = call(app, "OPTIONS", path, headers={
        **ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-sentry-auth"})
    assert resp.status == 200, resp
    assert resp.headers["access-control-allow-origin"] == "*"
    assert resp.headers["access-control-allow-methods"] == "POST"
    assert header_set(resp.headers["access-control-allow-headers"]) == \
        RELAY_ALLOWED_HEADERS
    assert resp.headers["access-control-max-age"] == "3600"


def test_every_intake_answer_carries_cors_headers(tmp_path):
    app = limited_app(tmp_path, burst=1)
    answers = {
        200: browser_post(app, event_envelope(event_bytes())),
        429: browser_post(app, event_envelope(event_bytes())),
        400: browser_post(app, b"not an envelope\n"),
        401: call(app, path="/api/1/envelope/", body=b"{}\n", headers=ORIGIN),
        403: call(app, path="/api/1/store/", body=b"{}",
                  query="sentry_key=" + "0" * 32, headers=ORIGIN),
        405: call(app, "GET", "/api/1/envelope/", headers=ORIGIN),
        413: call(app, path="/api/1/store/", content_length="9" * 9,
                  headers={"X-Sentry-Auth": SDK_AUTH % KEY, **ORIGIN}),
        415: call(app, path="/api/1/store/", body=b"x", headers={
            "Content-Encoding": "compress",
            "X-Sentry-Auth": SDK_AUTH % KEY, **ORIGIN}),
    }
    for status, resp in answers.items():
        assert resp.status == status, resp
        assert resp.headers["access-control-allow-origin"] == "*", status
        assert header_set(resp.headers["access-control-expose-headers"]) == \
            RELAY_EXPOSED_HEADERS, status


NGINX_RB = os.path.join(os.path.dirname(__file__), "..", "..", "..", "libraries", "nginx.rb")


def test_nginx_answers_with_the_apps_cors_headers_read_from_one_file():
    """nginx's own error pages (libraries/nginx.rb) and the app (protocol.py)
    read the CORS policy from the app's cors.json: the same headers, Relay's."""
    ruby = shutil.which("ruby")
    assert ruby, "ruby reads libraries/nginx.rb: `make unit` installs it (make deps)"
    out = subprocess.run([ruby, "-e", "load ARGV[0]; n = UwsgiFleet::Nginx; "
                          "print JSON.generate([n::CORS_FILE, n.cors_headers])", NGINX_RB],
                         capture_output=True, text=True, check=True).stdout
    path, nginx_headers = json.loads(out)
    assert os.path.samefile(path, os.path.join(os.path.dirname(protocol.__file__), "cors.json"))
    assert nginx_headers == dict(protocol.CORS_HEADERS)
    assert header_set(nginx_headers["Access-Control-Expose-Headers"]) == RELAY_EXPOSED_HEADERS


def test_a_429_names_the_limited_categories(tmp_path):
    burst = 2
    app = limited_app(tmp_path, burst=burst)
    statuses = [browser_post(app, event_envelope(event_bytes()))
                for _ in range(burst + 1)]
    assert [r.status for r in statuses] == [200] * burst + [429]
    resp = statuses[-1]
    retry_after = int(resp.headers["retry-after"])
    assert retry_after >= 1 and resp.json["retry_after"] == retry_after
    # Relay's format: retry_after:categories:scope:reason_code
    seconds, categories, scope, reason = \
        resp.headers["x-sentry-rate-limits"].split(":")
    assert int(seconds) == retry_after
    # The quota covers what is spooled: events (error categories) and
    # transactions; sessions and the rest are not limited by it.
    assert set(categories.split(";")) == {"default", "error", "transaction"}
    assert (scope, reason) == ("project", "project_quota")
    # ...and a real SDK reads it as those categories, not "everything".
    now = datetime(2024, 1, 1)
    parsed = dict(_parse_rate_limits(resp.headers["x-sentry-rate-limits"],
                                     now))
    assert None not in parsed
    assert parsed["error"] == parsed["transaction"] == \
        now + timedelta(seconds=retry_after)


def test_sessions_are_not_rate_limited_by_the_event_quota(tmp_path):
    app = limited_app(tmp_path, burst=1)
    assert browser_post(app, event_envelope(event_bytes())).status == 200
    assert browser_post(app, event_envelope(event_bytes())).status == 429
    sessions = b'{}\n{"type":"session"}\n{"sid":"a"}\n'
    assert browser_post(app, sessions).status == 200


def test_an_envelope_never_needs_more_than_one_token(tmp_path):
    """The issue's case: with a burst of 2 per instance, a 3-event envelope
    was answered 429 on every retry.  Relay takes one event item per
    envelope: that one is refused outright (413, never retried), takes no
    token, and any envelope that is accepted takes one."""
    burst = 2
    app = limited_app(tmp_path, burst=burst)
    three = event_envelope(event_bytes(), event_bytes(), event_bytes())
    for _ in range(3):
        resp = browser_post(app, three)
        assert resp.status == 413, resp
        assert "retry-after" not in resp.headers
    statuses = [browser_post(app, event_envelope(event_bytes())).status
                for _ in range(burst + 1)]
    assert statuses == [200] * burst + [429]
    assert len(spooled(tmp_path / "spool")) == burst


def test_store_endpoint_429_has_the_same_headers(tmp_path):
    app = limited_app(tmp_path, burst=1)
    headers = {"Content-Encoding": "gzip", "X-Sentry-Auth": SDK_AUTH % KEY}
    assert call(app, body=gz(event_bytes()), headers=headers).status == 200
    resp = call(app, body=gz(event_bytes()), headers=headers)
    assert resp.status == 429
    assert resp.headers["x-sentry-rate-limits"].startswith(
        resp.headers["retry-after"] + ":")
    assert json.loads(resp.body)["error"] == resp.headers["x-sentry-error"]
