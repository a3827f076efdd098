#!/usr/bin/python3
"""How the fleet takes overload, per mechanism: the converged fleet rendered with
variants of nginx's max_conns and of the store app's queue-time bounds
(FLEET_QUEUE_MS, store_app/overload.py), each through its saturation ramp, then
85 % load, 4 x N x T requests at once to the idle fleet, and the overload
profile (burst 120 %, sustained 150 %), in a rotated order, with bootstrap
intervals; ratios are paired by repeat. bench/README.md, "Choosing the overload
mechanism". Writes <out>/overload-variants-<UTC>.json, prints a table.

    /usr/bin/python3 bench/overload_variants.py [--repeats R] [--variants a,b,...] [--smoke]
"""
import argparse
import copy
import datetime
import json
import os
import re
import statistics
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import analysis  # noqa: E402
import fleet as fleet_files  # noqa: E402
import floors  # noqa: E402  (the checkout's app code digest)
import loadgen  # noqa: E402
import profiles  # noqa: E402
import run as bench_run  # noqa: E402
import steps  # noqa: E402
import topology  # noqa: E402

# The burst (issue 18): this many requests per thread of the fleet, at once,
# SIMULTANEOUS_BURSTS times per block (1 in --smoke), each after an idle of twice
# burst_queue_ms (at least SIMULTANEOUS_IDLE_S): the node idle, not between requests.
SIMULTANEOUS_PER_THREAD, SIMULTANEOUS_BURSTS, SIMULTANEOUS_IDLE_S = 4, 3, 1.0


def variants(manifest):
    """name: (max_conns per instance, FLEET_QUEUE_MS "<burst> <sustained>"), from
    the converged manifest so they follow its bounds: `queue` is the fleet as
    converged, `queue-static` the same without the adaptive switch (the burst
    bound all the time), `mc2T` the old default (nginx sheds past 2 x T in
    flight), `unbounded` neither ("0 0": the app never sheds)."""
    try:
        burst, sustained, conns = (manifest[k] for k in ("burst_queue_ms", "sustained_queue_ms", "max_conns"))
    except KeyError as e:
        raise SystemExit(f"the manifest has no {e}: converge this checkout first (make converge)") from None
    return {"unbounded": (0, "0 0"), "mc2T": (2 * int(manifest["threads"]), "0 0"),
            "queue": (conns, f"{burst} {sustained}"), "queue-static": (conns, f"{burst} {burst}")}


def variant(fl, conns, queue_ms):
    """The fleet with its nginx config's max_conns and FLEET_QUEUE_MS replaced."""
    f = copy.copy(fl)
    f.nginx_conf, n_conns = re.subn(r"max_conns=\d+", f"max_conns={conns}", fl.nginx_conf)
    f.nginx_conf, n_queue = re.subn(r'(uwsgi_param\s+FLEET_QUEUE_MS\s+)"[^"]*"', rf'\g<1>"{queue_ms}"', f.nginx_conf)
    if not (n_conns and n_queue):
        raise SystemExit("the converged fleet renders no max_conns or FLEET_QUEUE_MS: converge this checkout first")
    return f


def summary(data, names, ref):
    """Per variant: intervals, each p99 also as a ratio to every other variant's
    (paired by repeat), shed figures, the simultaneous bursts."""
    blocks = lambda d, k: [x["_blocks"] for x in d[k]]  # noqa: E731
    out = {}
    for n in names:
        d, sat = data[n], [x["rate"] for x in data[n]["sat"]]
        vs = lambda k: {o: analysis.interval(blocks(d, k), blocks(data[o], k)) for o in names if o != n}  # noqa: E731
        out[n] = {
            "saturation": analysis.interval(sat, stat="mean"),
            "saturation_vs_ref": analysis.interval(sat, [x["rate"] for x in data[names[0]]["sat"]], stat="mean"),
            "p99_85_ms": analysis.interval(blocks(d, "l85")), "p99_85_vs": vs("l85"),
            "burst_p99_ms": analysis.interval(blocks(d, "burst")), "burst_p99_vs": vs("burst"),
            "sustained_p99_ms": analysis.interval(blocks(d, "sus")), "sustained_p99_vs": vs("sus"),
            "late_p99_ms": analysis.interval(blocks(d, "late")), "late_p99_vs": vs("late"),
            "sustained_p99_over_own_85": analysis.interval(blocks(d, "sus"), blocks(d, "l85")),
            "goodput_over_own_saturation": analysis.interval([x["achieved_rate"] for x in d["sus"]], sat, stat="mean"),
            "goodput_over_reference": analysis.interval([x["achieved_rate"] / ref for x in d["sus"]], stat="mean"),
            "sustained_shed_rate": analysis.agg([x["shed_rate"] for x in d["sus"]]),
            "late_shed_rate": analysis.agg([x["shed_rate"] for x in d["late"]]),
            "sustained_failed_rate": analysis.agg([x["failed_rate"] for x in d["sus"]]),
            "burst_shed_rate": analysis.agg([x["shed_rate"] for x in d["burst"]]),
            "shed_p50_ms": analysis.agg([x["shed_latency_ms"]["p50"] for x in d["sus"]]),
            "shed_p99_ms": analysis.agg([x["shed_latency_ms"]["p99"] for x in d["sus"]]),
            "shed_with_retry_after": sum(x["shed_with_retry_after"] for x in d["sus"]),
            "status_counts": analysis.totals(d["sus"])["status_counts"],
            # Per burst; a shed answer's latency tells which bound refused it (burst or sustained).
            "simultaneous": {"sent": [x["sent"] for x in d["sim"]], "shed": [x["shed"] for x in d["sim"]],
                             "failed": [x["failed"] for x in d["sim"]],
                             "accepted_max_ms": [x["latency_ms"]["max"] for x in d["sim"]],
                             "shed_p50_ms": [x["shed_latency_ms"]["p50"] for x in d["sim"]],
                             "sent_within_ms": [x["generator"]["lag_max_ms"] for x in d["sim"]]},
            "other_cores": analysis.agg([x["cpu"]["other_cores"] for x in d["sus"] + d["l85"]]),
        }
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int)
    p.add_argument("--variants", default="unbounded,mc2T,queue,queue-static", help="first one is the reference")
    p.add_argument("--smoke", action="store_true", help="seconds-long steps (the harness's smoke test)")
    p.add_argument("--saturation", type=float, help="skip the ramps and take this rate (rps) as the reference")
    p.add_argument("--port-base", type=int, default=10000)
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    a = p.parse_args(argv)
    mode, fl = bench_run.MODES["smoke" if a.smoke else "quick"], fleet_files.read_fleet()
    repeats, names, known = a.repeats or mode["repeats"], a.variants.split(","), variants(fl.manifest)
    settings = {n: known[n] for n in names}
    fleets = {n: variant(fl, *settings[n]) for n in names}
    simultaneous = SIMULTANEOUS_PER_THREAD * len(fl.ports) * fl.threads
    bursts = 1 if a.smoke else SIMULTANEOUS_BURSTS
    idle = max(SIMULTANEOUS_IDLE_S, 2 * fl.manifest["burst_queue_ms"] / 1000)
    os.setpriority(os.PRIO_PROCESS, 0, -10)     # the generator, as bench/run.py runs it (servers reset to 0)
    runner = steps.StepRunner(loadgen.make_payloads(mode["payloads"], seed=1), settle=mode["settle"], max_in_flight=512)
    progress = bench_run.Progress(0)
    # The sustained step is also measured from `late` s into it: the regime once the burst bound is past.
    late = min(2 * fl.manifest["burst_queue_ms"] / 1000, mode["sustained"] / 2)
    data = {n: {"sat": [], "l85": [], "sim": [], "burst": [], "sus": [], "late": []} for n in names}
    rows, rnd, lock = bench_run.williams(len(names)), 0, topology.acquire_lock()
    started = datetime.datetime.now(datetime.timezone.utc)
    os.makedirs(os.path.join(a.out, "tmp", "logs"), exist_ok=True)

    def phase(work):
        nonlocal rnd
        for _ in range(repeats):
            for i in rows[rnd % len(rows)]:
                topo = topology.Topology("fleet", fleets[names[i]], processes=len(fl.ports), threads=fl.threads,
                                         port_base=a.port_base, log_dir=os.path.join(a.out, "tmp", "logs"))
                try:
                    topo.start()
                    # A node converged from other code would measure another mechanism than this checkout's.
                    served = topo.health().get("code")
                    if served != floors.APP_CODE:
                        raise SystemExit(f"the node runs app code {served}, this checkout is {floors.APP_CODE}: "
                                         "make converge first")
                    work(topo, data[names[i]])
                finally:
                    topo.stop()
            rnd += 1

    def overload(topo, d):
        d["l85"].append(runner.step(topo, 0.85 * ref, mode["step"], mode["warm"], "load 85%"))
        # Warm (the step above), then idle: the burst to an otherwise idle node.
        d["sim"] += [profiles.simultaneous(runner, topo, simultaneous, idle, progress) for _ in range(bursts)]
        burst, sustained = profiles.overload(runner, topo, mode, ref, progress, late=late)
        d["burst"].append(burst)
        d["sus"].append(sustained)
        d["late"].append(sustained["late"])
    try:
        topology.reap_stale()
        if not a.saturation:
            phase(lambda t, d: d["sat"].append(profiles.saturation(runner, t, mode, [x["rate"] for x in d["sat"]],
                                                                   progress)))
        ref = a.saturation or statistics.median(x["rate"] for x in data[names[0]]["sat"])
        phase(overload)
    finally:
        topology.reap_stale()
        lock.close()
    out = {"started": started.isoformat(timespec="seconds"), "mode": "smoke" if a.smoke else "quick",
           "app_code": floors.APP_CODE, "cores": os.cpu_count(), "processes": len(fl.ports), "threads": fl.threads,
           "repeats": repeats, "manifest": fl.manifest,
           "simultaneous": {"requests": simultaneous, "bursts_per_block": bursts, "idle_s": idle},
           "reference": {"variant": names[0], "saturation_rate": ref},
           "sustained_s": mode["sustained"], "sustained_late_s": late,
           "settings": {n: {"max_conns": c, "fleet_queue_ms": q} for n, (c, q) in settings.items()},
           "variants": summary(data, names, ref), "warnings": runner.warnings}
    path = os.path.join(a.out, started.strftime("overload-variants-%Y%m%dT%H%M%SZ.json"))
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(table(out))
    print(path, file=sys.stderr)


def table(out):
    """The README's table: one row per variant; ratios (of the sustained regime) to the first and the second."""
    fmt = lambda iv: "-" if not iv else f"{iv['estimate']:.3g} [{iv['low']:.3g}, {iv['high']:.3g}]"  # noqa: E731
    pct = lambda a: f"{a['min']:.0%}-{a['max']:.0%}"  # noqa: E731
    names = list(out["variants"])
    second = names[1] if len(names) > 1 else names[0]
    lines = [f"| variant | max_conns | FLEET_QUEUE_MS | 150 % p99 ms | from {out['sustained_late_s']:g} s on | "
             f"/ {names[0]}'s | / {second}'s | saturation / {names[0]}'s | shed at 150 % | shed in the 120 % burst | "
             f"shed of {out['simultaneous']['requests']} at once (each burst) |", "|" + "---|" * 11]
    for n, v in out["variants"].items():
        s = out["settings"][n]
        lines.append(f"| `{n}` | {s['max_conns']} | {s['fleet_queue_ms']} | {fmt(v['sustained_p99_ms'])} | "
                     f"{fmt(v['late_p99_ms'])} | {fmt(v['late_p99_vs'].get(names[0]))} | "
                     f"{fmt(v['late_p99_vs'].get(second))} | {fmt(v['saturation_vs_ref'])} | "
                     f"{pct(v['sustained_shed_rate'])} | {pct(v['burst_shed_rate'])} | "
                     f"{' '.join(map(str, v['simultaneous']['shed']))} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
