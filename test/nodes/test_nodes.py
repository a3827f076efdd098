"""The test nodes themselves: a node starts pristine, a power cut is one, and
no run, however it ends, leaves anything of its nodes on this host."""
import os
import signal
import subprocess
import sys
import time

import pytest

import machine
import network
import settings
from remote import Node

HERE = os.path.dirname(os.path.abspath(__file__))


def in_namespace(namespace):
    """Every process of this host whose PID namespace is `namespace` (a walk of
    /proc/*/ns/pid of our own, not machine.processes, which is under test)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == namespace:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def test_a_fresh_node_is_pristine_boots_systemd_and_destroy_leaves_nothing():
    info = machine.create("nodes-selftest")
    try:
        node = Node(info["address"], info["name"])
        assert node.read("/proc/1/comm").strip() == "systemd"
        assert node.output("systemctl is-system-running || true").strip() in ("running", "degraded")
        # Empty apt lists and none of what the cookbook installs: a fresh machine.
        assert node.output("ls /var/lib/apt/lists | grep _Packages || true") == ""
        assert node.run("dpkg -s nginx", check=False).returncode != 0
        assert node.run("dpkg -s supervisor", check=False).returncode != 0
        # Chef from the Gemfile, and the CAs the host trusts (settings.CA_SOURCE).
        assert "Chef Infra Client" in node.output(f"{settings.CHEF_CLIENT} --version")
        bundle = node.read("/etc/ssl/certs/ca-certificates.crt")
        for path in machine.image.ca_files():
            with open(path) as f:
                assert f.read().strip().splitlines()[1] in bundle, path
    finally:
        machine.destroy("nodes-selftest")
    assert machine.leftovers(info) == []
    assert not os.path.exists(info["dir"])


def test_a_power_cut_ends_every_process_of_the_node_and_boot_brings_it_back_on_its_disk():
    name = "nodes-power-cut"
    info = machine.create(name)
    try:
        node = Node(info["address"], name)
        node.run("echo written-before-the-cut > /var/lib/power-cut-marker")
        node.run("systemd-run --unit=uwf-sleeper sleep 600")
        namespace = machine.load(name)["pid_namespace"]
        before = in_namespace(namespace)
        # The walk sees the node: its systemd, sshd, journald, the sleeper ...
        assert len(before) >= 4, before
        asked = time.monotonic()
        cut_at = machine.power_cut(name)
        assert asked <= cut_at
        assert in_namespace(namespace) == [], "processes of the node survived its power cut"
        assert not machine.running(name)
        assert not network.port_open(info["address"], 22, timeout=2)
        machine.boot(name)
        # Booted again, after the cut: a younger systemd, without what ran before, on the same disk.
        assert node.read("/proc/1/comm").strip() == "systemd"
        assert int(node.output("ps -o etimes= -p 1")) <= time.monotonic() - cut_at
        assert node.run("systemctl is-active uwf-sleeper", check=False).stdout.strip() != "active"
        assert node.read("/var/lib/power-cut-marker").strip() == "written-before-the-cut"
    finally:
        booted = machine.load(name) if name in machine.names() else info
        machine.destroy(name)
    assert machine.leftovers(booted) == []
    assert in_namespace(booted["pid_namespace"]) == []


CHILD = """
import signal, sys, time
print(signal.getsignal(signal.SIGINT) is signal.default_int_handler, flush=True)
try:
    time.sleep(60)
except KeyboardInterrupt:
    sys.exit(130)
sys.exit(3)
"""


def test_the_reaper_passes_sigint_on_when_its_run_was_started_with_sigint_ignored():
    """A shell without job control starts background commands with SIGINT
    ignored (`setsid make test &`), and the ignored disposition survives exec.
    The reaper's command must still get SIGINT's default, or the SIGINT the
    reaper passes on is lost: the interrupted-run test below slept its 300 s
    in two .ci/runs started that way."""
    run = subprocess.Popen([sys.executable, os.path.join(HERE, "reaper.py"), sys.executable, "-c", CHILD],
                           stdout=subprocess.PIPE, text=True, start_new_session=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert run.stdout.readline().strip() == "True", "the command inherited an ignored SIGINT"
        os.kill(run.pid, signal.SIGINT)
        assert run.wait(timeout=30) == 130
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


ENDINGS = {"its assertion fails": None, "SIGINT to the run": signal.SIGINT,
           "SIGTERM to the run": signal.SIGTERM, "SIGKILL to pytest": signal.SIGKILL}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_run_that_fails_or_is_interrupted_leaves_nothing_of_its_node(tmp_path, ending):
    name = f"nodes-ending-{list(ENDINGS).index(ending)}"
    ready = tmp_path / "ready"
    sig = ENDINGS[ending]
    env = dict(os.environ, SCENARIO_NODE=name, SCENARIO_READY=str(ready), SCENARIO_WAIT="0" if sig is None else "300")
    run = subprocess.Popen([sys.executable, os.path.join(HERE, "reaper.py"), sys.executable, "-m", "pytest", "-q",
                            "-p", "no:cacheprovider", os.path.join(HERE, "failing_scenario.py")],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    info = None
    try:
        deadline = time.monotonic() + 300
        while not ready.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready.exists(), "the scenario never got its node up"
        info = machine.load(name)
        assert in_namespace(info["pid_namespace"]), "the scenario's node is not running"
        if sig == signal.SIGKILL:
            os.kill(int(ready.read_text()), sig)   # pytest dies at once: no teardown runs
        elif sig is not None:
            os.kill(run.pid, sig)                  # the reaper passes it on, as from make
        try:
            output, _ = run.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            output, _ = run.communicate()
            raise AssertionError(f"the run did not end within 180 s of its ending; its output:\n{output}") from None
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode != 0, output
    assert machine.leftovers(info) == [], output
    assert in_namespace(info["pid_namespace"]) == [], output
    assert name not in machine.names()
