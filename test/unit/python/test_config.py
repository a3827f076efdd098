"""Configuration loading, validation and the lazily configured entry point."""

import json

import pytest

from store_app import config, wsgi
from support import (KEY, call, config_dict, event_bytes, make_app,
                     spooled, store)


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    """Write a config file, point STORE_APP_CONFIG at it, reset the cache."""
    (tmp_path / "spool").mkdir()
    path = tmp_path / "store_app.json"

    def write(raw):
        path.write_text(raw if isinstance(raw, str) else json.dumps(raw))
        return path

    monkeypatch.setenv(config.ENV_VAR, str(path))
    monkeypatch.setenv(wsgi.INSTANCE_ENV, "9007")
    config.reset_config_cache()
    yield write
    config.reset_config_cache()


def test_documented_example_config_is_valid(tmp_path):
    cfg = config.parse_config({
        "projects": {"1": {"public_key": KEY, "rate_limit": {
            "events_per_second": 1000, "burst": 2000}}},
        "spool_dir": "/var/spool/uwsgi_fleet",
        "quota": {"backend": "redis", "url": "redis://:pw@10.0.0.5:6379/0",
                  "key_prefix": "uwsgi_fleet:quota:", "timeout_ms": 50,
                  "state_file": "/var/spool/uwsgi_fleet/.quota"},
        "stream": {"url": "redis://:pw@10.0.0.5:6379/0",
                   "key_prefix": "uwsgi_fleet:events:", "batch": 100,
                   "status_file": "/run/uwsgi_fleet/forwarder.json",
                   "dedup_seconds": 3600, "maxlen": None},
        "max_body_bytes": 2097152, "max_event_bytes": 20971520,
        "simulated_hops": 0, "simulated_hop_ms": 2.0})
    assert cfg.projects["1"].rate_limit == config.RateLimit(1000.0, 2000.0)
    assert cfg.quota == config.Quota(
        "redis", "/var/spool/uwsgi_fleet/.quota",
        "redis://:pw@10.0.0.5:6379/0", "uwsgi_fleet:quota:", 50.0)
    assert cfg.stream == config.Stream(
        "redis://:pw@10.0.0.5:6379/0", "uwsgi_fleet:events:", 100,
        "/run/uwsgi_fleet/forwarder.json", 3600, None)


MINIMAL = {"projects": {}, "spool_dir": "/s",
           "quota": {"backend": "local", "state_file": "/s/.quota"}}


def test_optional_keys_have_defaults():
    cfg = config.parse_config(MINIMAL)
    # Relay's max_event_size is the reference for the event cap, its
    # max_envelope_size (and nginx's client_max_body_size) for the body and
    # the decoded envelope, SDKs' maxAttachmentSize for an attachment.
    assert (cfg.max_body_bytes, cfg.max_event_bytes,
            cfg.max_attachment_bytes) == (100 << 20, 1 << 20, 20 << 20)
    assert cfg.envelope_limit == cfg.max_body_bytes
    assert (cfg.simulated_hops, cfg.simulated_hop_ms) == (0, 2.0)
    assert cfg.stream is None
    assert cfg.quota == config.Quota("local", "/s/.quota")


def test_envelope_limit_is_never_below_one_event():
    def limit(**options):
        return config.parse_config(dict(MINIMAL, **options)).envelope_limit
    assert limit(max_event_bytes=4000, max_envelope_bytes=5000) == 5000
    assert limit(max_event_bytes=4000, max_body_bytes=5000) == 5000
    assert limit(max_event_bytes=9000, max_body_bytes=5000) == 9000
    assert limit(max_event_bytes=9000, max_envelope_bytes=5000) == 9000


def test_values_are_chefs_to_judge_not_the_apps(tmp_path):
    """Issue 11: Chef validates every value (libraries/validation.rb); the
    app checks only the shape.  Values Chef would refuse, in the right JSON
    types, are taken as they are."""
    raw = config_dict("relative/dir", simulated_hops=-1,
                      max_event_bytes=0, projects={
                          "abc": {"public_key": "NOT-HEX",
                                  "rate_limit": {"events_per_second": 0,
                                                 "burst": 0.5}},
                          "123456789012345678901234567890": {
                              "public_key": KEY}})
    cfg = config.parse_config(raw)
    assert cfg.spool_dir == "relative/dir"
    assert (cfg.simulated_hops, cfg.max_event_bytes) == (-1, 0)
    assert cfg.projects["abc"] == config.Project(
        "NOT-HEX", config.RateLimit(0.0, 0.5))
    assert "123456789012345678901234567890" in cfg.projects


def test_any_digits_route_and_the_config_says_which_projects_exist(tmp_path):
    """The router holds no copy of Chef's project-id rule: a long id that
    the config lists is served, one it does not list is 403, not 404."""
    long_id = "9" * 30
    app = make_app(tmp_path, projects={long_id: {"public_key": KEY}})
    assert store(app, event_bytes(), project=long_id).status == 200
    assert spooled(tmp_path / "spool", long_id)
    unknown = store(app, event_bytes(), project="1" * 25)
    assert (unknown.status, unknown.json["error"]) == (403, "unknown project")
    assert store(app, event_bytes(), project="x1").status == 404


@pytest.mark.parametrize("change,message", [
    ({"projects": []}, r"top level\.projects must be object; got \[\]"),
    ({"projects": {"1": "key"}}, r"projects\[.1.\] must be an object"),
    ({"projects": {"1": {}}},
     r"projects\[.1.\]: missing required key .public_key."),
    ({"projects": {"1": {"public_key": 5}}},
     r"projects\[.1.\]\.public_key must be string; got 5"),
    ({"projects": {"1": {"public_key": KEY, "rate_limit": {"burst": 5}}}},
     r"projects\[.1.\]\.rate_limit: missing required key .events_per_second."),
    ({"projects": {"1": {"public_key": KEY, "rate_limit": {
        "events_per_second": "10", "burst": 5}}}},
     r"rate_limit\.events_per_second must be number; got \"10\""),
    ({"projects": {"1": {"public_key": KEY, "rate_limit": {
        "events_per_second": 10, "burst": True}}}},
     r"rate_limit\.burst must be number; got true"),
    ({"projects": {"1": {"public_key": KEY, "rate_limit": []}}},
     r"rate_limit must be object or null"),
    ({"projects": {"1": {"public_key": KEY, "rate_limt": None}}},
     r"projects\[.1.\]: unknown key\(s\) rate_limt"),
    ({"spool_dir": None}, r"spool_dir must be string; got null"),
    ({"instances": 2}, r"top level: unknown key\(s\) instances"),
    ({"max_body_bytes": "2MB"}, r"max_body_bytes must be integer"),
    ({"max_event_bytes": 1.5}, r"max_event_bytes must be integer"),
    ({"simulated_hops": False}, r"simulated_hops must be integer"),
    ({"simulated_hop_ms": "2"}, r"simulated_hop_ms must be number"),
    ({"max_body_byte": 5}, r"unknown key\(s\) max_body_byte"),
    ({"quota": {"backend": "memory"}},
     r"quota\.backend must be one of 'local', 'redis'; got \"memory\""),
    ({"quota": {"backend": "local"}},
     r"quota: missing required key 'state_file'"),
    ({"quota": {"backend": "local", "state_file": "/q", "url": "redis://"}},
     r"quota: unknown key\(s\) url"),
    ({"quota": {"backend": "redis", "state_file": "/q", "url": "redis://x",
                "key_prefix": "q:"}},
     r"quota: missing required key 'timeout_ms'"),
    ({"quota": {"backend": "redis", "state_file": "/q", "url": "redis://x",
                "key_prefix": "q:", "timeout_ms": "50"}},
     r"quota\.timeout_ms must be number"),
    ({"stream": {"url": "redis://x"}}, r"stream: missing required key"),
    ({"stream": {"url": "redis://x", "key_prefix": "e:", "batch": 10.0,
                 "status_file": "/s", "dedup_seconds": 60}},
     r"stream\.batch must be integer"),
    ({"stream": {"url": "redis://x", "key_prefix": "e:", "batch": 10,
                 "status_file": "/s", "dedup_seconds": 60, "maxlen": "1"}},
     r"stream\.maxlen must be integer or null"),
    ({"stream": "redis://x"}, r"stream must be object or null"),
])
def test_a_config_not_of_chefs_shape_is_rejected_naming_the_key(
        tmp_path, change, message):
    raw = config_dict(tmp_path)
    raw.update(change)
    with pytest.raises(config.ConfigError, match=message):
        config.parse_config(raw)


@pytest.mark.parametrize("missing", ["projects", "spool_dir", "quota"])
def test_required_keys(tmp_path, missing):
    raw = config_dict(tmp_path)
    del raw[missing]
    with pytest.raises(config.ConfigError,
                       match="missing required key '%s'" % missing):
        config.parse_config(raw)


def test_config_objects_are_frozen(tmp_path):
    cfg = config.parse_config(config_dict(tmp_path))
    with pytest.raises(AttributeError):
        cfg.spool_dir = "/elsewhere"
    with pytest.raises(AttributeError):
        cfg.quota.state_file = "/elsewhere"


def test_load_config_errors_name_the_file(tmp_path):
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load_config(str(tmp_path / "absent.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(config.ConfigError, match="bad.json.*not valid JSON"):
        config.load_config(str(bad))


def test_application_loads_config_from_env_once(config_file, tmp_path):
    path = config_file(config_dict(tmp_path / "spool"))
    app = wsgi.LazyApp()
    resp = call(app, "GET", "/_health")
    assert resp.status == 200 and resp.json["instance"] == "9007"
    assert store(app, event_bytes()).status == 200
    # Cached: a later change to the file does not affect this process.
    path.write_text("{broken")
    assert store(app, event_bytes()).status == 200


def test_application_with_bad_config_answers_500_json(config_file, capsys):
    config_file('{"projects": {}}')
    app = wsgi.LazyApp()
    resp = call(app, "GET", "/_health")
    assert resp.status == 500
    assert resp.json == {"error": "configuration error"}
    assert resp.headers["x-fleet-instance"] == "9007"
    assert "missing required key 'spool_dir'" in capsys.readouterr().err


def test_module_level_application_is_lazy():
    # Importing must not read /etc/uwsgi_fleet/store_app.json.
    assert isinstance(wsgi.application, wsgi.LazyApp)
    assert wsgi.application._app is None


def test_a_quota_state_file_that_cannot_be_opened_is_a_500_json(
        config_file, tmp_path, capsys):
    config_file(config_dict(tmp_path / "spool", quota={
        "backend": "local", "state_file": str(tmp_path / "absent" / "q")}))
    app = wsgi.LazyApp()
    resp = call(app, "GET", "/_health")
    assert (resp.status, resp.json) == (500, {"error": "configuration error"})
    assert "absent/q" in capsys.readouterr().err


def test_health_names_the_quota_backend(tmp_path):
    app = make_app(tmp_path)
    assert call(app, "GET", "/_health").json["quota"] == {
        "backend": "local", "state_file": str(tmp_path / "spool" / ".quota")}
