"""test/integration/expected.py takes the cookbook's defaults and its
instance-count rule from the cookbook's Ruby (cookbook_facts.rb), never from
a copy: the Kitchen and reliability suites derive their expected shapes from
them. (test/unit/chefspec/cookbook_facts_spec.rb holds the script's answers
equal to Chef's own reading of attributes/default.rb and to
UwsgiFleet::Fleet.instance_count.)"""
import shutil
import sys
from pathlib import Path

import pytest

INTEGRATION = Path(__file__).resolve().parents[2] / "integration"
sys.path.insert(0, str(INTEGRATION))

import expected  # noqa: E402

# No skip without ruby: `make unit` installs it (make deps), and a suite that
# skipped here would pass while checking nothing.
assert shutil.which("ruby"), "ruby reads the cookbook's Ruby: `make unit` installs it (make deps)"


def test_the_defaults_are_what_the_attributes_file_says_read_not_copied(tmp_path):
    attributes = tmp_path / "default.rb"
    text = Path(expected.ATTRIBUTES_RB).read_text()
    defaults = expected.cookbook_defaults()
    base_port = defaults["web"]["base_port"]
    attributes.write_text(text + f"default['uwsgi_fleet']['web']['base_port'] = {base_port + 7}\n")
    assert expected.cookbook_defaults(str(attributes))["web"]["base_port"] == base_port + 7
    # Everything Expected reads is there, with its type.
    web = defaults["web"]
    assert isinstance(web["threads"], int) and isinstance(web["nginx"]["listen"], int)
    assert web["processes"] == "auto" and isinstance(defaults["app"]["spool_dir"], str)
    assert defaults["web"]["nginx"]["client_max_body_size"] and defaults["app"]["max_attachment_bytes"]


def test_a_copy_is_returned_so_one_test_cannot_change_anothers_defaults():
    expected.cookbook_defaults()["web"]["threads"] = -1
    assert expected.cookbook_defaults()["web"]["threads"] != -1


def test_the_instance_count_is_the_cookbooks_answer():
    assert expected.instance_count(3, 8) == 3
    answers = {cpus: expected.instance_count("auto", cpus) for cpus in (1, 2, 6)}
    assert all(isinstance(n, int) for n in answers.values())
    assert answers[6] == expected.cookbook_facts("instance-count", '"auto"', 6)
    suite = expected.Expected.for_overrides({"uwsgi_fleet": {"web": {"processes": "auto"}}}, cpus=6)
    assert suite.processes == answers[6] and len(suite.ports) == answers[6]


def test_a_file_the_script_cannot_evaluate_fails_loudly(tmp_path):
    bad = tmp_path / "default.rb"
    bad.write_text("override['uwsgi_fleet']['web']['threads'] = 4\n")
    with pytest.raises(RuntimeError, match="override"):
        expected.cookbook_defaults(str(bad))
