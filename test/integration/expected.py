"""Expected fleet shape for a Kitchen suite, from the cookbook's own sources.

Defaults come from attributes/default.rb and each suite's overrides from
kitchen.yml (read with pyyaml), so no expected value is copied into a test.
"""
import ast
import os
import re

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ATTRIBUTE_LINE = re.compile(r"^default((?:\['[a-z_]+'\])+) = (.+)$")
RUBY_WORDS = {"nil": "None", "true": "True", "false": "False"}


def ruby_literal(text):
    """A Ruby literal as written in attributes/default.rb (strings, numbers, nil, [], {})."""
    text = re.sub(r"(?<=\d)_(?=\d)", "", text.strip())
    text = RUBY_WORDS.get(text, text)
    return ast.literal_eval(text.replace("=>", ":"))


def cookbook_defaults(path=os.path.join(REPO, "attributes", "default.rb")):
    """node['uwsgi_fleet'] defaults as a nested dict."""
    tree = {}
    with open(path) as f:
        for line in f:
            match = ATTRIBUTE_LINE.match(line.strip())
            if not match:
                continue
            keys = re.findall(r"\['([a-z_]+)'\]", match.group(1))
            node = tree
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            node[keys[-1]] = ruby_literal(match.group(2))
    return tree["uwsgi_fleet"]


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


def instance_count(processes, cpus):
    """Same rule as UwsgiFleet::Fleet.instance_count: 'auto' = CPU count, at least 2."""
    return max(cpus, 2) if processes == "auto" else processes


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
