"""Smoke test of the benchmark harness (bench/run.py), and of
bench/overload_variants.py (ramps skipped, two variants).

Runs the harness in --smoke mode (seconds, topology `fleet` only) into a
temporary directory, then checks the results' schema (keys and types, as
documented in bench/README.md), that every goal, floor, overload figure and
the generator's CPU are reported with their intervals, that the PNG plots are
valid PNG files, and that nothing is left running. It asserts no speed: the
numbers are whatever this machine gives.

Needs root and the converged node (its manifest /etc/uwsgi_fleet/fleet.json
and the files it points to): run it after `make converge` (or the kitchen
suites). Uses loopback ports 10500-10699.

    /usr/bin/python3 -m pytest test/bench
"""
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(REPO, "bench", "run.py")
VARIANTS = os.path.join(REPO, "bench", "overload_variants.py")
PYTHON = "/usr/bin/python3"
PORT_BASE, VARIANTS_PORT_BASE = "10500", "10600"
BENCH_ROOT = "/var/tmp/uwsgi_fleet_bench"
MANIFEST = "/etc/uwsgi_fleet/fleet.json"
NODE_FILES = ["/etc/nginx/nginx.conf", MANIFEST, "/etc/uwsgi_fleet/store_app.json"]
sys.path.insert(0, os.path.join(REPO, "bench"))

import procfs  # noqa: E402  (the /proc helpers the harness uses)

NUM = (int, float)
OPT = (int, float, type(None))
AGG = {"median": NUM, "min": NUM, "max": NUM, "n": int}
OPT_AGG = {"median": OPT, "min": OPT, "max": OPT, "n": int}
INTERVAL = {"estimate": NUM, "low": NUM, "high": NUM}
LATENCY = {k: AGG for k in ("p50", "p90", "p99", "p99.9", "max", "mean")}
CPU_RUN = {k: NUM for k in ("system_busy", "system_cores", "irq_cores", "servers_cores", "generator_cores",
                            "generator_user_cores", "generator_sys_cores", "generator_us_per_request", "other_cores")}
STEP_RUN = {
    "sent_rate": NUM, "window_s": NUM, "sent": int, "ok": int, "shed": int, "failed": int,
    "non_2xx": int, "conn_errors": int, "error_rate": NUM, "shed_rate": NUM, "failed_rate": NUM,
    "status_counts": dict, "achieved_rate": NUM, "offered_rate": NUM,
    "latency_ms": {k: NUM for k in ("p50", "p90", "p99", "p99.9", "max", "mean")},
    "shed_latency_ms": {"p50": OPT, "p99": OPT}, "shed_with_retry_after": int, "block_p99_ms": [NUM],
    "backend_counts": dict, "shares": dict, "imbalance": NUM,
    "generator": {"lag_p99_ms": NUM, "lag_max_ms": NUM, "behind": bool, "max_in_flight": int},
    "cpu": CPU_RUN,
}
STEP = {
    "achieved_rate": AGG, "error_rate": AGG, "shed_rate": AGG, "failed_rate": AGG, "latency_ms": LATENCY,
    "shed_latency_ms": {"p50": OPT_AGG, "p99": OPT_AGG},
    "pooled_ms": {k: INTERVAL for k in ("p50", "p99", "mean")},
    "errors": {"sent": int, "ok": int, "shed": int, "failed": int, "non_2xx": int, "conn_errors": int,
               "status_counts": dict},
    "shares": dict, "ranked_shares": [AGG], "imbalance": AGG,
    "generator": {"lag_p99_ms": AGG, "lag_max_ms": AGG, "behind_runs": int, "max_in_flight": int},
    "cpu": {k: AGG for k in CPU_RUN if k != "system_busy"},
    "runs": [STEP_RUN],
}
MEM = {"processes": int, "rss_kb": int, "pss_kb": int}
TOPOLOGY = {
    "description": str,
    "saturation": {**AGG, "interval": INTERVAL, "sustained_rate": OPT_AGG, "reached": bool,
                   "runs": [{"rate": NUM, "reached": bool, "sustained_rate": OPT,
                             "ramp": [{"offered_rate": NUM, "achieved_rate": NUM, "error_rate": NUM,
                                       "passed": bool, "cpu": CPU_RUN}]}]},
    "loads": [{**STEP, "load": NUM, "offered_rate": NUM}],
    "burst": {**STEP, "load": NUM, "offered_rate": NUM, "base_p99_ms": AGG},
    "sustained": {**STEP, "load": NUM, "offered_rate": NUM, "goodput_fraction_of_saturation": INTERVAL},
    "memory": {"app_total": {"rss_kb": AGG, "pss_kb": AGG}, "nginx": {"rss_kb": AGG, "pss_kb": AGG},
               "runs": [{"instances": [dict(label=str, **MEM)], "app_total": MEM, "nginx": MEM}]},
    "commands": {"nginx": list, "backends": dict},
}
FLOOR_RUN = {"cpu": {"events_per_s": NUM, "processes": int, "cpu_ms_per_event": NUM, "capacity_events_per_s": NUM},
             "io": {"events_per_s": NUM, "processes": int, "threads": int, "spool_dir": str},
             "lower": str, "lower_events_per_s": NUM}
GOAL = {"goal": str, "target": str, "status": str}
SCHEMA = {
    "schema_version": int, "started": str, "finished": str, "duration_s": NUM, "mode": str, "argv": list,
    "machine": {"cores": int, "kernel": str, "nginx": str, "uwsgi": str, "python": str, "gunicorn": str,
                "loadgen_python": str, "cpu_model": (str, type(None)), "mem_total_kb": int},
    "processes": int, "threads": int, "processes_source": str, "threads_source": str,
    "node": {"balance": (str, type(None)), "manifest": {"ports": list, "threads": int}, "sources": dict},
    "workload": {"request": str, "seed": int, "payloads": int,
                 "size_bands": [{"share": NUM, "low_bytes": int, "high_bytes": int, "within": str}],
                 "raw_bytes": {"mean": int, "p50": int, "p90": int, "max": int},
                 "gzip_bytes": {"mean": int, "p50": int, "p90": int, "max": int},
                 "simulated_hops": int, "simulated_hop_ms": NUM},
    "settings": {"repeats": int, "loads": list, "step": NUM, "warm": NUM, "sustained": NUM, "burst_base_load": NUM,
                 "burst_load": NUM, "sustained_load": NUM, "generator_nice": int, "topology_order": list,
                 "lag_threshold_ms": NUM, "shed_statuses": [int],
                 "schedule": {"saturation": [list], "loads": [list], "overload": [list]},
                 "bootstrap": {"resamples": int, "level": NUM, "block_s": NUM}},
    "reference": {"topology": str, "saturation_rate": NUM, "source": str},
    "offered_rates": [{"load": NUM, "rate": NUM}],
    "burst_rates": {"base": NUM, "burst": NUM},
    "floors": {"cpu": {"events_per_s": AGG, "cpu_ms_per_event": AGG, "capacity_events_per_s": AGG, "processes": int},
               "io": {"events_per_s": AGG, "processes": int, "threads": int, "spool_dir": str},
               "lower": str, "lower_events_per_s": AGG,
               "app_code": {"floors": str, "servers": str, "same": bool},
               "saturation_fraction_of_lower": {"fleet": INTERVAL}, "runs": [FLOOR_RUN]},
    "generator": {"cpu": {"generator_cores": AGG, "generator_us_per_request": AGG}, "generator": {"lag_p99_ms": AGG},
                  "behind_runs": list, "note": str},
    "ratios": list,
    "goals": [GOAL],
    "topologies": {"fleet": TOPOLOGY},
    "warnings": list,
}


def check(value, schema, path="$"):
    """Assert `value` has every key of `schema` with the given type(s); lists are
    checked element by element against the schema's single element."""
    if isinstance(schema, dict):
        assert isinstance(value, dict), f"{path}: expected an object, got {type(value).__name__}"
        for key, sub in schema.items():
            assert key in value, f"{path}: missing key {key!r}"
            check(value[key], sub, f"{path}.{key}")
    elif isinstance(schema, list):
        assert isinstance(value, list), f"{path}: expected a list, got {type(value).__name__}"
        assert value, f"{path}: empty list"
        for i, item in enumerate(value):
            check(item, schema[0], f"{path}[{i}]")
    else:
        assert isinstance(value, schema) and not (isinstance(value, bool) and schema in (NUM, int)), \
            f"{path}: expected {schema}, got {value!r}"


def check_png(path):
    """A complete, well-formed PNG: signature, IHDR with a size, chunk CRCs, IEND."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    pos, chunks = 8, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc, = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"{path}: bad CRC in {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND", f"{path}: chunks {[c[0] for c in chunks]}"
    width, height = struct.unpack(">II", chunks[0][1][:8])
    assert width > 100 and height > 100, f"{path}: {width}x{height}"
    assert any(kind == b"IDAT" for kind, _ in chunks)


def leftovers():
    """Processes still running from a bench topology (their command lines name the work dir)."""
    return procfs.pids_with_arg(BENCH_ROOT)


@pytest.fixture(scope="module", autouse=True)
def node_ready():
    if os.geteuid() != 0:
        pytest.fail("the bench smoke test needs root (nginx master, servers run as the fleet user)")
    missing = [p for p in NODE_FILES if not os.path.exists(p)]
    if missing:
        pytest.fail(f"the converged node's files are missing ({missing}): run `make converge` first")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([PYTHON, RUN, "--smoke", "--topologies", "fleet", "--out", str(out),
                           "--port-base", PORT_BASE], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"bench/run.py --smoke failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    with open(out / "latest.json") as f:
        return out, proc, json.load(f)


def test_smoke_run_writes_results_with_the_documented_schema(smoke):
    out, _, results = smoke
    check(results, SCHEMA)
    assert results["mode"] == "smoke" and results["schema_version"] == 2
    assert list(results["topologies"]) == ["fleet"]
    fleet = results["topologies"]["fleet"]
    assert fleet["loads"][0]["errors"]["sent"] > 0
    assert len(fleet["memory"]["runs"][0]["instances"]) == results["processes"]
    assert not any("_blocks" in json.dumps(k) for k in results), "bootstrap samples leaked into the JSON"
    stamped = [p for p in os.listdir(out) if p.endswith("Z.json")]
    assert len(stamped) == 1
    with open(out / stamped[0]) as f:
        assert json.load(f) == results


def _inside(iv):
    return iv["low"] <= iv["estimate"] <= iv["high"]


def test_every_goal_is_reported_with_an_interval_or_no_data(smoke):
    _, proc, results = smoke
    goals = {g["goal"]: g for g in results["goals"]}
    assert len(goals) == 6
    for text, g in goals.items():
        cross = "single's" in text or "gunicorn's" in text
        if cross:   # smoke runs fleet alone: nothing to compare with
            assert g["status"] == "no data"
        else:
            check(g, {**INTERVAL, "status": str, "interval": str})
            assert _inside(g) and g["status"] in ("met", "not met")
        assert f"goal: {text} = " in proc.stderr, "the run prints every goal"
    assert "| fleet saturation / the lower floor |" in (smoke[0] / "latest.md").read_text()


def test_floors_are_measured_with_the_app_code_and_saturation_is_a_fraction_of_the_lower(smoke):
    """Both floors run the checkout's own app code (its WSGI callable, its spool_event)."""
    _, _, results = smoke
    floors, fleet = results["floors"], results["topologies"]["fleet"]
    for run in floors["runs"]:
        assert run["cpu"]["events_per_s"] > 0 and run["io"]["events_per_s"] > 0
        assert run["lower_events_per_s"] == min(run["cpu"]["events_per_s"], run["io"]["events_per_s"])
        assert run["io"]["threads"] == results["threads"] and run["io"]["processes"] == results["processes"]
    code = floors["app_code"]
    assert code["same"] == (code["floors"] == code["servers"])
    # Another checkout converged on this node: the run says so.
    assert code["same"] or any("converge this checkout" in w for w in results["warnings"])
    fraction = floors["saturation_fraction_of_lower"]["fleet"]
    assert abs(fraction["estimate"] - fleet["saturation"]["median"] / floors["lower_events_per_s"]["median"]) < 1e-3
    assert not os.path.exists(os.path.join(BENCH_ROOT, "floor-io")), "the I/O floor's events were left behind"


def test_generator_cpu_is_measured_for_every_step(smoke):
    _, _, results = smoke
    fleet = results["topologies"]["fleet"]
    runs = [r for lo in fleet["loads"] for r in lo["runs"]] + fleet["sustained"]["runs"] + fleet["burst"]["runs"]
    for run in runs:
        assert run["cpu"]["generator_cores"] > 0 and run["cpu"]["generator_us_per_request"] > 0
        assert run["cpu"]["generator_cores"] == pytest.approx(
            run["cpu"]["generator_user_cores"] + run["cpu"]["generator_sys_cores"], abs=0.002)
    assert results["generator"]["cpu"]["generator_cores"]["n"] == len(fleet["loads"]) + 1


def test_overload_is_reported_as_accepted_p99_shed_rate_and_goodput(smoke):
    _, _, results = smoke
    fleet, ref = results["topologies"]["fleet"], results["reference"]["saturation_rate"]
    sustained, burst = fleet["sustained"], fleet["burst"]
    assert sustained["offered_rate"] == pytest.approx(1.5 * ref, abs=0.1)
    assert results["burst_rates"]["burst"] == pytest.approx(1.2 * ref, abs=0.1)
    for run in sustained["runs"] + burst["runs"]:
        assert run["ok"] + run["shed"] + run["failed"] == run["sent"] > 0
        assert run["shed_with_retry_after"] == run["shed"], "every shed answer says when to come back"
        assert run["shed_rate"] == pytest.approx(run["shed"] / run["sent"], abs=1e-4)
    assert _inside(sustained["pooled_ms"]["p99"]) and _inside(burst["pooled_ms"]["p99"])
    assert burst["offered_rate"] == results["burst_rates"]["burst"]
    assert sustained["goodput_fraction_of_saturation"]["estimate"] == pytest.approx(
        sustained["achieved_rate"]["median"] / fleet["saturation"]["median"], abs=1e-3)


def test_schedule_and_intervals_are_recorded(smoke):
    _, _, results = smoke
    s = results["settings"]
    for phase in ("saturation", "loads", "overload"):
        assert len(s["schedule"][phase]) == s["repeats"]
    load = results["topologies"]["fleet"]["loads"][0]
    assert _inside(load["pooled_ms"]["p99"]) and load["pooled_ms"]["p99"]["estimate"] > 0


def test_smoke_run_draws_valid_pngs_and_a_markdown_table(smoke):
    out, _, _ = smoke
    check_png(out / "latency.png")
    text = (out / "latest.md").read_text()
    assert "| fleet |" in text and "## Latency" in text and "## Overload" in text and "## Floors" in text


def test_smoke_run_reports_progress_and_leaves_nothing_running(smoke):
    _, proc, _ = smoke
    assert "fleet" in proc.stderr and "left]" in proc.stderr
    assert leftovers() == []
    assert not os.path.exists(os.path.join(BENCH_ROOT, "fleet"))


def test_interrupted_run_stops_every_process(tmp_path, smoke):
    proc = subprocess.Popen([PYTHON, RUN, "--smoke", "--out", str(tmp_path), "--port-base", PORT_BASE],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not leftovers() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert leftovers(), "the topology never started"
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert leftovers() == []
    assert not os.path.exists(tmp_path / "latest.json")


@pytest.fixture(scope="module")
def variants_smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("variants")
    proc = subprocess.run([PYTHON, VARIANTS, "--smoke", "--saturation", "100", "--variants", "unbounded,queue",
                           "--out", str(out), "--port-base", VARIANTS_PORT_BASE],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"overload_variants.py --smoke failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    (path,) = out.glob("overload-variants-*.json")
    with open(path) as f, open(MANIFEST) as m:
        return proc, json.load(f), json.load(m)


def test_overload_variants_use_the_converged_bounds_and_report_every_burst_whole(variants_smoke):
    proc, results, manifest = variants_smoke
    assert results["settings"] == {
        "unbounded": {"max_conns": 0, "fleet_queue_ms": "0 0"},
        "queue": {"max_conns": manifest["max_conns"],
                  "fleet_queue_ms": f"{manifest['burst_queue_ms']} {manifest['sustained_queue_ms']}"}}
    # Issue 18's burst: 4 x N x T requests at once, every one answered (accepted, shed or failed).
    count = 4 * len(manifest["ports"]) * manifest["threads"]
    assert results["simultaneous"]["requests"] == count
    for name, v in results["variants"].items():
        sim = v["simultaneous"]
        assert sim["sent"] == [count] * results["simultaneous"]["bursts_per_block"], name
        assert all(0 <= s + f <= count for s, f in zip(sim["shed"], sim["failed"])), name
        assert _inside(v["sustained_p99_ms"]) and _inside(v["late_p99_ms"]) and _inside(v["burst_p99_ms"]), name
        assert f"| `{name}` | {results['settings'][name]['max_conns']} |" in proc.stdout
    # The sustained regime is measured from twice the burst bound into the step (at most half of it).
    assert results["sustained_late_s"] == min(2 * manifest["burst_queue_ms"] / 1000, results["sustained_s"] / 2)
    queue = results["variants"]["queue"]
    assert _inside(queue["sustained_p99_vs"]["unbounded"]) and _inside(queue["late_p99_vs"]["unbounded"])
    assert leftovers() == []
