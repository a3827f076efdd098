"""The store app's JSON config, as Chef renders it, as frozen dataclasses.

Contract (issue 11, "each rule is written once"): Chef validates every value
before it renders this file (libraries/validation.rb is the one place where
the rules live: id and key formats, ranges, paths, how keys depend on each
other).  This module does not check values again.  It only checks that the
file has the shape Chef writes, and fails loudly, with a ConfigError naming
the key, when it does not: a required key is missing, a value has the wrong
JSON type, or a key is unknown (so a typo cannot fall back to a default).
No ranges, no regular expressions, no rules between fields live here.

The file is named by ``STORE_APP_CONFIG`` (default
``/etc/uwsgi_fleet/store_app.json``); the app reads it once per process.

Shape.  Types are JSON types: "integer" is a number without a fraction,
"number" any number, neither a boolean; * marks a required key::

    {"projects"*: {"<project id>": {
         "public_key"*: string,
         "rate_limit": null | {"events_per_second"*: number,
                               "burst"*: number}}},
     "spool_dir"*: string,
     "quota"*: {"backend"*: "local", "state_file"*: string}
             | {"backend"*: "redis", "state_file"*: string, "url"*: string,
                "key_prefix"*: string, "timeout_ms"*: number},
     "stream": null | {"url"*: string, "key_prefix"*: string,
                       "batch"*: integer, "status_file"*: string,
                       "dedup_seconds"*: integer, "maxlen": null | integer},
     "max_body_bytes": integer        (default 104857600),
     "max_event_bytes": integer       (default 1048576),
     "max_envelope_bytes": integer    (default max_body_bytes),
     "max_attachment_bytes": integer  (default 20971520),
     "simulated_hops": integer        (default 0),
     "simulated_hop_ms": number       (default 2.0)}

A project without ``rate_limit`` (or with null) has no limit.  quota.py says
what the backends do, forwarder.py what the stream is.  The size caps (the
defaults are Chef's; documentation/uwsgi_fleet_store_app.md, "Limits", says
why these values): max_body_bytes caps the body as received (nginx's
client_max_body_size), max_event_bytes
one event once decoded (Relay's max_event_size, 1 MiB), max_envelope_bytes
a whole decoded envelope (Relay's max_envelope_size; never below one
event), max_attachment_bytes one attachment item once decoded (over it, the
item is dropped and the rest of the envelope kept: envelope.py).
"""

import json
import os
import threading
from dataclasses import dataclass
from typing import Dict, Optional

DEFAULT_PATH = "/etc/uwsgi_fleet/store_app.json"
ENV_VAR = "STORE_APP_CONFIG"


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or not of Chef's shape."""


@dataclass(frozen=True)
class RateLimit:
    events_per_second: float
    burst: float


@dataclass(frozen=True)
class Project:
    public_key: str
    rate_limit: Optional[RateLimit]


@dataclass(frozen=True)
class Quota:
    backend: str                     # "local" or "redis"
    state_file: str                  # the node's buckets (redis: its fallback)
    url: Optional[str] = None        # redis only, from here down
    key_prefix: Optional[str] = None
    timeout_ms: Optional[float] = None


@dataclass(frozen=True)
class Stream:
    url: str
    key_prefix: str
    batch: int
    status_file: str
    dedup_seconds: int
    maxlen: Optional[int] = None


@dataclass(frozen=True)
class Config:
    projects: Dict[str, Project]
    spool_dir: str
    quota: Quota
    stream: Optional[Stream] = None
    max_body_bytes: int = 100 * 1024 * 1024
    max_event_bytes: int = 1024 * 1024
    max_envelope_bytes: Optional[int] = None
    max_attachment_bytes: int = 20 * 1024 * 1024
    simulated_hops: int = 0
    simulated_hop_ms: float = 2.0

    @property
    def envelope_limit(self):
        """Decoded size cap of a whole envelope (at least one event)."""
        if self.max_envelope_bytes is not None:
            return max(self.max_envelope_bytes, self.max_event_bytes)
        return max(self.max_body_bytes, self.max_event_bytes)


# -- the shape --------------------------------------------------------------

STRING, INTEGER, NUMBER, OBJECT, NULL = "string", "integer", "number", \
    "object", "null"
_TYPES = {
    STRING: lambda v: isinstance(v, str),
    # bool is an int subclass in Python, but not a number in JSON.
    INTEGER: lambda v: isinstance(v, int) and not isinstance(v, bool),
    NUMBER: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    OBJECT: lambda v: isinstance(v, dict),
    NULL: lambda v: v is None,
}
_REQUIRED = object()
_QUOTA_KEYS = {
    "local": {"backend": STRING, "state_file": STRING},
    "redis": {"backend": STRING, "state_file": STRING, "url": STRING,
              "key_prefix": STRING, "timeout_ms": NUMBER},
}


def _fields(raw, where, keys):
    """The values of object ``raw`` at ``where``, by ``keys``: name ->
    type, or (type or types, default) for an optional key."""
    if not isinstance(raw, dict):
        raise ConfigError("%s must be an object" % where)
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        raise ConfigError("%s: unknown key(s) %s"
                          % (where, ", ".join(unknown)))
    values = {}
    for name, spec in keys.items():
        kinds, default = spec if isinstance(spec, tuple) else (spec, _REQUIRED)
        kinds = (kinds,) if isinstance(kinds, str) else kinds
        if name not in raw:
            if default is _REQUIRED:
                raise ConfigError("%s: missing required key %r"
                                  % (where, name))
            values[name] = default
            continue
        value = raw[name]
        if not any(_TYPES[kind](value) for kind in kinds):
            raise ConfigError("%s.%s must be %s; got %s" % (
                where, name, " or ".join(kinds), json.dumps(value)[:80]))
        values[name] = value
    return values


def _rate_limit(raw, where):
    if raw is None:
        return None
    values = _fields(raw, where, {"events_per_second": NUMBER,
                                  "burst": NUMBER})
    return RateLimit(float(values["events_per_second"]),
                     float(values["burst"]))


def _project(raw, where):
    values = _fields(raw, where, {"public_key": STRING,
                                  "rate_limit": ((OBJECT, NULL), None)})
    return Project(values["public_key"],
                   _rate_limit(values["rate_limit"], where + ".rate_limit"))


def _quota(raw):
    backend = raw.get("backend") if isinstance(raw, dict) else None
    if backend not in _QUOTA_KEYS:
        raise ConfigError("quota.backend must be one of %s; got %s" % (
            ", ".join(map(repr, sorted(_QUOTA_KEYS))), json.dumps(backend)))
    values = _fields(raw, "quota", _QUOTA_KEYS[backend])
    if "timeout_ms" in values:
        values["timeout_ms"] = float(values["timeout_ms"])
    return Quota(**values)


def _stream(raw):
    if raw is None:
        return None
    return Stream(**_fields(raw, "stream", {
        "url": STRING, "key_prefix": STRING, "batch": INTEGER,
        "status_file": STRING, "dedup_seconds": INTEGER,
        "maxlen": ((INTEGER, NULL), None)}))


def parse_config(raw):
    """Turn an already-decoded JSON document into a Config."""
    if not isinstance(raw, dict):
        raise ConfigError("top level must be a JSON object")
    values = _fields(raw, "top level", {
        "projects": OBJECT, "spool_dir": STRING, "quota": OBJECT,
        "stream": ((OBJECT, NULL), None),
        "max_body_bytes": (INTEGER, Config.max_body_bytes),
        "max_event_bytes": (INTEGER, Config.max_event_bytes),
        "max_envelope_bytes": (INTEGER, None),
        "max_attachment_bytes": (INTEGER, Config.max_attachment_bytes),
        "simulated_hops": (INTEGER, Config.simulated_hops),
        "simulated_hop_ms": (NUMBER, Config.simulated_hop_ms)})
    values["projects"] = {pid: _project(p, "projects[%s]" % json.dumps(pid))
                          for pid, p in values["projects"].items()}
    values["quota"] = _quota(values["quota"])
    values["stream"] = _stream(values["stream"])
    values["simulated_hop_ms"] = float(values["simulated_hop_ms"])
    return Config(**values)


def load_config(path):
    """Read and decode the JSON file at ``path``; return its Config."""
    try:
        with open(path, "rb") as f:
            raw = json.load(f)
    except OSError as e:
        raise ConfigError("cannot read %s: %s" % (path, e)) from None
    except ValueError as e:
        raise ConfigError("%s is not valid JSON: %s" % (path, e)) from None
    try:
        return parse_config(raw)
    except ConfigError as e:
        raise ConfigError("%s: %s" % (path, e)) from None


_cached = None
_cache_lock = threading.Lock()


def get_config():
    """Return this process's Config, loading it on first use (thread-safe)."""
    global _cached
    if _cached is None:
        with _cache_lock:
            if _cached is None:
                _cached = load_config(os.environ.get(ENV_VAR, DEFAULT_PATH))
    return _cached


def reset_config_cache():
    """Forget the cached Config (tests only; production loads once)."""
    global _cached
    with _cache_lock:
        _cached = None
