#!/usr/bin/python3
"""Run on the node (copied there by support.py): requests straight to uWSGI
instances, which listen on the node's loopback only.

  on_node.py health PORT...                      {port: /_health JSON or null}
  on_node.py slow PORT COUNT PROJECT KEY         COUNT concurrent store requests:
                                                 "sent" once they are in flight, then
                                                 [[status, instance, event_id]...]

Uses uwsgi-fleetctl's own uwsgi protocol client and manifest loader (its package,
copied beside this file).
"""
import json
import sys
import threading
import time
import uuid

from uwsgi_fleetctl.manifest import load as load_manifest
from uwsgi_fleetctl.protocol import uwsgi_exchange


def health(ports):
    host = load_manifest()["bind_address"]
    answers = {}
    for port in ports:
        try:
            status, _headers, body = uwsgi_exchange(host, int(port))
            answers[port] = json.loads(body) if status == 200 else None
        except OSError:
            answers[port] = None
    return answers


def slow(port, count, project_id, key):
    """Concurrent store requests to one instance; each answer or the error."""
    host = load_manifest()["bind_address"]
    results = []

    def one():
        event_id = uuid.uuid4().hex
        body = json.dumps({"event_id": event_id, "message": "slow"}).encode()
        try:
            status, headers, _body = uwsgi_exchange(
                host, int(port), "POST", f"/api/{project_id}/store/", body=body, timeout=30,
                headers={"X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7",
                         "Content-Type": "application/json"})
            results.append((status, headers.get("X-Fleet-Instance"), event_id))
        except OSError as e:
            results.append((0, repr(e), event_id))
    threads = [threading.Thread(target=one) for _ in range(int(count))]
    for t in threads:
        t.start()
    # Half a second on the node itself: connected and sent, and taken by a
    # thread or queued, whatever SSH's own delays were.
    time.sleep(0.5)
    print("sent", flush=True)
    for t in threads:
        t.join(60)
    return results


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    print(json.dumps(health(args) if command == "health" else slow(*args)))
