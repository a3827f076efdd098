"""Read the event streams the forwarder fills (forwarder.py).

    python3 -m store_app.stream tail --config /etc/uwsgi_fleet/store_app.json
        [--project P ...] [--from ID] [--count N] [--idle-exit]

Prints one JSON line per event, ``{"project", "event_id", "stream_id",
"event"}``, in each stream's order.  ``--from`` is where to start in every
stream: ``$`` (the default) for events added from now on, ``0`` for all of
them, or a stream id.  XREAD BLOCK waits for new entries; ``--idle-exit``
stops when none came within one block (BLOCK_MS), ``--count`` after N
events.  An event id printed already (among the last RECENT_IDS of its
project) is not printed again: the forwarder appends an event once within
its dedup window, and a consumer drops the rare duplicate past it by id.
"""

import argparse
import json
import os
import sys
from collections import OrderedDict

from . import config, forwarder, redisconn

BLOCK_MS = 2000
RECENT_IDS = 100000


class _Recent:
    """The last ``size`` keys added, to drop duplicates."""

    def __init__(self, size):
        self.size = size
        self._keys = OrderedDict()

    def add(self, key):
        """True if ``key`` is new (and remember it)."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        self._keys[key] = None
        if len(self._keys) > self.size:
            self._keys.popitem(last=False)
        return True


def _start_ids(client, keys, start):
    """Where XREAD starts in each stream.  "$" is resolved now to the last
    entry's id, so that nothing added between two XREADs is skipped."""
    if start != "$":
        return {key: start for key in keys}
    ids = {}
    for key in keys:
        last = client.xrevrange(key, count=1)
        ids[key] = last[0][0] if last else "0-0"
    return ids


def _entries(client, ids, block_ms, idle_exit):
    """Yield (stream key, stream id, fields) of new entries, advancing
    ``ids``; with ``idle_exit``, end when a block passes without any."""
    while True:
        reply = client.xread(ids, count=100, block=block_ms)
        if not reply and idle_exit:
            return
        for key, entries in reply or ():
            key = key.decode()
            for stream_id, fields in entries:
                ids[key] = stream_id
                yield key, stream_id.decode(), fields


def tail(cfg, projects=None, start="$", count=None, idle_exit=False,
         out=None, block_ms=BLOCK_MS):
    """Write the events of ``projects`` (default: every project of the
    config) to ``out`` as JSON lines; return how many were written."""
    out = sys.stdout if out is None else out
    client = redisconn.connect(cfg.stream.url, block_ms / 1000.0 + 10)
    projects = {forwarder.stream_key(cfg.stream, p): p
                for p in (projects or sorted(cfg.projects))}
    ids = _start_ids(client, projects, start)
    recent, written = _Recent(RECENT_IDS), 0
    entries = _entries(client, ids, block_ms, idle_exit)
    for key, stream_id, fields in entries if count != 0 else ():
        event_id = fields[b"event_id"].decode()
        if not recent.add((projects[key], event_id)):
            continue
        out.write(json.dumps({"project": projects[key], "event_id": event_id,
                              "stream_id": stream_id,
                              "event": json.loads(fields[b"event"])}) + "\n")
        out.flush()
        written += 1
        if written == count:
            break
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m store_app.stream",
                                     description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("tail",
                         help="print the streams' events as JSON lines")
    cmd.add_argument("--config", default=os.environ.get(
        config.ENV_VAR, config.DEFAULT_PATH), help="store_app.json")
    cmd.add_argument("--project", action="append",
                     help="this project only (repeatable; default: all)")
    cmd.add_argument("--from", dest="start", default="$",
                     help="$ (new events, the default), 0 (all) or an id")
    cmd.add_argument("--count", type=int, help="stop after N events")
    cmd.add_argument("--idle-exit", action="store_true",
                     help="stop when no event came for %d ms" % BLOCK_MS)
    args = parser.parse_args(argv)
    try:
        cfg = config.load_config(args.config)
    except config.ConfigError as e:
        print("stream: %s" % e, file=sys.stderr)
        return 2
    if cfg.stream is None:
        print("stream: %s has no stream" % args.config, file=sys.stderr)
        return 2
    try:
        tail(cfg, args.project, args.start, args.count, args.idle_exit)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # | head: the reader has gone; not an error.
        sys.stderr.close()
    except redisconn.redis_module().RedisError as e:
        print("stream: redis %s: %s" % (redisconn.redact(cfg.stream.url),
                                        redisconn.scrub(e, cfg.stream.url)),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
