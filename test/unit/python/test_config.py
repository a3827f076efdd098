"""Configuration loading, validation and the lazily configured entry point."""

import json

import pytest

from store_app import config, wsgi
from support import KEY, call, config_dict, event_bytes, store


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
        "max_body_bytes": 2097152, "max_event_bytes": 20971520,
        "simulated_hops": 0, "simulated_hop_ms": 2.0, "instances": 4})
    assert cfg.projects["1"].rate_limit.burst == 2000
    assert cfg.instances == 4


def test_optional_keys_have_defaults(tmp_path):
    cfg = config.parse_config({"projects": {}, "spool_dir": "/s",
                               "instances": 1})
    # Relay's max_event_size is the reference for the event cap.
    assert (cfg.max_body_bytes, cfg.max_event_bytes) == (2097152, 1048576)
    assert cfg.envelope_limit == 20971520
    assert (cfg.simulated_hops, cfg.simulated_hop_ms) == (0, 2.0)


def test_envelope_limit_is_never_below_one_event():
    def limit(**options):
        return config.parse_config({"projects": {}, "spool_dir": "/s",
                                    "instances": 1, **options}).envelope_limit
    assert limit(max_event_bytes=4000, max_envelope_bytes=5000) == 5000
    assert limit(max_event_bytes=30000000) == 30000000
    assert limit(max_event_bytes=9000, max_envelope_bytes=5000) == 9000


@pytest.mark.parametrize("change,message", [
    ({"projects": []}, "projects must be an object"),
    ({"projects": {"abc": {"public_key": KEY}}}, "string of digits"),
    ({"projects": {"1": {"public_key": KEY.upper()}}}, "32 lowercase hex"),
    ({"projects": {"1": {"public_key": "abc"}}}, "32 lowercase hex"),
    ({"projects": {"1": {}}}, "public_key"),
    ({"projects": {"1": {"public_key": KEY, "rate_limit": {"burst": 5}}}},
     "events_per_second"),
    ({"projects": {"1": {"public_key": KEY, "rate_limit": {
        "events_per_second": 0, "burst": 5}}}}, "events_per_second"),
    ({"projects": {"1": {"public_key": KEY, "rate_limit": {
        "events_per_second": 10, "burst": 3}}}, "instances": 4},
     "divided by instances"),
    ({"projects": {"1": {"public_key": KEY, "rate_limt": None}}},
     "unknown key"),
    ({"spool_dir": "relative/dir"}, "absolute"),
    ({"instances": 0}, "instances"),
    ({"instances": True}, "instances"),
    ({"max_body_bytes": "2MB"}, "max_body_bytes"),
    ({"max_event_bytes": -1}, "max_event_bytes"),
    ({"simulated_hops": -1}, "simulated_hops"),
    ({"simulated_hop_ms": "2"}, "simulated_hop_ms"),
    ({"max_body_byte": 5}, "unknown key"),
])
def test_malformed_config_is_rejected_clearly(tmp_path, change, message):
    raw = config_dict(tmp_path)
    raw.update(change)
    with pytest.raises(config.ConfigError, match=message):
        config.parse_config(raw)


@pytest.mark.parametrize("missing", ["projects", "spool_dir", "instances"])
def test_required_keys(tmp_path, missing):
    raw = config_dict(tmp_path)
    del raw[missing]
    with pytest.raises(config.ConfigError, match=missing):
        config.parse_config(raw)


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
