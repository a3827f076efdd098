#!/usr/bin/python3
"""measure.py: what scaling out costs, side by side in one run (not a test).

Builds the scale-out cluster of test/cluster (chef-zero, Redis, two web nodes,
a balancer) and measures, with the same open-loop load, alternating the
configurations in every round so that drift hits them alike:

  hop:   through the balancer (balancer -> web nginx -> instance), against
         straight to a web node's nginx (what a balancer with the instances as
         backends would at best add nothing to): the cost of the extra nginx hop;
  quota: the fleet's quota in Redis, against each node's own (local) bucket,
         both through the balancer: the cost of the shared quota.

    /usr/bin/python3 test/cluster/measure.py [--rounds 3] [--seconds 20] [--rate 60]
"""
import argparse
import contextlib
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import conftest  # noqa: E402  (puts test/nodes and bench on the path)
import loadgen  # noqa: E402
from chef_server import ChefZero  # noqa: E402


def latencies(address, cluster, rate, seconds):
    """(p50, p99) in ms of project 1's store requests to address:80, and the failures."""
    key = cluster.projects["1"]["public_key"]
    generator = loadgen.LoadGenerator(address, 80, "1", key, loadgen.make_payloads(100, seed=5,
                                      bands=((1.0, 2_000, 20_000),)))
    run = generator.run(rate, seconds)
    ok = sorted(r.latency * 1000 for r in run.results if r.status == 200)
    failed = sum(1 for r in run.results if r.status != 200)
    return loadgen.percentile(ok, 50), loadgen.percentile(ok, 99), failed


def set_quota(cluster, shared):
    for name in cluster.web():
        cluster.converge(name, conftest.WEB, {"uwsgi_fleet": {"app": {"redis": {"quota": shared}},
                                                             "web": {"nginx": {"listen_address": cluster.nodes[name].address}}}})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=60)
    args = parser.parse_args(argv)
    rows = {k: [] for k in ("balancer", "web nginx", "quota redis", "quota local")}
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as work:
        server = stack.enter_context(ChefZero(work))
        cluster = conftest.Cluster(server, stack)
        cluster.setup_server()
        cluster.add("redis", conftest.REDIS, lambda n: {"uwsgi_fleet": {"redis": {"bind_address": n.address}}})
        cluster.add_web_nodes("web1", "web2")
        cluster.add("balancer", conftest.BALANCER)
        balancer, web1 = cluster.nodes["balancer"].address, cluster.nodes["web1"].address
        for round_ in range(args.rounds):
            order = [("balancer", balancer), ("web nginx", web1)]
            for label, address in order if round_ % 2 == 0 else reversed(order):
                rows[label].append(latencies(address, cluster, args.rate, args.seconds))
            for shared in ([True, False] if round_ % 2 == 0 else [False, True]):
                set_quota(cluster, shared)
                rows["quota redis" if shared else "quota local"].append(
                    latencies(balancer, cluster, args.rate, args.seconds))
            print(f"round {round_ + 1} done", file=sys.stderr, flush=True)
        set_quota(cluster, True)
    print(f"| Configuration | p50 ms (per round) | p99 ms (per round) | failed | median p50 | median p99 |")
    print("|---|---|---|---|---|---|")
    for label, runs in rows.items():
        p50s, p99s = [r[0] for r in runs], [r[1] for r in runs]
        print(f"| {label} | {', '.join(f'{v:.1f}' for v in p50s)} | {', '.join(f'{v:.1f}' for v in p99s)} | "
              f"{sum(r[2] for r in runs)} | {statistics.median(p50s):.1f} | {statistics.median(p99s):.1f} |")
    for a, b in (("balancer", "web nginx"), ("quota redis", "quota local")):
        ratios50 = [x[0] / y[0] for x, y in zip(rows[a], rows[b])]
        ratios99 = [x[1] / y[1] for x, y in zip(rows[a], rows[b])]
        print(f"{a} / {b}: p50 ratio per round {', '.join(f'{r:.2f}' for r in ratios50)}; "
              f"p99 ratio per round {', '.join(f'{r:.2f}' for r in ratios99)}")


if __name__ == "__main__":
    main()
