"""What the operator reads: health, outcomes (straight from the instances),
summary (through nginx), and the store app's forwarder status and streams."""
import importlib
import json
import pwd
import subprocess
import sys
import time
import urllib.request
from collections import Counter

from uwsgi_fleetctl.protocol import uwsgi_get
from uwsgi_fleetctl.untrusted import read_untrusted


def cmd_health(args, manifest):
    host = manifest["bind_address"]
    failed = 0
    for port in args.ports or manifest["ports"]:
        response = uwsgi_get(host, port)
        status = response[0] if response else "unreachable"
        failed += status != 200
        print(f"{host}:{port} {status}")
    return 1 if failed else 0


def cmd_outcomes(args, manifest):
    """Sum the outcome counters of the instances (each counts since it started)."""
    host = manifest["bind_address"]
    totals = Counter()
    unreachable = []
    for port in args.ports or manifest["ports"]:
        response = uwsgi_get(host, port)
        if response is None or response[0] != 200:
            unreachable.append(port)
            continue
        for row in json.loads(response[2]).get("outcomes", []):
            totals[(row["outcome"], row["reason"] or "-", row["category"])] += row["quantity"]
    if args.json:
        print(json.dumps([{"outcome": o, "reason": None if r == "-" else r, "category": c,
                           "quantity": q} for (o, r, c), q in sorted(totals.items())]))
    else:
        print(f"{'outcome':<14} {'reason':<20} {'category':<16} {'quantity':>10}")
        for (outcome, reason, category), quantity in sorted(totals.items()):
            print(f"{outcome:<14} {reason:<20} {category:<16} {quantity:>10}")
    if unreachable:
        print(f"not counted (unreachable): {' '.join(map(str, unreachable))}", file=sys.stderr)
    return 1 if unreachable else 0


def installed(manifest, module):
    """``store_app.<module>`` from where Chef installed it: the manifest's
    pythonpath (root's directories) first on sys.path, never the working
    directory (see cmd_tail)."""
    sys.path[:0] = manifest["pythonpath"]
    return importlib.import_module(f"store_app.{module}")


def store_app(manifest):
    """The config of the store app the fleet runs (None for another app), read
    by the installed app's own loader: config.schema.json is the contract, and
    a config that does not match it is refused with the loader's message."""
    if not manifest["store_app_config"]:
        return None
    config = installed(manifest, "config")
    try:
        return config.load_config(manifest["store_app_config"])
    except config.ConfigError as e:
        raise SystemExit(f"uwsgi-fleetctl: {e}") from None


def dsn(config, host):
    return [f"http://{p.public_key}@{host}/{pid}" for pid, p in sorted(config.projects.items())]


def node_addresses():
    """This node's IPv4 addresses other than loopback, for other hosts' DSNs."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True).stdout
    return [line.split()[3].split("/")[0] for line in out.splitlines()]


def cmd_summary(args, manifest):
    listen = manifest["listen"]
    host = "127.0.0.1" if listen == 80 else f"127.0.0.1:{listen}"
    url = f"http://{host}/"
    try:
        with urllib.request.urlopen(url + "_health", timeout=5) as r:
            health = f"{r.status} from instance {r.headers.get('X-Fleet-Instance')}"
    except Exception as e:  # any failure is the answer here
        health = f"FAILED ({e})"
    print(f"uwsgi_fleet {manifest['name']} serves {url} (nginx :{listen} -> {len(manifest['ports'])} uWSGI instances "
          f"on {manifest['bind_address']}:{manifest['ports'][0]}-{manifest['ports'][-1]}, "
          f"{manifest['threads']} threads each)")
    print(f"health check {url}_health: {health}")
    config = store_app(manifest)
    for line in dsn(config, host) if config else []:
        print(f"Sentry DSN: {line}   (events land in {config.spool_dir}/<project id>/)")
    port = "" if listen == 80 else f":{listen}"
    for address in node_addresses():
        print(f"from other hosts: http://{address}{port}/ (use this host in the DSN)")
    return 0 if health.startswith("200") else 1


# The forwarder's status file is a few KB of JSON (forwarder.py bounds its
# lists): anything much larger is not one, and root does not read it whole.
STATUS_MAX_BYTES = 256 * 1024


def cmd_forwarder(args, manifest):
    """The forwarder's status: backlog, age of the oldest event, Redis reachable,
    last error, what it could not read, and how old the status is: a forwarder
    gone since (a crash, a power cut) leaves its last status behind."""
    config = store_app(manifest)
    if not config or config.stream is None:
        raise SystemExit("uwsgi-fleetctl: this fleet's app forwards no events (no stream in its config)")
    path = config.stream.status_file
    try:
        # In the spool, the app user's directory; the forwarder runs as that user.
        data = read_untrusted(path, {pwd.getpwnam(manifest["user"]).pw_uid}, STATUS_MAX_BYTES)
    except OSError as e:
        raise SystemExit(f"uwsgi-fleetctl: no forwarder status yet ({e.strerror}): is the forwarder running?") from None
    try:
        status = json.loads(data)
        age = time.time() - float(status["updated_at"])
    except (ValueError, TypeError, KeyError):
        raise SystemExit(f"uwsgi-fleetctl: {path} is not a forwarder status") from None
    # The forwarder writes how long it may go between two writes (forwarder.py,
    # STATUS_SECONDS); one written before that field existed is not judged.
    bound = status.get("stale_after_seconds")
    stale = isinstance(bound, (int, float)) and abs(age) > bound
    if args.json:
        print(json.dumps(dict(status, age_seconds=round(age, 3), stale=stale)))
    else:
        if stale:
            print(f"STALE: the forwarder has not rewritten its status for {age:.0f} s (a running one does "
                  f"within {bound:g} s): it is not running, or is stuck. Its last status:")
        print(f"forwarder {status.get('state')}: {status.get('backlog_events')} events behind "
              f"(oldest {status.get('oldest_event_age_seconds')} s), {status.get('forwarded_total')} forwarded, "
              f"redis {'ok' if status.get('redis_ok') else 'unreachable'}"
              + (f", last error: {status['last_error']}" if status.get("last_error") else "")
              + (f", cannot read: {'; '.join(map(str, status['unreadable']))}" if status.get("unreadable") else "")
              + f"; status {age:.1f} s old")
    return 1 if stale or not status.get("redis_ok") else 0


def cmd_tail(args, manifest):
    """The store app's own stream reader, with the fleet's app config and code.

    Imported here from where Chef installed it (the manifest's pythonpath,
    root's directories), never run as ``python3 -m``: that puts the working
    directory first on sys.path, and an operator in the spool or log directory
    (the app user's) would run the app user's ``store_app/stream.py`` as root."""
    if not manifest["store_app_config"]:
        raise SystemExit("uwsgi-fleetctl: this fleet runs no store app")
    stream = installed(manifest, "stream")
    return stream.main(["tail", "--config", manifest["store_app_config"], *args.tail_args])
