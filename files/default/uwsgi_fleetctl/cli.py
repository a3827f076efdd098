"""uwsgi-fleetctl: operator tool for a uwsgi_fleet node (installed by Chef).

  apply PORT        make the process manager match the instance's file: start,
                    restart or retire it, then wait until it serves (or is gone)
  restart PORT...   rolling restart of the running ones, each serving again
                    before the next (after a file shared by every instance changed)
  reload PORT...    rolling reload: one instance at a time, the worker finishes
                    its requests and a new one loads the app; the master keeps
                    the socket, so nothing queued is dropped
  nginx-reload      test the whole nginx config, reload, wait for new workers
  nginx-test [--put DEST=SRC]... [--remove DEST]...
                    test nginx's whole config as it will be once DEST files are
                    replaced by SRC and removed: a copy of /etc/nginx with those
                    changes is mounted over /etc/nginx in a private mount
                    namespace, so every include resolves into the copy
  wait PORT...      wait until each instance serves
  health [PORT...]  ask instances directly (uwsgi protocol) for /_health
  outcomes [PORT...] what the instances did with the data they received
                    (accepted, filtered, rate_limited, invalid), summed
  summary           where the node serves, a health check through nginx, the DSN
  forwarder         how far behind the store app's forwarder is (its status file),
                    and how old that status is (stale: the forwarder is gone)
  tail [ARGS...]    read the store app's Redis streams: one JSON line per event
                    (store_app.stream's tail, from the installed app; e.g.
                    --project 1 --from 0)

Reads the fleet's manifest, written by Chef: --manifest PATH, or --fleet NAME,
or the node's only fleet (/etc/uwsgi_fleet/fleet.json for the default recipe's,
/etc/uwsgi_fleet/<name>/fleet.json for others). nginx-test and nginx-reload
need none.
"""

import argparse

from uwsgi_fleetctl import manifest as manifests
from uwsgi_fleetctl.converge import cmd_apply, cmd_reload, cmd_restart, cmd_wait
from uwsgi_fleetctl.nginx import cmd_nginx_reload, cmd_nginx_test
from uwsgi_fleetctl.reports import cmd_forwarder, cmd_health, cmd_outcomes, cmd_summary, cmd_tail


def main(argv=None):
    parser = argparse.ArgumentParser(prog="uwsgi-fleetctl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", help="the fleet's fleet.json (default: --fleet's, or the node's only fleet)")
    parser.add_argument("--fleet", help="the fleet's name, when the node has several")
    parser.add_argument("--timeout", type=float, default=90.0)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("apply").add_argument("port", type=int)
    sub.add_parser("reload").add_argument("ports", type=int, nargs="+")
    sub.add_parser("restart").add_argument("ports", type=int, nargs="+")
    sub.add_parser("wait").add_argument("ports", type=int, nargs="+")
    sub.add_parser("nginx-reload")
    nginx_test = sub.add_parser("nginx-test")
    nginx_test.add_argument("--put", action="append", default=[], metavar="DEST=SRC")
    nginx_test.add_argument("--remove", action="append", default=[], metavar="DEST")
    sub.add_parser("health").add_argument("ports", type=int, nargs="*")
    outcomes = sub.add_parser("outcomes")
    outcomes.add_argument("ports", type=int, nargs="*")
    outcomes.add_argument("--json", action="store_true", help="one JSON list instead of a table")
    sub.add_parser("summary")
    sub.add_parser("forwarder").add_argument("--json", action="store_true")
    sub.add_parser("tail", add_help=False)
    # tail's own arguments (--project, --from, ...) belong to store_app.stream: pass them on.
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "tail":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.tail_args = extra
    handler = {"apply": cmd_apply, "wait": cmd_wait, "reload": cmd_reload, "restart": cmd_restart,
               "nginx-reload": cmd_nginx_reload,
               "nginx-test": cmd_nginx_test, "health": cmd_health, "outcomes": cmd_outcomes,
               "summary": cmd_summary, "forwarder": cmd_forwarder, "tail": cmd_tail}[args.command]
    # nginx-test runs before the first manifest is written (a pristine node).
    if args.command in ("nginx-test", "nginx-reload"):
        manifest = None
    else:
        manifest = manifests.load(args.manifest or manifests.find(args.fleet))
    return handler(args, manifest) or 0

