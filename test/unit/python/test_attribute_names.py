"""No attribute of the cookbook may be named like a field Chef's search
matches nodes on. Chef's search index flattens a node's attributes and also
indexes each value under its last key alone, so an attribute
['uwsgi_fleet']['redis']['role'] = 'uwsgi_fleet_redis' made every node that
converged the cookbook match `role:uwsgi_fleet_redis`: a third web node found
4 Redis nodes and stopped (`make cluster`, beside the Kitchen lane)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration"))

import expected  # noqa: E402

# The fields the cookbook's searches use (libraries/search.rb, recipes/), and
# the node's own index fields a search may name.
SEARCH_FIELDS = {"role", "roles", "recipe", "recipes", "run_list", "name", "chef_environment", "fqdn",
                 "hostname", "ipaddress", "platform", "tags"}


def leaf_keys(tree, path=()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from leaf_keys(value, path + (key,))
        else:
            yield path + (key,)


def test_no_attribute_is_named_like_a_search_field():
    colliding = ["['" + "']['".join(path) + "']" for path in leaf_keys(expected.cookbook_defaults())
                 if path[-1] in SEARCH_FIELDS]
    assert colliding == []


def test_the_check_sees_a_colliding_name(tmp_path):
    attributes = tmp_path / "default.rb"
    attributes.write_text(Path(expected.ATTRIBUTES_RB).read_text()
                          + "default['uwsgi_fleet']['redis']['role'] = 'uwsgi_fleet_redis'\n")
    paths = [p for p in leaf_keys(expected.cookbook_defaults(str(attributes))) if p[-1] in SEARCH_FIELDS]
    assert paths == [("redis", "role")]
