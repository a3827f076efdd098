#!/usr/bin/python3
"""Peak memory and CPU of one hostile request (issue 10, items 6 to 8;
issue 18, items 1, 2 and 7).

Each scenario runs in a fresh interpreter that imports store_app from
APP_DIR (default: this checkout's files/default), so the same bodies can be
measured against another checkout, e.g. main's:

    git worktree add /tmp/main main
    /usr/bin/python3 test/unit/python/measure_hostile.py --app-dir /tmp/main/files/default
    /usr/bin/python3 test/unit/python/measure_hostile.py
    /usr/bin/python3 test/unit/python/measure_hostile.py --max-event-bytes 20971520

peak MB = peak RSS (VmHWM) above the process's RSS just before the request
(the body is already in the process then, as uWSGI's socket buffer holds it:
what is measured is what the app adds).  Both checkouts get the same body
and envelope caps, the cookbook's default client_max_body_size (100m), so
that the max-size bodies (item 7) reach the app on either.
"""

import argparse
import sys
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))

import hostile  # noqa: E402

# Decompressed sizes stay under main's 20 MiB cap, so main parses them.
BOMB_BYTES = 19 * 1024 * 1024
# The cookbook's default client_max_body_size, for both the body as received
# and the decoded envelope (libraries/store_app.rb writes both).
BODY_BYTES = 100 * 1024 * 1024


def scenarios():
    lists = hostile.deep_gzip(hostile.fill(b"[]", BOMB_BYTES))
    dicts = hostile.deep_gzip(hostile.fill(b'{"":{}}', BOMB_BYTES))
    members = hostile.empty_gzip_members(104_000)
    items = hostile.deep_gzip(hostile.empty_items_envelope(1_000_000))
    # The costliest documents the JSON budget still lets json.loads parse
    # (at the default cap): unique keys, and one non-Latin-1 character.
    unique = hostile.deep_gzip(hostile.unique_key_dicts(480 * 1024))
    astral = hostile.deep_gzip(b'["\xf0\x9f\x98\x80' + b"a" * (1024 * 1024 - 64) + b'"]')
    # Issue 18: 20 MiB of blank lines (item 1), 100 item headers of 64 KiB
    # of floats (item 2), and the largest body nginx passes: an event with
    # an attachment filling it (item 7), as sent and gzip'ed.
    blank = hostile.deep_gzip(hostile.blank_lines_envelope(20 * 1024 * 1024))
    spaces = hostile.deep_gzip(hostile.spaces_envelope(BOMB_BYTES))
    floats = hostile.deep_gzip(hostile.float_headers_envelope(100))
    whole = hostile.attachment_envelope(BODY_BYTES - 4096)
    zipped = hostile.deep_gzip(whole)
    return [
        ("18/1: 20 MiB of blank lines, public key", hostile.envelope_request(blank)),
        ("18/1: 19 MiB of spaces, public key", hostile.envelope_request(spaces)),
        ("18/2: 100 headers of 64 KiB floats", hostile.envelope_request(floats)),
        ("18/7: event + 100 MiB attachment", hostile.envelope_request(whole, encoding=None)),
        ("18/7: the same, gzip", hostile.envelope_request(zipped)),
        ("6: [[],[],...] envelope, no key", hostile.envelope_request(lists, key=False)),
        ("6: [[],[],...] /store/, valid key", hostile.store_request(lists)),
        ('6: [{"":{}},...] /store/, valid key', hostile.store_request(dicts)),
        ("7: 104,000 empty gzip members, no key", hostile.envelope_request(members, key=False)),
        ("8: 1,000,000 empty items, valid key", hostile.envelope_request(items)),
        ('6: [{"k1":0},...] 480 KiB, /store/', hostile.store_request(unique)),
        ("6: one emoji + 1 MiB of a, /store/", hostile.store_request(astral)),
    ]


def configured(argv=None):
    """(arguments, the config measured): the event cap is the cookbook's
    default unless --max-event-bytes says otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app-dir", default=str(hostile.FILES_DEFAULT))
    parser.add_argument("--max-event-bytes", type=int,
                        help="default: the cookbook's (attributes/default.rb: ['app']['max_event_bytes'])")
    args = parser.parse_args(argv)
    max_event_bytes = args.max_event_bytes
    if max_event_bytes is None:
        max_event_bytes = hostile.cookbook_max_event_bytes()
    return args, hostile.config(max_body_bytes=BODY_BYTES, max_envelope_bytes=BODY_BYTES,
                                max_event_bytes=max_event_bytes)


def main():
    args, cfg = configured()
    print("app: %s  max_event_bytes: %s" % (args.app_dir,
                                             cfg["max_event_bytes"]))
    print("%-42s %9s %6s %8s %8s" % ("scenario (issue item)", "body B", "status",
                                      "peak MB", "cpu ms"))
    for label, request in scenarios():
        # One child per scenario: each peak is measured from a fresh heap.
        result, = hostile.measure(args.app_dir, cfg, [request])
        print("%-42s %9d %6d %8.1f %8.1f" % (
            label, len(request["body"]), result["status"],
            result["peak_kb"] / 1024.0, result["cpu_s"] * 1000))


if __name__ == "__main__":
    main()
