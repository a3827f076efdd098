"""The step runner: drives one load profile against a running topology, with
the CPU of the machine, the servers and the generator itself accounted, then
cleans up so the next step starts from the same state."""
import gc
import os
import resource
import time

import analysis
import loadgen
import procfs


def _sample(topo):
    busy, total, irq = procfs.machine_ticks()
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {"busy": busy, "total": total, "irq": irq, "user": own.ru_utime, "sys": own.ru_stime,
            "servers": topo.cpu_seconds(), "wall": time.monotonic()}


def cpu_delta(before, after, requests):
    """CPU use between two samples, in cores (1.0 = one core busy the whole
    time). generator = this process (the harness is the generator); irq =
    interrupt + softirq time (loopback networking, disk completions); other =
    busy - servers - generator - irq: other work on the machine, and kernel
    threads (writeback, journal)."""
    d, cores = {k: after[k] - before[k] for k in before}, os.cpu_count() or 1
    c = {"system_cores": d["busy"] / d["total"] * cores, "irq_cores": d["irq"] / d["total"] * cores,
         "servers_cores": d["servers"] / d["wall"], "generator_user_cores": d["user"] / d["wall"],
         "generator_sys_cores": d["sys"] / d["wall"]}
    c["generator_cores"] = c["generator_user_cores"] + c["generator_sys_cores"]
    c["other_cores"] = c["system_cores"] - c["servers_cores"] - c["generator_cores"] - c["irq_cores"]
    c["system_busy"] = c["system_cores"] / cores
    return dict({k: round(v, 3) for k, v in c.items()},
                generator_us_per_request=round(c["generator_cores"] * d["wall"] / max(requests, 1) * 1e6, 1))


OTHER_CPU_WARN = 0.3        # cores busy outside the benchmark that make a step "noisy"
GENERATOR_CPU_WARN = 0.15   # cores of generator CPU worth a warning


class StepRunner:
    def __init__(self, payloads, *, settle, max_in_flight):
        self.payloads, self.settle, self.max_in_flight = payloads, settle, max_in_flight
        self.offset = 0          # consecutive runs start at other payloads
        self.warnings = []

    def generator(self, topo):
        return loadgen.LoadGenerator(topo.host, topo.listen_port, topo.project_id, topo.public_key,
                                     self.payloads, max_in_flight=self.max_in_flight)

    def probe(self, topo, concurrency, seconds):
        """2xx answers per second of a closed loop with `concurrency` in flight."""
        run = self.generator(topo).closed_loop(concurrency, seconds, warmup=0.5, payload_offset=self.offset)
        self.offset += len(run.results)
        self.reset(topo)
        return run.rate

    def profile(self, topo, segments, windows=()):
        """Run [(seconds, rate)] open loop; return (run, cpu, [metrics of each
        (start, end) window]). No cyclic GC while sending (its pauses made the
        generator late); the spool is emptied and synced afterwards."""
        gen = self.generator(topo)
        before = _sample(topo)
        gc.disable()
        try:
            run = gen.run_profile(segments, payload_offset=self.offset)
        finally:
            gc.enable()
        cpu = cpu_delta(before, _sample(topo), len(run.results))
        self.offset += len(run.results)
        topo.check_alive()
        metrics = [dict(analysis.step_metrics(run, a, b, topo.labels), cpu=cpu)
                   for a, b in windows]
        self.reset(topo)
        return run, cpu, metrics

    def step(self, topo, rate, seconds, warm, what):
        """`warm` seconds at the rate, not counted, then `seconds` measured."""
        _, _, (metrics,) = self.profile(topo, [(warm, rate), (seconds, rate)], [(warm, warm + seconds)])
        metrics["offered_rate"] = round(rate, 2)
        self.flag(topo.name, what, metrics)
        return metrics

    def reset(self, topo):
        """Empty the spool and sync, so the next step does not pay for this one's
        deletes and dirty pages; then let the machine settle."""
        gc.collect()
        topo.clean_spool()
        os.sync()
        time.sleep(self.settle)

    def flag(self, name, what, m):
        cpu, g = m.get("cpu") or {}, m["generator"]
        if (cpu.get("other_cores") or 0) > OTHER_CPU_WARN:
            self.warnings.append(f"{name} {what}: {cpu['other_cores']:.2f} cores busy outside the benchmark "
                                 "(other work on the machine): this step is noisy")
        if (cpu.get("generator_cores") or 0) > GENERATOR_CPU_WARN:
            self.warnings.append(f"{name} {what}: the generator used {cpu['generator_cores']:.2f} cores")
        if g["behind"]:
            cause = (f"all {self.max_in_flight} connections busy (the server was behind)"
                     if g["max_in_flight"] >= self.max_in_flight else "the generator was late")
            self.warnings.append(f"{name} {what}: requests left late (lag p99 {g['lag_p99_ms']} ms, max "
                                 f"{g['lag_max_ms']} ms; {cause}); latencies count from the intended time")
        if m["failed"]:
            self.warnings.append(f"{name} {what}: {m['failed']} of {m['sent']} requests failed "
                                 f"({m['status_counts']})")
