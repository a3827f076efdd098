"""Acceptance: real Sentry clients send events to the converged node.

* @sentry/node (npm): envelopes with a chunked body, no Content-Length and no
  Content-Type;
* a real browser: Debian's headless Chromium loads a page that uses
  @sentry/browser (npm), served from another origin than the node, sends an
  error, and sees a 429 with the rate-limit headers that CORS exposes;
* a brotli envelope built with python3-brotli exactly as sentry-python 2.x
  sends it.

The node is another machine: everything on it goes through ``host``
(testinfra) and ``node_url``.  Projects and limits come from the node's
/etc/uwsgi_fleet/store_app.json: the suite must configure one project with
a small rate limit (see documentation/testing.md, "Real clients").  Tools: node and npm
(the SDKs are installed from test/clients/package-lock.json with npm ci),
chromium, python3-brotli, python3-sentry-sdk.
"""
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

import brotli
import pytest
from sentry_sdk.envelope import Envelope

CLIENTS = Path(__file__).resolve().parents[2] / "clients"
MANIFEST = "/etc/uwsgi_fleet/fleet.json"  # the default recipe's fleet: it names its store app's config
# A limited project needs this many requests at most to answer 429; more
# would make the browser run long.
MAX_LIMITED_BURST = 64
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


# -- the node -------------------------------------------------------------------

@pytest.fixture(scope="module")
def app_config(host):
    config = json.loads(host.file(MANIFEST).content_string)["store_app_config"]
    return json.loads(host.file(config).content_string)


def projects_by_burst(app_config):
    """(project id, key, rate limit) sorted by burst, unlimited last."""
    rows = [(pid, p["public_key"], p.get("rate_limit"))
            for pid, p in app_config["projects"].items()]
    return sorted(rows, key=lambda r: r[2]["burst"] if r[2] else float("inf"))


@pytest.fixture(scope="module")
def ordinary_project(app_config):
    """The project with the most room: the one events are stored in."""
    return projects_by_burst(app_config)[-1][:2]


@pytest.fixture(scope="module")
def limited_project(app_config):
    pid, key, limit = projects_by_burst(app_config)[0]
    assert limit and limit["burst"] <= MAX_LIMITED_BURST, (
        "the suite needs a project with a rate limit of burst <= %d "
        "(documentation/testing.md, Real clients); the store app's config has %s" % (MAX_LIMITED_BURST, limit))
    return pid, key, limit


def dsn(node_url, key, project_id):
    parts = urllib.parse.urlsplit(node_url)
    return "%s://%s@%s/%s" % (parts.scheme, key, parts.netloc, project_id)


def spooled(host, app_config, event_id):
    """Paths of ``event_id`` in the node's spool, any project."""
    found = host.run("find %s -name %s", app_config["spool_dir"], event_id + ".json")
    assert found.rc == 0, found.stderr
    return found.stdout.split()


def stored_event(host, app_config, project_id, event_id):
    """The event as stored once under ``project_id``; removes the file."""
    path = "%s/%s/%s.json" % (app_config["spool_dir"], project_id, event_id)
    assert spooled(host, app_config, event_id) == [path]
    event = json.loads(host.file(path).content_string)
    host.run("rm -f %s", path)  # test data: don't let it pile up across runs
    return event


# -- @sentry/node -----------------------------------------------------------------

@pytest.fixture(scope="module")
def npm_clients():
    """test/clients/node_modules, installed from the lock file if absent."""
    if not (CLIENTS / "node_modules" / "@sentry" / "browser").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=CLIENTS,
                       check=True, timeout=600)
    return CLIENTS / "node_modules"


def run_node_sdk(dsn_url, message):
    out = subprocess.run(["node", str(CLIENTS / "node_send.mjs"), dsn_url, message],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout.splitlines()[-1])


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers 200 and keeps each request's headers and raw body."""

    def do_POST(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size + 2)[:size]
                if not size:
                    break
                body += chunk
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.seen.append((dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_node_sdk_sends_chunked_envelopes_without_length_or_type(npm_clients):
    """What makes this client different, seen on the wire (a recorder on the
    test host stands in for the node)."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        run_node_sdk("http://%s@127.0.0.1:%d/1" % ("e" * 32, server.server_port), "recorded")
    finally:
        server.shutdown()
    headers, body = server.seen[0]
    names = {name.lower() for name in headers}
    assert headers["Transfer-Encoding"].lower() == "chunked"
    assert "content-length" not in names and "content-type" not in names
    assert b'"type":"event"' in body


def test_node_sdk_event_is_stored_once(host, node_url, app_config, ordinary_project,
                                       npm_clients):
    project_id, key = ordinary_project
    message = "@sentry/node acceptance %s" % uuid.uuid4().hex
    sent = run_node_sdk(dsn(node_url, key, project_id), message)
    event = stored_event(host, app_config, project_id, sent["event_id"])
    assert event["exception"]["values"][0]["value"] == message
    assert event["sdk"]["name"] == "sentry.javascript.node"


# -- a browser --------------------------------------------------------------------

def import_map(node_modules):
    """Bare specifiers ("@sentry/browser", "web-vitals", ...) -> the ESM files
    each installed package exports, so that the browser runs @sentry/browser's
    own build without a bundler."""
    imports = {}
    for package_json in sorted([*node_modules.glob("*/package.json"),
                                *node_modules.glob("@*/*/package.json")]):
        package = json.loads(package_json.read_text())
        exports = package.get("exports")
        if not isinstance(exports, dict) or not all(k.startswith(".") for k in exports):
            exports = {".": exports or package.get("module") or package.get("main")}
        for subpath, target in exports.items():
            while isinstance(target, dict):
                target = next((target[c] for c in ("browser", "import", "default")
                               if c in target), None)
            if isinstance(target, str) and target.endswith((".js", ".mjs")):
                name = package["name"] + subpath[1:]
                url = "/node_modules/%s/%s" % (package_json.parent.relative_to(node_modules),
                                               target.lstrip("./"))
                imports[name] = url
    return {"imports": imports}


class _PageServer(http.server.ThreadingHTTPServer):
    """The page's origin: the page, node_modules, and /result."""

    def __init__(self, page, node_modules):
        super().__init__(("127.0.0.1", 0), _PageHandler)
        self.page = page
        self.node_modules = node_modules.resolve()
        self.result = None
        self.result_ready = threading.Event()


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def _send(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/":
            return self._send(200, self.server.page, "text/html; charset=utf-8")
        if path.startswith("/node_modules/"):
            file = (self.server.node_modules / path[len("/node_modules/"):]).resolve()
            if file.is_file() and self.server.node_modules in file.parents:
                return self._send(200, file.read_bytes(), "text/javascript")
        self._send(404, b"not found", "text/plain")

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/result":
            self.server.result = json.loads(body)
            self.server.result_ready.set()
        self._send(204 if self.path == "/result" else 404, b"", "text/plain")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser_run(node_url, ordinary_project, limited_project, npm_clients):
    """Load the page in headless Chromium once; the page's report."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium (Debian package) is not installed"
    project_id, key = ordinary_project
    limited_id, limited_key, limit = limited_project
    config = {"dsn": dsn(node_url, key, project_id),
              "limitedDsn": dsn(node_url, limited_key, limited_id),
              "message": "@sentry/browser acceptance %s" % uuid.uuid4().hex,
              # The fleet admits at most `burst` before its first 429.
              "maxAttempts": limit["burst"] + 1}
    template = (CLIENTS / "browser_page.html").read_text()
    page = (template.replace("{{IMPORT_MAP}}", json.dumps(import_map(npm_clients)))
            .replace("{{CONFIG}}", json.dumps(config)))
    server = _PageServer(page.encode(), npm_clients)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    browser = subprocess.Popen(
        [chromium, *CHROMIUM_FLAGS, "--user-data-dir=" + profile,
         "http://127.0.0.1:%d/" % server.server_port],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        reported = server.result_ready.wait(120)
    finally:
        browser.terminate()
        try:
            browser.wait(20)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    assert reported, "the page never reported:\n" + browser.stderr.read().decode()[-3000:]
    assert "error" not in server.result, server.result["error"]
    return dict(server.result, config=config)


def test_browser_page_is_served_from_another_origin(browser_run, node_url):
    assert browser_run["origin"] != node_url.rstrip("/")


def test_browser_sdk_event_is_stored_once(host, app_config, ordinary_project, browser_run):
    project_id, _ = ordinary_project
    assert [r["status"] for r in browser_run["stored"]] == [200]
    event = stored_event(host, app_config, project_id, browser_run["storedId"])
    assert event["exception"]["values"][0]["value"] == browser_run["config"]["message"]
    assert event["sdk"]["name"] == "sentry.javascript.browser"


def test_browser_sdk_sees_the_429_and_its_rate_limit_headers(host, app_config,
                                                             limited_project, browser_run):
    project_id, _, limit = limited_project
    answers = browser_run["limited"]
    statuses = [r["status"] for r in answers]
    # Some 200s (none if an earlier run emptied the bucket), then the 429.
    assert statuses[-1] == 429, answers
    assert set(statuses[:-1]) <= {200} and len(statuses) - 1 <= limit["burst"]
    refused = answers[-1]
    # Readable by the page's JavaScript only because CORS exposes them.
    assert refused["retryAfter"] and int(refused["retryAfter"]) >= 1
    seconds, categories, scope = refused["rateLimits"].split(":")[:3]
    assert int(seconds) == int(refused["retryAfter"])
    assert "error" in categories.split(";") and scope == "project"
    # The SDK applied them: the next error was not even sent.
    assert browser_run["sentAfter429"] == 0
    assert spooled(host, app_config, browser_run["heldBackId"]) == []
    # What was accepted is stored, what was refused is not.
    ids = browser_run["limitedIds"]
    for event_id in ids[:len(statuses) - 1]:
        stored_event(host, app_config, project_id, event_id)
    assert spooled(host, app_config, ids[len(statuses) - 1]) == []


# -- sentry-python 2.x with brotli ------------------------------------------------

def test_brotli_envelope_as_sentry_python_2_sends_it(host, node_url, app_config,
                                                     ordinary_project):
    """sentry_sdk/transport.py (2.x): when brotli imports, the envelope is
    brotli.compress(envelope.serialize(), quality=4) with Content-Encoding br;
    the envelope format is the same as the Debian SDK's (1.9)."""
    project_id, key = ordinary_project
    version = "2.19.0"
    event = {"event_id": uuid.uuid4().hex, "level": "error", "platform": "python",
             "message": "brotli acceptance", "timestamp": time.time(),
             "sdk": {"name": "sentry.python", "version": version}}
    envelope = Envelope(headers={
        "event_id": event["event_id"],
        "sent_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
    envelope.add_event(event)
    request = urllib.request.Request(
        "%s/api/%s/envelope/" % (node_url.rstrip("/"), project_id),
        data=brotli.compress(envelope.serialize(), quality=4),
        headers={"Content-Type": "application/x-sentry-envelope", "Content-Encoding": "br",
                 "User-Agent": "sentry.python/" + version,
                 "X-Sentry-Auth": "Sentry sentry_key=%s, sentry_version=7, "
                                  "sentry_client=sentry.python/%s" % (key, version)})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert json.load(response) == {"id": event["event_id"]}
    assert stored_event(host, app_config, project_id, event["event_id"]) == event
