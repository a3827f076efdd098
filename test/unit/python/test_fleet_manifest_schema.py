"""The manifest contract (files/default/uwsgi_fleetctl/fleet.schema.json): a
fleet.json missing a required key, or with one mistyped, is refused by the
tool's loader, which names the file; so is an earlier release's manifest.
And the one process manager of the tool runs the commands the manifest gives
it, whatever the process manager is called."""
import json
import re
from pathlib import Path

import pytest

from fleet_manifests import fleet_manifest
from support import FILES_DEFAULT
from uwsgi_fleetctl import manifest as manifests
from uwsgi_fleetctl.process_manager import ProcessManager

SCHEMA = manifests.schema()
PM_OPERATIONS = SCHEMA["$defs"]["process_manager_commands"]["required"]


def write(tmp_path, manifest):
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(manifest))
    return str(path)


def refused(tmp_path, manifest):
    """The loader's refusal of ``manifest`` (written to a file): its message."""
    path = write(tmp_path, manifest)
    with pytest.raises(manifests.ManifestError) as refusal:
        manifests.load(path)
    message = str(refusal.value)
    assert path in message and "converge with this cookbook to rewrite it" in message
    return message


def test_the_fixture_manifest_is_valid(tmp_path):
    manifest = fleet_manifest()
    assert manifests.load(write(tmp_path, manifest)) == manifest


@pytest.mark.parametrize("key", SCHEMA["required"])
def test_a_manifest_missing_a_required_key_is_refused(tmp_path, key):
    manifest = fleet_manifest()
    del manifest[key]
    message = refused(tmp_path, manifest)
    assert key in message


@pytest.mark.parametrize("operation", PM_OPERATIONS)
def test_process_manager_commands_missing_an_operation_are_refused(tmp_path, operation):
    manifest = fleet_manifest()
    del manifest["process_manager_commands"][operation]
    assert operation in refused(tmp_path, manifest)


MISTYPED = {
    "ports not integers": ("ports", ["9000", "9001"]),
    "a port out of range": ("ports", [70000]),
    "no ports": ("ports", []),
    "threads a string": ("threads", "4"),
    "fifo without {port}": ("fifo", "/run/fleet/master.fifo"),
    "log without {port}": ("log", "/var/log/fleet/uwsgi.log"),
    "instance_name without {port}": ("instance_name", "fleet"),
    "a relative fifo_dir": ("fifo_dir", "run/fleet"),
    "upstream_fail_timeout zero": ("upstream_fail_timeout", 0),
    "upstream_fail_timeout a string": ("upstream_fail_timeout", "2s"),
    "an unknown key": ("program_prefix", "uwsgi_fleet_"),
}


@pytest.mark.parametrize("key, value", MISTYPED.values(), ids=MISTYPED.keys())
def test_a_mistyped_manifest_is_refused(tmp_path, key, value):
    manifest = fleet_manifest()
    manifest[key] = value
    assert key in refused(tmp_path, manifest)


COMMANDS_MISTYPED = {
    "pid not a list": ("pid", "supervisorctl pid {name}"),
    "pid empty": ("pid", []),
    "start one command, not a list of them": ("start", ["true", "{name}"]),
    "stop null": ("stop", None),
    "restart with a number": ("restart", [["kill", 1]]),
    "ready a string": ("ready", "true"),
}


@pytest.mark.parametrize("operation, value", COMMANDS_MISTYPED.values(), ids=COMMANDS_MISTYPED.keys())
def test_mistyped_process_manager_commands_are_refused(tmp_path, operation, value):
    manifest = fleet_manifest()
    manifest["process_manager_commands"][operation] = value
    assert operation in refused(tmp_path, manifest)


@pytest.mark.parametrize("version", [None, 0, manifests.version() + 1, str(manifests.version())])
def test_a_manifest_of_another_version_is_refused(tmp_path, version):
    manifest = fleet_manifest()
    if version is None:
        del manifest["manifest_version"]
    else:
        manifest["manifest_version"] = version
    assert "manifest_version" in refused(tmp_path, manifest)


def test_a_manifest_from_release_0_1_0_is_refused_with_what_to_do(tmp_path):
    """0.1.0's manifest (a node not yet upgraded): no version, program_prefix.
    The tool does not guess what it meant: Chef rewrites it."""
    old = {"ports": [9000], "program_prefix": "uwsgi_fleet_", "bind_address": "127.0.0.1"}
    message = refused(tmp_path, old)
    assert "manifest_version: none" in message


def test_a_manifest_that_is_not_json_names_its_file(tmp_path):
    path = tmp_path / "fleet.json"
    path.write_text("{")
    with pytest.raises(manifests.ManifestError, match=re.escape(str(path))):
        manifests.load(str(path))


# -- the process manager: the manifest's commands, nothing else --------------------

NAMES = ["supervisor", "systemd", "a-third-one"]


def recording(tmp_path, **commands):
    """process_manager_commands whose steps append '<operation> <name>' to a file,
    with /bin/sh and /bin/echo only; ``commands`` replace some."""
    log = tmp_path / "ran"

    def step(operation):
        return ["/bin/sh", "-c", f'echo "$0 $1" >> {log}', operation, "{name}"]
    made = {"ready": ["/bin/true"], "pid": ["/bin/echo", "4242"],
            **{op: [step(op)] for op in ("start", "stop", "restart")},
            "apply": [step("reread"), step("update")]}
    made.update(commands)
    return made, log


@pytest.mark.parametrize("name", NAMES)
def test_the_process_manager_runs_the_manifests_commands_whatever_it_is_called(tmp_path, name):
    commands, log = recording(tmp_path)
    instance_file = tmp_path / "fleet_9000.conf"
    instance_file.write_text("")
    pm = ProcessManager(fleet_manifest(process_manager=name, process_manager_commands=commands,
                                       instance_file=str(tmp_path / "fleet_{port}.conf")))
    assert pm.ready() and pm.master_pid(9000) == 4242
    pm.restart(9000)
    pm.perform("stop", 9001)
    pm.perform("start", 9001)
    assert pm.apply(9000) is True  # its file exists: wanted
    assert pm.apply(9001) is False  # no file: retired
    assert log.read_text().splitlines() == ["restart fleet_9000", "stop fleet_9001", "start fleet_9001",
                                            "reread fleet_9000", "update fleet_9000",
                                            "reread fleet_9001", "update fleet_9001"]


@pytest.mark.parametrize("out, pid", [("0", None), ("", None), ("not a pid", None), ("77", 77)])
def test_the_master_pid_is_what_the_pid_command_prints(tmp_path, out, pid):
    pm = ProcessManager(fleet_manifest(process_manager_commands=recording(tmp_path, pid=["/bin/echo", out])[0]))
    assert pm.master_pid(9000) == pid


def test_a_failing_step_stops_the_operation_with_its_command(tmp_path):
    commands, log = recording(tmp_path, restart=[["/bin/false", "{name}"], ["/bin/echo", "never"]])
    with pytest.raises(SystemExit, match="/bin/false fleet_9000 failed"):
        ProcessManager(fleet_manifest(process_manager_commands=commands)).restart(9000)


def test_no_ready_command_means_always_ready_and_a_failing_one_not(tmp_path):
    assert ProcessManager(fleet_manifest(process_manager_commands=recording(tmp_path, ready=None)[0])).ready()
    assert not ProcessManager(fleet_manifest(process_manager_commands=recording(tmp_path, ready=["/bin/false"])[0])).ready()


def test_apply_null_is_refused_instead_of_guessed(tmp_path):
    commands, log = recording(tmp_path, apply=None)
    with pytest.raises(SystemExit, match="Chef's own resources"):
        ProcessManager(fleet_manifest(process_manager_commands=commands)).apply(9000)
    assert not log.exists()


def test_the_package_names_no_process_manager():
    """Adding one is Chef's business (libraries/process_manager.rb): no Python file knows any by name."""
    package = Path(FILES_DEFAULT) / "uwsgi_fleetctl"
    sources = {p.name: p.read_text() for p in package.glob("*.py")} | {"launcher": (FILES_DEFAULT / "uwsgi-fleetctl").read_text()}
    assert sources and not {name for name, text in sources.items() if re.search(r"supervisor|systemd", text, re.I)}

