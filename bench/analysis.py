"""Numbers from loadgen Runs: per-step metrics (accepted, shed, failed), the
median/min/max over repeats, and bootstrap intervals. Pure functions."""
import statistics
from collections import Counter

import numpy as np

from loadgen import percentile

PERCENTILES = (("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9))
LAG_BEHIND_MS = 5.0
# Answers that say "come back later": SDKs back off on 429 (with Retry-After),
# Relay sheds with 503. Every other non-2xx answer, and a connection error, failed.
SHED_STATUSES = (429, 503)
BLOCK_S = 1.0        # bootstrap block: requests intended in the same second stay together


def _ms(seconds):
    return None if seconds is None else round(seconds * 1000.0, 3)


def latency_summary(latencies):
    """{'p50','p90','p99','p99.9','max','mean'} in ms (None when empty)."""
    out = {name: _ms(percentile(latencies, q)) for name, q in PERCENTILES}
    out["max"] = _ms(max(latencies)) if latencies else None
    out["mean"] = _ms(statistics.fmean(latencies)) if latencies else None
    return out


def blocks(results, t0, start, end, block_s=BLOCK_S):
    """Latencies (ms) of the 2xx answers intended in [start, end), one array per
    block of block_s seconds (by intended time): the bootstrap's unit."""
    count = max(1, round((end - start) / block_s))
    out = [[] for _ in range(count)]
    for r in results:
        k = int((r.intended - t0 - start) / block_s)
        if 200 <= r.status < 300 and 0 <= k < count:
            out[k].append(r.latency * 1000.0)
    return [np.array(b) for b in out if b]


def step_metrics(run, start, end, expected_labels=(), lag_behind_ms=LAG_BEHIND_MS):
    """Metrics of the requests *intended* in [start, end) (seconds from
    run.started). achieved_rate (the goodput) = (2xx answers - 1) / (last answer -
    first answer): below saturation the offered rate, above it what the server
    delivers (a backlog stretches the span)."""
    rs = [r for r in run.results if start <= r.intended - run.started < end]
    ok = [r for r in rs if 200 <= r.status < 300]
    shed = [r for r in rs if r.status in SHED_STATUSES]
    conn_errors = sum(1 for r in rs if r.status == 0)
    done = sorted(r.done for r in ok)
    span = done[-1] - done[0] if len(done) > 1 else 0.0
    lags = sorted(r.sent - r.intended for r in rs)
    lag_p99 = percentile(lags, 99) if lags else 0.0
    counts = Counter(r.backend for r in ok)
    counts.update({label: 0 for label in expected_labels})
    share = {k: round(v / len(ok), 4) if ok else 0.0 for k, v in sorted(counts.items())}
    # Most requests outstanding at once: at the generator's max_in_flight, later
    # requests wait for a free connection.
    in_flight = peak = 0
    for _, delta in sorted([(r.sent, 1) for r in rs] + [(r.done, -1) for r in rs]):
        in_flight += delta
        peak = max(peak, in_flight)
    n, window, blks = len(rs), end - start, blocks(rs, run.started, start, end)
    return {
        "sent_rate": round(n / window, 2), "window_s": round(window, 3),
        "sent": n, "ok": len(ok), "shed": len(shed), "non_2xx": n - len(ok) - conn_errors,
        "conn_errors": conn_errors, "failed": n - len(ok) - len(shed),
        "error_rate": round((n - len(ok)) / n, 5) if n else 0.0,
        "shed_rate": round(len(shed) / n, 5) if n else 0.0,
        "failed_rate": round((n - len(ok) - len(shed)) / n, 5) if n else 0.0,
        "status_counts": {str(k): v for k, v in sorted(Counter(r.status for r in rs).items())},
        "error_samples": sorted({r.error for r in rs if r.error})[:3],
        "achieved_rate": round((len(ok) - 1) / span, 2) if span > 0 else 0.0,
        "latency_ms": latency_summary([r.latency for r in ok]),
        "shed_latency_ms": {k: _ms(percentile([r.latency for r in shed], q)) for k, q in (("p50", 50), ("p99", 99))},
        "shed_with_retry_after": sum(1 for r in shed if r.retry_after),
        "backend_counts": dict(sorted(counts.items())), "shares": share,
        "imbalance": round(max(share.values()) * max(len(share), 1), 3) if ok else None,
        "generator": {"lag_p99_ms": _ms(lag_p99), "lag_max_ms": _ms(lags[-1] if lags else 0.0),
                      "behind": bool(lags) and lag_p99 * 1000.0 > lag_behind_ms, "max_in_flight": peak},
        "block_p99_ms": [round(float(np.percentile(b, 99, method="inverted_cdf")), 2) for b in blks],
        "_blocks": blks,
    }


# -- over repeats -----------------------------------------------------------------

def agg(values):
    """{'median','min','max','n'} of the non-None values."""
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": round(statistics.median(vals), 3), "min": round(min(vals), 3),
            "max": round(max(vals), 3), "n": len(vals)}


def aggregate(runs, keys):
    """agg over the repeats of each key path (e.g. 'latency_ms/p99')."""
    def get(r, key):
        for part in key.split("/"):
            r = (r or {}).get(part)
        return r
    out = {}
    for key in keys:
        *path, last = key.split("/")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[last] = agg(get(r, key) for r in runs)
    return out


def totals(runs, keys=("sent", "ok", "shed", "failed", "non_2xx", "conn_errors")):
    status = Counter()
    for r in runs:
        status.update(r["status_counts"])
    return {**{k: sum(r[k] for r in runs) for k in keys}, "status_counts": dict(sorted(status.items()))}


def ranked_shares(runs):
    """Shares busiest first, agg per rank (which worker is busiest changes between runs)."""
    n = max(len(r["shares"]) for r in runs)
    ranked = [sorted(r["shares"].values(), reverse=True) + [0.0] * (n - len(r["shares"])) for r in runs]
    return [agg(vals) for vals in zip(*ranked)]


# -- intervals ----------------------------------------------------------------------

# Latency bins for the bootstrap: 1 % wide (log) from 0.1 ms to 100 s. A resample
# is a weighted sum of its blocks' histograms: fast, and within 1 % of exact.
EDGES = np.geomspace(0.1, 1e5, 1390)


def _stat(hist, sums, counts, w, stat):
    """stat of the blocks pooled with weights w (one row per resample)."""
    if stat == "mean":
        return (w @ sums) / (w @ counts)
    out = []
    for rows in np.array_split(w, max(1, len(w) // 500)):
        cum = np.cumsum(rows @ hist, axis=1)
        k = (cum < cum[:, -1:] * (int(stat[1:]) / 100)).sum(axis=1)     # the first bin that reaches q
        out.append(np.sqrt(EDGES[k] * EDGES[k + 1]))
    return np.concatenate(out)


def _draws(reps, stat, idx, rng):
    """(stat of each resample, stat of all): repeats idx[r] drawn (rows), then
    within each drawn repeat its blocks with replacement. A repeat given as a
    number (a saturation, a goodput) is taken as it is, and averaged."""
    if not isinstance(reps[0], list):
        vals = np.array(reps, dtype=float)
        return vals[idx].mean(axis=1), float(vals.mean())
    blocks = [b for rep in reps for b in rep]
    hist = np.stack([np.histogram(b, EDGES)[0] for b in blocks]).astype(float)
    sums, counts = np.array([b.sum() for b in blocks]), np.array([len(b) for b in blocks], dtype=float)
    drawn = [(idx == i).sum(axis=1) for i in range(len(reps))]
    w = np.concatenate([rng.multinomial(drawn[i] * len(rep), [1.0 / len(rep)] * len(rep))
                        for i, rep in enumerate(reps)], axis=1).astype(float)
    return _stat(hist, sums, counts, w, stat), float(_stat(hist, sums, counts, np.ones((1, len(blocks))), stat)[0])


def interval(a, b=None, stat="p99", resamples=2000, level=0.95, seed=1):
    """{estimate, low, high} of stat(a), or of stat(a) / stat(b) (paired by repeat
    when both have as many): a two-level percentile bootstrap. a, b: one entry
    per repeat, each a list of blocks (arrays of ms) or a number. None without data."""
    sets = [s for s in (a, b) if s is not None]
    if any(not s or any(r is None or (isinstance(r, list) and not r) for r in s) for s in sets):
        return None
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(a), (resamples, len(a)))
    draws, estimate = _draws(a, stat, ia, rng)
    if b is not None:
        ib = ia if len(b) == len(a) else rng.integers(0, len(b), (resamples, len(b)))
        db, eb = _draws(b, stat, ib, rng)
        if not eb:
            return None
        draws, estimate = draws[db > 0] / db[db > 0], estimate / eb
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return {"estimate": round(estimate, 4), "low": round(float(low), 4), "high": round(float(high), 4)}


def verdict(iv):
    """'no difference' when the ratio's interval includes 1."""
    if iv is None:
        return "no data"
    return "no difference" if iv["low"] <= 1.0 <= iv["high"] else ("lower" if iv["high"] < 1.0 else "higher")
