"""HTTP behaviour of the store endpoint, called as a WSGI app (no server)."""

import io
import json
import os
import stat
import time
import tracemalloc
import uuid

import pytest

from store_app import auth, body, decode, wsgi
from support import (KEY, KEY2, SDK_AUTH, call, event_bytes, gz,
                     gzip_zero_bomb, make_app, raw_deflate, sdk_headers,
                     spooled, all_files, store, zlib_deflate)


def assert_json_error(resp, status):
    assert resp.status == status, resp
    assert resp.headers["content-type"] == "application/json"
    assert isinstance(resp.json["error"], str) and resp.json["error"]
    assert resp.headers["x-fleet-instance"] == "9000"


# -- health ----------------------------------------------------------------

def test_health_get(app):
    resp = call(app, "GET", "/_health", headers={"X-Real-IP": "10.9.9.9", "X-Forwarded-For": "6.6.6.6, 10.9.9.9"})
    assert resp.status == 200
    assert resp.json["status"] == "ok" and resp.json["instance"] == "9000"
    assert resp.json["code"] == wsgi.code_digest()
    assert resp.json["client"] == {"remote_addr": None, "x_real_ip": "10.9.9.9",
                                   "x_forwarded_for": "6.6.6.6, 10.9.9.9"}
    assert resp.headers["x-fleet-instance"] == "9000"
    assert resp.headers["content-type"] == "application/json"


@pytest.mark.parametrize("changed, addition", [("__init__.py", "# a new deploy\n"),
                                                ("cors.json", "\n")])
def test_code_digest_changes_with_the_source(tmp_path, monkeypatch, changed, addition):
    """The code and the data it reads (the CORS policy nginx shares)."""
    import shutil
    copy = tmp_path / "store_app"
    shutil.copytree(os.path.dirname(wsgi.__file__), copy)
    monkeypatch.setattr(wsgi, "__file__", str(copy / "wsgi.py"))
    before = wsgi.code_digest()
    with open(copy / changed, "a") as f:
        f.write(addition)
    assert wsgi.code_digest() != before


def test_health_head_has_headers_but_no_body(app):
    resp = call(app, "HEAD", "/_health")
    assert resp.status == 200
    assert resp.body == b""
    assert int(resp.headers["content-length"]) == len(
        call(app, "GET", "/_health").body)


def test_health_wrong_method_is_405(app):
    resp = call(app, "POST", "/_health", body=b"x")
    assert_json_error(resp, 405)
    assert resp.headers["allow"] == "GET, HEAD"


# -- accepted events -------------------------------------------------------

@pytest.mark.parametrize("encoding,encode", [
    ("gzip", gz),
    ("x-gzip", gz),
    ("deflate", zlib_deflate),   # RFC 1950 zlib-wrapped, the official form
    ("deflate", raw_deflate),    # raw RFC 1951 stream some clients send
    ("identity", lambda d: d),
    (None, lambda d: d),         # no Content-Encoding header at all
])
def test_store_accepts_each_encoding(app, spool, encoding, encode):
    event_id = uuid.uuid4().hex
    data = event_bytes(event_id)
    resp = call(app, body=encode(data), headers=sdk_headers(KEY, encoding))
    assert resp.status == 200, resp
    assert resp.json == {"id": event_id}
    assert resp.headers["content-type"] == "application/json"
    # Event had an id: the decompressed bytes are stored exactly as sent.
    assert (spool / "1" / (event_id + ".json")).read_bytes() == data


@pytest.mark.parametrize("path", ["/api/1/store/", "/api/1/store"])
def test_store_with_and_without_trailing_slash(app, spool, path):
    data = event_bytes()
    resp = call(app, path=path, body=gz(data), headers=sdk_headers())
    assert resp.status == 200
    assert spooled(spool) == [resp.json["id"] + ".json"]


def test_auth_via_query_string(app, spool):
    data = event_bytes()
    resp = call(app, body=gz(data), query="sentry_version=7&sentry_key=" + KEY,
                headers={"Content-Encoding": "gzip"})
    assert resp.status == 200
    assert spooled(spool) == [resp.json["id"] + ".json"]


def test_auth_via_authorization_header(app):
    resp = call(app, body=gz(event_bytes()),
                headers={"Content-Encoding": "gzip",
                         "Authorization": SDK_AUTH % KEY})
    assert resp.status == 200


def test_second_project_uses_its_own_key(app, spool):
    assert store(app, event_bytes(), key=KEY2, project="2").status == 200
    assert store(app, event_bytes(), key=KEY, project="2").status == 403
    assert len(spooled(spool, "2")) == 1


def test_event_without_id_gets_one_assigned(app, spool):
    data = event_bytes(None, message="no id")
    resp = store(app, data)
    assert resp.status == 200
    event_id = resp.json["id"]
    assert len(event_id) == 32 and int(event_id, 16) >= 0
    stored = json.loads((spool / "1" / (event_id + ".json")).read_bytes())
    assert stored["event_id"] == event_id
    assert stored["message"] == "no id"


def test_dashed_uppercase_uuid_is_normalised(app, spool):
    u = uuid.uuid4()
    resp = store(app, event_bytes(str(u).upper()))
    assert resp.status == 200
    assert resp.json == {"id": u.hex}
    assert spooled(spool) == [u.hex + ".json"]
    stored = json.loads((spool / "1" / (u.hex + ".json")).read_bytes())
    assert stored["event_id"] == u.hex


def test_duplicate_event_id_is_stored_once(app, spool):
    event_id = uuid.uuid4().hex
    first = event_bytes(event_id, message="first")
    assert store(app, first).json == {"id": event_id}
    resp = store(app, event_bytes(event_id, message="second"))
    assert resp.status == 200 and resp.json == {"id": event_id}
    assert all_files(spool) == [event_id + ".json"]  # no temp files left
    assert (spool / "1" / (event_id + ".json")).read_bytes() == first


def test_spool_file_and_dir_modes(app, spool):
    old = os.umask(0o077)  # modes must not depend on the process umask
    try:
        resp = store(app, event_bytes())
    finally:
        os.umask(old)
    path = spool / "1" / (resp.json["id"] + ".json")
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o750
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


# -- auth ------------------------------------------------------------------

def test_missing_key_is_401(app, spool):
    resp = call(app, body=gz(event_bytes()),
                headers={"Content-Encoding": "gzip",
                         "X-Sentry-Auth": "Sentry sentry_version=7"})
    assert_json_error(resp, 401)
    assert spooled(spool) == []


def test_missing_key_on_unknown_project_is_401(app):
    resp = call(app, path="/api/77/store/", body=gz(event_bytes()),
                headers={"Content-Encoding": "gzip"})
    assert_json_error(resp, 401)


def test_wrong_key_is_403(app, spool):
    assert_json_error(store(app, event_bytes(), key="a" * 32), 403)
    assert_json_error(store(app, event_bytes(), key="short"), 403)
    assert spooled(spool) == []


def test_unknown_project_is_403(app):
    assert_json_error(store(app, event_bytes(), project="77"), 403)


def test_key_compare_uses_hmac_compare_digest(app, monkeypatch):
    calls = []
    real = auth.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert store(app, event_bytes()).status == 200
    assert store(app, event_bytes(), key="b" * 32).status == 403
    assert calls == [(KEY.encode(), KEY.encode()),
                     (b"b" * 32, KEY.encode())]
    # Its verdict is the one that counts.
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: False)
    assert store(app, event_bytes()).status == 403


def test_auth_happens_before_body_is_read_or_decompressed(app, monkeypatch):
    def boom(*args):
        raise AssertionError("body touched before auth")

    monkeypatch.setattr(body, "RequestBody", boom)
    monkeypatch.setattr(decode, "DecodedBody", boom)
    resp = call(app, body=b"not gzip at all", headers=sdk_headers("c" * 32))
    assert_json_error(resp, 403)


# -- 400 -------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    b"{not json",
    b"[1, 2, 3]",
    b'"a string"',
    b"null",
    b'{"event_id": "not-a-uuid"}',
    b'{"event_id": 12345}',
    b'{"event_id": "%s", "x": NaN}' % (b"a" * 32),
    b"[" * 100000 + b"]" * 100000,       # RecursionError inside json
    b'{"message": "\xff\xfe broken utf-8 \xc3"}',
])
def test_bad_event_is_400(app, spool, data):
    assert_json_error(store(app, data), 400)
    assert all_files(spool) == []


def test_broken_gzip_is_400(app):
    assert_json_error(call(app, body=b"\x1f\x8b\x08garbage",
                           headers=sdk_headers()), 400)


@pytest.mark.parametrize("cut", [1, 8, 12])  # 8: just the CRC/size trailer
def test_truncated_gzip_is_400(app, spool, cut):
    body_ = gz(event_bytes())
    assert_json_error(call(app, body=body_[:-cut], headers=sdk_headers()), 400)
    assert all_files(spool) == []


def test_gzip_with_trailing_garbage_is_400(app):
    body_ = gz(event_bytes()) + b"junk"
    assert_json_error(call(app, body=body_, headers=sdk_headers()), 400)


def test_gzip_padded_with_nul_bytes_is_accepted(app):
    body_ = gz(event_bytes()) + b"\0" * 100
    assert call(app, body=body_, headers=sdk_headers()).status == 200
    assert call(app, body=body_ + b"x", headers=sdk_headers()).status == 400


def test_multi_member_gzip_is_accepted(app):
    data = event_bytes()
    half = len(data) // 2
    body_ = gz(data[:half]) + gz(data[half:])
    assert call(app, body=body_, headers=sdk_headers()).status == 200


def test_broken_deflate_is_400(app):
    assert_json_error(call(app, body=b"\x78\x9cnope",
                           headers=sdk_headers(KEY, "deflate")), 400)


def test_empty_body_is_400(app):
    assert_json_error(call(app, body=b"", headers=sdk_headers()), 400)


@pytest.mark.parametrize("length", [None, "", "abc", "-1", "1.5", "１２"])
def test_missing_or_invalid_content_length_is_400(app, length):
    resp = call(app, body=gz(event_bytes()), headers=sdk_headers(),
                content_length=length)
    assert_json_error(resp, 400)


def test_fewer_bytes_than_content_length_is_400(app, spool):
    body_ = gz(event_bytes())
    resp = call(app, body=body_, headers=sdk_headers(),
                content_length=str(len(body_) + 10))
    assert_json_error(resp, 400)
    assert all_files(spool) == []


def test_client_disconnect_during_read_is_400(app):
    class Broken(io.RawIOBase):
        def read(self, n=-1):
            raise OSError("error during read(65536) on wsgi.input")

    resp = call(app, headers=sdk_headers(), content_length="100",
                stream=Broken(), validate=False)
    assert_json_error(resp, 400)


# -- 413 -------------------------------------------------------------------

def test_body_over_max_body_bytes_is_413_without_reading(tmp_path):
    app = make_app(tmp_path, max_body_bytes=1000)

    class MustNotRead(io.RawIOBase):
        def read(self, n=-1):
            raise AssertionError("oversized body was read")

    resp = call(app, headers=sdk_headers(), content_length="1001",
                stream=MustNotRead(), validate=False)
    assert_json_error(resp, 413)
    # A huge Content-Length is just as refused, not a crash in int().
    resp = call(app, headers=sdk_headers(), content_length="9" * 5000,
                stream=MustNotRead(), validate=False)
    assert_json_error(resp, 413)


class CountingInput(io.BytesIO):
    """wsgi.input that records the size of every read."""

    def __init__(self, data):
        super().__init__(data)
        self.reads = []

    def read(self, size=-1):
        chunk = super().read(size)
        self.reads.append(len(chunk))
        return chunk


@pytest.mark.parametrize("path", ["/api/1/store/", "/api/1/envelope/"])
def test_a_body_refused_part_way_is_read_to_its_end_in_chunks(tmp_path, path):
    """Issue 18, item 7: the body is read as it is decoded, READ_CHUNK at a
    time, never whole; one refused before its end is still read to the end,
    or uWSGI would close the connection with data unread (a reset, which
    nginx takes for a failed instance)."""
    app = make_app(tmp_path, max_event_bytes=64 * 1024,
                   max_body_bytes=8 * 1024 * 1024)
    event = b'{"message": "%s"}' % (b"x" * (4 * 1024 * 1024))
    data = event if path.endswith("store/") else \
        b'{}\n{"type": "event", "length": %d}\n%s\n' % (len(event), event)
    stream = CountingInput(data)
    resp = call(app, path=path, body=data, stream=stream,
                headers={"X-Sentry-Auth": SDK_AUTH % KEY})
    assert_json_error(resp, 413)
    assert sum(stream.reads) == len(data)
    assert max(stream.reads) <= body.READ_CHUNK


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "identity"])
def test_event_over_max_event_bytes_is_413(tmp_path, encoding):
    app = make_app(tmp_path, max_event_bytes=10_000)
    data = event_bytes(padding="x" * 10_000)
    assert_json_error(store(app, data, encoding=encoding), 413)
    ok = event_bytes(padding="x" * 9_000)
    assert store(app, ok, encoding=encoding).status == 200


def test_decompression_bomb_is_refused_without_full_inflation(tmp_path):
    bomb = gzip_zero_bomb(gib=1)  # ~1 MB on the wire, 1 GiB inflated
    assert len(bomb) < 2 * 1024 * 1024
    app = make_app(tmp_path, max_event_bytes=1024 * 1024)
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        resp = call(app, body=bomb, headers=sdk_headers())
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_json_error(resp, 413)
    # Inflating 1 GiB takes seconds and a GiB; capped inflation stops at
    # max_event_bytes: body + cap + zlib state is a few MB.
    assert peak < 8 * 1024 * 1024, peak
    assert elapsed < 1.0, elapsed


# -- 404 / 405 / 415 -------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/api/1/", "/api/abc/store/",
                                  "/api/1/other/", "/api/1/store/extra",
                                  "/api/1/store//", "/_health/x"])
def test_unknown_path_is_404(app, path):
    assert_json_error(call(app, path=path, body=gz(event_bytes()),
                           headers=sdk_headers()), 404)


@pytest.mark.parametrize("method,path", [("GET", "/api/1/store/"),
                                         ("PUT", "/api/1/store"),
                                         ("DELETE", "/api/1/envelope/")])
def test_wrong_method_is_405_with_allow(app, method, path):
    resp = call(app, method, path, headers=sdk_headers())
    assert_json_error(resp, 405)
    assert resp.headers["allow"] == "OPTIONS, POST"  # OPTIONS: CORS preflight


@pytest.mark.parametrize("encoding", ["compress", "gzip, compress", "x-bzip2",
                                      "gzip, gzip, gzip"])
def test_unsupported_encoding_is_415(app, encoding):
    resp = call(app, body=gz(event_bytes()),
                headers=sdk_headers(KEY, encoding))
    assert_json_error(resp, 415)


# -- 429 -------------------------------------------------------------------

def test_quota_429_with_retry_after(tmp_path, spool):
    app = make_app(tmp_path, projects={"1": {
        "public_key": KEY,
        "rate_limit": {"events_per_second": 0.5, "burst": 2}}})
    assert store(app, event_bytes()).status == 200
    assert store(app, event_bytes()).status == 200
    resp = store(app, event_bytes())
    assert_json_error(resp, 429)
    retry = resp.headers["retry-after"]
    assert retry.isdigit() and int(retry) >= 1
    assert resp.json["retry_after"] == int(retry)
    assert len(spooled(spool)) == 2


def test_instances_on_a_node_share_one_bucket(tmp_path, spool):
    """Two instances (two apps, each with its own descriptor of the state
    file) draw on one bucket: the node admits the burst, not twice it."""
    projects = {"1": {"public_key": KEY, "rate_limit": {
        "events_per_second": 0.001, "burst": 3}}}
    a = make_app(tmp_path, instance="9000", projects=projects)
    b = make_app(tmp_path, instance="9001", projects=projects)
    statuses = [store(app, event_bytes()).status for app in (a, b, a, b, a)]
    assert statuses == [200, 200, 200, 429, 429]
    assert len(spooled(spool)) == 3


def test_project_without_rate_limit_is_unlimited(app):
    assert all(store(app, event_bytes()).status == 200 for _ in range(50))


# -- instance header, hops, server faults ----------------------------------

def test_every_response_carries_instance_header(tmp_path):
    app = make_app(tmp_path, instance="9042", projects={"1": {
        "public_key": KEY,
        "rate_limit": {"events_per_second": 0.1, "burst": 1}}})
    responses = [
        call(app, "GET", "/_health"),
        call(app, "HEAD", "/_health"),
        store(app, event_bytes()),                                # 200
        store(app, event_bytes()),                                # 429
        store(app, b"{"),                                         # 400
        call(app, body=b"{}", headers={}),                        # 401
        store(app, event_bytes(), key="d" * 32),                  # 403
        call(app, "GET", "/nope"),                                # 404
        call(app, "GET", "/api/1/store/"),                        # 405
        call(app, body=b"x", headers=sdk_headers(KEY, "compress")),  # 415
        call(app, headers=sdk_headers(), content_length="9" * 9), # 413
    ]
    assert sorted({r.status for r in responses}) == [
        200, 400, 401, 403, 404, 405, 413, 415, 429]
    assert all(r.headers["x-fleet-instance"] == "9042" for r in responses)


def test_instance_header_defaults_to_unknown(tmp_path, monkeypatch):
    monkeypatch.delenv(wsgi.INSTANCE_ENV, raising=False)
    app = make_app(tmp_path, instance=None)
    assert call(app, "GET", "/_health").headers["x-fleet-instance"] == \
        "unknown"
    monkeypatch.setenv(wsgi.INSTANCE_ENV, "9003")
    app = make_app(tmp_path, instance=None)
    resp = call(app, "GET", "/_health")
    assert resp.headers["x-fleet-instance"] == "9003"
    assert resp.json["instance"] == "9003"


def test_simulated_hops_sleep(tmp_path, monkeypatch):
    sleeps = []
    monkeypatch.setattr(wsgi.time, "sleep", sleeps.append)
    app = make_app(tmp_path, simulated_hops=3, simulated_hop_ms=7.5)
    assert store(app, event_bytes()).status == 200
    assert sleeps == [0.0075] * 3
    sleeps.clear()
    assert store(make_app(tmp_path), event_bytes()).status == 200
    assert sleeps == []  # off by default


def test_unexpected_exception_is_500_json_without_traceback(
        app, monkeypatch, capsys):
    def buggy(*args):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(body, "parse_json_object", buggy)
    resp = store(app, event_bytes())
    assert_json_error(resp, 500)
    assert b"secret" not in resp.body and b"Traceback" not in resp.body
    err = capsys.readouterr().err
    assert "Traceback" in err and "secret internals" in err


def test_success_path_logs_nothing(app, capsys):
    assert store(app, event_bytes()).status == 200
    assert capsys.readouterr() == ("", "")
