"""latest.md and the PNG plots from a results dict (the JSON written by run.py).

    /usr/bin/python3 bench/report.py bench/results/latest.json   # redraw from a JSON
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LATENCY_KEYS = ("p50", "p90", "p99", "p99.9", "max")


def _num(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def _spread(a, digits=0):
    """'median (min–max)' of an agg dict."""
    if not a or a.get("median") is None:
        return "–"
    lo, hi = _num(a["min"], digits), _num(a["max"], digits)
    if a["n"] <= 1 or lo == hi:
        return _num(a["median"], digits)
    return f"{_num(a['median'], digits)} ({lo}–{hi})"


def _pct(a):
    if not a or a.get("median") is None:
        return "–"
    lo, hi = f"{a['min']:.0%}", f"{a['max']:.0%}"
    if a["n"] <= 1 or lo == hi:
        return f"{a['median']:.0%}"
    return f"{a['median']:.0%} ({lo}–{hi})"


def _mb(kb):
    return "–" if kb is None else f"{kb / 1024:.1f}"


def markdown(r):
    m, w = r["machine"], r["workload"]
    out = [f"# uwsgi_fleet benchmark ({r['mode']}, {r['started']})", ""]
    out.append(f"Machine: {m['cores']} cores ({m.get('cpu_model') or '?'}), kernel {m['kernel']}, "
               f"nginx {m['nginx']}, {m['uwsgi'] and 'uWSGI ' + m['uwsgi']}, Python {m['python']}, "
               f"gunicorn {m['gunicorn']}. Load average at start: {m.get('loadavg_at_start')}.")
    out.append(f"N = {r['processes']} instances/workers, T = {r['threads']} threads each "
               f"({r['processes_source'] or 'target'}). Repeats: {r['settings']['repeats']}, "
               f"load steps {r['settings']['step_s']:g} s. Run took {r['duration_s']:.0f} s.")
    bands = ", ".join(f"{b['share']:.0%} {b['low_bytes'] // 1000}–{b['high_bytes'] // 1000} kB"
                      for b in w["size_bands"])
    out.append(f"Workload: Sentry SDK store requests (gzip JSON + X-Sentry-Auth), event sizes {bands} "
               f"(log-uniform in each band; mean {w['raw_bytes']['mean'] / 1000:.0f} kB raw, "
               f"{w['gzip_bytes']['mean'] / 1000:.0f} kB gzip), {w['payloads']} event bodies (a new event_id per request), seed {w['seed']}; "
               f"simulated auth/quota hops: {w['simulated_hops']} x {w['simulated_hop_ms']} ms.")
    ref = r["reference"]
    rates = ", ".join(f"{o['load']:.0%} = {o['rate']:.0f} rps" for o in r["offered_rates"])
    out.append(f"Reference saturation: {ref['saturation_rate']:.0f} rps ({ref['topology'] or ref['source']}); "
               f"offered loads: {rates}. Cells are median (min–max) over repeats.")
    out += ["", "## Saturation and memory", "",
            "| topology | saturation rps | sustained rps | app RSS MB (PSS) | per instance RSS MB | nginx RSS MB |",
            "|---|---|---|---|---|---|"]
    for name, t in r["topologies"].items():
        sat = t["saturation"]
        mem = t["memory"] or {}
        per = ", ".join(_mb(i["rss_kb"]) for i in mem.get("instances", [])) or "–"
        app = mem.get("app_total_rss_kb", {}).get("median")
        pss = mem.get("app_total_pss_kb", {}).get("median")
        flag = "" if sat.get("reached") in (True, None) else " (not reached)"
        out.append(f"| {name} | {_spread(sat)}{flag} | {_spread(sat.get('sustained_rate'))} | "
                   f"{_mb(app)} ({_mb(pss)}) | {per} | {_mb(mem.get('nginx_rss_kb', {}).get('median'))} |")
    out += ["", "## Latency at fixed offered loads (ms, from intended send time)", "",
            "| topology | load | offered rps | achieved rps | p50 | p90 | p99 | p99.9 | max | errors | "
            "max share × N | gen lag p99 ms |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, t in r["topologies"].items():
        for l in t["loads"]:
            lat = l["latency_ms"]
            e = l["errors"]
            errors = f"{e['sent'] - e['ok']}/{e['sent']}"
            lag = l["generator"]
            capped = lag.get("max_in_flight", 0) >= r["settings"]["max_in_flight"]
            behind = (" ⚠cap" if capped else " ⚠") if lag["behind_runs"] else ""
            out.append(f"| {name} | {l['load']:.0%} | {l['offered_rate']:.0f} | {_spread(l['achieved_rate'])} | "
                       + " | ".join(_spread(lat[k], 1) for k in LATENCY_KEYS)
                       + f" | {errors} | {_spread(l['imbalance'], 2)} | {_spread(lag['lag_p99_ms'], 1)}{behind} |")
    out += ["", "## Backend shares (share of 2xx answers per instance / worker)", "",
            "Busiest first, median (min–max) of each rank over repeats (which worker is the busy one "
            "changes between runs). fleet: X-Fleet-Instance; single/gunicorn: the worker "
            "(uWSGI worker id, gunicorn worker number) that answered.", "",
            "| topology | load | shares, busiest first | per label (median) |", "|---|---|---|---|"]
    for name, t in r["topologies"].items():
        for l in t["loads"]:
            ranked = " / ".join(_pct(a) for a in l.get("ranked_shares", [])) or "n/a"
            shares = ", ".join(f"{k} {v['median']:.0%}" for k, v in l["shares"].items()) or "n/a"
            out.append(f"| {name} | {l['load']:.0%} | {ranked} | {shares} |")
    br = r["burst_rates"]
    s = r["settings"]
    out += ["", f"## Bursts ({br['base']:.0f} rps base, {s['bursts']} × {s['burst_s']:g} s at "
            f"{br['burst']:.0f} rps, {s['burst_recover_s']:g} s recovery)", "",
            "| topology | base p99 ms | burst p99 ms | burst max ms | burst achieved rps | drain s | errors |",
            "|---|---|---|---|---|---|---|"]
    for name, t in r["topologies"].items():
        b = t["burst"]
        if not b:
            continue
        undrained = f" ({b['undrained_bursts']} not drained)" if b["undrained_bursts"] else ""
        e = b["errors"]
        out.append(f"| {name} | {_spread(b['base_p99_ms'], 1)} | {_spread(b['burst_p99_ms'], 1)} | "
                   f"{_spread(b['burst_max_ms'], 1)} | {_spread(b['burst_achieved_rate'])} | "
                   f"{_spread(b['drain_s'], 2)}{undrained} | {e['sent'] - e['ok']}/{e['sent']} |")
    out += ["", "## Method and caveats", ""]
    for k, v in r["method"].items():
        out.append(f"- {k}: {v}")
    out.append(f"- generator: {r['generator']['note']}.")
    if r["generator"]["behind_runs"]:
        out.append(f"- requests left more than {r['settings']['lag_threshold_ms']:g} ms late (lag p99; ⚠ in the "
                   "table, ⚠cap: every one of the generator's senders was waiting on the server) in: "
                   + ", ".join(r["generator"]["behind_runs"]))
    for warning in r["warnings"]:
        out.append(f"- warning: {warning}")
    return "\n".join(out) + "\n"


def _colors(names):
    cmap = plt.get_cmap("tab10")
    return {n: cmap(i % 10) for i, n in enumerate(names)}


def plot_latency(r, path):
    names = list(r["topologies"])
    colors = _colors(names)
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    panels = list(LATENCY_KEYS) + ["achieved"]
    for ax, key in zip(axes.flat, panels):
        for name in names:
            loads = r["topologies"][name]["loads"]
            x = [l["offered_rate"] for l in loads]
            a = [l["achieved_rate"] if key == "achieved" else l["latency_ms"][key] for l in loads]
            pts = [(xi, ai) for xi, ai in zip(x, a) if ai.get("median") is not None]
            if not pts:
                continue
            xs = [p[0] for p in pts]
            med = [p[1]["median"] for p in pts]
            lo = [p[1]["median"] - p[1]["min"] for p in pts]
            hi = [p[1]["max"] - p[1]["median"] for p in pts]
            ax.errorbar(xs, med, yerr=[lo, hi], marker="o", capsize=3, label=name, color=colors[name])
        if key == "achieved":
            lim = max([l["offered_rate"] for t in r["topologies"].values() for l in t["loads"]] or [1])
            ax.plot([0, lim], [0, lim], ls=":", color="grey", lw=1)
            ax.set_title("achieved vs offered (rps)")
            ax.set_ylabel("achieved rps")
        else:
            ax.set_yscale("log")
            ax.set_title(f"{key} latency (ms, from intended send time)")
            ax.set_ylabel("ms")
        ax.set_xlabel("offered rps")
        ax.grid(True, which="both", alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"uwsgi_fleet: N={r['processes']} T={r['threads']}, {r['machine']['cores']} cores, "
                 f"median of {r['settings']['repeats']} (bars: min–max)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_shares(r, path):
    names = list(r["topologies"])
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names) + 1, 4.2), squeeze=False, sharey=True)
    cmap = plt.get_cmap("tab20")
    for ax, name in zip(axes[0], names):
        loads = r["topologies"][name]["loads"]
        ranks = max((len(l.get("ranked_shares", [])) for l in loads), default=0)
        labels = [f"#{i + 1}" for i in range(ranks)]
        x = list(range(len(loads)))
        bottom = [0.0] * len(loads)
        for i, label in enumerate(labels):
            vals = [((l["ranked_shares"][i] if i < len(l["ranked_shares"]) else {}).get("median") or 0.0)
                    for l in loads]
            lo = [v - (l["ranked_shares"][i]["min"] or 0.0) if i < len(l["ranked_shares"]) else 0 for v, l in zip(vals, loads)]
            hi = [(l["ranked_shares"][i]["max"] or 0.0) - v if i < len(l["ranked_shares"]) else 0 for v, l in zip(vals, loads)]
            ax.bar(x, vals, bottom=bottom, color=cmap(i % 20), label=label, edgecolor="white", lw=0.5)
            if i < ranks - 1:   # the last rank is whatever the others leave
                ax.errorbar(x, [b + v for b, v in zip(bottom, vals)], yerr=[lo, hi], fmt="none",
                            ecolor="black", elinewidth=0.8, capsize=2)
            bottom = [b + v for b, v in zip(bottom, vals)]
        if labels:
            ax.axhline(1 / len(labels), ls=":", color="black", lw=1)
            for i in range(1, len(labels)):
                ax.axhline(i / len(labels), ls=":", color="grey", lw=0.5)
        ax.set_xticks(x)
        ax.set_xticklabels([f"{l['load']:.0%}" for l in loads])
        ax.set_title(name)
        ax.set_xlabel("offered load")
        if len(labels) <= 8:
            ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("share of 2xx answers (busiest first)")
    fig.suptitle("requests served per instance (fleet: X-Fleet-Instance) or worker (single, gunicorn), "
                 "ranked busiest first (#1 at the bottom), median of repeats, bars: min–max; dotted: equal split")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_burst(r, path):
    names = list(r["topologies"])
    colors = _colors(names)
    fig, ax = plt.subplots(figsize=(12, 5))
    spans = None
    for name in names:
        runs = r["topologies"][name]["burst"].get("runs") or []
        if not runs or "timeline" not in runs[0]:
            continue
        tl = [p for p in runs[0]["timeline"] if p[1] is not None]
        ax.plot([p[0] for p in tl], [p[1] for p in tl], label=name, color=colors[name], lw=1.2)
        spans = spans or runs[0]["bursts"]
    for b in spans or []:
        ax.axvspan(b["start_s"], b["end_s"], color="red", alpha=0.1)
    ax.set_yscale("log")
    ax.set_xlabel("seconds (by intended send time; red: bursts)")
    ax.set_ylabel("rolling p99 over 250 ms (ms)")
    br = r["burst_rates"]
    ax.set_title(f"bursts: base {br['base']:.0f} rps, bursts at {br['burst']:.0f} rps (first repeat)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_all(results, out):
    written = []
    with open(os.path.join(out, "latest.md"), "w") as f:
        f.write(markdown(results))
    written.append("latest.md")
    for name, fn in (("latency.png", plot_latency), ("shares.png", plot_shares), ("burst.png", plot_burst)):
        fn(results, os.path.join(out, name))
        written.append(name)
    return written


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results", "latest.json")
    with open(path) as f:
        res = json.load(f)
    print(", ".join(write_all(res, os.path.dirname(os.path.abspath(path)))))
