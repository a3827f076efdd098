"""A fleet run by systemd (test::systemd): a template unit, one enabled
instance per port, a graceful KillSignal; grown from the seed's size."""
from expected import kitchen_suites
from fleet_checks import *  # noqa: F401,F403 (the shared specs run in every suite)
from fleet_checks import master_pid, started_before_the_suites_converge


def test_systemd_runs_the_instances(fleets):
    (fleet,) = fleets
    assert fleet["process_manager"] == "systemd"
    assert len(fleet["ports"]) == kitchen_suites()["systemd"]["attributes"]["test"]["store_processes"]


def test_each_instance_is_enabled_and_stops_gracefully(host, fleets):
    (fleet,) = fleets
    for port in fleet["ports"]:
        unit = fleet["instance_name"].format(port=port)
        assert host.check_output(f"systemctl is-enabled {unit}") == "enabled"
        # HUP is uWSGI's graceful stop here (--exit-on-reload); systemd's default TERM is brutal.
        assert host.check_output(f"systemctl show --property=KillSignal --value {unit}") == "1"
        assert host.check_output(f"systemctl show --property=KillMode --value {unit}") == "mixed"


def test_growing_left_the_running_instances_untouched(host, fleets):
    (fleet,) = fleets
    seed_size = kitchen_suites()["systemd"]["driver"]["seed"]["attributes"]["test"]["store_processes"]
    assert all(started_before_the_suites_converge(host, master_pid(host, fleet, p)) for p in fleet["ports"][:seed_size])
    assert not any(started_before_the_suites_converge(host, master_pid(host, fleet, p)) for p in fleet["ports"][seed_size:])
