"""The README's `make converge` on a fresh node: it converged, said where the
node serves, printed a DSN that works from another host, a second run changed
nothing, and a run with a bad attribute failed naming it in its last lines.
The node's shape is checked by the shared specs."""
import json
import re
import urllib.parse
import uuid

import sentry_sdk

from default_recipe_checks import *  # noqa: F401,F403 (the shared specs run in every suite)

LOGS = ["/root/make-converge-1.log", "/root/make-converge-2.log"]


def test_make_converge_says_where_the_node_serves(node):
    log = node.read(LOGS[0])
    assert re.search(r"^uwsgi_fleet \S+ serves http://127\.0\.0\.1/ ", log, re.M), log[-3000:]
    assert "/_health: 200 from instance" in log
    assert f"from other hosts: http://{node.address}/" in log


def test_the_first_make_converge_waited_for_another_apt_and_converged(node):
    """make_converge.sh held apt's locks while the first run's own apt step ran
    (the Makefile's, for a build package it had removed), and again from Chef's
    start until its `apt-get update` had met them: the run waited both times,
    then installed and served."""
    times = {what: float(node.read(f"/root/apt-locks-{what}"))
             for what in ("taken-1", "released-1", "taken-2", "met-by-chef", "released-2")}
    started = float(node.read("/root/make-converge-1.started"))
    log = node.read(LOGS[0])
    assert times["taken-1"] <= started < times["released-1"] <= times["taken-2"]
    # Chef's `apt-get update` met the locks (the holder gives up looking after 300 s), then they were held
    # `hold` seconds more (15: longer than the cookbook's retry delay, 10 s, so the converge retried).
    hold = float(node.read("/root/apt-locks-hold"))
    assert times["taken-2"] < times["met-by-chef"] < times["taken-2"] + 250, times
    assert times["released-2"] - times["met-by-chef"] >= hold, times
    assert "apt: another apt holds the lists, waiting" in log, log[:3000]
    assert node.run("dpkg -s git", check=False).returncode == 0  # the Makefile's apt step put it back
    assert re.search(r"^uwsgi_fleet \S+ serves http://", log, re.M), log[-3000:]


def test_a_second_make_converge_changes_nothing(node):
    log = node.read(LOGS[1])
    assert re.search(r"Infra Phase complete, 0/\d+ resources updated", log), log[-3000:]


def test_the_printed_dsn_works_from_another_host(node, expected):
    log = node.read(LOGS[0])
    dsn = re.search(r"^Sentry DSN: (\S+)", log, re.M).group(1)
    other = re.search(r"^from other hosts: (\S+)", log, re.M).group(1)
    # The DSN names 127.0.0.1; from this host, use the address the summary gave.
    parts = urllib.parse.urlsplit(dsn)
    remote_dsn = parts._replace(netloc=f"{parts.username}@{urllib.parse.urlsplit(other).netloc}").geturl()
    event_id = uuid.uuid4().hex
    client = sentry_sdk.Client(remote_dsn, default_integrations=False)
    sentry_sdk.Hub(client).capture_event({"event_id": event_id, "message": "hello from the readme suite"})
    client.flush(timeout=30)
    client.close()
    project = parts.path.strip("/")
    assert node.exists(f"{expected.spool_dir}/{project}/{event_id}.json")


def test_a_failed_make_converge_names_the_real_cause_in_its_last_lines(node):
    # The one bad value make_converge.sh passed, e.g. {"uwsgi_fleet": {"web": {"threads": 0}}}.
    (section, values), = json.loads(node.read("/root/bad-attributes.json"))["uwsgi_fleet"].items()
    (key, value), = values.items()
    tail = node.read("/root/make-converge-bad.log").strip().splitlines()[-3:]
    assert any(f"node['uwsgi_fleet']['{section}']['{key}']" in line and f"got {value}" in line
               for line in tail), tail
