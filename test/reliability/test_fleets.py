"""Several fleets on one node: deleting one under load (uwsgi_fleet :delete)
cuts no request off, the other fleet loses nothing, and nothing of it remains."""
import json
import os

import support

TEST_COOKBOOK = os.path.join(support.REPO, "test", "cookbooks", "test")
WITH_API = "recipe[uwsgi_fleet::default],recipe[test::api_fleet]"
DELETE_API = "recipe[uwsgi_fleet::default],recipe[test::delete]"


def test_deleting_a_fleet_under_load(report, supervisor_node):
    support.converge_ok(run_list=WITH_API, extra_cookbooks=[TEST_COOKBOOK])
    api = json.loads(support.NODE.read("/etc/uwsgi_fleet/api/fleet.json"))
    store_ports = support.manifest()["ports"]
    with support.Load(rate=40) as load, support.GetLoad(api["server_name"]) as api_load:
        support.converge_ok(run_list=DELETE_API, extra_cookbooks=[TEST_COOKBOOK])
    report("delete of a second fleet (api) under load on both", load)
    # The default fleet's load lost nothing.
    assert load.failures() == []
    assert load.lost_events() == []
    # The deleted fleet's requests were answered by it until nginx stopped routing to it,
    # then by the default server: none was cut off or refused (nginx first, then the instances).
    statuses = {status for status, _ in api_load.answers}
    instances = [int(i) for _, i in api_load.answers if i]
    assert statuses == {200}, api_load.answers
    assert set(instances) & set(api["ports"]) and set(instances) & set(store_ports)
    # Nothing of it remains.
    assert not support.NODE.exists("/etc/uwsgi_fleet/api")
    assert not support.NODE.exists(api["site_file"])
    listening = support.NODE.output("ss -Hltn")
    assert not any(f":{port} " in listening for port in api["ports"])
