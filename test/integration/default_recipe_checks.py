"""Specs of the suites that converge the default recipe (0.1.0's attribute
interface): the shared fleet specs, plus the shape kitchen.yml and
attributes/default.rb give the suite."""
import re

from fleet_checks import *  # noqa: F401,F403 (the shared specs run in every suite)


def test_the_fleet_has_the_suites_shape(fleets, expected):
    (fleet,) = fleets
    assert fleet["name"] == "default"
    assert fleet["ports"] == expected.ports
    assert fleet["threads"] == expected.threads
    assert fleet["user"] == expected.user
    assert fleet["bind_address"] == expected.bind_address
    assert fleet["listen"] == expected.listen


def test_no_other_suites_port_listens(host, expected):
    listening = host.check_output("ss -Hltn")
    for port in expected.unused_ports:
        assert not re.search(rf":{port}\s", listening), f"port {port} still listens"
