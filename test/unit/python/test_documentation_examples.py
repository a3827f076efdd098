"""The example roles and node JSON in documentation/examples/ (what an operator
copies to set up a cluster, and what test/cluster uploads) are Chef role JSON
and first-boot JSON whose attributes are the cookbook's and whose run lists
name recipes and roles that exist."""
import json
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "documentation" / "examples"
sys.path.insert(0, str(REPO / "test" / "integration"))

import expected  # noqa: E402  (reads attributes/default.rb)

COOKBOOK = re.search(r"^name\s+'([^']+)'", (REPO / "metadata.rb").read_text(), re.M).group(1)
ROLE_FILES = sorted((EXAMPLES / "roles").glob("*.json"))
NODE_FILES = sorted((EXAMPLES / "nodes").glob("*.json"))
# Chef's rule for a role name (Chef::Role#name).
ROLE_NAME = re.compile(r"\A[\w.-]+\Z")


def load(path):
    with open(path) as f:
        return json.load(f)


def roles():
    return {path.stem: load(path) for path in ROLE_FILES}


def defaults():
    return {"uwsgi_fleet": expected.cookbook_defaults()}


def unknown_attributes(given, tree, path=()):
    """Paths in `given` that attributes/default.rb does not set. Below an
    attribute whose default is a Hash ({}: projects, env) any key goes."""
    unknown = []
    for key, value in given.items():
        here = path + (key,)
        if not isinstance(tree, dict) or key not in tree:
            unknown.append(".".join(here))
        elif isinstance(value, dict) and tree[key] != {}:
            unknown += unknown_attributes(value, tree[key], here)
    return unknown


def recipe_file(entry):
    """recipes/<name>.rb of `recipe[cookbook]` or `recipe[cookbook::name]`."""
    match = re.fullmatch(r"recipe\[([\w-]+)(?:::([\w-]+))?\]", entry)
    assert match and match.group(1) == COOKBOOK, entry
    return REPO / "recipes" / f"{match.group(2) or 'default'}.rb"


def test_there_are_the_three_roles_and_a_node_of_each():
    assert len(ROLE_FILES) == 3
    assert {load(p)["run_list"][0] for p in NODE_FILES} == {f"role[{name}]" for name in roles()}


@pytest.mark.parametrize("path", ROLE_FILES, ids=lambda p: p.name)
def test_a_role_is_chef_role_json_named_as_its_file(path):
    role = load(path)
    assert set(role) == {"name", "description", "json_class", "chef_type", "run_list",
                         "default_attributes", "override_attributes"}
    assert (role["json_class"], role["chef_type"]) == ("Chef::Role", "role")
    assert role["name"] == path.stem and ROLE_NAME.match(role["name"])
    assert isinstance(role["description"], str) and role["description"]
    assert isinstance(role["run_list"], list) and role["run_list"]


@pytest.mark.parametrize("path", ROLE_FILES, ids=lambda p: p.name)
def test_a_roles_attributes_are_the_cookbooks_and_its_recipes_exist(path):
    role = load(path)
    for level in ("default_attributes", "override_attributes"):
        assert unknown_attributes(role[level], defaults()) == [], level
    for entry in role["run_list"]:
        assert recipe_file(entry).is_file(), entry


@pytest.mark.parametrize("path", NODE_FILES, ids=lambda p: p.name)
def test_a_nodes_json_names_an_example_role_and_the_cookbooks_attributes(path):
    node = load(path)
    run_list = node.pop("run_list")
    assert run_list and all(re.fullmatch(r"role\[(.+)\]", e) and e[5:-1] in roles() for e in run_list), run_list
    assert unknown_attributes(node, defaults()) == []


def test_the_searches_find_the_example_roles_by_the_cookbooks_names():
    """The web role's Redis search names the Redis role, whose name is the one
    web nodes look for to warn about a Redis they do not use; the balancer's
    search, the web role (the cookbook's default search)."""
    attrs = defaults()["uwsgi_fleet"]
    by_name = roles()
    web_search = by_name["uwsgi_fleet_web"]["default_attributes"]["uwsgi_fleet"]["app"]["redis"]["search"]
    balancer_search = by_name["uwsgi_fleet_balancer"]["default_attributes"]["uwsgi_fleet"]["balancer"]["search"]
    assert web_search == f"role:{attrs['redis']['role_name']}" and attrs["redis"]["role_name"] in by_name
    assert balancer_search == attrs["balancer"]["search"] and balancer_search[len("role:"):] in by_name


def test_an_unknown_attribute_is_found():
    """The check itself: a misspelt key, and one below a leaf, are reported."""
    assert unknown_attributes({"uwsgi_fleet": {"web": {"thread": 4, "threads": {"x": 1}},
                                               "app": {"projects": {"7": {"public_key": "k"}}}}},
                              defaults()) == ["uwsgi_fleet.web.thread", "uwsgi_fleet.web.threads.x"]
