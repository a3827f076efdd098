#!/usr/bin/python3
"""Where one request's CPU goes, in-process: the store app's WSGI callable (this
checkout's, or --app DIR's: a files/default of another commit) answering the
bench's store requests, no server, the spool on tmpfs. For reproducible counts,
run it under callgrind with --run K and --run 0 (the same setup, no request)
and subtract; --cprofile prints where the time went (bench/README.md, Profiling).

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.K /usr/bin/python3 bench/profile_app.py --run 40
"""
import argparse
import cProfile
import gzip
import json
import os
import pstats
import random
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--app", default=os.path.join(os.path.dirname(HERE), "files", "default"))
p.add_argument("--events", type=int, default=40, help="bodies prepared (the same for every --run)")
p.add_argument("--run", type=int, help="requests answered (default --events)")
p.add_argument("--without-id", action="store_true", help="events without event_id (the app gives them one)")
p.add_argument("--cprofile", action="store_true")
a = p.parse_args()
sys.dont_write_bytecode = True
sys.path[:0] = [a.app, HERE]
from store_app import wsgi  # noqa: E402  (the app under test, before floors imports this checkout's)
import floors  # noqa: E402
import loadgen  # noqa: E402
import topology  # noqa: E402

spool, key = tempfile.mkdtemp(dir="/dev/shm"), "0123456789abcdef0123456789abcdef"
with open("/etc/uwsgi_fleet/fleet.json") as f:  # the default recipe's fleet: it names its store app's config
    store_config = json.load(f)["store_app_config"]
with open(store_config) as f:
    config = dict(json.load(f), spool_dir=spool, simulated_hops=0, stream=None,
                  quota={"backend": "local", "state_file": os.path.join(spool, ".quota")},
                  projects={"42": {"public_key": key, "rate_limit": None}})
post = floors.poster(wsgi.make_app(config, instance="profile"), "42",
                     f"Sentry sentry_key={key}, sentry_version=7, sentry_client=sentry.python/1.9.10")
if a.without_id:
    rng = random.Random(1)
    bodies = [gzip.compress(json.dumps({k: v for k, v in loadgen.make_event(rng, loadgen.draw_size(rng)).items()
                                        if k != "event_id"}).encode(), 6) for _ in range(a.events)]
else:
    bodies = [pl.fresh_body(f"{i + 1:032x}") for i, pl in enumerate(loadgen.make_payloads(a.events, seed=1))]
bodies = bodies[:a.events if a.run is None else a.run]
profile, cpu = cProfile.Profile() if a.cprofile else None, time.process_time()
if profile:
    profile.enable()
for body in bodies:
    post(body)
if profile:
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(15)
print(f"{len(bodies)} requests, {(time.process_time() - cpu) / max(len(bodies), 1) * 1000:.3f} ms CPU each", file=sys.stderr)
shutil.rmtree(spool)
