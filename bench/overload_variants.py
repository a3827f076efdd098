#!/usr/bin/python3
"""How the fleet takes overload, per mechanism: the converged fleet rendered with
variants (nginx max_conns per instance, or a short uWSGI listen queue instead),
each through its saturation ramp, then 85 % load and the overload profile (burst
120 %, sustained 150 %), in a rotated order, with bootstrap intervals; ratios
against `unbounded` are paired by repeat. bench/README.md, "Choosing the
overload mechanism". Writes <out>/overload-variants-<UTC>.json, prints a table.

    /usr/bin/python3 bench/overload_variants.py [--repeats R] [--variants a,b,...]
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
import loadgen  # noqa: E402
import profiles  # noqa: E402
import render  # noqa: E402
import run as bench_run  # noqa: E402
import steps  # noqa: E402
import topology  # noqa: E402

# name: (max_conns per instance as a multiple of T, uWSGI listen queue as a multiple of T or None)
VARIANTS = {"unbounded": (0, None), "mc1T": (1, None), "mc2T": (2, None), "mc4T": (4, None), "listenT": (0, 1)}


def variant(fl, conns, listen):
    f = copy.copy(fl)
    f.nginx_conf = re.sub(r"max_conns=\d+", f"max_conns={conns * fl.threads}", fl.nginx_conf)
    if "max_conns=" not in f.nginx_conf and conns:
        raise SystemExit("the converged fleet renders no max_conns: converge this checkout first")
    if listen:
        f.instances = [dict(i, argv=render.set_option(i["argv"], "listen", str(listen * fl.threads)))
                       for i in fl.instances]
    return f


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--variants", default=",".join(VARIANTS), help="first one is the reference")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    a = p.parse_args(argv)
    mode, fl, names = bench_run.MODES["quick"], fleet_files.read_fleet(), a.variants.split(",")
    fleets = {n: variant(fl, *VARIANTS[n]) for n in names}
    runner = steps.StepRunner(loadgen.make_payloads(mode["payloads"], seed=1), settle=mode["settle"], max_in_flight=512)
    progress = bench_run.Progress(0)
    data = {n: {"sat": [], "l85": [], "burst": [], "sus": []} for n in names}
    rows, rnd, lock = bench_run.williams(len(names)), 0, topology.acquire_lock()
    os.makedirs(os.path.join(a.out, "tmp", "logs"), exist_ok=True)

    def phase(work):
        nonlocal rnd
        for _ in range(a.repeats):
            for i in rows[rnd % len(rows)]:
                topo = topology.Topology("fleet", fleets[names[i]], processes=len(fl.ports), threads=fl.threads,
                                         port_base=10000, log_dir=os.path.join(a.out, "tmp", "logs"))
                try:
                    topo.start()
                    work(topo, data[names[i]])
                finally:
                    topo.stop()
            rnd += 1

    def overload(topo, d):
        d["l85"].append(runner.step(topo, 0.85 * ref, mode["step"], mode["warm"], "load 85%"))
        burst, sustained = profiles.overload(runner, topo, mode, ref, progress)
        d["burst"].append(burst)
        d["sus"].append(sustained)
    try:
        phase(lambda t, d: d["sat"].append(profiles.saturation(runner, t, mode, [x["rate"] for x in d["sat"]], progress)))
        ref = statistics.median(x["rate"] for x in data[names[0]]["sat"])
        phase(overload)
    finally:
        lock.close()
    out = {"reference": {"variant": names[0], "saturation_rate": ref}, "processes": len(fl.ports),
           "threads": fl.threads, "repeats": a.repeats, "variants": {}}
    blocks = lambda d, k: [x["_blocks"] for x in d[k]]  # noqa: E731
    for n in names:
        d, base, sat = data[n], data[names[0]], [x["rate"] for x in data[n]["sat"]]
        out["variants"][n] = v = {
            "saturation": analysis.interval(sat, stat="mean"),
            "p99_85_ms": analysis.interval(blocks(d, "l85")),
            "burst_p99_ms": analysis.interval(blocks(d, "burst")),
            "sustained_p99_ms": analysis.interval(blocks(d, "sus")),
            "sustained_p99_over_own_85": analysis.interval(blocks(d, "sus"), blocks(d, "l85")),
            "goodput_over_own_saturation": analysis.interval([x["achieved_rate"] for x in d["sus"]], sat, stat="mean"),
            "goodput_over_reference": analysis.interval([x["achieved_rate"] / ref for x in d["sus"]], stat="mean"),
            "sustained_shed_rate": analysis.agg([x["shed_rate"] for x in d["sus"]]),
            "sustained_failed_rate": analysis.agg([x["failed_rate"] for x in d["sus"]]),
            "burst_shed_rate": analysis.agg([x["shed_rate"] for x in d["burst"]]),
            "shed_p50_ms": analysis.agg([x["shed_latency_ms"]["p50"] for x in d["sus"]]),
            "shed_p99_ms": analysis.agg([x["shed_latency_ms"]["p99"] for x in d["sus"]]),
            "shed_with_retry_after": sum(x["shed_with_retry_after"] for x in d["sus"]),
            "status_counts": analysis.totals(d["sus"])["status_counts"],
            "other_cores": analysis.agg([x["cpu"]["other_cores"] for x in d["sus"] + d["l85"]]),
        }
        if n != names[0]:
            for key, k in (("burst_p99_vs_ref", "burst"), ("sustained_p99_vs_ref", "sus"), ("p99_85_vs_ref", "l85")):
                v[key] = analysis.interval(blocks(d, k), blocks(base, k))
    path = os.path.join(a.out, datetime.datetime.now(datetime.timezone.utc).strftime("overload-variants-%Y%m%dT%H%M%SZ.json"))
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    fmt = lambda iv: "-" if not iv else f"{iv['estimate']:.3g} [{iv['low']:.3g}, {iv['high']:.3g}]"  # noqa: E731
    cols = ("p99_85_ms", "sustained_p99_ms", "sustained_p99_over_own_85", "goodput_over_reference", "burst_p99_vs_ref")
    print("| variant | " + " | ".join(cols) + " | shed (sustained) | shed p50 ms |\n|" + "---|" * (len(cols) + 3))
    for n, v in out["variants"].items():
        print(f"| {n} | " + " | ".join(fmt(v.get(c)) for c in cols) +
              f" | {v['sustained_shed_rate']['median']} | {v['shed_p50_ms']['median']} |")
    print(path, file=sys.stderr)


if __name__ == "__main__":
    main()
