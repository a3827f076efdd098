"""Load, converges and node facts for the reliability tests (they run on the
converged node, under an open-loop load through nginx)."""
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "bench"))
sys.path.insert(0, os.path.join(REPO, "test", "integration"))
sys.path.insert(0, os.path.join(REPO, "files", "default"))

import loadgen  # noqa: E402
from uwsgi_fleetctl import uwsgi_exchange  # noqa: E402  (the operator tool's uwsgi protocol client)

MANIFEST = "/etc/uwsgi_fleet/fleet.json"
STORE_CONFIG = "/etc/uwsgi_fleet/store_app.json"
COOKBOOK_PARTS = ("metadata.rb", "attributes", "recipes", "templates", "files", "libraries", "chefignore")
# Small events keep the generator cheap; the sizes still vary.
RELIABILITY_BANDS = ((1.0, 2_000, 30_000),)


def manifest():
    with open(MANIFEST) as f:
        return json.load(f)


def project():
    """(project id, public key) of the node's first project."""
    with open(STORE_CONFIG) as f:
        projects = json.load(f)["projects"]
    project_id = sorted(projects)[0]
    return project_id, projects[project_id]["public_key"]


def clean_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BUNDLE_", "BUNDLER_", "GEM_", "RUBY"))}
    env["CHEF_LICENSE"] = "accept-no-persist"
    return env


def converge(attributes=None, cookbook=REPO):
    """chef-client --local-mode on this node with `attributes`; returns the CompletedProcess."""
    work = tempfile.mkdtemp(prefix="uwsgi-fleet-converge-")
    try:
        cookbooks = os.path.join(work, "cookbooks")
        os.makedirs(cookbooks)
        os.symlink(cookbook, os.path.join(cookbooks, "uwsgi_fleet"))
        attrs = os.path.join(work, "node.json")
        with open(attrs, "w") as f:
            json.dump(attributes or {}, f)
        config = os.path.join(work, "client.rb")
        with open(config, "w") as f:
            f.write(f"chef_repo_path '{work}'\ncookbook_path ['{cookbooks}']\n"
                    "file_cache_path '/var/cache/uwsgi_fleet/chef-reliability'\n"
                    "chef_license 'accept-no-persist'\n")
        return subprocess.run([os.path.join(REPO, "bin", "chef-client"), "--local-mode", "--config", config,
                               "-o", "recipe[uwsgi_fleet::default]", "-j", attrs],
                              cwd=work, env=clean_env(), capture_output=True, text=True, timeout=600)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def converge_ok(attributes=None, cookbook=REPO):
    result = converge(attributes, cookbook)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    return result


def cookbook_copy(tmp_path):
    """A copy of the cookbook that a test may change (e.g. new app code)."""
    copy = tmp_path / "uwsgi_fleet"
    copy.mkdir()
    for part in COOKBOOK_PARTS:
        source = os.path.join(REPO, part)
        if os.path.isdir(source):
            shutil.copytree(source, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, copy / part)
    return copy


LOADS = []  # every Load of the session, so their events can be removed at the end


def remove_spooled_events():
    """Delete the events the session's loads stored (they are test data, not to pile up)."""
    spool = manifest()["spool_dir"]
    for load in LOADS:
        for event_id in set(load.run.accepted_event_ids()) if load.run else ():
            try:
                os.unlink(os.path.join(spool, load.project_id, f"{event_id}.json"))
            except FileNotFoundError:
                pass
    LOADS.clear()


class Load:
    """An open-loop store load through nginx for as long as the `with` block runs."""

    def __init__(self, rate=40, max_seconds=300, seed=7):
        self.rate = rate
        self.max_seconds = max_seconds
        project_id, key = project()
        self.project_id = project_id
        # Bodies cycle, but every request carries a new event_id (loadgen.Payload.fresh_body).
        payloads = loadgen.make_payloads(200, seed=seed, bands=RELIABILITY_BANDS)
        self.generator = loadgen.LoadGenerator("127.0.0.1", manifest()["listen"], project_id, key, payloads)
        self.stop = threading.Event()
        self.run = None
        LOADS.append(self)

    def __enter__(self):
        def drive():
            self.run = self.generator.run(self.rate, self.max_seconds, stop=self.stop)
        self.thread = threading.Thread(target=drive, daemon=True)
        self.thread.start()
        time.sleep(1.0)  # let the load reach steady state before the action
        return self

    def __exit__(self, *exc):
        time.sleep(1.0)  # and keep it up a moment after
        self.stop.set()
        self.thread.join(timeout=120)
        return False

    def counts(self):
        return self.run.counts()

    def failures(self):
        return [r for r in self.run.results if not 200 <= r.status < 300]

    def lost_events(self):
        """Event ids answered 200 but not in the spool."""
        spool = manifest()["spool_dir"]
        return [e for e in set(self.run.accepted_event_ids())
                if not os.path.exists(os.path.join(spool, self.project_id, f"{e}.json"))]


def uwsgi_request(host, port, method="GET", path="/_health", headers=None, body=b"", timeout=30):
    """One request straight to a uWSGI instance (uwsgi protocol); (status, headers) or raises OSError."""
    status, response_headers, _body = uwsgi_exchange(host, port, method, path, headers, body, timeout)
    return status, response_headers


def instance_health(port):
    """/_health of one instance straight from its socket, as a dict, or None."""
    host = manifest()["bind_address"]
    try:
        status, _headers, body = uwsgi_exchange(host, port)
    except OSError:
        return None
    return json.loads(body) if status == 200 else None


def program_pids(port):
    """(master, [workers]) of the instance on port."""
    out = subprocess.run(["supervisorctl", "pid", f"uwsgi_fleet_{port}"], capture_output=True, text=True).stdout
    master = int(out.strip())
    workers = [int(p) for p in subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)],
                                              capture_output=True, text=True).stdout.split()]
    return master, workers


def sha_of(path):
    import hashlib
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def wait_for(predicate, timeout, interval=0.05):
    """Poll until predicate() is true; return the seconds it took (raises after timeout)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
    return time.monotonic() - start


@contextlib.contextmanager
def restored_defaults():
    """Whatever a test converges, the node ends on the default attributes."""
    try:
        yield
    finally:
        converge_ok({})


def program_pids_or_none(port):
    """The master pid of the instance on port, or None while it is not running."""
    try:
        return program_pids(port)[0]
    except ValueError:
        return None


def http_status(path, port=None, timeout=5):
    """Status of GET path through nginx, 0 if it does not answer."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port or manifest()['listen']}{path}", timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0
