"""The harness's method, without a node: the rotated order of topologies, the
bootstrap intervals and their verdicts, how answers are classified under
overload, the overload variants' settings, and that the benchmark code stays
smaller than the product.

    /usr/bin/python3 -m pytest test/bench/test_bench_method.py
"""
import collections
import glob
import os
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "bench"))

import analysis  # noqa: E402
import loadgen  # noqa: E402
import run as bench_run  # noqa: E402


def test_rotation_puts_every_topology_first_and_after_every_other_equally_often():
    for n in (2, 4, 5):
        rows = bench_run.williams(n)
        assert all(sorted(row) == list(range(n)) for row in rows)
        assert sorted(row[0] for row in rows[:n]) == list(range(n)), "each comes first once in n repeats"
        follows = collections.Counter((a, b) for row in rows for a, b in zip(row, row[1:]))
        assert set(follows) == {(a, b) for a in range(n) for b in range(n) if a != b}
        assert len(set(follows.values())) == 1, f"n={n}: predecessors unbalanced: {follows}"


def _repeats(rng, scale, repeats=3, blocks=5, per_block=300, drift=()):
    """Latencies (ms) in blocks, one list per repeat; drift: a factor per repeat."""
    return [[rng.lognormal(np.log(10 * scale * (drift[r] if drift else 1.0)), 0.4, per_block)
             for _ in range(blocks)] for r in range(repeats)]


def test_equal_topologies_give_no_difference_and_a_faster_one_a_ratio_below_one():
    rng = np.random.default_rng(7)
    same = analysis.interval(_repeats(rng, 1.0), _repeats(rng, 1.0), "p99", resamples=400)
    assert same["low"] <= 1.0 <= same["high"] and analysis.verdict(same) == "no difference"
    faster = analysis.interval(_repeats(rng, 0.5), _repeats(rng, 1.0), "p99", resamples=400)
    assert faster["high"] < 1.0 and analysis.verdict(faster) == "lower"
    assert abs(faster["estimate"] - 0.5) < 0.1


def test_drift_between_repeats_widens_the_interval():
    """Repeats that disagree (a noisy machine) must not look as sure as one long step."""
    rng = np.random.default_rng(3)
    steady = analysis.interval(_repeats(rng, 1.0), stat="p99", resamples=400)
    drifting = analysis.interval(_repeats(rng, 1.0, drift=(0.7, 1.0, 1.4)), stat="p99", resamples=400)
    assert drifting["high"] - drifting["low"] > 2 * (steady["high"] - steady["low"])


def test_per_repeat_numbers_are_resampled_by_repeat():
    iv = analysis.interval([400.0, 420.0, 410.0], [2000.0, 2000.0, 2100.0], stat="mean", resamples=400)
    assert 0.19 < iv["low"] <= iv["estimate"] <= iv["high"] < 0.22
    assert analysis.interval([400.0], None, stat="mean") == {"estimate": 400.0, "low": 400.0, "high": 400.0}
    assert analysis.interval([], [1.0]) is None and analysis.interval([[]], stat="p99") is None


def test_answers_are_accepted_shed_or_failed_by_status():
    run = loadgen.Run(rate=5, duration=1.0, started=100.0)
    run.results = [loadgen.Result(100.0 + i / 10, 100.0 + i / 10, 100.01 + i / 10, status, "i0", "e", "", ra)
                   for i, (status, ra) in enumerate([(200, ""), (429, "1"), (503, ""), (502, ""), (0, ""),
                                                     (200, ""), (500, "")])]
    m = analysis.step_metrics(run, 0.0, 1.0, ("i0", "i1"))
    assert (m["sent"], m["ok"], m["shed"], m["failed"], m["conn_errors"]) == (7, 2, 2, 3, 1)
    assert m["shed_rate"] == round(2 / 7, 5) and m["failed_rate"] == round(3 / 7, 5)
    assert m["shed_with_retry_after"] == 1 and m["shed_latency_ms"]["p99"] == 10.0
    assert m["shares"] == {"i0": 1.0, "i1": 0.0} and m["imbalance"] == 2.0
    assert sum(len(b) for b in m["_blocks"]) == 2, "only accepted answers feed the latency intervals"


def test_bench_code_is_smaller_than_the_product():
    def lines(paths):
        return sum(sum(1 for _ in open(p, encoding="utf-8")) for p in paths if os.path.isfile(p))
    product = lines(p for part in ("recipes", "libraries", "resources", "templates", "files/default")
                    for p in glob.glob(os.path.join(REPO, part, "**", "*"), recursive=True)
                    if "__pycache__" not in p)
    bench = lines(glob.glob(os.path.join(REPO, "bench", "*.py")))
    assert bench < product, f"bench/*.py has {bench} lines, the product {product}"


def test_two_runs_are_compared_interval_by_interval():
    import report

    def run(started, low, high):
        iv = {"estimate": (low + high) / 2, "low": low, "high": high}
        return {"started": started, "goals": [dict(iv, goal="fleet saturation / the lower floor")],
                "ratios": [{"ratio": "fleet / single", "of": "p99 @85%", "interval": iv}]}
    text = report.agreement(run("a", 0.5, 0.9), run("b", 0.8, 1.2))
    assert text.count("| yes |") == 2
    text = report.agreement(run("a", 0.5, 0.7), run("b", 0.8, 1.2))
    assert text.count("| **no** |") == 2


def test_the_fleets_own_site_is_inlined_and_other_sites_left_out(tmp_path):
    import fleet
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "store.conf").write_text("upstream store {\n    server 127.0.0.1:9000;\n}\n")
    (tmp_path / "conf.d" / "other.conf").write_text("server {\n    listen 8080;\n}\n")
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"pid /run/nginx.pid;\nhttp {{\n    include {tmp_path}/conf.d/*.conf;\n}}\n")
    sources = {}

    def read(path):
        sources[path] = True
        return open(path).read()
    text = fleet._nginx_text(read, {"ports": [9000], "bind_address": "127.0.0.1"}, str(conf))
    assert "    upstream store {\n        server 127.0.0.1:9000;" in text
    assert "8080" not in text and "include" not in text
    assert sorted(sources) == sorted([str(conf), str(tmp_path / "conf.d" / "store.conf")])


def test_overload_variants_take_their_bounds_from_the_manifest():
    """`queue` is the fleet as converged, `queue-static` its burst bound without
    the switch, `mc2T` the old nginx default; each rewrites only max_conns and
    FLEET_QUEUE_MS in the fleet's nginx config."""
    import fleet
    import overload_variants
    m = {"ports": [9000, 9001], "threads": 3, "max_conns": 1027, "burst_queue_ms": 700, "sustained_queue_ms": 40,
         "user": "u"}
    v = overload_variants.variants(m)
    burst, sustained = m["burst_queue_ms"], m["sustained_queue_ms"]
    assert v["queue"] == (m["max_conns"], f"{burst} {sustained}")
    assert v["queue-static"] == (m["max_conns"], f"{burst} {burst}")
    assert v["mc2T"] == (2 * m["threads"], "0 0") and v["unbounded"] == (0, "0 0")
    conf = (f"upstream u {{\n    server 127.0.0.1:9000 max_conns={m['max_conns']};\n}}\n"
            f'location / {{\n    uwsgi_param FLEET_QUEUE_MS "{burst} {sustained}";\n}}\n')
    fl = fleet.Fleet(m, conf, [{"port": 9000, "argv": [], "user": "u", "cwd": "/"}], {}, {})
    for conns, queue_ms in v.values():
        text = overload_variants.variant(fl, conns, queue_ms).nginx_conf
        assert text == conf.replace(f"max_conns={m['max_conns']}", f"max_conns={conns}").replace(
            f'"{burst} {sustained}"', f'"{queue_ms}"')
    assert fl.nginx_conf == conf, "the converged fleet itself is left as it is"
    with pytest.raises(SystemExit, match="converge"):
        overload_variants.variants({"threads": 3, "max_conns": 6})
    with pytest.raises(SystemExit, match="converge"):
        overload_variants.variant(fleet.Fleet(m, "server x max_conns=6;", fl.instances, {}, {}), 0, "0 0")


def test_each_topology_is_started_as_its_row_of_the_table_says():
    """bench/topology.py's TOPOLOGIES is data; Topology turns a row into the
    app servers' commands: one 1-process server per instance, or one server of
    N processes (uWSGI, or gunicorn gthread), with the row's extra arguments."""
    import types

    import render
    import topology
    argv = ["/usr/bin/uwsgi", "--master", "--processes", "1", "--threads", "8", "--socket", "127.0.0.1:9000",
            "--master-fifo", "/var/lib/uwsgi_fleet/default/9000.fifo", "--chdir", "/opt/app", "--module", "app:application",
            "--env", "STORE_APP_CONFIG=/etc/app.json", "--env", "UWSGI_FLEET_INSTANCE=9000"]
    fleet = types.SimpleNamespace(instances=[{"argv": argv, "cwd": "/opt/app"}], user="nobody")
    assert set(topology.ORDER) == {"fleet", "fleet-rr", "single", "single-thunder", "gunicorn"}
    for name, row in topology.TOPOLOGIES.items():
        assert set(row) == {"description", "server", "per_instance", "balance", "args"}, name
        topo = topology.Topology(name, fleet, processes=3, threads=4, port_base=10000, log_dir="/tmp")
        commands = topo.backend_commands()
        servers = 3 if row["per_instance"] else 1
        assert len(commands) == len(topo.backend_ports) == servers, name
        assert len(topo.labels) == 3 and topo.labels[0] == ("i0" if row["per_instance"] else "w1"), name
        for (label, cmd), port in zip(commands, topo.backend_ports):
            assert cmd[0] == (render.GUNICORN if row["server"] == "gunicorn" else "/usr/bin/uwsgi"), name
            assert f"{render.LOOPBACK}:{port}" in cmd, name
            assert cmd[len(cmd) - len(row["args"]):] == list(row["args"]), name
            workers = "workers" if row["server"] == "gunicorn" else "processes"
            assert render.get_option(cmd, workers) == str(1 if row["per_instance"] else 3), name
            assert render.get_option(cmd, "threads") == "4", name
    assert topology.TOPOLOGIES["single-thunder"]["args"] == ("--thunder-lock",)
    assert not topology.TOPOLOGIES["fleet-rr"]["balance"] and topology.TOPOLOGIES["fleet"]["balance"]
