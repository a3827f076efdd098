"""Issue 10, item 1: every Content-Encoding a Sentry SDK sends is decoded
(brotli from sentry-python 2.x, zstd, lists with identity, the "UTF-8" value
of old Android SDKs), and none of them can decode past the cap."""

import gzip
import json
import subprocess
import uuid

import brotli
import pytest
from sentry_sdk.envelope import Envelope

from support import (KEY, SDK_AUTH, call, event_bytes, gzip_zero_bomb,
                     make_app, spooled)


def zstd(data, *args):
    """zstd-compress with the zstd command-line tool (Debian's zstd)."""
    return subprocess.run(["zstd", "-q", "-c", *args], input=data,
                          capture_output=True, check=True).stdout


def post_store(app, data, encoding, **kw):
    return call(app, body=data, headers={
        "Content-Encoding": encoding, "X-Sentry-Auth": SDK_AUTH % KEY}, **kw)


def test_sentry_python_2_brotli_envelope_is_stored(app, spool):
    """Exactly what sentry-python 2.x sends when brotli is importable
    (transport.py: brotli.compress(envelope.serialize(), quality=4),
    Content-Type application/x-sentry-envelope, Content-Encoding br)."""
    event = json.loads(event_bytes())
    envelope = Envelope(headers={"event_id": event["event_id"],
                                 "sent_at": "2024-01-01T00:00:00.000000Z"})
    envelope.add_event(event)
    body = brotli.compress(envelope.serialize(), quality=4)
    resp = call(app, path="/api/1/envelope/", body=body, headers={
        "Content-Type": "application/x-sentry-envelope",
        "Content-Encoding": "br", "User-Agent": "sentry.python/2.19.0",
        "X-Sentry-Auth": SDK_AUTH.replace("1.9.10", "2.19.0") % KEY})
    assert resp.status == 200, resp
    assert resp.json == {"id": event["event_id"]}
    stored = json.loads((spool / "1" / (event["event_id"] + ".json"))
                        .read_bytes())
    assert stored == event


@pytest.mark.parametrize("encoding,encode", [
    ("br", lambda d: brotli.compress(d)),
    ("zstd", lambda d: zstd(d)),
    ("zstd", lambda d: zstd(d[:40]) + zstd(d[40:])),   # two frames
    ("gzip, identity", gzip.compress),
    ("identity, gzip", gzip.compress),
    ("GZip", gzip.compress),
    ("UTF-8", lambda d: d),              # sentry.java.android 2.0.0
    ("", lambda d: d),                   # sentry-ruby 5.x
    ("gzip, br", lambda d: brotli.compress(gzip.compress(d))),
])
def test_encodings_sdks_send_are_decoded(app, spool, encoding, encode):
    event_id = uuid.uuid4().hex
    data = event_bytes(event_id)
    resp = post_store(app, encode(data), encoding)
    assert resp.status == 200, resp
    assert (spool / "1" / (event_id + ".json")).read_bytes() == data


@pytest.mark.parametrize("encoding,encode", [
    ("br", lambda d: brotli.compress(d, quality=11)),
    ("zstd", lambda d: zstd(d, "-19")),
    ("gzip", gzip.compress),
])
def test_bombs_stop_at_the_cap(tmp_path, encoding, encode):
    cap = 100_000
    bomb = encode(b"[" + b" " * (64 * cap))  # 64x the cap once decoded
    assert len(bomb) < cap
    resp = post_store(make_app(tmp_path, max_event_bytes=cap), bomb, encoding)
    assert resp.status == 413, resp


def test_a_brotli_stream_that_expands_16_mib_per_input_byte_is_capped(
        tmp_path, monkeypatch):
    """python3-brotli's Decompressor.process has no output limit (one call
    returned 16 MiB for 14 input bytes); the decoder here asks for at most
    what the cap still allows."""
    from store_app import native
    bomb = brotli.compress(bytes(17 << 20), quality=11, lgwin=24)
    assert len(bomb) < 100
    asked = []
    real_read = native.Brotli.read
    monkeypatch.setattr(native.Brotli, "read",
                        lambda self, n: asked.append(n) or real_read(self, n))
    cap = 1 << 20
    resp = post_store(make_app(tmp_path, max_event_bytes=cap), bomb, "br")
    assert resp.status == 413, resp
    assert sum(asked) <= cap + 1


def test_gzip_bomb_is_still_refused_quickly(tmp_path):
    resp = post_store(make_app(tmp_path, max_event_bytes=1 << 20),
                      gzip_zero_bomb(gib=1), "gzip")
    assert resp.status == 413, resp


@pytest.mark.parametrize("encoding,body", [
    ("br", brotli.compress(event_bytes())[:-3]),            # truncated
    ("br", brotli.compress(event_bytes()) + b"junk"),        # trailing
    ("br", b"\xff\xff\xff\xff not brotli"),                  # corrupt
    ("zstd", zstd(event_bytes())[:-3]),
    ("zstd", zstd(event_bytes()) + b"junk"),
    ("zstd", b"\x28\xb5\x2f\xfd garbage"),
])
def test_broken_brotli_and_zstd_are_400(app, spool, encoding, body):
    resp = post_store(app, body, encoding)
    assert resp.status == 400, resp
    assert resp.headers["content-type"] == "application/json"
    assert spooled(spool) == []


def test_zstd_frames_with_a_huge_window_are_refused(app):
    # --long=27 declares a 128 MiB window: memory the decoder would reserve.
    body = zstd(event_bytes(), "--long=27", "--ultra", "-22")
    assert post_store(app, body, "zstd").status == 400
