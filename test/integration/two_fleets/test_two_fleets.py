"""Two fleets from a wrapper cookbook (test::two_fleets) beside a site that is
not ours; the suite grew the api fleet from the seed's size to its own."""
import urllib.request


from expected import kitchen_suites
from fleet_checks import *  # noqa: F401,F403 (the shared specs run in every suite)
from fleet_checks import master_pid, started_before_the_suites_converge


def by_name(fleets):
    return {f["name"]: f for f in fleets}


def test_the_two_fleets_share_nothing(fleets):
    store, api = by_name(fleets)["store"], by_name(fleets)["api"]
    for key in ("upstream", "site_file", "fifo_dir", "log_dir", "instance_prefix", "server_name", "user"):
        assert store[key] != api[key], key
    assert not set(store["ports"]) & set(api["ports"])


def test_the_api_fleet_has_the_suites_size(fleets):
    suite = kitchen_suites()["two_fleets"]
    assert len(by_name(fleets)["api"]["ports"]) == suite["attributes"]["test"]["api_processes"]
    assert suite["attributes"]["test"]["api_processes"] != suite["driver"]["seed"]["attributes"]["test"]["api_processes"]


def test_growing_one_fleet_left_the_others_instances_untouched(host, fleets):
    store, api = by_name(fleets)["store"], by_name(fleets)["api"]
    seed_size = kitchen_suites()["two_fleets"]["driver"]["seed"]["attributes"]["test"]["api_processes"]
    assert all(started_before_the_suites_converge(host, master_pid(host, store, p)) for p in store["ports"])
    assert all(started_before_the_suites_converge(host, master_pid(host, api, p)) for p in api["ports"][:seed_size])
    assert not any(started_before_the_suites_converge(host, master_pid(host, api, p)) for p in api["ports"][seed_size:])


def test_the_site_that_is_not_ours_still_serves(node, host):
    conf = host.file("/etc/nginx/sites-available/other").content_string
    port = int(conf.split("listen ")[1].split(";")[0])
    with urllib.request.urlopen(node.url("/", port=port), timeout=10) as response:
        assert response.read() == b"other site\n"
    # Debian's default site was left alone too: the fleets are not the default server.
    assert host.file("/etc/nginx/sites-enabled/default").exists
