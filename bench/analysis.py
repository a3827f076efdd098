"""Numbers from loadgen Runs: per-step metrics, burst/drain analysis, and the
median/min/max aggregation over repeats. Pure functions (no I/O)."""
import statistics
from collections import Counter

from loadgen import percentile

PERCENTILES = (("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9))
LAG_BEHIND_MS = 5.0


def _ms(seconds):
    return None if seconds is None else round(seconds * 1000.0, 3)


def latency_summary(latencies):
    """{'p50','p90','p99','p99.9','max','mean'} in ms (None when empty)."""
    out = {name: _ms(percentile(latencies, q)) for name, q in PERCENTILES}
    out["max"] = _ms(max(latencies)) if latencies else None
    out["mean"] = _ms(statistics.fmean(latencies)) if latencies else None
    return out


def shares(results, label_of, expected_labels=()):
    """Share of 2xx answers per backend label (X-Fleet-Instance mapped by label_of)."""
    counts = Counter(label_of(r.backend) for r in results if 200 <= r.status < 300)
    for label in expected_labels:
        counts.setdefault(label, 0)
    total = sum(counts.values())
    share = {k: (round(v / total, 4) if total else 0.0) for k, v in sorted(counts.items())}
    n = max(len(expected_labels), len(counts)) or 1
    imbalance = round(max(share.values()) * n, 3) if total else None
    return dict(sorted(counts.items())), share, imbalance


def step_metrics(run, window_start, window_end, label_of, expected_labels=(), lag_behind_ms=LAG_BEHIND_MS):
    """Metrics of the requests *intended* in [window_start, window_end) (offsets
    from run.started, seconds). achieved_rate = (2xx answers - 1) / (last answer -
    first answer): under overload the backlog stretches the span, so it falls to
    what the server delivers; below saturation it is the offered rate."""
    t0 = run.started
    rs = [r for r in run.results if window_start <= r.intended - t0 < window_end]
    ok = [r for r in rs if 200 <= r.status < 300]
    conn_errors = [r for r in rs if r.status == 0]
    non_2xx = [r for r in rs if r.status and not 200 <= r.status < 300]
    done = sorted(r.done for r in ok)
    span = done[-1] - done[0] if len(done) > 1 else 0.0
    lags = sorted(r.sent - r.intended for r in rs)
    lag_p99 = percentile(lags, 99) if lags else 0.0
    counts, share, imbalance = shares(ok, label_of, expected_labels)
    # Most requests outstanding at once (a sweep over send/answer times): at the
    # generator's max_in_flight, later requests wait for a free sender.
    events = sorted([(r.sent, 1) for r in rs] + [(r.done, -1) for r in rs])
    in_flight = peak = 0
    for _, delta in events:
        in_flight += delta
        peak = max(peak, in_flight)
    duration = window_end - window_start
    return {
        "sent_rate": round(len(rs) / duration, 2) if duration else 0.0,
        "window_s": round(duration, 3),
        "sent": len(rs), "ok": len(ok), "non_2xx": len(non_2xx), "conn_errors": len(conn_errors),
        "error_rate": round((len(rs) - len(ok)) / len(rs), 5) if rs else 0.0,
        "status_counts": {str(k): v for k, v in sorted(Counter(r.status for r in rs).items())},
        "error_samples": sorted({r.error for r in conn_errors})[:3],
        "achieved_rate": round((len(ok) - 1) / span, 2) if span > 0 else 0.0,
        "latency_ms": latency_summary([r.latency for r in ok]),
        "backend_counts": counts, "shares": share, "imbalance": imbalance,
        "generator": {"lag_p99_ms": _ms(lag_p99), "lag_max_ms": _ms(lags[-1] if lags else 0.0),
                      "behind": bool(lags) and lag_p99 * 1000.0 > lag_behind_ms,
                      "max_in_flight": peak},
    }


def _window_p99(points, start, end):
    vals = [lat for t, lat in points if start <= t < end]
    return (percentile(vals, 99), len(vals)) if vals else (None, 0)


def rolling_p99(points, start, end, width=0.25, step=0.1):
    """[(window centre, p99 ms, n)] of windows [t, t+width) by intended time."""
    out, t = [], start
    while t + width <= end + 1e-9:
        p99, n = _window_p99(points, t, t + width)
        out.append((round(t + width / 2, 3), _ms(p99), n))
        t += step
    return out


def burst_metrics(run, warm, base_s, burst_s, recover_s, count, label_of, expected_labels=(),
                  width=0.25, step=0.05, factor=1.5, hold=2, min_samples=5):
    """Base-load p99, p99/max inside the bursts, and the drain time after each
    burst: seconds from the burst's end until a rolling p99 over `width` s (by
    intended time) is back within `factor` x base p99 and stays there for `hold`
    consecutive non-overlapping windows. None: not drained before the next burst
    / the end of the run."""
    t0 = run.started
    points = [(r.intended - t0, r.latency) for r in run.results if 200 <= r.status < 300]
    base = step_metrics(run, warm, warm + base_s, label_of, expected_labels)
    base_p99 = base["latency_ms"]["p99"]
    threshold = base_p99 * factor / 1000.0 if base_p99 else None
    bursts, in_burst = [], []
    for k in range(count):
        bs = warm + base_s + k * (burst_s + recover_s)
        be = bs + burst_s
        next_start = be + recover_s
        in_burst += [lat for t, lat in points if bs <= t < be]
        drain = None
        if threshold is not None:
            t = be
            while t + width * hold <= next_start + 1e-9:
                ok = True
                for h in range(hold):
                    p99, n = _window_p99(points, t + h * width, t + (h + 1) * width)
                    if p99 is None or n < min_samples or p99 > threshold:
                        ok = False
                        break
                if ok:
                    drain = round(t - be, 3)
                    break
                t += step
        bursts.append({"start_s": round(bs, 3), "end_s": round(be, 3), "drain_s": drain})
    whole = step_metrics(run, warm, run.duration, label_of, expected_labels)
    burst_windows = [step_metrics(run, b["start_s"], b["end_s"], label_of, expected_labels) for b in bursts]
    return {
        "base_latency_ms": base["latency_ms"],
        "burst_latency_ms": latency_summary(in_burst),
        "burst_achieved_rate": (round(statistics.fmean(b["achieved_rate"] for b in burst_windows), 2)
                                if burst_windows else None),
        "drain_threshold_ms": _ms(threshold),
        "bursts": bursts,
        "drain_s_worst": (None if any(b["drain_s"] is None for b in bursts)
                          else max((b["drain_s"] for b in bursts), default=None)),
        "undrained_bursts": sum(1 for b in bursts if b["drain_s"] is None),
        "sent": whole["sent"], "ok": whole["ok"], "non_2xx": whole["non_2xx"],
        "conn_errors": whole["conn_errors"], "status_counts": whole["status_counts"],
        "shares": whole["shares"], "generator": whole["generator"],
        "timeline": [[t, p99, n] for t, p99, n in rolling_p99(points, 0.0, run.duration)],
    }


# -- aggregation over repeats -----------------------------------------------------

def agg(values):
    """{'median','min','max','n'} of the non-None values (None if there are none)."""
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": round(statistics.median(vals), 3), "min": round(min(vals), 3),
            "max": round(max(vals), 3), "n": len(vals)}


def _ranked(share, n):
    vals = sorted(share.values(), reverse=True)
    return vals + [0.0] * (n - len(vals))


def aggregate_steps(runs):
    """Median (min-max) over the repeats of one (topology, load)."""
    if not runs:
        return {}
    labels = sorted({k for r in runs for k in r["shares"]})
    status = Counter()
    for r in runs:
        status.update(r["status_counts"])
    return {
        "achieved_rate": agg(r["achieved_rate"] for r in runs),
        "latency_ms": {k: agg(r["latency_ms"][k] for r in runs)
                       for k in ("p50", "p90", "p99", "p99.9", "max", "mean")},
        "errors": {"sent": sum(r["sent"] for r in runs), "ok": sum(r["ok"] for r in runs),
                   "non_2xx": sum(r["non_2xx"] for r in runs),
                   "conn_errors": sum(r["conn_errors"] for r in runs),
                   "error_rate": agg(r["error_rate"] for r in runs),
                   "status_counts": dict(sorted(status.items()))},
        "shares": {k: agg(r["shares"].get(k, 0.0) for r in runs) for k in labels},
        # Which worker is the busy one changes from run to run (single, gunicorn),
        # so per-label medians hide imbalance: rank the shares first.
        "ranked_shares": [agg(vals) for vals in zip(*[_ranked(r["shares"], len(labels)) for r in runs])],
        "imbalance": agg(r["imbalance"] for r in runs),
        "generator": {"lag_p99_ms": agg(r["generator"]["lag_p99_ms"] for r in runs),
                      "lag_max_ms": agg(r["generator"]["lag_max_ms"] for r in runs),
                      "behind_runs": sum(1 for r in runs if r["generator"]["behind"]),
                      "max_in_flight": max(r["generator"].get("max_in_flight", 0) for r in runs),
                      "cpu_cores": agg((r.get("cpu") or {}).get("generator_cores") for r in runs)},
        "cpu_cores": {k: agg((r.get("cpu") or {}).get(k) for r in runs)
                      for k in ("system_cores", "servers_cores", "generator_cores", "other_cores")},
    }


def aggregate_bursts(runs, recover_s):
    if not runs:
        return {}
    return {
        "base_p99_ms": agg(r["base_latency_ms"]["p99"] for r in runs),
        "burst_p99_ms": agg(r["burst_latency_ms"]["p99"] for r in runs),
        "burst_max_ms": agg(r["burst_latency_ms"]["max"] for r in runs),
        "burst_achieved_rate": agg(r["burst_achieved_rate"] for r in runs),
        # A burst that never drained counts as the whole recovery period.
        "drain_s": agg((r["drain_s_worst"] if r["drain_s_worst"] is not None else recover_s) for r in runs),
        "undrained_bursts": sum(r["undrained_bursts"] for r in runs),
        "errors": {"sent": sum(r["sent"] for r in runs), "ok": sum(r["ok"] for r in runs),
                   "non_2xx": sum(r["non_2xx"] for r in runs),
                   "conn_errors": sum(r["conn_errors"] for r in runs)},
        "generator": {"lag_p99_ms": agg(r["generator"]["lag_p99_ms"] for r in runs),
                      "behind_runs": sum(1 for r in runs if r["generator"]["behind"])},
    }
