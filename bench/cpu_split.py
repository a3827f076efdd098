#!/usr/bin/python3
"""Where a served request's CPU goes, by process: nginx and the app servers
(user and kernel time apart) and interrupts (loopback networking and disk
completions, charged to no process), in ms per accepted request, next to the
CPU floor's ms per event (the app's own inflate + parse + store, in-process).
It explains why a topology saturates below the CPU floor (BENCHMARKS.md).
Run as root after `make converge`, with no bench running:

    /usr/bin/python3 bench/cpu_split.py --rate 500 --seconds 10 --topologies fleet,single
"""
import argparse
import os

import fleet as fleet_files
import floors
import loadgen
import procfs
import steps
import topology

KEYS = ("nginx user", "nginx kernel", "app user", "app kernel", "interrupts")


def ticks(pids):
    """(user, system) seconds of the given processes, all threads."""
    stats = [st for st in map(procfs.stat, pids) if st]
    return sum(st["user_s"] for st in stats), sum(st["system_s"] for st in stats)


def sample(topo):
    by_kind = {kind: ticks([pid for k, p in topo.procs if k == kind for pid in p.pids()])
               for kind in ("nginx", "backend")}
    return dict(zip(KEYS, (*by_kind["nginx"], *by_kind["backend"], procfs.machine_ticks()[2] / procfs.CLK_TCK)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=500)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--topologies", default="fleet,single")
    p.add_argument("--processes", type=int)
    a = p.parse_args()
    lock, fleet = topology.acquire_lock(), fleet_files.read_fleet(None)
    topology.reap_stale()
    n = a.processes or len(fleet.ports)
    payloads = loadgen.make_payloads(300, seed=1)
    floor = floors.measure(payloads, fleet, seconds=3, processes=n, threads=fleet.threads,
                           cores=os.cpu_count() or 1, spool_dir=os.path.join(topology.BENCH_ROOT, "floor-io"))
    print(f"CPU floor: {floor['cpu']['cpu_ms_per_event']:.3f} ms per event (inflate, parse, store in-process)")
    runner = steps.StepRunner(payloads, settle=1.0, max_in_flight=512)
    print(f"{'topology':10} {'rps':>6} " + " ".join(f"{k:>12}" for k in KEYS) + f" {'total':>8}  (ms CPU per request)")
    for i, name in enumerate(a.topologies.split(",")):
        topo = topology.Topology(name, fleet, processes=n, threads=fleet.threads, port_base=10700 + 100 * i,
                                 log_dir="/var/tmp")
        try:
            topo.start()
            runner.profile(topo, [(2, a.rate)])              # warm-up
            before = sample(topo)
            run, _, _ = runner.profile(topo, [(a.seconds, a.rate)])
            after = sample(topo)
        finally:
            topo.stop()
        ok = run.counts()["ok"]
        ms = {k: (after[k] - before[k]) / max(ok, 1) * 1000 for k in before}
        print(f"{name:10} {ok / a.seconds:6.0f} " + " ".join(f"{v:12.3f}" for v in ms.values())
              + f" {sum(ms.values()):8.3f}")
    lock.close()


if __name__ == "__main__":
    main()
