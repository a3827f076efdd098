"""The store app's JSON config, as Chef renders it, as frozen dataclasses.

Contract (issue 19, "the manifest is a contract"): config.schema.json, next
to this file, is the file's shape, versioned (config_version).  Chef renders
it (libraries/store_app.rb) and its specs check the rendering against the
same schema; this module checks what it reads against it with jsonschema,
and fails loudly, with a ConfigError naming the file and the JSON path of the
offending key, when it does not match: a key is missing, of the wrong JSON
type, or unknown.  Every key is required: the app has no defaults of its own
(Chef's are the only ones).  Values are Chef's to judge
(libraries/validation.rb holds every rule about a value, ranges between
fields included); the schema's few bounds only keep a broken file out.

The file is named by ``STORE_APP_CONFIG`` (default
``/etc/uwsgi_fleet/store_app.json``); the app reads it once per process.
quota.py says what the backends do, forwarder.py what the stream is; the
schema's descriptions say what each size cap caps.
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
    url: Optional[str]               # redis only, from here down (None: local)
    key_prefix: Optional[str]
    timeout_ms: Optional[float]


@dataclass(frozen=True)
class Stream:
    url: str
    key_prefix: str
    batch: int
    status_file: str
    dedup_seconds: int
    maxlen: Optional[int]


@dataclass(frozen=True)
class Config:
    projects: Dict[str, Project]
    spool_dir: str
    quota: Quota
    stream: Optional[Stream]
    max_body_bytes: int
    max_event_bytes: int
    max_envelope_bytes: int
    max_attachment_bytes: int
    simulated_hops: int
    simulated_hop_ms: float

    @property
    def envelope_limit(self):
        """Decoded size cap of a whole envelope (Chef keeps it at least one
        event: libraries/validation.rb, libraries/store_app.rb)."""
        return self.max_envelope_bytes


# -- the shape --------------------------------------------------------------

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "config.schema.json")
_validator = None
_validator_lock = threading.Lock()


def _schema_validator():
    """The validator of config.schema.json, built on first use: importing
    this module stays cheap for what never reads a config."""
    global _validator
    with _validator_lock:
        if _validator is None:
            import jsonschema
            with open(SCHEMA_PATH, "rb") as f:
                schema = json.load(f)
            _validator = jsonschema.validators.validator_for(schema)(schema)
        return _validator


def json_path(path):
    """``$.projects["1"].public_key`` for the keys ``projects, 1, public_key``."""
    return "$" + "".join(
        "[%d]" % key if isinstance(key, int)
        else ".%s" % key if key.isidentifier() else "[%s]" % json.dumps(key)
        for key in path)


def _explain(error):
    """[(JSON path, message)] of a schema error.  Inside a oneOf (null or an
    object; one quota backend or the other) the branch the value was meant
    for says more than "not valid under any": the branches of the value's
    type whose consts (backend) match, by what all of them say."""
    if not error.context:
        return [(error.absolute_path, error.message)]
    branches = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    depth = len(error.absolute_path)
    consts = [sub for subs in branches.values() for sub in subs
              if sub.validator == "const"]
    meant = [subs for subs in branches.values() if not any(
        sub in consts
        or (sub.validator == "type" and len(sub.absolute_path) == depth)
        for sub in subs)]
    if not meant and len(consts) == len(branches) and len(
            {tuple(c.absolute_path) for c in consts}) == 1:
        return [(consts[0].absolute_path, "%s is not one of %s" % (
            json.dumps(consts[0].instance),
            ", ".join(json.dumps(c.validator_value) for c in consts)))]
    said = [{(tuple(sub.absolute_path), sub.message): sub for sub in subs}
            for subs in meant]
    common = set.intersection(*map(set, said)) if said else set()
    if not common:
        return [(error.absolute_path, error.message)]
    return [line for key in sorted(common) for line in _explain(said[0][key])]


def _shape_errors(raw):
    """One line per way ``raw`` is not of config.schema.json's shape."""
    errors = sorted(_schema_validator().iter_errors(raw),
                    key=lambda e: list(map(str, e.absolute_path)))
    return ["%s: %s" % (json_path(path), message[:200])
            for error in errors for path, message in _explain(error)]


def parse_config(raw):
    """Turn an already-decoded JSON document into a Config."""
    errors = _shape_errors(raw)
    if errors:
        raise ConfigError("; ".join(errors))
    projects = {pid: Project(p["public_key"], _rate_limit(p["rate_limit"]))
                for pid, p in raw["projects"].items()}
    quota = raw["quota"]
    stream = raw["stream"]
    return Config(
        projects=projects, spool_dir=raw["spool_dir"],
        quota=Quota(quota["backend"], quota["state_file"], quota.get("url"),
                    quota.get("key_prefix"),
                    None if "timeout_ms" not in quota
                    else float(quota["timeout_ms"])),
        stream=None if stream is None else Stream(**stream),
        max_body_bytes=raw["max_body_bytes"],
        max_event_bytes=raw["max_event_bytes"],
        max_envelope_bytes=raw["max_envelope_bytes"],
        max_attachment_bytes=raw["max_attachment_bytes"],
        simulated_hops=raw["simulated_hops"],
        simulated_hop_ms=float(raw["simulated_hop_ms"]))


def _rate_limit(raw):
    if raw is None:
        return None
    return RateLimit(float(raw["events_per_second"]), float(raw["burst"]))


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
