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


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_rough_estimate_is_above_the_estimate(shape):
    """fits() may answer from rough_estimate(): it must never be lower."""
    for size in (1_000, 200_000):
        data = SHAPES[shape](size)
        assert jsoncost.rough_estimate(data) >= jsoncost.estimate(data)
    for text in ('{"a": "x{[:,y", "b": [1, {"c": null}]}', '{"\\\\\\"": "\\"{"}', '[]'):
        assert jsoncost.rough_estimate(text.encode()) >= jsoncost.estimate(text.encode())


def test_a_large_ordinary_event_fits_without_the_full_estimate(monkeypatch):
    """Issue 13: events over budget / 200 bytes (84 kB at the default cap) no
    longer pay for estimate()'s splitting when the rough bound already fits."""
    def no_split(data):
        raise AssertionError("estimate() was called")
    monkeypatch.setattr(jsoncost, "estimate", no_split)
    event = json.dumps({"breadcrumbs": [{"category": "http", "message": "GET /api/%d done" % i}
                                        for i in range(6000)]}).encode()
    assert len(event) > 200_000
    assert jsoncost.fits(event, 16 * 1024 * 1024)


def test_the_width_check_looks_for_a_backslash_before_a_two_byte_escape():
    """b"\\\\u" in data costs 30 times b"\\\\" in data on a large ASCII event."""
    searched = []

    class Spy(bytes):
        def __contains__(self, needle):
            searched.append(needle)
            return super().__contains__(needle)
    assert jsoncost._cost(Spy(b'{"a": "plain"}'), 1, 0, 1, 0, 2) == jsoncost._cost(b'{"a": "plain"}', 1, 0, 1, 0, 2)
    assert searched == [b"\\"]
    for text, width in ((b'{"a": "\\u00e9"}', 4), (b'{"a": "\\" q"}', 1), (b'{"a": "\xc3\xa9"}', 4)):
        assert jsoncost._cost(text, 0, 0, 0, 0, 0) == jsoncost.BASE_BYTES + 2 * width * len(text)
