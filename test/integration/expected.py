"""Expected fleet shape for a Kitchen suite, from the cookbook's own sources.

Defaults are attributes/default.rb and the instance count is
UwsgiFleet::Fleet.instance_count, both answered by the cookbook's Ruby
(cookbook_facts.rb, run with plain ruby); each suite's overrides come from
kitchen.yml (read with pyyaml). No expected value or rule is copied here.
"""
import copy
import functools
import json
import os
import subprocess

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FACTS_RB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cookbook_facts.rb")
ATTRIBUTES_RB = os.path.join(REPO, "attributes", "default.rb")


def cookbook_facts(*args):
    """What cookbook_facts.rb prints for `args`, parsed."""
    run = subprocess.run(["ruby", FACTS_RB, *map(str, args)], capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"ruby {FACTS_RB} {' '.join(map(str, args))}: {run.stderr.strip()}")
    return json.loads(run.stdout)


@functools.lru_cache(maxsize=None)
def _defaults(path):
    return cookbook_facts("defaults", path)


def cookbook_defaults(path=ATTRIBUTES_RB):
    """node['uwsgi_fleet'] defaults as a nested dict (a fresh copy)."""
    return copy.deepcopy(_defaults(path)["uwsgi_fleet"])


def deep_merge(base, override):
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def kitchen_suites(path=os.path.join(REPO, "kitchen.yml")):
    with open(path) as f:
        return {suite["name"]: suite for suite in yaml.safe_load(f)["suites"]}


def suite_attributes(suite):
    """node['uwsgi_fleet'] as the suite converges it: defaults + kitchen.yml overrides."""
    overrides = (kitchen_suites()[suite].get("attributes") or {}).get("uwsgi_fleet", {})
    return deep_merge(cookbook_defaults(), overrides)


@functools.lru_cache(maxsize=None)
def instance_count(processes, cpus):
    """How many instances a fleet runs, as UwsgiFleet::Fleet.instance_count says."""
    return cookbook_facts("instance-count", json.dumps(processes), cpus)


def all_suite_ports(cpus):
    """Every port any suite uses: the ones a given suite must NOT be listening on."""
    ports = set()
    for name in kitchen_suites():
        web = suite_attributes(name)["web"]
        count = instance_count(web["processes"], cpus)
        ports.update(range(web["base_port"], web["base_port"] + count))
    return ports


class Expected:
    """What the converged node must look like for node['uwsgi_fleet'] = attributes."""

    @classmethod
    def for_suite(cls, suite, cpus):
        return cls(suite_attributes(suite), cpus)

    @classmethod
    def for_overrides(cls, overrides, cpus):
        """Defaults plus a chef-client -j style {'uwsgi_fleet': {...}} override."""
        return cls(deep_merge(cookbook_defaults(), overrides.get("uwsgi_fleet", {})), cpus)

    def __init__(self, attributes, cpus):
        """`cpus`: the node's CPU count, which 'auto' resolves to."""
        self.attributes = attributes
        web = self.attributes["web"]
        self.threads = web["threads"]
        self.bind_address = web["bind_address"]
        self.user = web["user"]
        self.listen = web["nginx"]["listen"]
        self.processes = instance_count(web["processes"], cpus)
        self.ports = list(range(web["base_port"], web["base_port"] + self.processes))
        self.unused_ports = sorted(all_suite_ports(cpus) - set(self.ports) | {self.ports[-1] + 1})
        self.spool_dir = self.attributes["app"]["spool_dir"]
