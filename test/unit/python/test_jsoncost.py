"""The memory estimate json.loads is checked against (issue 10, item 6)."""

import json
import tracemalloc

import pytest

from store_app import jsoncost
from test_hostile_bodies import SHAPES


def parse_peak(data):
    """What decoding and parsing ``data`` really allocates (tracemalloc)."""
    tracemalloc.start()
    try:
        obj = json.loads(data.decode("utf-8"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del obj
    return peak


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_estimate_is_an_upper_bound(shape):
    data = SHAPES[shape](200_000)
    assert jsoncost.estimate(data) >= parse_peak(data)


@pytest.mark.parametrize("text", [
    '{"a": "x{[:,y"}',                        # structure inside a string
    '{"a": "quote \\" and {[:,"}',            # an escaped quote
    '{"a": "backslash \\\\", "b": 1}',        # an escaped backslash ends it
    '{"a": "\\\\\\" still inside {[:,"}',     # backslash, then escaped quote
])
def test_characters_inside_strings_do_not_count(text):
    data = text.encode()
    json.loads(data)
    # The same document with every string's contents replaced by letters.
    plain = json.dumps({k: "x" * len(v) if isinstance(v, str) else v
                        for k, v in json.loads(data).items()},
                       separators=(", ", ": ")).encode()
    cost = jsoncost.estimate(data) - 2 * len(data)
    assert cost == jsoncost.estimate(plain) - 2 * len(plain)


def test_small_documents_are_not_even_scanned(monkeypatch):
    def scan(data):
        raise AssertionError("scanned")
    monkeypatch.setattr(jsoncost, "estimate", scan)
    budget = 16 << 20
    size = (budget - jsoncost.BASE_BYTES) // jsoncost.MAX_BYTES_PER_BYTE
    assert jsoncost.fits(b"{" * size, budget)
