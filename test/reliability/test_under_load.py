"""Faults and changes under load: each keeps serving, loses no accepted event."""
import contextlib
import json
import os
import subprocess
import time
import urllib.parse
import uuid

import pytest

import support
from support import loadgen
from expected import Expected
from fleet_checks import check_fleet


def test_the_load_counts_failures_control(report, supervisor_node):
    """Control: with every instance stopped for a moment, the load does count failures
    (so the zero-failure assertions below can fail)."""
    ports = support.manifest()["ports"]
    with support.Load(rate=40) as load:
        support.stop_instances(ports)
        time.sleep(1.0)  # the outage being measured
        support.start_instances(ports)
        support.wait_for(lambda: support.all_instances_serve(ports), 60)
    report("control: all instances stopped 1 s", load)
    assert len(load.failures()) > 0
    assert load.lost_events() == []


OVERLOAD_RATE = 1500  # about twice what a node of this kind stores, of the bench's events


def overload_run():
    """OVERLOAD_RATE events/s of 20 kB-1 MB for 3 s: the Load, and the p99 (done - sent)
    of the accepted requests intended once the overload had lasted 1 s."""
    with support.Load(rate=OVERLOAD_RATE, seed=11, bands=loadgen.SIZE_BANDS) as load:
        time.sleep(1.0)
    start = min(r.intended for r in load.run.results)
    late = sorted(r.done - r.sent for r in load.run.results if r.status == 200 and r.intended >= start + 1.0)
    assert late, "nothing accepted once the overload had lasted"
    return load, late[int(0.99 * (len(late) - 1))]


def test_overload_is_shed_with_retry_after_and_the_accepted_stay_fast(report, supervisor_node):
    """Far past what the fleet serves: the excess is answered 503 with Retry-After (by
    the app, past the time a request may queue: store_app/overload.py), nothing else
    fails (the requests stay within the project's quota, so no 429), and every event
    answered 200 is in the spool. The accepted requests stay fast: compared in the same
    run with the node converged without the mechanism (no queue bound, no max_conns),
    where nothing is shed and every request waits behind the excess, their p99 is under
    half of that control's (seconds against tens of ms in bench/README.md, Choosing the
    overload mechanism; an absolute bound would measure this machine's other load)."""
    load, p99 = overload_run()
    report(f"overload: {OVERLOAD_RATE:,} events/s of 20 kB-1 MB for 3 s (503 + Retry-After past the queue bound)",
           load, f"accepted p99 {p99 * 1000:.0f} ms")
    shed = [r for r in load.run.results if r.status == 503]
    assert shed, "nothing was shed: every request queued"
    assert all(r.retry_after == "1" for r in shed)
    assert [r for r in load.failures() if r.status != 503] == []
    assert load.lost_events() == []
    with support.restored_defaults():
        support.converge_ok({"uwsgi_fleet": {"web": {"nginx": {
            "max_conns": 0, "burst_queue_ms": 0, "sustained_queue_ms": 0}}}})
        control, control_p99 = overload_run()
    report("overload control: the same without a queue bound or max_conns", control,
           f"accepted p99 {control_p99 * 1000:.0f} ms")
    assert [r for r in control.run.results if r.status == 503] == []
    assert control.lost_events() == []
    assert p99 < control_p99 / 2, (p99, control_p99)


CLIENTS = os.path.join(support.REPO, "test", "clients")
# The reproduction: with 4 threads, nginx's old max_conns (2 x T per
# instance) let half of a 4 x N x T burst through and shed the rest.
BURST_THREADS = 4
# What one @sentry/node process keeps in flight (its transport's buffer).
SDK_IN_FLIGHT = 64


def sdk_burst(count, tag):
    """`count` errors captured at once by real @sentry/node processes (each
    sends its share in a loop, all started together): [(event ids, failures)]."""
    project_id, key = support.project()
    address = urllib.parse.urlsplit(support.NODE.url("/", port=support.manifest()["listen"])).netloc
    dsn = f"http://{key}@{address}/{project_id}"
    shares = [SDK_IN_FLIGHT] * (count // SDK_IN_FLIGHT) + ([count % SDK_IN_FLIGHT] if count % SDK_IN_FLIGHT else [])
    procs = [subprocess.Popen(["node", os.path.join(CLIENTS, "node_send.mjs"), dsn, f"burst {tag} {i}", str(n)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i, n in enumerate(shares)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        answer = json.loads(out.splitlines()[-1]) if out.strip() else {"event_ids": [], "failures": [err[-500:]]}
        results.append((answer["event_ids"], answer["failures"]))
    return project_id, results


@contextlib.contextmanager
def cpu_hog():
    """A busy loop per CPU of the node, in one process group; ended, and seen dead, on exit."""
    cpus = int(support.NODE.output("nproc").strip())
    pgid = int(support.NODE.output(
        f"setsid sh -c 'for i in $(seq {cpus}); do (while :; do :; done) & done; wait' "
        ">/dev/null 2>&1 </dev/null & echo $!").strip())
    try:
        yield cpus
    finally:
        support.NODE.run(f"kill -KILL -- -{pgid}", check=False)
        support.wait_for(lambda: support.NODE.run(f"pgrep -g {pgid}", check=False).returncode == 1, 30)


def test_a_burst_from_a_real_sdk_is_stored_whole_also_beside_a_cpu_hog(supervisor_node):
    """4 x N x T errors captured at once by @sentry/node on an otherwise idle node: every
    one answered 200 and in the spool, then again while a busy loop per CPU runs on the
    node. They queue in the instances' listen queues for the few ms each takes; nginx's
    old max_conns (2 x T per instance) shed half of such a burst at once, and SDKs drop
    an event answered 503."""
    with support.restored_defaults():
        support.converge_ok({"uwsgi_fleet": {"web": {"threads": BURST_THREADS}}})
        fleet = support.manifest()
        count = 4 * len(fleet["ports"]) * fleet["threads"]
        assert count > len(fleet["ports"]) * 2 * fleet["threads"]  # more than the old bound let through
        for hog in (False, True):
            with cpu_hog() if hog else contextlib.nullcontext():
                project_id, results = sdk_burst(count, f"hog={hog}")
            sent = [e for ids, _ in results for e in ids]
            failures = [f for _, fs in results for f in fs]
            assert len(sent) == count and failures == [], (hog, failures)
            assert set(sent) <= support.spooled_ids(project_id), hog
            support.NODE.run(f"cd {support.spool_dir()}/{project_id} && xargs rm -f",
                             input="\n".join(f"{e}.json" for e in sent))


def test_killed_backend_is_restarted_and_routed_around(report, process_manager):
    manifest = support.manifest()
    port = manifest["ports"][0]
    with support.Load(rate=40) as load:
        master, workers = support.program_pids(port)
        support.NODE.run("kill -9 " + " ".join(str(pid) for pid in [master] + workers))
        recovery = support.wait_for(
            lambda: support.master_pid(port) not in (None, master) and support.instance_health(port), 30)
    report(f"{process_manager}: kill -9 instance {port}", load, f"{recovery:.1f} s until it serves again")
    # Only requests in flight on that instance may fail: at most its thread count.
    assert len(load.failures()) <= manifest["threads"], load.failures()
    assert load.lost_events() == []


def test_deploy_of_new_app_code_reloads_every_instance_without_failures(report, tmp_path, process_manager):
    copy = support.cookbook_copy(tmp_path)
    with open(copy / "files" / "default" / "store_app" / "__init__.py", "a") as f:
        f.write(f"# deploy {uuid.uuid4().hex}\n")
    new_code = subprocess.run(
        ["/usr/bin/python3", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
         "from store_app.wsgi import CODE_DIGEST; print(CODE_DIGEST)", str(copy / "files" / "default")],
        check=True, capture_output=True, text=True, env=dict(os.environ, STORE_APP_CONFIG="/nonexistent")).stdout.strip()
    ports = support.manifest()["ports"]
    assert all(support.instance_health(p)["code"] != new_code for p in ports)
    with support.restored_defaults():
        with support.Load(rate=40) as load:
            started = time.monotonic()
            support.converge_ok(cookbook=str(copy))
            took = time.monotonic() - started
        report(f"{process_manager}: deploy of new app code (rolling reload)", load, f"converge {took:.0f} s")
        assert [support.instance_health(p)["code"] for p in ports] == [new_code] * len(ports)
        assert load.failures() == []
        assert load.lost_events() == []


def test_resizing_under_load_drops_nothing_and_ends_exact(report, process_manager):
    n = len(support.manifest()["ports"])
    cpus = int(support.NODE.output("nproc"))
    grown = {"uwsgi_fleet": {"web": {"processes": n + 2}}}
    shrunk = {"uwsgi_fleet": {"web": {"processes": max(1, n - 1)}}}
    with support.restored_defaults():
        with support.Load(rate=40) as load:
            started = time.monotonic()
            support.converge_ok(grown)
            grow_took = time.monotonic() - started
            check_shape(Expected.for_overrides(grown, cpus))
            started = time.monotonic()
            support.converge_ok(shrunk)
            shrink_took = time.monotonic() - started
        report(f"{process_manager}: resize {n} -> {n + 2} -> {max(1, n - 1)}", load,
               f"converges {grow_took:.0f} s and {shrink_took:.0f} s")
        check_shape(Expected.for_overrides(shrunk, cpus))
        assert load.failures() == []
        assert load.lost_events() == []


def check_shape(expected):
    """The fleet as converged is the shape `expected` asks for, and really runs that way."""
    fleet = support.manifest()
    assert fleet["ports"] == expected.ports and fleet["threads"] == expected.threads
    check_fleet(support.NODE.testinfra_host(), support.NODE, fleet)


def live_state():
    """sha256 of every live file the fleet's converge writes: nginx's and the instances'."""
    fleet = support.manifest()
    files = {"/etc/nginx/nginx.conf", fleet["site_file"]} | {fleet["instance_file"].format(port=p) for p in fleet["ports"]}
    return support.sha_of(sorted(files))


@pytest.mark.parametrize("attributes, cause", [
    ({"uwsgi_fleet": {"web": {"threads": 0}}}, "node['uwsgi_fleet']['web']['threads'] must be an integer from 1"),
    ({"uwsgi_fleet": {"web": {"threads": 6, "nginx": {"server_name": "~^(broken"}}}},
     "nginx -t failed for the config as this run would leave it"),
], ids=["invalid attribute", "config that fails nginx -t"])
def test_bad_operator_input_changes_nothing_live(attributes, cause, report, supervisor_node):
    before = live_state()
    pids = support.running_instances()
    with support.Load(rate=40) as load:
        result = support.converge(attributes)
    report(f"bad input: {cause.split(' must')[0].split(' for the')[0]}", load)
    assert result.returncode != 0
    assert cause in result.stdout + result.stderr
    assert live_state() == before                    # nothing reached the live files
    assert pids and all(pids.values()) and support.running_instances() == pids
    assert load.failures() == []
    assert load.lost_events() == []
    # A restart (standing in for a reboot) comes up on the old, good config.
    support.NODE.run("service nginx restart")
    support.wait_for(lambda: support.http_status("/_health") == 200, 30)
    assert "server_name _;" in support.NODE.read(support.manifest()["site_file"])


# 4 s a request: long enough that SSH round trips to the node fit inside one, on a busy machine too.
SLOW = {"uwsgi_fleet": {"app": {"simulated_hops": 5, "simulated_hop_ms": 800}}}


def slow_requests_to(port, count):
    """Start `count` slow store requests straight at one instance, on the node (instances
    listen on its loopback); `.results()` waits for them: [(status, instance, event_id)]."""
    project_id, key = support.project()
    process = support.on_node("slow", port, count, project_id, key, background=True)
    assert process.stdout.readline().strip() == "sent"

    class Pending:
        def results(self):
            out, _ = process.communicate(timeout=120)
            return [tuple(r) for r in json.loads(out)]
    return Pending()


def accept_queue(port):
    """Connections waiting in the instance's listen queue (not yet taken by a thread)."""
    out = support.NODE.output(f"ss -Hltn 'sport = :{port}'")
    return sum(int(line.split()[1]) for line in out.splitlines())


def test_stop_lets_in_flight_requests_finish_and_term_would_not(report, process_manager):
    manifest = support.manifest()
    port, threads = manifest["ports"][0], manifest["threads"]
    with support.restored_defaults():
        support.converge_ok(SLOW)
        # 1 request/s of 4 s: one instance alone holds that (below max_conns), so
        # what the stop asserts is not confused with shedding.
        with support.Load(rate=1) as load:
            pending = slow_requests_to(port, threads)  # inside their 4 s of hops, or queued
            queued = accept_queue(port)
            started = time.monotonic()
            support.stop_instances([port])
            stop_took = time.monotonic() - started
            results = pending.results()
            assert support.instance_health(port) is None       # it really stopped
            support.start_instances([port])
            back = support.wait_for(lambda: support.instance_health(port), 60)
        report(f"{process_manager}: stop/start {port} with {threads} slow requests sent straight to it", load,
               f"stop waited {stop_took:.1f} s for them; serves {back:.1f} s after start")
        # Every request a thread had taken finished on that instance and is spooled; only
        # ones still in the listen queue may be refused (nginx retries those elsewhere).
        finished = [e for s, i, e in results if (s, i) == (200, str(port))]
        assert len(finished) >= threads - queued and finished, (results, queued)
        assert set(finished) <= support.spooled_ids(support.project()[0])
        assert load.failures() == []
        assert load.lost_events() == []

        # Control: a plain TERM (supervisor's and systemd's default stop signal) cuts the taken ones off.
        pending = slow_requests_to(port, threads)
        queued = accept_queue(port)
        support.NODE.run(f"kill -TERM {support.program_pids(port)[0]}")
        control = pending.results()
        finished = [e for s, _, e in control if s == 200]
        assert len(finished) < threads - queued, (control, queued)
        support.wait_for(lambda: support.instance_health(port), 60)
