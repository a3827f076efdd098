#!/usr/bin/python3
"""Benchmark harness of the uwsgi_fleet cookbook: see bench/README.md.

    /usr/bin/python3 bench/run.py                 # quick mode (~5 min on 2 cores)
    /usr/bin/python3 bench/run.py --full          # more repeats, longer steps
    /usr/bin/python3 bench/run.py --smoke --out /tmp/x   # a few seconds, fleet only
    /usr/bin/python3 bench/run.py --target http://127.0.0.1/   # the converged node

Each topology (fleet, fleet-rr, single, single-thunder, gunicorn) is started on
loopback ports of its own (10000-10999) from the converged node's rendered
files, driven open-loop by loadgen.py, stopped and cleaned up, interleaved
over --repeats. Results: <out>/<timestamp>.json, latest.json, latest.md and
PNG plots.
"""
import argparse
import contextlib
import datetime
import gc
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import analysis  # noqa: E402
import loadgen  # noqa: E402
import report  # noqa: E402
import topology  # noqa: E402

SCHEMA_VERSION = 1

# Durations in seconds. `loads` are fractions of the best topology's saturation.
MODES = {
    "quick": dict(repeats=2, loads=(0.3, 0.6, 0.85), step=3.0, warm=0.5, settle=0.2,
                  probe=1.5, ramp_step=1.5, ramp_warm=0.3, ramp_start=0.85, ramp_growth=1.15, ramp_max_steps=5,
                  burst_base=2.0, burst=2.0, burst_recover=3.0, bursts=1, payloads=300),
    "full": dict(repeats=3, loads=(0.3, 0.6, 0.85, 0.95), step=15.0, warm=1.0, settle=1.0,
                 probe=3.0, ramp_step=3.0, ramp_warm=1.0, ramp_start=0.8, ramp_growth=1.07, ramp_max_steps=10,
                 burst_base=5.0, burst=2.0, burst_recover=6.0, bursts=3, payloads=1000),
    "smoke": dict(repeats=1, loads=(0.3,), step=1.5, warm=0.3, settle=0.1,
                  probe=1.0, ramp_step=1.0, ramp_warm=0.3, ramp_start=0.85, ramp_growth=1.1, ramp_max_steps=2,
                  burst_base=1.0, burst=1.0, burst_recover=1.5, bursts=1, payloads=30),
}
BURST_BASE_LOAD = 0.4
BURST_LOAD = 1.2
START_OVERHEAD_S = 2.0   # start + stop of a topology, for the ETA
RAMP_STEPS_GUESS = 3     # ramp steps per saturation search, for the ETA


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def fmt_s(seconds):
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """One stderr line per step: elapsed, estimated time left, what runs now."""

    def __init__(self, planned_total):
        self.start = time.monotonic()
        self.planned_total = planned_total
        self.planned_done = 0.0

    def step(self, what, planned):
        elapsed = time.monotonic() - self.start
        left = max(0.0, self.planned_total - self.planned_done)
        log(f"bench [{fmt_s(elapsed)} elapsed, ~{fmt_s(left)} left] {what}")
        self.planned_done += planned

    def advance(self, seconds):
        """Planned work done without a progress line (starts, stops, warm-ups)."""
        self.planned_done += seconds

    def replan(self, seconds):
        """A saturation ramp took more or fewer steps than planned."""
        self.planned_total += seconds


# -- environment --------------------------------------------------------------

def _version(argv, pattern=None):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout + out.stderr).strip()
    if pattern:
        m = re.search(pattern, text)
        return m.group(1) if m else text.splitlines()[0] if text else None
    return text.splitlines()[0] if text else None


def machine_info():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
        with open("/proc/loadavg") as f:
            loadavg = [float(x) for x in f.read().split()[:3]]
    except OSError:
        mem_kb, loadavg = None, None
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "mem_total_kb": mem_kb,
        "kernel": platform.release(),
        "os": _version(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "nginx": _version([topology.NGINX, "-v"], r"nginx/(\S+)"),
        "uwsgi": _version(["/usr/bin/uwsgi", "--version"]),
        "python": _version(["/usr/bin/python3", "--version"], r"Python (\S+)"),
        "gunicorn": _version([topology.GUNICORN, "--version"], r"version ([^\s)]+)"),
        "loadgen_python": platform.python_version(),
        "loadavg_at_start": loadavg,
    }


def cpu_sample(topo):
    """(busy ticks, all ticks, generator CPU s, servers' CPU s, time): busy
    excludes idle and iowait; servers = every process of the topology."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    idle = values[3] + values[4]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    servers = topo.cpu_seconds() if hasattr(topo, "cpu_seconds") else None
    return sum(values) - idle, sum(values), usage.ru_utime + usage.ru_stime, servers, time.monotonic()


def cpu_delta(before, after):
    """CPU use between two samples, in cores (1.0 = one core busy the whole time).
    other = busy - servers - generator: other work on the machine plus kernel time
    nobody is charged for (softirq, writeback)."""
    busy, total = after[0] - before[0], after[1] - before[1]
    wall = after[4] - before[4]
    cores = os.cpu_count() or 1
    if not total or not wall:
        return {}
    system = busy / total * cores
    generator = (after[2] - before[2]) / wall
    servers = (after[3] - before[3]) / wall if after[3] is not None and before[3] is not None else None
    return {"system_busy": round(busy / total, 3), "system_cores": round(system, 3),
            "generator_cores": round(generator, 3),
            "servers_cores": None if servers is None else round(servers, 3),
            "other_cores": None if servers is None else round(system - servers - generator, 3)}


@contextlib.contextmanager
def no_gc():
    """No cyclic GC while the generator sends (its collections paused it for up
    to ~10 ms); collect afterwards, between steps."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


# -- the topologies as the harness sees them ---------------------------------------

class Target(object):
    """An already running node (--target): nothing is started or stopped."""

    name = "target"

    def __init__(self, url, project_id, public_key, spool_dir=None, event_ids=()):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise topology.BenchError(f"--target must be an http:// URL, got {url!r}")
        if parts.path not in ("", "/"):
            raise topology.BenchError("--target takes the server's root URL (the store path is /api/<id>/store/)")
        self.host = parts.hostname
        self.listen_port = parts.port or 80
        self.project_id, self.public_key = project_id, public_key
        self.spool_dir = spool_dir
        self.event_ids = set(event_ids)
        self.processes = None
        self.commands = {}

    def start(self):
        import socket
        with socket.socket() as s:
            s.settimeout(3)
            if s.connect_ex((self.host, self.listen_port)) != 0:
                raise topology.BenchError(f"target {self.host}:{self.listen_port} is not answering")

    def stop(self):
        self.clean_spool()

    def check_alive(self):
        import socket
        with socket.socket() as s:
            s.settimeout(3)
            if s.connect_ex((self.host, self.listen_port)) != 0:
                raise topology.BenchError(f"target {self.host}:{self.listen_port} stopped answering")

    def clean_spool(self, remove=False):
        """Delete only this run's events (by event_id) from the node's spool."""
        if not self.spool_dir:
            return
        directory = os.path.join(self.spool_dir, self.project_id)
        for event_id in self.event_ids:
            try:
                os.unlink(os.path.join(directory, event_id + ".json"))
            except OSError:
                pass

    def label_of(self, backend):
        return backend or "?"

    def expected_labels(self):
        return ()

    def memory(self):
        """Best effort, read-only: the node's uWSGI instances (fleet.json ports)
        and nginx (/run/nginx.pid), when the target is this machine."""
        if self.host not in ("127.0.0.1", "localhost"):
            return None
        try:
            with open(topology.FLEET_JSON) as f:
                fleet = json.load(f)
        except (OSError, ValueError):
            return None
        if fleet.get("listen") != self.listen_port:
            return None     # not the converged node's nginx
        sockets = {f"{fleet.get('bind_address', '127.0.0.1')}:{p}": p for p in fleet.get("ports", [])}
        found = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().decode("utf-8", "replace").split("\0")
            except OSError:
                continue
            for i, arg in enumerate(argv[:-1]):
                if arg == "--socket" and argv[i + 1] in sockets:
                    found.setdefault(sockets[argv[i + 1]], []).append(int(entry))
        instances = [dict(label=str(port), **topology.memory_of(pids)) for port, pids in sorted(found.items())]
        nginx = None
        try:
            with open("/run/nginx.pid") as f:
                nginx = topology.memory_of(topology.group_pids(int(f.read().strip())))
        except (OSError, ValueError):
            pass
        total = {k: sum(i[k] for i in instances) for k in ("processes", "rss_kb", "pss_kb")}
        return {"instances": instances, "app_total": total, "nginx": nginx}


def topology_label_of(topo):
    if topo.name.startswith("fleet"):
        index = {str(p): f"i{k}" for k, p in enumerate(topo.backend_ports)}
        return lambda backend: index.get(backend, backend or "?")
    return lambda backend: backend or "?"


def expected_labels(topo, processes):
    if topo.name == "target":
        return ()
    if topo.name.startswith("fleet"):
        return tuple(f"i{k}" for k in range(processes))
    return tuple(f"w{k + 1}" for k in range(processes))


# -- the harness ---------------------------------------------------------------

class Harness:
    def __init__(self, args, mode):
        self.args = args
        self.mode = mode
        self.offset = 0          # payload offset: consecutive runs use new payloads
        self.lag_ms = args.lag_threshold_ms

    def make_topology(self, name):
        a = self.args
        if name == "target":
            return self.target
        index = topology.ORDER.index(name)
        return topology.Topology(name, self.node, processes=self.processes, threads=self.threads,
                                 port_base=a.port_base + 100 * index, log_dir=self.log_dir,
                                 project_id=a.project or "42", hops=3, hop_ms=2)

    def generator(self, topo):
        return loadgen.LoadGenerator(topo.host if hasattr(topo, "host") else topology.LOOPBACK,
                                     topo.listen_port, topo.project_id, topo.public_key,
                                     self.payloads, max_in_flight=self.args.max_in_flight)

    def _profile(self, topo, gen, segments):
        before = cpu_sample(topo)
        with no_gc():
            run = gen.run_profile(segments, payload_offset=self.offset)
        after = cpu_sample(topo)
        self.offset += len(run.results)
        topo.check_alive()
        return run, cpu_delta(before, after)

    def _step(self, topo, gen, rate, duration, warm=None, settle=None):
        m = self.mode
        warm = m["warm"] if warm is None else warm
        run, cpu = self._profile(topo, gen, [(warm, rate), (duration, rate)])
        metrics = analysis.step_metrics(run, warm, warm + duration, topology_label_of(topo),
                                        expected_labels(topo, self.processes), self.lag_ms)
        metrics.update(offered_rate=round(rate, 2), cpu=cpu)
        topo.clean_spool()
        time.sleep(m["settle"] if settle is None else settle)
        return metrics

    # phase 1: saturation ------------------------------------------------------------
    def saturation(self, topo, repeat):
        """Open-loop ramp: offered rate x growth per step until the achieved rate
        falls below 95 % of the offered rate (or errors > 1 %); saturation = the
        highest achieved rate seen. The first ramp starts at ramp_start x a short
        closed-loop probe (concurrency 2 x N x T), later repeats at ramp_start x
        the median saturation found so far."""
        m = self.mode
        gen = self.generator(topo)
        concurrency = max(8, 2 * self.processes * self.threads) if self.processes else 16
        probe = None
        known = self.sat_samples.get(topo.name)
        if not known:
            with no_gc():
                run = gen.closed_loop(concurrency, m["probe"], warmup=0.5, payload_offset=self.offset)
            self.offset += len(run.results)
            topo.clean_spool()
            probe = round(run.rate, 2)
            self.progress.advance(m["probe"] + 0.5)
            start = max(5.0, run.rate * m["ramp_start"])
        else:
            start = max(5.0, analysis.agg(known)["median"] * m["ramp_start"])
        rate, steps = start, []
        for k in range(m["ramp_max_steps"]):
            self.progress.step(f"saturation repeat {repeat + 1}: {topo.name} ramp step {k + 1} at "
                               f"{rate:.0f} rps for {m['ramp_step']:g} s", m["ramp_warm"] + m["ramp_step"] + m["settle"])
            s = self._step(topo, gen, rate, m["ramp_step"], warm=m["ramp_warm"])
            steps.append({"offered_rate": s["offered_rate"], "achieved_rate": s["achieved_rate"],
                          "p50_ms": s["latency_ms"]["p50"], "p99_ms": s["latency_ms"]["p99"],
                          "error_rate": s["error_rate"], "lag_p99_ms": s["generator"]["lag_p99_ms"],
                          "other_cores": (s.get("cpu") or {}).get("other_cores")})
            if s["achieved_rate"] < 0.95 * rate or s["error_rate"] > 0.01:
                break
            rate *= m["ramp_growth"]
        self.progress.replan((len(steps) - min(RAMP_STEPS_GUESS, m["ramp_max_steps"]))
                             * (m["ramp_warm"] + m["ramp_step"] + m["settle"]))
        best = max(steps, key=lambda s: s["achieved_rate"])
        reached = any(s["achieved_rate"] < 0.95 * s["offered_rate"] or s["error_rate"] > 0.01 for s in steps)
        return {"rate": best["achieved_rate"], "reached": reached, "closed_loop_probe": probe,
                "probe_concurrency": concurrency if probe is not None else None,
                "sustained_rate": max((s["offered_rate"] for s in steps
                                       if s["achieved_rate"] >= 0.95 * s["offered_rate"] and s["error_rate"] <= 0.01),
                                      default=None),
                "ramp": steps}

    # phase 2: latency at fixed loads and bursts -------------------------------------
    def block(self, topo, repeat):
        m = self.mode
        gen = self.generator(topo)
        out = {"loads": [], "burst": None, "memory": None}
        # Warm-up (first requests load the app's config, connections open).
        self._profile(topo, gen, [(max(0.5, m["warm"]), self.rates[0])])
        self.progress.advance(max(0.5, m["warm"]))
        topo.clean_spool()
        for load, rate in zip(self.loads, self.rates):
            self.progress.step(f"latency repeat {repeat + 1}/{self.repeats}: {topo.name} load {load:.0%} = "
                               f"{rate:.0f} rps for {m['step']:g} s", m["warm"] + m["step"] + m["settle"])
            metrics = self._step(topo, gen, rate, m["step"])
            metrics["load"] = load
            out["loads"].append(metrics)
            self._flag(topo.name, f"load {load:.0%}", metrics)
        # Memory after the highest load (workers are warm, buffers grown).
        out["memory"] = topo.memory()
        base, burst = BURST_BASE_LOAD * self.reference, BURST_LOAD * self.reference
        segments = [(m["warm"], base), (m["burst_base"], base)]
        for _ in range(m["bursts"]):
            segments += [(m["burst"], burst), (m["burst_recover"], base)]
        total = sum(d for d, _ in segments)
        self.progress.step(f"bursts repeat {repeat + 1}/{self.repeats}: {topo.name} {base:.0f} rps with "
                           f"{m['bursts']} x {m['burst']:g} s at {burst:.0f} rps", total + m["settle"])
        run, cpu = self._profile(topo, gen, segments)
        b = analysis.burst_metrics(run, m["warm"], m["burst_base"], m["burst"], m["burst_recover"], m["bursts"],
                                   topology_label_of(topo), expected_labels(topo, self.processes))
        b["cpu"] = cpu
        self._flag(topo.name, "bursts", b)
        if repeat:
            b.pop("timeline")       # keep one timeline (the first repeat's) for the plot
        out["burst"] = b
        topo.clean_spool()
        return out

    def _flag(self, name, what, metrics):
        other = (metrics.get("cpu") or {}).get("other_cores")
        if other is not None and other > self.args.other_cpu_warn:
            self.warnings.append(f"{name} {what}: {other:.2f} cores busy outside the benchmark "
                                 "(other work on the machine): this run is noisy")
        g = metrics["generator"]
        if g["behind"]:
            cause = (f"all {self.args.max_in_flight} senders busy (the server was behind)"
                     if g.get("max_in_flight", 0) >= self.args.max_in_flight else "the generator was late")
            self.warnings.append(f"{name} {what}: requests left late (lag p99 {g['lag_p99_ms']} ms, "
                                 f"max {g['lag_max_ms']} ms; {cause}): latencies count from the intended time, "
                                 "so they include this wait")
        if metrics["sent"] and metrics["ok"] < metrics["sent"]:
            self.warnings.append(f"{name} {what}: {metrics['sent'] - metrics['ok']} of {metrics['sent']} "
                                 f"requests failed ({metrics['status_counts']})")

    def with_topology(self, name, fn, *a):
        topo = self.make_topology(name)
        try:
            topo.start()
            return topo, fn(topo, *a)
        finally:
            topo.stop()
            self.progress.advance(START_OVERHEAD_S)

    # the whole run -----------------------------------------------------------------
    def run(self):
        a, m = self.args, self.mode
        started = datetime.datetime.now(datetime.timezone.utc)
        t_start = time.monotonic()
        self.warnings = []
        self.node = None
        if a.target:
            project, key, spool = a.project, a.key, None
            if not key:
                node_app = topology.Node().store_app if os.path.exists(topology.STORE_APP_JSON) else None
                if not node_app:
                    raise topology.BenchError("--target needs --key (no /etc/uwsgi_fleet/store_app.json)")
                project = project or sorted(node_app["projects"])[0]
                key = node_app["projects"][project]["public_key"]
                spool = node_app.get("spool_dir")
                hops = node_app.get("simulated_hops", 0)
                if not hops:
                    self.warnings.append("target: the node's simulated_hops is 0, unlike the local topologies (3 x 2 ms)")
            self.topologies = ["target"]
            self.processes, self.threads = a.processes, a.threads
            try:
                with open(topology.FLEET_JSON) as f:
                    fleet = json.load(f)
                if fleet.get("listen") == (urllib.parse.urlsplit(a.target).port or 80):
                    self.processes = self.processes or len(fleet["ports"])
                    self.threads = self.threads or int(fleet["threads"])
            except (OSError, ValueError, KeyError):
                pass
        else:
            self.node = topology.Node()
            self.topologies = a.topologies
            self.processes = a.processes or self.node.processes
            self.threads = a.threads or self.node.threads
        self.repeats = a.repeats or m["repeats"]
        self.loads = a.loads or m["loads"]
        if a.step:
            m["step"] = a.step
        self.log_dir = os.path.join(a.out, "tmp", "logs")
        shutil.rmtree(self.log_dir, ignore_errors=True)
        os.makedirs(self.log_dir, exist_ok=True)

        t0 = time.monotonic()
        self.payloads = loadgen.make_payloads(m["payloads"], seed=a.seed)
        payload_s = time.monotonic() - t0
        if a.target:
            self.target = Target(a.target, str(project or "1"), key,
                                 None if a.keep_target_spool else spool,
                                 [p.event_id for p in self.payloads])
            # Unknown N and T (a target that is not this node): the closed-loop
            # probe then uses 16 connections; shares list what answered.
            self.processes = self.processes or 0
            self.threads = self.threads or 0

        # ETA plan
        ramp = (m["ramp_warm"] + m["ramp_step"] + m["settle"]) * min(RAMP_STEPS_GUESS, m["ramp_max_steps"])
        burst_total = m["warm"] + m["burst_base"] + m["bursts"] * (m["burst"] + m["burst_recover"]) + m["settle"]
        per_block = (max(0.5, m["warm"]) + len(self.loads) * (m["warm"] + m["step"] + m["settle"]) + burst_total
                     + START_OVERHEAD_S)
        plan = 0.0 if a.saturation else self.repeats * len(self.topologies) * (ramp + START_OVERHEAD_S) + \
            len(self.topologies) * (m["probe"] + 0.5)
        plan += self.repeats * len(self.topologies) * per_block
        self.progress = Progress(plan)
        log(f"bench: {len(self.topologies)} topologies x {self.repeats} repeats, N={self.processes} T={self.threads}, "
            f"{len(self.payloads)} payloads (made in {payload_s:.1f} s), planned ~{fmt_s(plan)}")

        # Phase 1: saturation of each topology (interleaved), unless given.
        self.sat_samples = {name: [] for name in self.topologies}
        sat_runs = {name: [] for name in self.topologies}
        if not a.saturation:
            for repeat in range(self.repeats):
                for name in self.topologies:
                    _, s = self.with_topology(name, self.saturation, repeat)
                    sat_runs[name].append(s)
                    self.sat_samples[name].append(s["rate"])
                    log(f"bench: {name} saturation {s['rate']:.0f} rps (repeat {repeat + 1})")
            medians = {n: analysis.agg(v)["median"] for n, v in self.sat_samples.items()}
            best = max(medians, key=lambda n: medians[n])
            self.reference = medians[best]
        else:
            best, self.reference = None, a.saturation
        self.rates = [round(load * self.reference, 1) for load in self.loads]
        log(f"bench: reference saturation {self.reference:.0f} rps ({best or '--saturation'}); "
            f"loads {', '.join(f'{r:.0f}' for r in self.rates)} rps")

        # Phase 2: fixed loads and bursts, interleaved.
        blocks = {name: [] for name in self.topologies}
        commands = {}
        for repeat in range(self.repeats):
            for name in self.topologies:
                topo, b = self.with_topology(name, self.block, repeat)
                blocks[name].append(b)
                commands[name] = topo.commands
        return self.assemble(started, t_start, sat_runs, best, blocks, commands)

    def assemble(self, started, t_start, sat_runs, best, blocks, commands):
        a, m = self.args, self.mode
        raw = [p.raw_size for p in self.payloads]
        gz = [len(p.body) for p in self.payloads]
        topologies = {}
        for name in self.topologies:
            runs = blocks[name]
            loads = []
            for i, (load, rate) in enumerate(zip(self.loads, self.rates)):
                step_runs = [r["loads"][i] for r in runs]
                entry = {"load": load, "offered_rate": rate}
                entry.update(analysis.aggregate_steps(step_runs))
                entry["runs"] = step_runs
                loads.append(entry)
            mem_runs = [r["memory"] for r in runs if r["memory"]]
            memory = None
            if mem_runs:
                memory = {
                    "instances": [{"label": inst["label"],
                                   "rss_kb": analysis.agg(mr["instances"][k]["rss_kb"] for mr in mem_runs)["median"],
                                   "pss_kb": analysis.agg(mr["instances"][k]["pss_kb"] for mr in mem_runs)["median"],
                                   "processes": inst["processes"]}
                                  for k, inst in enumerate(mem_runs[0]["instances"])],
                    "app_total_rss_kb": analysis.agg(mr["app_total"]["rss_kb"] for mr in mem_runs),
                    "app_total_pss_kb": analysis.agg(mr["app_total"]["pss_kb"] for mr in mem_runs),
                    "nginx_rss_kb": analysis.agg((mr["nginx"] or {}).get("rss_kb") for mr in mem_runs),
                    "nginx_pss_kb": analysis.agg((mr["nginx"] or {}).get("pss_kb") for mr in mem_runs),
                    "runs": mem_runs,
                }
            bursts = [r["burst"] for r in runs]
            sat = sat_runs.get(name) or []
            topologies[name] = {
                "description": topology.TOPOLOGIES.get(name, f"already converged node at {a.target}"),
                "saturation": {**analysis.agg(s["rate"] for s in sat),
                               "sustained_rate": analysis.agg(s["sustained_rate"] for s in sat),
                               "reached": all(s["reached"] for s in sat) if sat else None,
                               "runs": sat},
                "loads": loads,
                "burst": {**analysis.aggregate_bursts(bursts, m["burst_recover"]), "runs": bursts},
                "memory": memory,
                "commands": commands.get(name),
            }
        behind = [f"{n} load {l['load']:.0%}" for n, t in topologies.items() for l in t["loads"]
                  if l["generator"]["behind_runs"]]
        finished = datetime.datetime.now(datetime.timezone.utc)
        return {
            "schema_version": SCHEMA_VERSION,
            "started": started.isoformat(timespec="seconds"),
            "finished": finished.isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - t_start, 1),
            "mode": a.mode,
            "argv": sys.argv[1:],
            "machine": machine_info(),
            "target": a.target,
            "processes": self.processes,
            "threads": self.threads,
            "processes_source": "override" if a.processes else ("fleet.json" if not a.target else None),
            "threads_source": "override" if a.threads else ("fleet.json" if not a.target else None),
            "node": {"balance": self.node.balance_directive() if self.node else None,
                     "sources": self.node.sources if self.node else None},
            "workload": {
                "request": "POST /api/<project>/store/, gzip JSON event, Content-Encoding: gzip, "
                           "X-Sentry-Auth: Sentry sentry_key=..., sentry_version=7, sentry_client=sentry.python/1.9.10",
                "seed": a.seed,
                "payloads": len(self.payloads),
                "size_bands": [{"share": s, "low_bytes": lo, "high_bytes": hi, "within": "log-uniform"}
                               for s, lo, hi in loadgen.SIZE_BANDS],
                "raw_bytes": {"mean": round(sum(raw) / len(raw)), "p50": analysis.percentile(raw, 50),
                              "p90": analysis.percentile(raw, 90), "max": max(raw)},
                "gzip_bytes": {"mean": round(sum(gz) / len(gz)), "p50": analysis.percentile(gz, 50),
                               "p90": analysis.percentile(gz, 90), "max": max(gz)},
                "simulated_hops": 0 if a.target else 3,
                "simulated_hop_ms": 2,
            },
            "method": {
                "latency": "open loop (requests sent on a fixed schedule), each latency measured from the "
                           "request's intended send time; percentiles over 2xx answers, errors counted apart",
                "achieved_rate": "(2xx answers - 1) / (last answer - first answer) of the requests intended in the window: below saturation the offered rate, above it what the server delivers (the backlog stretches the span)",
                "saturation": f"open-loop ramp: start at {m['ramp_start']} x a {m['probe']:g} s closed-loop probe "
                              f"(later repeats: x the median so far), x{m['ramp_growth']} per {m['ramp_step']:g} s step, "
                              "stop when achieved < 95 % of offered or errors > 1 %; saturation = highest achieved rate",
                "interleaving": "phase 1 (saturation) and phase 2 (loads + bursts) each run A B C D E per repeat; "
                                "each topology is started fresh for each block and stopped after it",
                "burst": f"{BURST_BASE_LOAD:.0%} of the reference saturation with {m['bursts']} burst(s) of "
                         f"{m['burst']:g} s at {BURST_LOAD:.0%}, {m['burst_recover']:g} s recovery each; drain = seconds "
                         "after a burst until the rolling p99 over 250 ms (by intended time) is within 1.5 x the "
                         "base-load p99 for two consecutive windows",
                "generator_behind": f"a run whose generator lag p99 exceeds {self.lag_ms:g} ms",
            },
            "settings": {
                "repeats": self.repeats, "loads": list(self.loads), "step_s": m["step"], "warm_s": m["warm"],
                "probe_s": m["probe"], "ramp_step_s": m["ramp_step"], "ramp_growth": m["ramp_growth"],
                "burst_base_s": m["burst_base"], "burst_s": m["burst"], "burst_recover_s": m["burst_recover"],
                "bursts": m["bursts"], "burst_base_load": BURST_BASE_LOAD, "burst_load": BURST_LOAD,
                "max_in_flight": self.args.max_in_flight, "lag_threshold_ms": self.lag_ms,
                "generator_nice": self.args.generator_nice, "ramp_warm_s": m["ramp_warm"],
                "generator_switch_interval_s": self.args.switch_interval,
                "port_base": self.args.port_base, "topology_order": self.topologies,
            },
            "reference": {"topology": best, "saturation_rate": self.reference,
                          "source": "measured" if best else "--saturation"},
            "offered_rates": [{"load": l, "rate": r} for l, r in zip(self.loads, self.rates)],
            "burst_rates": {"base": round(BURST_BASE_LOAD * self.reference, 1),
                            "burst": round(BURST_LOAD * self.reference, 1)},
            "generator": {"behind_runs": behind,
                          "note": "the generator (Python threads) runs on the same cores as nginx and the app "
                                  f"servers, at nice {self.args.generator_nice} (servers at 0) and with a "
                                  f"{self.args.switch_interval * 1000:g} ms GIL switch interval and its cyclic GC "
                                  "off while sending, so that it sends on time; its CPU use per step is in "
                                  "cpu_cores.generator_cores"},
            "topologies": topologies,
            "warnings": self.warnings,
        }


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="mode", action="store_const", const="quick", help="default: ~5 minutes")
    g.add_argument("--full", dest="mode", action="store_const", const="full", help="more repeats, longer steps")
    g.add_argument("--smoke", dest="mode", action="store_const", const="smoke", help="a few seconds, one topology")
    p.add_argument("--topologies", help=f"comma list of {','.join(topology.ORDER)} (default all; smoke: fleet)")
    p.add_argument("--processes", type=int, help="N (default: the converged node's fleet.json)")
    p.add_argument("--threads", type=int, help="T (default: the converged node's fleet.json)")
    p.add_argument("--repeats", type=int)
    p.add_argument("--loads", help="comma list of fractions of the best saturation (e.g. 0.3,0.6,0.85)")
    p.add_argument("--step", type=float, help="seconds per load step")
    p.add_argument("--saturation", type=float, help="reference saturation in rps: skip phase 1")
    p.add_argument("--target", help="drive an already converged node, e.g. http://127.0.0.1/")
    p.add_argument("--key", help="--target: the project's public key (default: from store_app.json)")
    p.add_argument("--project", help="--target: project id (default: the first in store_app.json)")
    p.add_argument("--keep-target-spool", action="store_true",
                   help="--target: keep the bench's events in the node's spool (default: delete them)")
    p.add_argument("--seed", type=int, default=1, help="workload seed (payload sizes and contents)")
    p.add_argument("--out", default=os.path.join(HERE, "results"), help="output directory")
    p.add_argument("--port-base", type=int, default=10000, help="topology k uses port-base + 100k ...")
    p.add_argument("--max-in-flight", type=int, default=512)
    p.add_argument("--lag-threshold-ms", type=float, default=analysis.LAG_BEHIND_MS)
    p.add_argument("--switch-interval", type=float, default=0.001,
                   help="the generator's sys.setswitchinterval (seconds; Python's default is 0.005)")
    p.add_argument("--other-cpu-warn", type=float, default=0.3,
                   help="warn when a step sees more than this many cores busy outside the benchmark")
    p.add_argument("--generator-nice", type=int, default=-10,
                   help="nice value of the load generator (the servers run at 0); 0 to disable")
    a = p.parse_args(argv)
    a.mode = a.mode or "quick"
    if a.topologies:
        a.topologies = [t.strip() for t in a.topologies.split(",") if t.strip()]
        bad = [t for t in a.topologies if t not in topology.TOPOLOGIES]
        if bad:
            p.error(f"unknown topologies {bad}; choose from {list(topology.ORDER)}")
    else:
        a.topologies = ["fleet"] if a.mode == "smoke" else list(topology.ORDER)
    if a.loads:
        a.loads = tuple(float(x) for x in a.loads.split(","))
    for name in ("processes", "threads", "repeats"):
        v = getattr(a, name)
        if v is not None and v < 1:
            p.error(f"--{name} must be >= 1")
    if not a.target and not (10000 <= a.port_base and a.port_base + 100 * len(topology.ORDER) <= 11000):
        p.error("--port-base: the topologies must stay within 10000-10999")
    a.out = os.path.abspath(a.out)
    return a


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    args = parse_args(argv)
    if not args.target and os.geteuid() != 0:
        log("bench: run as root (the servers run as the fleet user; nginx needs its master as root)")
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    mode = dict(MODES[args.mode])
    os.makedirs(args.out, exist_ok=True)
    # The generator's threads mostly wait on sockets; a short GIL switch interval
    # lets the scheduling thread and the senders run on time (default 5 ms).
    sys.setswitchinterval(args.switch_interval)
    if args.generator_nice:
        # Before any thread exists: threads inherit it; the servers reset to 0.
        try:
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
        if not args.target:
            stale = topology.reap_stale()
            if stale:
                log(f"bench: killed process groups left by an earlier run: {stale}")
        results = Harness(args, mode).run()
    except KeyboardInterrupt:
        log("bench: interrupted; every topology was stopped")
        return 130
    except topology.BenchError as e:
        log(f"bench: error: {e}")
        return 1
    finally:
        if not args.target:
            topology.reap_stale()
        lock.close()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = os.path.join(args.out, f"{stamp}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    shutil.copyfile(path, os.path.join(args.out, "latest.json"))
    written = report.write_all(results, args.out)
    log(f"bench: done in {fmt_s(results['duration_s'])}: {path}, latest.json, " + ", ".join(written))
    for w in results["warnings"]:
        log(f"bench: warning: {w}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
