"""The 503 nginx sheds with (libraries/nginx.rb, SHED_*) makes the real
sentry-sdk (1.9.10, Debian) pause: it honours X-Sentry-Rate-Limits on any
status, so the next event is dropped by the SDK instead of being sent."""

import json
import os
import shutil
import subprocess
import threading

import sentry_sdk

from support import KEY

NGINX_RB = os.path.join(os.path.dirname(__file__), "..", "..", "..", "libraries", "nginx.rb")


def shed_answer():
    """(status, headers) of the shed answer, as the cookbook renders them."""
    ruby = shutil.which("ruby")
    assert ruby, "ruby reads libraries/nginx.rb: `make unit` installs it (make deps)"
    out = subprocess.run([ruby, "-rjson", "-e", "load ARGV[0]; n = UwsgiFleet::Nginx; "
                          "print JSON.generate([n::SHED_STATUS, n::SHED_HEADERS])", NGINX_RB],
                         capture_output=True, text=True, check=True).stdout
    status, headers = json.loads(out)
    return status, {k.lower(): v for k, v in headers.items()}


def test_the_sdk_sends_nothing_more_after_a_shed_answer():
    status, headers = shed_answer()
    assert status == 503 and headers["retry-after"] == "1"
    sent, lock = [], threading.Lock()

    class Shed:
        def __init__(self):
            self.status, self.headers, self.data = status, headers, b""

        def close(self):
            pass

    def fake_request(method, url, body=None, headers=None, **kw):
        with lock:
            sent.append(url)
        return Shed()

    client = sentry_sdk.Client(dsn="http://%s@127.0.0.1:9500/1" % KEY, default_integrations=False,
                               auto_enabling_integrations=False)
    client.transport._pool.request = fake_request
    hub = sentry_sdk.Hub(client)
    try:
        hub.capture_message("first: shed")
        client.flush(timeout=10)
        hub.capture_message("second: within Retry-After, so dropped by the SDK")
        hub.capture_exception(ValueError("third, another category"))
        client.flush(timeout=10)
    finally:
        client.close(timeout=10)
    assert len(sent) == 1, sent
