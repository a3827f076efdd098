"""The three load profiles a topology goes through, each in a block of its own
(the topology started fresh for it): the saturation ramp, the fixed loads, and
overload (a burst at 120 % and a sustained step at 150 %); and many requests at
once (bench/overload_variants.py)."""
import statistics
import time

BURST_BASE_LOAD, BURST_LOAD, SUSTAINED_LOAD = 0.4, 1.2, 1.5


def saturation(runner, topo, mode, known, progress):
    """Open-loop ramp: the offered rate grows x ramp_growth per step until the
    achieved rate falls below 95 % of it (or errors pass 1 %); saturation = the
    highest achieved rate. The first ramp starts at ramp_start x a short
    closed-loop probe (concurrency 2 x N x T), later ones at ramp_start x the
    median saturation so far (a closed loop alone under-reads: it keeps every
    thread busy and the GIL contended)."""
    m, probe = mode, None
    concurrency = max(8, 2 * topo.processes * topo.threads)
    if known:
        rate = statistics.median(known) * m["ramp_start"]
    else:
        probe = round(runner.probe(topo, concurrency, m["probe"]), 2)
        rate = probe * m["ramp_start"]
    rate, steps = max(5.0, rate), []
    for k in range(m["ramp_max_steps"]):
        progress.step(f"{topo.name} saturation ramp step {k + 1} at {rate:.0f} rps", m["ramp_warm"] + m["ramp_step"])
        s = runner.step(topo, rate, m["ramp_step"], m["ramp_warm"], f"ramp {rate:.0f} rps")
        passed = s["achieved_rate"] >= 0.95 * rate and s["error_rate"] <= 0.01
        steps.append({"offered_rate": s["offered_rate"], "achieved_rate": s["achieved_rate"], "passed": passed,
                      "p50_ms": s["latency_ms"]["p50"], "p99_ms": s["latency_ms"]["p99"], "error_rate": s["error_rate"],
                      "lag_p99_ms": s["generator"]["lag_p99_ms"], "cpu": s["cpu"]})
        if not passed:
            break
        rate *= m["ramp_growth"]
    return {"rate": max(s["achieved_rate"] for s in steps), "reached": not steps[-1]["passed"],
            "sustained_rate": max((s["offered_rate"] for s in steps if s["passed"]), default=None),
            "closed_loop_probe": probe, "probe_concurrency": concurrency if probe else None, "ramp": steps}


def loads(runner, topo, mode, loads, rates, progress):
    """Each fixed load: warm at its rate, then measured."""
    out = []
    for load, rate in zip(loads, rates):
        progress.step(f"{topo.name} load {load:.0%} = {rate:.0f} rps", mode["warm"] + mode["step"])
        out.append(dict(runner.step(topo, rate, mode["step"], mode["warm"], f"load {load:.0%}"), load=load))
    return out


def overload(runner, topo, mode, reference, progress, late=0.0):
    """A burst at 120 % of the reference saturation between stretches at the 40 %
    base (the requests intended in the burst are measured, the base before it
    too), then a sustained 150 % step after a warm-up at the base rate. With
    `late` (s), the sustained step's metrics also hold "late": those of the
    requests intended from `late` s into it on (the regime once it has lasted)."""
    m = mode
    base, burst, high = (x * reference for x in (BURST_BASE_LOAD, BURST_LOAD, SUSTAINED_LOAD))
    progress.step(f"{topo.name} burst: {base:.0f} rps, {m['burst']:g} s at {burst:.0f} rps",
                  m["warm"] + m["burst_base"] + m["burst"] + m["burst_recover"])
    t = m["warm"] + m["burst_base"]
    _, _, (before, b) = runner.profile(topo, [(m["warm"], base), (m["burst_base"], base), (m["burst"], burst),
                                              (m["burst_recover"], base)], [(m["warm"], t), (t, t + m["burst"])])
    b.update(offered_rate=round(burst, 2), base_latency_ms=before["latency_ms"])
    runner.flag(topo.name, "burst", b)
    progress.step(f"{topo.name} sustained {SUSTAINED_LOAD:.0%} = {high:.0f} rps for {m['sustained']:g} s",
                  m["warm"] + m["sustained"])
    end = m["warm"] + m["sustained"]
    _, cpu, (s, *after) = runner.profile(topo, [(m["warm"], base), (m["sustained"], high)],
                                         [(m["warm"], end)] + ([(m["warm"] + late, end)] if late else []))
    if after:
        s["late"] = after[0]
    s["offered_rate"] = round(high, 2)
    runner.flag(topo.name, f"sustained {SUSTAINED_LOAD:.0%}", s)
    return b, s


def simultaneous(runner, topo, count, idle, progress):
    """`count` requests due at the same instant (a batch job's errors, an SDK's
    flush) after `idle` seconds without any: how many were accepted, shed and
    failed, and how long the last took."""
    progress.step(f"{topo.name} {count} requests at once after {idle:g} s idle", idle + 1.0)
    time.sleep(idle)
    rate = 2.0 ** 20    # all due within count / rate s; a power of two keeps int(count / rate * rate) == count
    return runner.profile(topo, [(count / rate, rate)], [(0.0, 1.0)])[2][0]
