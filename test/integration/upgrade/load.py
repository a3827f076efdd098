#!/usr/bin/python3
"""load.py start|stop|kill DIR: an open-loop store load from this host to the
Kitchen node (KITCHEN_INSTANCE_HOSTNAME), from `start` until `stop`, for the
upgrade suite's hooks around its converge. Its files go to
DIR/<KITCHEN_INSTANCE_NAME>: the suite runs on two platforms at once.

start: runs the load in a background process and returns once it is sending.
stop:  stops it and writes DIR/load.json: the counts, every failed request,
       and the event ids answered 200 (the specs look for them in the spool).
kill:  stops it if it still runs, without waiting for results (a failed
       converge skips `stop`; destroy must not leave the load running).
"""
import json
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "bench"))
sys.path.insert(0, os.path.join(REPO, "test", "nodes"))

import background_load  # noqa: E402
import loadgen  # noqa: E402
from remote import Node  # noqa: E402

RATE = 40            # requests per second
MAX_SECONDS = 1200   # a converge that never ends must not leave the load running
# The default recipe's fleet; 0.1.0's manifest names its store app's config too
# (store_app_config), but has no manifest_version: read as JSON, not checked.
MANIFEST = "/etc/uwsgi_fleet/fleet.json"


def run_load(directory, address):
    """The background process: load until SIGTERM, then write load.json."""
    node = Node(address)
    projects = json.loads(node.read(json.loads(node.read(MANIFEST))["store_app_config"]))["projects"]
    project_id = sorted(projects)[0]
    payloads = loadgen.make_payloads(100, seed=11, bands=((1.0, 2_000, 20_000),))
    # settle=0: `start` itself waits until the load is at its rate, `stop` a moment past the converge.
    load = background_load.BackgroundLoad(address, 80, project_id, projects[project_id]["public_key"], payloads,
                                          rate=RATE, max_seconds=MAX_SECONDS, settle=0)
    signal.signal(signal.SIGTERM, lambda *_: load.stop.set())
    with load:
        open(os.path.join(directory, "started"), "w").close()
        while load.thread.is_alive() and not load.stop.is_set():
            load.stop.wait(1.0)
    result = {"address": address, "project": project_id, "counts": load.counts(),
              "failures": [[r.status, getattr(r, "error", None)] for r in load.failures()],
              "accepted": sorted(set(load.accepted_event_ids()))}
    with open(os.path.join(directory, "load.json.tmp"), "w") as f:
        json.dump(result, f)
    os.rename(os.path.join(directory, "load.json.tmp"), os.path.join(directory, "load.json"))


def start(directory):
    os.makedirs(directory, exist_ok=True)
    for name in ("load.json", "started", "pid"):
        if os.path.exists(os.path.join(directory, name)):
            os.unlink(os.path.join(directory, name))
    address = os.environ["KITCHEN_INSTANCE_HOSTNAME"]
    pid = os.fork()
    if pid == 0:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        try:
            run_load(directory, address)
        finally:
            os._exit(0)
    with open(os.path.join(directory, "pid"), "w") as f:
        f.write(str(pid))
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(directory, "started")):
        if time.monotonic() > deadline:
            raise SystemExit("load.py: the load did not start")
        time.sleep(0.1)
    time.sleep(1.0)  # running at its rate before the converge begins
    print(f"load.py: {RATE} requests/s to {address} (pid {pid})")


def stop(directory):
    time.sleep(1.0)  # and a moment past the converge's end
    with open(os.path.join(directory, "pid")) as f:
        os.kill(int(f.read()), signal.SIGTERM)
    deadline = time.monotonic() + 120
    while not os.path.exists(os.path.join(directory, "load.json")):
        if time.monotonic() > deadline:
            raise SystemExit("load.py: no results from the load")
        time.sleep(0.2)
    with open(os.path.join(directory, "load.json")) as f:
        print(f"load.py: {json.load(f)['counts']}")


def kill(directory):
    try:
        with open(os.path.join(directory, "pid")) as f:
            os.kill(int(f.read()), signal.SIGTERM)
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass


def instance_dir(directory, instance):
    """Where one Kitchen instance's load keeps its files (the specs read load.json there)."""
    return os.path.join(directory, instance)


if __name__ == "__main__":
    {"start": start, "stop": stop, "kill": kill}[sys.argv[1]](instance_dir(sys.argv[2], os.environ["KITCHEN_INSTANCE_NAME"]))
