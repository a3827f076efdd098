#!/usr/bin/python3
"""Benchmark harness of the uwsgi_fleet cookbook (bench/README.md): each topology
is started from the converged fleet's files and driven open loop through three
phases (saturation, fixed loads, overload) in a rotated order each repeat, and
the machine's CPU and I/O floors are measured in the same run.

    /usr/bin/python3 bench/run.py [--full | --smoke] [--out DIR]
"""
import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fleet as fleet_files  # noqa: E402
import floors  # noqa: E402
import loadgen  # noqa: E402
import profiles  # noqa: E402
import report  # noqa: E402
import results  # noqa: E402
import steps  # noqa: E402
import topology  # noqa: E402

# Durations in seconds; `loads` are fractions of the best topology's saturation.
# Why these (bench/README.md, "Step length"): the p99 of ~1,000-2,000 requests
# varies as little as that of more requests from the same step (what remains is
# drift over seconds, which only more repeats average out), and latencies stay
# raised for ~2 s after a step starts.
MODES = {
    "quick": dict(repeats=3, loads=(0.3, 0.6, 0.85), step=5.0, warm=2.0, settle=0.5, probe=1.5,
                  ramp_step=1.5, ramp_warm=0.5, ramp_start=0.85, ramp_growth=1.15, ramp_max_steps=6,
                  burst_base=2.0, burst=2.0, burst_recover=3.0, sustained=4.0, floor_s=1.5,
                  payloads=300, resamples=2000),
    "full": dict(repeats=5, loads=(0.3, 0.6, 0.85, 0.95), step=10.0, warm=3.0, settle=1.0, probe=3.0,
                 ramp_step=3.0, ramp_warm=1.0, ramp_start=0.8, ramp_growth=1.07, ramp_max_steps=10,
                 burst_base=5.0, burst=3.0, burst_recover=6.0, sustained=8.0, floor_s=3.0,
                 payloads=1000, resamples=4000),
    "smoke": dict(repeats=1, loads=(0.3,), step=1.0, warm=0.3, settle=0.1, probe=0.7,
                  ramp_step=0.7, ramp_warm=0.2, ramp_start=0.85, ramp_growth=1.1, ramp_max_steps=2,
                  burst_base=0.6, burst=0.6, burst_recover=0.8, sustained=0.6, floor_s=0.3,
                  payloads=30, resamples=200),
}
START_STOP_S = 2.0


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def fmt_s(seconds):
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """One stderr line per step: elapsed, estimated time left, what runs now."""

    def __init__(self, planned):
        self.start, self.planned, self.done = time.monotonic(), planned, 0.0

    def step(self, what, seconds):
        elapsed = time.monotonic() - self.start
        left = max(0.0, self.planned - self.done) * elapsed / self.done if self.done > 30 else self.planned - self.done
        log(f"bench [{fmt_s(elapsed)} elapsed, ~{fmt_s(left)} left] {what}")
        self.done += seconds


def williams(n):
    """Orders of range(n), one per repeat: a Williams design. Across rows each
    item takes every position, and follows every other item equally often (n
    rows for an even n, 2n for an odd n), so no topology always comes first or
    always after the same neighbour."""
    first = [0]
    while len(first) < n:
        first.append(len(first) // 2 + 1 if len(first) % 2 else n - len(first) // 2)
    rows = [[(x + r) % n for x in first] for r in range(n)]
    return rows + ([row[::-1] for row in rows] if n % 2 else [])


class Harness:
    """The run: floors and saturation ramps, then fixed loads, then overload;
    each phase runs every topology once per repeat, in a rotated order."""

    def __init__(self, args, mode):
        self.args, self.mode, self.names = args, mode, args.topologies
        self.fleet = fleet_files.read_fleet(args.fleet)
        self.processes = args.processes or len(self.fleet.ports)
        self.threads = args.threads or self.fleet.threads
        self.repeats, self.loads = args.repeats or mode["repeats"], args.loads or mode["loads"]
        self.log_dir = os.path.join(args.out, "tmp", "logs")
        shutil.rmtree(self.log_dir, ignore_errors=True)
        os.makedirs(self.log_dir)
        self.payloads = loadgen.make_payloads(mode["payloads"], seed=args.seed)
        self.runner = steps.StepRunner(self.payloads, settle=mode["settle"], max_in_flight=args.max_in_flight)
        self.rows, self.round, self.schedule = williams(len(self.names)), 0, {}
        self.data = {n: {"saturation": [], "loads": [], "memory": [], "burst": [], "sustained": []} for n in self.names}
        self.floors, self.commands, self.server_code = [], {}, None
        m, n, r = mode, len(self.names), self.repeats
        ramp = 0 if args.saturation else n * r * (START_STOP_S + 4 * (m["ramp_warm"] + m["ramp_step"] + m["settle"]))
        over = 2 * m["warm"] + m["burst_base"] + m["burst"] + m["burst_recover"] + m["sustained"] + 4
        self.progress = Progress(ramp + r * (2 * m["floor_s"] + 2) + n * r * (
            2 * START_STOP_S + len(self.loads) * (m["warm"] + m["step"] + m["settle"]) + over))

    def phase(self, name, fn, floors_first=False):
        """Every topology once per repeat, in the next row of the Williams design."""
        self.schedule[name] = []
        for repeat in range(self.repeats):
            order = [self.names[i] for i in self.rows[self.round % len(self.rows)]]
            self.round += 1
            self.schedule[name].append(order)
            if floors_first:
                self.measure_floors(repeat)
            for topo_name in order:
                topo = topology.Topology(topo_name, self.fleet, processes=self.processes, threads=self.threads,
                                         port_base=self.args.port_base + 100 * topology.ORDER.index(topo_name),
                                         log_dir=self.log_dir)
                try:
                    topo.start()
                    self.commands[topo_name] = topo.commands
                    self.server_code = self.server_code or topo.health().get("code")
                    fn(topo, self.data[topo_name])
                finally:
                    topo.stop()

    def measure_floors(self, repeat):
        self.progress.step(f"floors (repeat {repeat + 1}): CPU and spool I/O", 2 * self.mode["floor_s"] + 2)
        f = floors.measure(self.payloads, self.fleet, seconds=self.mode["floor_s"], processes=self.processes,
                           threads=self.threads, cores=os.cpu_count() or 1,
                           spool_dir=os.path.join(topology.BENCH_ROOT, "floor-io"))
        log(f"bench: floors: CPU {f['cpu']['events_per_s']:.0f} events/s, I/O {f['io']['events_per_s']:.0f} events/s")
        self.floors.append(f)

    def saturation(self, topo, data):
        s = profiles.saturation(self.runner, topo, self.mode, [x["rate"] for x in data["saturation"]], self.progress)
        log(f"bench: {topo.name} saturation {s['rate']:.0f} rps")
        data["saturation"].append(s)

    def fixed_loads(self, topo, data):
        data["loads"].append(profiles.loads(self.runner, topo, self.mode, self.loads, self.rates, self.progress))
        data["memory"].append(topo.memory())    # after the highest load: workers warm, buffers grown

    def overload(self, topo, data):
        burst, sustained = profiles.overload(self.runner, topo, self.mode, self.reference, self.progress)
        data["burst"].append(burst)
        data["sustained"].append(sustained)

    def run(self):
        started, t0 = datetime.datetime.now(datetime.timezone.utc), time.monotonic()
        log(f"bench: {len(self.names)} topologies x {self.repeats} repeats, N={self.processes} T={self.threads}, "
            f"planned ~{fmt_s(self.progress.planned)}")
        if self.args.saturation:
            self.best, self.reference = None, self.args.saturation
            for repeat in range(self.repeats):
                self.measure_floors(repeat)
        else:
            self.phase("saturation", self.saturation, floors_first=True)
            medians = {n: statistics.median(x["rate"] for x in d["saturation"]) for n, d in self.data.items()}
            self.best = max(medians, key=medians.get)
            self.reference = medians[self.best]
        self.rates = [round(load * self.reference, 1) for load in self.loads]
        log(f"bench: reference saturation {self.reference:.0f} rps ({self.best or '--saturation'}); "
            f"loads {', '.join(f'{r:.0f}' for r in self.rates)} rps")
        self.phase("loads", self.fixed_loads)
        self.phase("overload", self.overload)
        log("bench: intervals (bootstrap)")
        return results.assemble(self, started, time.monotonic() - t0)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group()
    for mode in MODES:
        g.add_argument(f"--{mode}", dest="mode", action="store_const", const=mode, help=f"{mode} mode (MODES)")
    p.add_argument("--topologies", help=f"comma list of {','.join(topology.ORDER)} (default all; smoke: fleet)")
    p.add_argument("--fleet", help="a named fleet (/etc/uwsgi_fleet/<name>/fleet.json); default the node's one")
    p.add_argument("--processes", type=int, help="N (default: the fleet's manifest)")
    p.add_argument("--threads", type=int, help="T (default: the fleet's manifest)")
    p.add_argument("--repeats", type=int)
    p.add_argument("--loads", help="comma list of fractions of the best saturation (e.g. 0.3,0.6,0.85)")
    p.add_argument("--step", type=float, help="seconds measured per load step")
    p.add_argument("--saturation", type=float, help="reference saturation in rps: skip the ramps")
    p.add_argument("--seed", type=int, default=1, help="workload seed (payload sizes and contents)")
    p.add_argument("--out", default=os.path.join(HERE, "results"), help="output directory")
    p.add_argument("--port-base", type=int, default=10000, help="topology k uses port-base + 100k ...")
    p.add_argument("--max-in-flight", type=int, default=512, help="the generator's connections at most")
    p.add_argument("--generator-nice", type=int, default=-10,
                   help="nice value of the load generator (the servers run at 0); 0 to disable")
    a = p.parse_args(argv)
    a.mode = a.mode or "quick"
    a.topologies = [t.strip() for t in a.topologies.split(",")] if a.topologies else \
        (["fleet"] if a.mode == "smoke" else list(topology.ORDER))
    if set(a.topologies) - set(topology.ORDER) or len(set(a.topologies)) != len(a.topologies):
        p.error(f"--topologies: choose each at most once from {list(topology.ORDER)}")
    a.loads = tuple(float(x) for x in a.loads.split(",")) if a.loads else None
    if any(v is not None and v < 1 for v in (a.processes, a.threads, a.repeats)):
        p.error("--processes, --threads and --repeats must be >= 1")
    if not (10000 <= a.port_base and a.port_base + 100 * len(topology.ORDER) <= 11000):
        p.error("--port-base: the topologies must stay within 10000-10999")
    a.out = os.path.abspath(a.out)
    return a


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    args = parse_args(argv)
    if os.geteuid() != 0:
        log("bench: run as root (the servers run as the fleet user; nginx needs its master as root)")
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    mode = dict(MODES[args.mode], **({"step": args.step} if args.step else {}))
    os.makedirs(args.out, exist_ok=True)
    if args.generator_nice:
        try:    # before any child: the servers reset to 0
            os.setpriority(os.PRIO_PROCESS, 0, args.generator_nice)
        except OSError as e:
            log(f"bench: cannot renice the generator ({e}); running at nice 0")
            args.generator_nice = 0
    try:
        lock = topology.acquire_lock()
    except topology.BenchError as e:
        log(f"bench: error: {e}")
        return 1
    try:
        stale = topology.reap_stale()
        if stale:
            log(f"bench: killed process groups left by an earlier run: {stale}")
        out = Harness(args, mode).run()
    except KeyboardInterrupt:
        log("bench: interrupted; every topology was stopped")
        return 130
    except (topology.BenchError, fleet_files.FleetError) as e:   # the node or the machine is not as needed
        log(f"bench: error: {e}")
        return 1
    finally:
        topology.reap_stale()
        lock.close()
    path = os.path.join(args.out, datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ.json"))
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    shutil.copyfile(path, os.path.join(args.out, "latest.json"))
    written = report.write_all(out, args.out)
    log(f"bench: done in {fmt_s(out['duration_s'])}: {path}, latest.json, " + ", ".join(written))
    for line in report.goal_lines(out):
        log(f"bench: {line}")
    for w in out["warnings"][:10]:
        log(f"bench: warning: {w}")
    if len(out["warnings"]) > 10:
        log(f"bench: {len(out['warnings']) - 10} more warnings in latest.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
