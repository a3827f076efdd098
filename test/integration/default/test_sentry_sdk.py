"""End to end: the real Sentry Python SDK sends events from this host through
the node's nginx, and every event it sent is in the node's spool once, unchanged."""
import json
import random
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sentry_sdk

THREADS = 4
EVENTS_PER_THREAD = 60          # 240 events in all
SIZES = (20_000, 1_000_000)     # event JSON bytes, log-uniform between the two
WORDS = ("frame", "module", "request", "breadcrumb", "exception", "thread", "release", "user")


def text(rng, length):
    return " ".join(rng.choice(WORDS) + str(rng.randrange(10**6)) for _ in range(length // 12))[:length]


def event_of_size(rng, size):
    """An event of about `size` bytes. The SDK trims strings to 1024 characters and
    databags to 10 keys, so the bulk is breadcrumbs of 1000-character values."""
    crumbs = []
    length = 250
    while length < size:
        crumb = {"category": "bench", "message": text(rng, 1000), "data": {"a": text(rng, 1000)}}
        crumbs.append(crumb)
        length += len(json.dumps(crumb)) + 2
    return {"message": text(rng, 200), "level": "error", "breadcrumbs": {"values": crumbs}}


def project_key(node):
    """(id, public key) of the node's first project, from the config Chef rendered
    (where the default recipe's fleet manifest says: store_app_config)."""
    config = json.loads(node.read("/etc/uwsgi_fleet/fleet.json"))["store_app_config"]
    projects = json.loads(node.read(config))["projects"]
    project_id = sorted(projects)[0]
    return project_id, projects[project_id]["public_key"]


def dsn(node_url, key, project_id):
    url = urllib.parse.urlsplit(node_url)
    return f"{url.scheme}://{key}@{url.netloc}/{project_id}"


def send_with_sdk(dsn_url, count, seed):
    """Send `count` events with one SDK client; return {event_id: event as sent}."""
    rng = random.Random(seed)
    sent = {}

    def record(event, hint):
        sent[event["event_id"]] = json.loads(json.dumps(event))
        return event

    client = sentry_sdk.Client(dsn_url, before_send=record, default_integrations=False, max_breadcrumbs=1000)
    hub = sentry_sdk.Hub(client)
    for i in range(count):
        size = int(SIZES[0] * (SIZES[1] / SIZES[0]) ** rng.random())
        hub.capture_event(event_of_size(rng, size))
        if i % 20 == 19:
            # The SDK's transport queue holds 100 events; flush so none is dropped client-side.
            client.flush(timeout=120)
    client.flush(timeout=120)
    client.close()
    return sent


def test_sdk_events_are_all_spooled_once_and_unchanged(node, node_url, expected):
    project_id, key = project_key(node)
    url = dsn(node_url, key, project_id)
    with ThreadPoolExecutor(THREADS) as pool:
        batches = list(pool.map(lambda seed: send_with_sdk(url, EVENTS_PER_THREAD, seed), range(THREADS)))
    sent = {event_id: event for batch in batches for event_id, event in batch.items()}
    assert len(sent) == THREADS * EVENTS_PER_THREAD
    sizes = sorted(len(json.dumps(e)) for e in sent.values())
    assert sizes[0] >= SIZES[0] and sizes[-1] > SIZES[1] / 2  # really mixed, up to near 1 MB
    files = node.read_tree(expected.spool_dir)
    names = {path.rsplit("/", 1)[-1]: path for path in files}
    missing = [e for e in sent if names.get(f"{e}.json") != f"{project_id}/{e}.json"]
    changed = [e for e in sent if e not in missing and json.loads(files[names[f"{e}.json"]]) != sent[e]]
    assert missing == [] and changed == []
    # Test data: don't let it pile up across runs.
    node.run("cd " + f"{expected.spool_dir}/{project_id}" + " && xargs rm -f", input="\n".join(f"{e}.json" for e in sent))


def test_wrong_key_is_rejected_and_nothing_reaches_the_spool(node, node_url, expected):
    project_id, key = project_key(node)
    wrong = uuid.uuid4().hex
    assert wrong != key
    sent = send_with_sdk(dsn(node_url, wrong, project_id), 5, seed=99)
    assert len(sent) == 5
    names = {path.rsplit("/", 1)[-1] for path in node.read_tree(expected.spool_dir)}
    assert all(f"{event_id}.json" not in names for event_id in sent)
    # The answer the SDK got: 403 with a JSON reason.
    request = urllib.request.Request(
        f"{node_url}/api/{project_id}/store/", data=b'{"message": "x"}',
        headers={"Content-Type": "application/json",
                 "X-Sentry-Auth": f"Sentry sentry_key={wrong}, sentry_version=7"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    assert json.load(refused.value)["error"]
