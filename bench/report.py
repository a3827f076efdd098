"""latest.md and latency.png from a results dict (the JSON written by run.py),
and whether two runs agree.

    /usr/bin/python3 bench/report.py bench/results/latest.json   # redraw from a JSON
    /usr/bin/python3 bench/report.py A.json B.json               # do A's and B's intervals overlap?
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

def _num(v, digits=0):
    return "–" if v is None else f"{v:,.{digits}f}"


def _spread(a, digits=0):
    """'median (min–max)' of an agg."""
    if not a or a.get("median") is None:
        return "–"
    lo, hi = _num(a["min"], digits), _num(a["max"], digits)
    return _num(a["median"], digits) if a["n"] <= 1 or lo == hi else f"{_num(a['median'], digits)} ({lo}–{hi})"


def _iv(iv, digits=2):
    """'estimate [low, high]' of an interval."""
    return "–" if not iv else f"{iv['estimate']:,.{digits}f} [{iv['low']:,.{digits}f}, {iv['high']:,.{digits}f}]"


def _pct(a):
    return "–" if not a or a.get("median") is None else f"{a['median']:.1%}"


def goal_lines(r):
    """Each goal of issue 13 with its interval, one line each."""
    return [f"goal: {g['goal']} = {_iv(g if 'estimate' in g else None)} (target {g['target']}): {g['status']}"
            + (f" (interval {g['interval']} the target)" if "interval" in g else "") for g in r["goals"]]


def markdown(r):
    m, w, s, fl = r["machine"], r["workload"], r["settings"], r["floors"]
    out = [f"# uwsgi_fleet benchmark ({r['mode']}, {r['started']})", "",
           f"Machine: {m['cores']} cores ({m.get('cpu_model') or '?'}), kernel {m['kernel']}, nginx {m['nginx']}, "
           f"uWSGI {m['uwsgi']}, Python {m['python']}, gunicorn {m['gunicorn']}; load average at the end "
           f"{m['loadavg_at_end']}. N = {r['processes']}, T = {r['threads']} ({r['processes_source']}). "
           f"{s['repeats']} repeats in a rotated order, load steps {s['warm']:g} s warm + {s['step']:g} s measured. "
           f"Run took {r['duration_s']:.0f} s.",
           f"Workload: Sentry SDK store requests, {w['payloads']} event bodies (mean {w['raw_bytes']['mean'] / 1000:.0f} "
           f"kB raw, {w['gzip_bytes']['mean'] / 1000:.0f} kB gzip), a new event_id each, seed {w['seed']}; simulated "
           f"auth/quota hops {w['simulated_hops']} x {w['simulated_hop_ms']} ms. Reference saturation "
           f"{r['reference']['saturation_rate']:.0f} rps ({r['reference']['topology'] or r['reference']['source']}); "
           + ", ".join(f"{o['load']:.0%} = {o['rate']:.0f} rps" for o in r["offered_rates"]) + ".",
           "Intervals: 95 %, bootstrap over repeats and 1 s blocks (bench/README.md). Cells: median (min–max) over "
           "repeats, or estimate [interval].", "", "## Goals (issue 13)", "",
           "| goal | ratio [95 % interval] | target | status |", "|---|---|---|---|"]
    out += [f"| {g['goal']} | {_iv(g if 'estimate' in g else None)} | {g['target']} | {g['status']}"
            + (f", interval {g['interval']} |" if "interval" in g else " |") for g in r["goals"]]
    out += ["", "## Floors (this machine, this run)", "",
            f"- CPU: {_spread(fl['cpu']['events_per_s'])} events/s ({fl['cpu']['processes']} processes inflating and "
            f"parsing with the app's code; {_spread(fl['cpu']['cpu_ms_per_event'], 3)} ms CPU per event).",
            f"- I/O: {_spread(fl['io']['events_per_s'])} events/s ({fl['io']['processes']} processes x "
            f"{fl['io']['threads']} threads writing with the app's spool code into {fl['io']['spool_dir']}).",
            f"- Lower: {fl['lower']}. Saturation as a fraction of the lower floor: "
            + ", ".join(f"{n} {_iv(iv)}" for n, iv in fl["saturation_fraction_of_lower"].items()) + ".", "",
            "## Saturation and memory", "", "| topology | saturation rps | interval | sustained rps | app RSS MB (PSS) |"
            " nginx RSS MB |", "|---|---|---|---|---|---|"]
    mb = lambda a: _num(a["median"] / 1024, 1) if a and a.get("median") is not None else "–"  # noqa: E731
    for name, t in r["topologies"].items():
        sat, mem = t["saturation"], t["memory"]
        out.append(f"| {name} | {_spread(sat)} | {_iv(sat['interval'], 0)} | {_spread(sat['sustained_rate'])} | "
                   f"{mb(mem['app_total']['rss_kb'])} ({mb(mem['app_total']['pss_kb'])}) | {mb(mem['nginx']['rss_kb'])} |")
    out += ["", "## Latency at fixed loads (ms, from the intended send time)", "",
            "| topology | load | achieved rps | p50 | p99 | p99 pooled [interval] | p99.9 | max | failed | max share × N "
            "| generator cores | lag p99 ms |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, t in r["topologies"].items():
        for lo in t["loads"]:
            lat, e, g = lo["latency_ms"], lo["errors"], lo["generator"]
            flag = (" ⚠cap" if g["max_in_flight"] >= s["max_in_flight"] else " ⚠") if g["behind_runs"] else ""
            out.append(f"| {name} | {lo['load']:.0%} | {_spread(lo['achieved_rate'])} | {_spread(lat['p50'], 1)} | "
                       f"{_spread(lat['p99'], 1)} | {_iv(lo['pooled_ms']['p99'], 1)} | {_spread(lat['p99.9'], 1)} | "
                       f"{_spread(lat['max'], 1)} | {e['failed']}/{e['sent']} | {_spread(lo['imbalance'], 2)} | "
                       f"{_spread(lo['cpu']['generator_cores'], 3)} | {_spread(g['lag_p99_ms'], 1)}{flag} |")
    out += ["", "## Ratios (interval including 1: no difference)", "", "| ratio | of | estimate [interval] | verdict |",
            "|---|---|---|---|"]
    out += [f"| {x['ratio']} | {x['of']} | {_iv(x['interval'])} | {x['verdict']} |" for x in r["ratios"]]
    b = r["burst_rates"]
    out += ["", f"## Overload: {s['burst']:g} s at {b['burst']:.0f} rps (120 %) after {b['base']:.0f} rps, and {s['sustained']:g} s "
            f"sustained at {s['sustained_load']:.0%}", "", "| topology | profile | accepted p99 ms [interval] | shed | failed | "
            "shed p99 ms | goodput rps |", "|---|---|---|---|---|---|---|"]
    out += [f"| {name} | {what} | {_iv(x['pooled_ms']['p99'], 1)} | {_pct(x['shed_rate'])} | {_pct(x['failed_rate'])} | "
            f"{_spread(x['shed_latency_ms']['p99'], 1)} | {_spread(x['achieved_rate'])} |"
            for name, t in r["topologies"].items() for what, x in (("burst 120 %", t["burst"]), ("sustained 150 %", t["sustained"]))]
    g = r["generator"]
    out += ["", "## Notes", "", f"- generator: {g['note']}; {_spread(g['cpu']['generator_cores'], 3)} cores, "
            f"{_spread(g['cpu']['generator_us_per_request'])} µs CPU per request over the measured steps."]
    out += [f"- warning: {x}" for x in r["warnings"]]
    return "\n".join(out) + "\n"


def plot_latency(r, path):
    """p50 and p99 pooled over the repeats (bars: 95 % interval), and achieved against offered rps."""
    colors = {n: plt.get_cmap("tab10")(i % 10) for i, n in enumerate(r["topologies"])}
    fig, (p50, p99, rate) = plt.subplots(1, 3, figsize=(16, 5))
    for name, t in r["topologies"].items():
        x = [lo["offered_rate"] for lo in t["loads"]]
        for ax, key in ((p50, "p50"), (p99, "p99")):
            pts = [(xi, lo["pooled_ms"][key]) for xi, lo in zip(x, t["loads"]) if lo["pooled_ms"][key]]
            ax.errorbar([p[0] for p in pts], [p[1]["estimate"] for p in pts], marker="o", capsize=3, label=name,
                        color=colors[name], yerr=[[p[1]["estimate"] - p[1]["low"] for p in pts],
                                                  [p[1]["high"] - p[1]["estimate"] for p in pts]])
        rate.plot(x, [lo["achieved_rate"]["median"] for lo in t["loads"]], marker="o", label=name, color=colors[name])
    for ax, title in ((p50, "p50 ms (log)"), (p99, "p99 ms (log)"), (rate, "achieved rps")):
        ax.set_title(f"{title}, from the intended send time" if ax is not rate else title)
        ax.set_yscale("linear" if ax is rate else "log")
        ax.set_xlabel("offered rps")
        ax.grid(True, which="both", alpha=0.3)
    p50.legend(fontsize=8)
    fig.suptitle(f"uwsgi_fleet: N={r['processes']} T={r['threads']}, {r['machine']['cores']} cores, "
                 f"{r['settings']['repeats']} repeats pooled (bars: 95 % interval)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_all(results, out):
    with open(os.path.join(out, "latest.md"), "w") as f:
        f.write(markdown(results))
    plot_latency(results, os.path.join(out, "latency.png"))
    return ["latest.md", "latency.png"]


def agreement(a, b):
    """Markdown: each goal and ratio of two runs, and whether their intervals overlap."""
    def rows(r):
        out = {("goal", g["goal"]): g if "estimate" in g else None for g in r["goals"]}
        return {**out, **{(x["ratio"], x["of"]): x["interval"] for x in r["ratios"]}}
    ra, rb = rows(a), rows(b)
    out = [f"| ratio | of | {a['started']} | {b['started']} | overlap |", "|---|---|---|---|---|"]
    for key in (k for k in ra if k in rb):
        x, y = ra[key], rb[key]
        overlap = "–" if not (x and y) else "yes" if x["low"] <= y["high"] and y["low"] <= x["high"] else "**no**"
        out.append(f"| {key[0]} | {key[1]} | {_iv(x)} | {_iv(y)} | {overlap} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    paths = sys.argv[1:] or [os.path.join(os.path.dirname(__file__), "results", "latest.json")]
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append(json.load(f))
    if len(runs) == 2:
        print(agreement(*runs), end="")
    else:
        print(", ".join(write_all(runs[0], os.path.dirname(os.path.abspath(paths[0])))))
