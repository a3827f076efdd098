"""Configuration loading, validation and the lazily configured entry point."""

import json
import re
from pathlib import Path

import pytest

from store_app import config, wsgi
from support import (FILES_DEFAULT, KEY, call, config_dict, event_bytes,
                     make_app, spooled, store)


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
        "config_version": 1,
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
        "max_envelope_bytes": 20971520, "max_attachment_bytes": 20971520,
        "simulated_hops": 0, "simulated_hop_ms": 2.0})
    assert cfg.projects["1"].rate_limit == config.RateLimit(1000.0, 2000.0)
    assert cfg.quota == config.Quota(
        "redis", "/var/spool/uwsgi_fleet/.quota",
        "redis://:pw@10.0.0.5:6379/0", "uwsgi_fleet:quota:", 50.0)
    assert cfg.stream == config.Stream(
        "redis://:pw@10.0.0.5:6379/0", "uwsgi_fleet:events:", 100,
        "/run/uwsgi_fleet/forwarder.json", 3600, None)


SCHEMA = json.loads(Path(config.SCHEMA_PATH).read_text())


def test_the_schema_ships_next_to_config_py_in_the_package_chef_installs():
    # Chef installs files/default/store_app whole (remote_directory).
    assert Path(config.SCHEMA_PATH) == FILES_DEFAULT / "store_app" / "config.schema.json"
    assert SCHEMA["properties"]["config_version"]["const"] == 1


def test_the_config_takes_its_values_as_written_no_defaults(tmp_path):
    raw = config_dict(tmp_path, max_body_bytes=3 << 20, max_event_bytes=1 << 20,
                      max_envelope_bytes=5 << 20, max_attachment_bytes=7 << 20,
                      simulated_hops=4, simulated_hop_ms=1)
    cfg = config.parse_config(raw)
    assert (cfg.max_body_bytes, cfg.max_event_bytes, cfg.max_envelope_bytes,
            cfg.max_attachment_bytes) == (3 << 20, 1 << 20, 5 << 20, 7 << 20)
    assert cfg.envelope_limit == cfg.max_envelope_bytes
    assert (cfg.simulated_hops, cfg.simulated_hop_ms) == (4, 1.0)
    assert cfg.stream is None
    assert cfg.quota == config.Quota("local", str(tmp_path / ".quota"),
                                     None, None, None)
    assert cfg.projects["1"].rate_limit is None


def test_the_dataclasses_have_no_defaults():
    """Chef's defaults are the only ones (issue 19: max_event_bytes was set
    in three places)."""
    from dataclasses import MISSING, fields
    for cls in (config.Config, config.Quota, config.Stream, config.Project,
                config.RateLimit):
        assert all(f.default is MISSING and f.default_factory is MISSING
                   for f in fields(cls)), cls


def test_values_are_chefs_to_judge_not_the_apps(tmp_path):
    """Chef validates every value (libraries/validation.rb); the app checks
    the shape, and the schema's few bounds.  Values Chef would refuse, within
    them, are taken as they are."""
    raw = config_dict(tmp_path, simulated_hops=11, max_event_bytes=1,
                      max_envelope_bytes=1, projects={
                          "abc": {"public_key": "NOT-HEX",
                                  "rate_limit": {"events_per_second": 1e-9,
                                                 "burst": 0.5}},
                          "123456789012345678901234567890": {
                              "public_key": KEY}})
    cfg = config.parse_config(raw)
    assert (cfg.simulated_hops, cfg.max_event_bytes) == (11, 1)
    assert cfg.projects["abc"] == config.Project(
        "NOT-HEX", config.RateLimit(1e-9, 0.5))
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


LIMIT = {"events_per_second": 10, "burst": 5}
STREAM = {"url": "redis://x", "key_prefix": "e:", "batch": 10,
          "status_file": "/s", "dedup_seconds": 60, "maxlen": None}


@pytest.mark.parametrize("change,message", [
    ({"config_version": 2}, r"\$\.config_version: 1 was expected"),
    ({"projects": []}, r"\$\.projects: \[\] is not of type 'object'"),
    ({"projects": {}}, r"\$\.projects: \{\} does not have enough properties"),
    ({"projects": {"1": "key"}},
     r"\$\.projects\[\"1\"\]: 'key' is not of type 'object'"),
    ({"projects": {"1": {"rate_limit": None}}},
     r"\$\.projects\[\"1\"\]: 'public_key' is a required property"),
    ({"projects": {"1": {"public_key": 5, "rate_limit": None}}},
     r"\$\.projects\[\"1\"\]\.public_key: 5 is not of type 'string'"),
    ({"projects": {"1": {"public_key": KEY}}},
     r"\$\.projects\[\"1\"\]: 'rate_limit' is a required property"),
    ({"projects": {"1": {"public_key": KEY, "rate_limit": {"burst": 5}}}},
     r"\$\.projects\[\"1\"\]\.rate_limit: 'events_per_second' is a required"),
    ({"projects": {"1": {"public_key": KEY, "rate_limit": dict(
        LIMIT, events_per_second="10")}}},
     r"rate_limit\.events_per_second: '10' is not of type 'number'"),
    ({"projects": {"1": {"public_key": KEY, "rate_limit": dict(
        LIMIT, burst=True)}}},
     r"rate_limit\.burst: True is not of type 'number'"),
    ({"projects": {"1": {"public_key": KEY, "rate_limit": []}}},
     r"\$\.projects\[\"1\"\]\.rate_limit: \[\] is not valid under any"),
    ({"projects": {"1": {"public_key": KEY, "rate_limit": None,
                         "rate_limt": None}}},
     r"\$\.projects\[\"1\"\]: Additional properties .*'rate_limt'"),
    ({"spool_dir": None}, r"\$\.spool_dir: None is not of type 'string'"),
    ({"spool_dir": "relative"}, r"\$\.spool_dir: 'relative' does not match"),
    ({"instances": 2}, r"\$: Additional properties .*'instances'"),
    ({"max_body_bytes": "2MB"}, r"\$\.max_body_bytes: '2MB' is not of type 'integer'"),
    ({"max_event_bytes": 1.5}, r"\$\.max_event_bytes: 1\.5 is not of type 'integer'"),
    ({"max_envelope_bytes": 0}, r"\$\.max_envelope_bytes: 0 is less than the minimum"),
    ({"simulated_hops": False}, r"\$\.simulated_hops: False is not of type 'integer'"),
    ({"simulated_hops": -1}, r"\$\.simulated_hops: -1 is less than the minimum"),
    ({"simulated_hop_ms": "2"}, r"\$\.simulated_hop_ms: '2' is not of type 'number'"),
    ({"max_body_byte": 5}, r"Additional properties .*'max_body_byte'"),
    ({"quota": {"backend": "memory", "state_file": "/q"}},
     r"\$\.quota\.backend: \"memory\" is not one of \"local\", \"redis\""),
    ({"quota": {"state_file": "/q"}},
     r"\$\.quota: 'backend' is a required property"),
    ({"quota": {"backend": "local"}},
     r"\$\.quota: 'state_file' is a required property"),
    ({"quota": {"backend": "local", "state_file": "/q", "url": "redis://"}},
     r"\$\.quota: Additional properties .*'url'"),
    ({"quota": {"backend": "redis", "state_file": "/q", "url": "redis://x",
                "key_prefix": "q:"}},
     r"\$\.quota: 'timeout_ms' is a required property"),
    ({"quota": {"backend": "redis", "state_file": "/q", "url": "redis://x",
                "key_prefix": "q:", "timeout_ms": "50"}},
     r"\$\.quota\.timeout_ms: '50' is not of type 'number'"),
    ({"stream": {"url": "redis://x"}},
     r"\$\.stream: 'key_prefix' is a required property"),
    # (10.0 is an integer to JSON Schema: a number without a fraction.)
    ({"stream": dict(STREAM, batch=10.5)},
     r"\$\.stream\.batch: 10\.5 is not of type 'integer'"),
    ({"stream": dict(STREAM, maxlen="1")},
     r"\$\.stream\.maxlen: '1' is not of type 'integer', 'null'"),
    ({"stream": "redis://x"},
     r"\$\.stream: 'redis://x' is not valid under any of the given schemas"),
])
def test_a_config_not_of_chefs_shape_is_rejected_naming_the_key(
        tmp_path, change, message):
    raw = config_dict(tmp_path)
    raw.update(change)
    with pytest.raises(config.ConfigError, match=message):
        config.parse_config(raw)


def _required(schema, path=()):
    """(JSON path, key) of every required key of the schema, through its
    objects and the object branch of each oneOf: what a config must hold."""
    schema = _resolve(schema)
    for key in schema.get("required", []):
        yield path, key
    for key, sub in schema.get("properties", {}).items():
        yield from _required(sub, path + (key,))
    for branch in schema.get("oneOf", []):
        yield from _required(branch, path)


def _resolve(schema):
    while "$ref" in schema:
        schema = SCHEMA["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _full_config(tmp_path):
    """A config with every optional object present: a project with a limit,
    the Redis quota and a stream."""
    return config_dict(tmp_path, projects={"1": {
        "public_key": KEY, "rate_limit": dict(LIMIT)}},
        quota={"backend": "redis", "state_file": "/q", "url": "redis://x",
               "key_prefix": "q:", "timeout_ms": 50},
        stream=dict(STREAM))


def _at(raw, path):
    for key in path:
        raw = raw[key]
    return raw


def _required_keys(tmp_path):
    raw = _full_config(tmp_path)
    found = []
    for path, key in _required(SCHEMA):
        # Inside projects: every project (additionalProperties) is checked.
        if path == ("projects",):
            continue
        try:
            if key in _at(raw, path):
                found.append((path, key))
        except (KeyError, TypeError):
            pass
    project = _resolve(SCHEMA["properties"]["projects"]["additionalProperties"])
    for key in project["required"]:
        found.append((("projects", "1"), key))
    limit = [b for b in project["properties"]["rate_limit"]["oneOf"]
             if b.get("type") == "object"][0]
    for key in limit["required"]:
        found.append((("projects", "1", "rate_limit"), key))
    return sorted(set(found))


REQUIRED = _required_keys(Path("/s"))


def test_every_required_key_of_the_schema_is_tested():
    assert {key for path, key in REQUIRED if not path} == set(SCHEMA["required"])
    assert {key for path, key in REQUIRED if path == ("stream",)} == set(
        SCHEMA["$defs"]["stream"]["required"])
    assert len(REQUIRED) > len(SCHEMA["required"]) + 10


@pytest.mark.parametrize("path,key", REQUIRED,
                         ids=["/".join(p + (k,)) for p, k in REQUIRED])
def test_a_missing_required_key_is_rejected_naming_where(tmp_path, path, key):
    raw = _full_config(tmp_path)
    config.parse_config(raw)  # whole, it is valid
    del _at(raw, path)[key]
    with pytest.raises(config.ConfigError, match=r"%s: '%s' is a required property"
                       % (re.escape(config.json_path(path)), key)):
        config.parse_config(raw)


def _mistyped(value):
    """A value of another JSON type than ``value``'s."""
    return 5 if isinstance(value, str) else [] if isinstance(value, dict) \
        else "x"


@pytest.mark.parametrize("path,key", REQUIRED,
                         ids=["/".join(p + (k,)) for p, k in REQUIRED])
def test_a_mistyped_key_is_rejected_naming_its_path(tmp_path, path, key):
    raw = _full_config(tmp_path)
    _at(raw, path)[key] = _mistyped(_at(raw, path)[key])
    with pytest.raises(config.ConfigError, match=r"%s: " % re.escape(
            config.json_path(path + (key,)))):
        config.parse_config(raw)


def test_every_error_is_reported_at_once(tmp_path):
    raw = config_dict(tmp_path)
    del raw["spool_dir"]
    raw["simulated_hops"] = "0"
    with pytest.raises(config.ConfigError) as e:
        config.parse_config(raw)
    assert "'spool_dir' is a required property" in str(e.value)
    assert "$.simulated_hops: '0' is not of type 'integer'" in str(e.value)


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
    assert "$: 'spool_dir' is a required property" in capsys.readouterr().err


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
