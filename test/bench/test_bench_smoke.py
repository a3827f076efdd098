"""Smoke test of the benchmark harness (bench/run.py).

Runs the harness in --smoke mode (a few seconds, topology `fleet` only) into a
temporary directory, then checks the results' schema (keys and types, as
documented in bench/README.md), that the PNG plots are valid PNG files, and
that nothing is left running. It asserts no speed: the numbers are whatever
this machine gives.

Needs root and the converged node's files (/etc/nginx/nginx.conf,
/etc/supervisor/conf.d/uwsgi_fleet_*.conf, /etc/uwsgi_fleet/*.json): run it
after `make converge` (or the kitchen suites). Uses loopback ports 10500-10599.

    /usr/bin/python3 -m pytest test/bench
"""
import glob
import json
import os
import signal
import struct
import subprocess
import time
import zlib

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(REPO, "bench", "run.py")
PYTHON = "/usr/bin/python3"
PORT_BASE = "10500"
BENCH_ROOT = "/var/tmp/uwsgi_fleet_bench"
NODE_FILES = ["/etc/nginx/nginx.conf", "/etc/uwsgi_fleet/fleet.json", "/etc/uwsgi_fleet/store_app.json"]

NUM = (int, float)
AGG = {"median": NUM, "min": NUM, "max": NUM, "n": int}
LATENCY = {k: AGG for k in ("p50", "p90", "p99", "p99.9", "max", "mean")}
STEP_RUN = {
    "load": NUM, "offered_rate": NUM, "sent_rate": NUM, "window_s": NUM, "sent": int, "ok": int,
    "non_2xx": int, "conn_errors": int, "error_rate": NUM, "status_counts": dict, "achieved_rate": NUM,
    "latency_ms": {k: NUM for k in ("p50", "p90", "p99", "p99.9", "max", "mean")},
    "backend_counts": dict, "shares": dict, "imbalance": NUM,
    "generator": {"lag_p99_ms": NUM, "lag_max_ms": NUM, "behind": bool, "max_in_flight": int},
    "cpu": {"system_busy": NUM, "system_cores": NUM, "generator_cores": NUM, "servers_cores": NUM,
            "other_cores": NUM},
}
LOAD = {
    "load": NUM, "offered_rate": NUM, "achieved_rate": AGG, "latency_ms": LATENCY,
    "errors": {"sent": int, "ok": int, "non_2xx": int, "conn_errors": int, "error_rate": AGG,
               "status_counts": dict},
    "shares": dict, "ranked_shares": list, "imbalance": AGG,
    "generator": {"lag_p99_ms": AGG, "lag_max_ms": AGG, "behind_runs": int, "max_in_flight": int,
                  "cpu_cores": AGG},
    "cpu_cores": {k: AGG for k in ("system_cores", "servers_cores", "generator_cores", "other_cores")},
    "runs": [STEP_RUN],
}
MEM = {"processes": int, "rss_kb": int, "pss_kb": int}
TOPOLOGY = {
    "description": str,
    "saturation": {**AGG, "sustained_rate": dict, "reached": bool,
                   "runs": [{"rate": NUM, "reached": bool, "sustained_rate": (int, float, type(None)),
                             "ramp": [{"offered_rate": NUM, "achieved_rate": NUM, "error_rate": NUM}]}]},
    "loads": [LOAD],
    "burst": {"base_p99_ms": AGG, "burst_p99_ms": AGG, "burst_max_ms": AGG, "burst_achieved_rate": AGG,
              "drain_s": AGG, "undrained_bursts": int,
              "errors": {"sent": int, "ok": int, "non_2xx": int, "conn_errors": int},
              "generator": {"lag_p99_ms": AGG, "behind_runs": int},
              "runs": [{"base_latency_ms": dict, "burst_latency_ms": dict, "bursts": list,
                        "drain_threshold_ms": NUM, "timeline": list, "cpu": dict}]},
    "memory": {"instances": [{"label": str, "rss_kb": NUM, "pss_kb": NUM, "processes": int}],
               "app_total_rss_kb": AGG, "app_total_pss_kb": AGG, "nginx_rss_kb": AGG, "nginx_pss_kb": AGG,
               "runs": [{"instances": [dict(label=str, **MEM)], "app_total": MEM, "nginx": MEM}]},
    "commands": {"nginx": list, "backends": dict},
}
SCHEMA = {
    "schema_version": int, "started": str, "finished": str, "duration_s": NUM, "mode": str, "argv": list,
    "machine": {"cores": int, "kernel": str, "nginx": str, "uwsgi": str, "python": str, "gunicorn": str,
                "loadgen_python": str, "cpu_model": (str, type(None)), "mem_total_kb": (int, type(None))},
    "target": type(None), "processes": int, "threads": int, "processes_source": str, "threads_source": str,
    "node": {"balance": (str, type(None)), "sources": dict},
    "workload": {"request": str, "seed": int, "payloads": int,
                 "size_bands": [{"share": NUM, "low_bytes": int, "high_bytes": int, "within": str}],
                 "raw_bytes": {"mean": int, "p50": int, "p90": int, "max": int},
                 "gzip_bytes": {"mean": int, "p50": int, "p90": int, "max": int},
                 "simulated_hops": int, "simulated_hop_ms": NUM},
    "method": {k: str for k in ("latency", "achieved_rate", "saturation", "interleaving", "burst",
                                "generator_behind")},
    "settings": {"repeats": int, "loads": list, "step_s": NUM, "warm_s": NUM, "burst_base_load": NUM,
                 "burst_load": NUM, "generator_nice": int, "topology_order": list, "lag_threshold_ms": NUM},
    "reference": {"topology": str, "saturation_rate": NUM, "source": str},
    "offered_rates": [{"load": NUM, "rate": NUM}],
    "burst_rates": {"base": NUM, "burst": NUM},
    "generator": {"behind_runs": list, "note": str},
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
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if BENCH_ROOT.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


@pytest.fixture(scope="module", autouse=True)
def node_ready():
    if os.geteuid() != 0:
        pytest.fail("the bench smoke test needs root (nginx master, servers run as the fleet user)")
    missing = [p for p in NODE_FILES if not os.path.exists(p)]
    if missing or not glob.glob("/etc/supervisor/conf.d/uwsgi_fleet_*.conf"):
        pytest.fail(f"the converged node's files are missing ({missing or 'supervisor programs'}): "
                    "run `make converge` first")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([PYTHON, RUN, "--smoke", "--topologies", "fleet", "--out", str(out),
                           "--port-base", PORT_BASE], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"bench/run.py --smoke failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return out, proc


def test_smoke_run_writes_results_with_the_documented_schema(smoke):
    out, _ = smoke
    with open(out / "latest.json") as f:
        results = json.load(f)
    check(results, SCHEMA)
    assert results["mode"] == "smoke"
    assert list(results["topologies"]) == ["fleet"]
    fleet = results["topologies"]["fleet"]
    assert fleet["loads"][0]["errors"]["sent"] > 0
    assert len(fleet["memory"]["instances"]) == results["processes"]
    stamped = [p for p in os.listdir(out) if p.endswith("Z.json")]
    assert len(stamped) == 1
    with open(out / stamped[0]) as f:
        assert json.load(f) == results


def test_smoke_run_draws_valid_pngs_and_a_markdown_table(smoke):
    out, _ = smoke
    for name in ("latency.png", "shares.png", "burst.png"):
        check_png(out / name)
    text = (out / "latest.md").read_text()
    assert "| fleet |" in text and "## Latency" in text


def test_smoke_run_reports_progress_and_leaves_nothing_running(smoke):
    _, proc = smoke
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
