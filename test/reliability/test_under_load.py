"""Faults and changes under load: each keeps serving, loses no accepted event."""
import json
import os
import signal
import subprocess
import threading
import time
import uuid

import pytest

import support
from expected import Expected
from fleet_checks import check_exact_shape, uwsgi_programs


def test_the_load_counts_failures_control(report):
    """Control: with every instance stopped for a moment, the load does count failures
    (so the zero-failure assertions below can fail)."""
    ports = support.manifest()["ports"]
    names = [f"uwsgi_fleet_{p}" for p in ports]
    with support.Load(rate=40) as load:
        subprocess.run(["supervisorctl", "stop", *names], check=True, capture_output=True)
        time.sleep(1.0)  # the outage being measured
        subprocess.run(["supervisorctl", "start", *names], check=True, capture_output=True)
        support.wait_for(lambda: all(support.instance_health(p) for p in ports), 60)
    report("control: all instances stopped 1 s", load)
    assert len(load.failures()) > 0
    assert load.lost_events() == []


def test_killed_backend_is_restarted_and_routed_around(report):
    manifest = support.manifest()
    port = manifest["ports"][0]
    with support.Load(rate=40) as load:
        master, workers = support.program_pids(port)
        for pid in [master] + workers:
            os.kill(pid, signal.SIGKILL)
        recovery = support.wait_for(
            lambda: support.program_pids_or_none(port) not in (None, master) and support.instance_health(port), 30)
    report(f"kill -9 instance {port}", load, f"{recovery:.1f} s until it serves again")
    # Only requests in flight on that instance may fail: at most its thread count.
    assert len(load.failures()) <= manifest["threads"], load.failures()
    assert load.lost_events() == []


def test_deploy_of_new_app_code_reloads_every_instance_without_failures(report, tmp_path):
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
            support.converge_ok({}, cookbook=str(copy))
            took = time.monotonic() - started
        report("deploy of new app code (rolling reload)", load, f"converge {took:.0f} s")
        assert [support.instance_health(p)["code"] for p in ports] == [new_code] * len(ports)
        assert load.failures() == []
        assert load.lost_events() == []


def test_resizing_under_load_drops_nothing_and_ends_exact(host, report):
    n = len(support.manifest()["ports"])
    grown = {"uwsgi_fleet": {"web": {"processes": n + 2}}}
    shrunk = {"uwsgi_fleet": {"web": {"processes": max(1, n - 1)}}}
    with support.restored_defaults():
        with support.Load(rate=40) as load:
            started = time.monotonic()
            support.converge_ok(grown)
            grow_took = time.monotonic() - started
            check_exact_shape(host, Expected.for_overrides(grown))
            started = time.monotonic()
            support.converge_ok(shrunk)
            shrink_took = time.monotonic() - started
        report(f"resize {n} -> {n + 2} -> {max(1, n - 1)}", load,
               f"converges {grow_took:.0f} s and {shrink_took:.0f} s")
        check_exact_shape(host, Expected.for_overrides(shrunk))
        assert load.failures() == []
        assert load.lost_events() == []


LIVE_FILES = ["/etc/nginx/nginx.conf"]


def live_state():
    files = LIVE_FILES + sorted(f"/etc/supervisor/conf.d/{n}" for n in os.listdir("/etc/supervisor/conf.d")
                                if n.startswith("uwsgi_fleet_"))
    return {f: support.sha_of(f) for f in files}


@pytest.mark.parametrize("attributes, cause", [
    ({"uwsgi_fleet": {"web": {"threads": 0}}}, "node['uwsgi_fleet']['web']['threads'] must be an integer from 1"),
    ({"uwsgi_fleet": {"web": {"threads": 6, "nginx": {"server_name": "~^(broken"}}}}, "failed verification nginx -t"),
], ids=["invalid attribute", "config that fails nginx -t"])
def test_bad_operator_input_changes_nothing_live(attributes, cause, report):
    before = live_state()
    pids = {name: pid for name, (_, pid) in uwsgi_programs_now().items()}
    with support.Load(rate=40) as load:
        result = support.converge(attributes)
    report(f"bad input: {cause.split(' must')[0]}", load)
    assert result.returncode != 0
    assert cause in result.stdout + result.stderr
    assert live_state() == before                    # nothing reached the live files
    assert uwsgi_programs_now() and {n: p for n, (_, p) in uwsgi_programs_now().items()} == pids
    assert load.failures() == []
    assert load.lost_events() == []
    # A restart (standing in for a reboot) comes up on the old, good config.
    subprocess.run(["/etc/init.d/nginx", "restart"], check=True, capture_output=True)
    support.wait_for(lambda: support.http_status("/_health") == 200, 30)
    assert "server_name _;" in open("/etc/nginx/nginx.conf").read()


def uwsgi_programs_now():
    import testinfra
    return uwsgi_programs(testinfra.get_host("local://"))


SLOW = {"uwsgi_fleet": {"app": {"simulated_hops": 2, "simulated_hop_ms": 800}}}  # 1.6 s a request


def slow_requests_to(port, count):
    """Start `count` slow store requests straight at one instance; returns (threads, results)."""
    project_id, key = support.project()
    host = support.manifest()["bind_address"]
    results = []

    def one():
        event_id = uuid.uuid4().hex
        body = json.dumps({"event_id": event_id, "message": "slow"}).encode()
        try:
            status, headers = support.uwsgi_request(
                host, port, "POST", f"/api/{project_id}/store/", body=body,
                headers={"X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7",
                         "Content-Type": "application/json"})
            results.append((status, headers.get("X-Fleet-Instance"), event_id))
        except OSError as e:
            results.append((0, repr(e), event_id))
    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    return threads, results


def accept_queue(port):
    """Connections waiting in the instance's listen queue (not yet taken by a thread)."""
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
    return sum(int(line.split()[1]) for line in out.splitlines())


def test_stop_lets_in_flight_requests_finish_and_term_would_not(report):
    manifest = support.manifest()
    port, threads = manifest["ports"][0], manifest["threads"]
    spool = os.path.join(manifest["spool_dir"], support.project()[0])
    with support.restored_defaults():
        support.converge_ok(SLOW)
        with support.Load(rate=2) as load:
            workers, results = slow_requests_to(port, threads)
            time.sleep(0.5)  # inside their 1.6 s of hops now, or queued behind nginx's requests
            queued = accept_queue(port)
            started = time.monotonic()
            subprocess.run(["supervisorctl", "stop", f"uwsgi_fleet_{port}"], check=True, capture_output=True)
            stop_took = time.monotonic() - started
            for t in workers:
                t.join(60)
            assert support.instance_health(port) is None       # it really stopped
            subprocess.run(["supervisorctl", "start", f"uwsgi_fleet_{port}"], check=True, capture_output=True)
            back = support.wait_for(lambda: support.instance_health(port), 60)
        report(f"supervisorctl stop/start {port} with {threads} slow requests sent straight to it", load,
               f"stop waited {stop_took:.1f} s for them; serves {back:.1f} s after start")
        # Every request a thread had taken finished on that instance and is spooled; only
        # ones still in the listen queue may be refused (nginx retries those elsewhere).
        finished = [e for s, i, e in results if (s, i) == (200, str(port))]
        assert len(finished) >= threads - queued and finished, (results, queued)
        assert all(os.path.exists(os.path.join(spool, f"{e}.json")) for e in finished)
        assert load.failures() == []
        assert load.lost_events() == []

        # Control: a plain TERM (supervisor's default stop signal) cuts the taken ones off.
        workers, results = slow_requests_to(port, threads)
        time.sleep(0.5)
        queued = accept_queue(port)
        os.kill(support.program_pids(port)[0], signal.SIGTERM)
        for t in workers:
            t.join(60)
        finished = [e for s, _, e in results if s == 200]
        assert len(finished) < threads - queued, (results, queued)
        support.wait_for(lambda: support.instance_health(port), 60)
