"""test/integration/expected.py reads the cookbook's defaults from
attributes/default.rb's literals (the Kitchen and reliability suites derive
their expected shapes from them): every attribute line must be one it reads."""
import re
import sys
from pathlib import Path

INTEGRATION = Path(__file__).resolve().parents[2] / "integration"
sys.path.insert(0, str(INTEGRATION))

import expected  # noqa: E402


def test_every_attribute_of_the_cookbook_is_a_literal_expected_py_reads():
    defaults = expected.cookbook_defaults()
    with open(Path(expected.REPO) / "attributes" / "default.rb") as f:
        lines = [line for line in f if expected.ATTRIBUTE_LINE.match(line.strip())]
    assert lines
    for line in lines:
        node = defaults
        for key in re.findall(r"\['([a-z_]+)'\]", line.split(" = ")[0])[1:]:
            node = node[key]
    assert defaults["web"]["nginx"]["client_max_body_size"] and defaults["app"]["max_attachment_bytes"]
