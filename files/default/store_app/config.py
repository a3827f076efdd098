"""Load and validate the store_app JSON configuration.

The file is named by the ``STORE_APP_CONFIG`` environment variable (default
``/etc/uwsgi_fleet/store_app.json``).  It is read once per process and
cached; a malformed file raises ConfigError naming the offending key, so a
bad deploy fails loudly instead of half-working.

Schema (keys marked * are required; unknown keys are rejected so that a typo
such as ``max_body_byte`` cannot silently fall back to a default)::

    {"projects"*: {"<digits>": {"public_key"*: "<32 lowercase hex>",
                                "rate_limit": {"events_per_second"*: >0,
                                               "burst"*: >0}}},
     "spool_dir"*: "<absolute path>",
     "instances"*: int >= 1,
     "max_body_bytes": int > 0      (default 2097152),
     "max_event_bytes": int > 0     (default 1048576),
     "max_envelope_bytes": int > 0  (default max(20971520, max_event_bytes)),
     "simulated_hops": int >= 0     (default 0),
     "simulated_hop_ms": number >= 0 (default 2.0)}

max_body_bytes caps the body as received, max_event_bytes one event once
decoded (Relay's max_event_size, 1 MiB), max_envelope_bytes a whole decoded
envelope: its other items are skipped without being kept, so this bounds
the decompression work, not memory.

``rate_limit`` may be absent or null (no limit).  Limits are fleet-wide;
quota.py divides them by ``instances``, which therefore must leave each
instance a burst of at least one event.
"""

import json
import os
import re
import threading
from dataclasses import dataclass
from typing import Dict, Optional

DEFAULT_PATH = "/etc/uwsgi_fleet/store_app.json"
ENV_VAR = "STORE_APP_CONFIG"

_KEY_RE = re.compile(r"[0-9a-f]{32}\Z")
_PROJECT_ID_RE = re.compile(r"[0-9]{1,20}\Z")
_TOP_KEYS = {"projects", "spool_dir", "instances", "max_body_bytes",
             "max_event_bytes", "max_envelope_bytes", "simulated_hops",
             "simulated_hop_ms"}
MIN_ENVELOPE_BYTES = 20 * 1024 * 1024
_PROJECT_KEYS = {"public_key", "rate_limit"}
_RATE_KEYS = {"events_per_second", "burst"}


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or malformed."""


@dataclass(frozen=True)
class RateLimit:
    events_per_second: float
    burst: float


@dataclass(frozen=True)
class Project:
    public_key: str
    rate_limit: Optional[RateLimit]


@dataclass(frozen=True)
class Config:
    projects: Dict[str, Project]
    spool_dir: str
    instances: int
    max_body_bytes: int = 2 * 1024 * 1024
    max_event_bytes: int = 1024 * 1024
    max_envelope_bytes: Optional[int] = None
    simulated_hops: int = 0
    simulated_hop_ms: float = 2.0

    @property
    def envelope_limit(self):
        """Decoded size cap of a whole envelope (at least one event)."""
        if self.max_envelope_bytes is not None:
            return max(self.max_envelope_bytes, self.max_event_bytes)
        return max(MIN_ENVELOPE_BYTES, self.max_event_bytes)


def _is_int(value):
    # bool is an int subclass; "true" is never a sensible count.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return (_is_int(value) or isinstance(value, float)) and value == value


def _check_keys(obj, allowed, where):
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ConfigError("%s: unknown key(s) %s"
                          % (where, ", ".join(unknown)))


def _parse_rate_limit(raw, where, instances):
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError("%s must be an object" % where)
    _check_keys(raw, _RATE_KEYS, where)
    for name in ("events_per_second", "burst"):
        value = raw.get(name)
        if not _is_number(value) or value <= 0 or value == float("inf"):
            raise ConfigError("%s.%s must be a positive number"
                              % (where, name))
    if raw["burst"] / instances < 1:
        raise ConfigError(
            "%s.burst (%s) divided by instances (%d) is below 1: an instance "
            "could never accept an event" % (where, raw["burst"], instances))
    return RateLimit(float(raw["events_per_second"]), float(raw["burst"]))


def _parse_project(pid, raw, instances):
    where = "projects[%r]" % pid
    if not isinstance(pid, str) or not _PROJECT_ID_RE.match(pid):
        raise ConfigError("%s: project id must be a string of digits" % where)
    if not isinstance(raw, dict):
        raise ConfigError("%s must be an object" % where)
    _check_keys(raw, _PROJECT_KEYS, where)
    key = raw.get("public_key")
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise ConfigError("%s.public_key must be 32 lowercase hex characters"
                          % where)
    rate = _parse_rate_limit(raw.get("rate_limit"), where + ".rate_limit",
                             instances)
    return Project(key, rate)


def parse_config(raw):
    """Validate an already-decoded JSON document and return a Config."""
    if not isinstance(raw, dict):
        raise ConfigError("top level must be a JSON object")
    _check_keys(raw, _TOP_KEYS, "top level")
    for name in ("projects", "spool_dir", "instances"):
        if name not in raw:
            raise ConfigError("missing required key %r" % name)

    instances = raw["instances"]
    if not _is_int(instances) or instances < 1:
        raise ConfigError("instances must be an integer >= 1")
    spool_dir = raw["spool_dir"]
    if not isinstance(spool_dir, str) or not os.path.isabs(spool_dir):
        raise ConfigError("spool_dir must be an absolute path")
    if not isinstance(raw["projects"], dict):
        raise ConfigError("projects must be an object")
    projects = {pid: _parse_project(pid, proj, instances)
                for pid, proj in raw["projects"].items()}

    options = {}
    for name in ("max_body_bytes", "max_event_bytes", "max_envelope_bytes"):
        if name in raw:
            if not _is_int(raw[name]) or raw[name] <= 0:
                raise ConfigError("%s must be a positive integer" % name)
            options[name] = raw[name]
    if "simulated_hops" in raw:
        if not _is_int(raw["simulated_hops"]) or raw["simulated_hops"] < 0:
            raise ConfigError("simulated_hops must be an integer >= 0")
        options["simulated_hops"] = raw["simulated_hops"]
    if "simulated_hop_ms" in raw:
        ms = raw["simulated_hop_ms"]
        if not _is_number(ms) or ms < 0 or ms == float("inf"):
            raise ConfigError("simulated_hop_ms must be a number >= 0")
        options["simulated_hop_ms"] = float(ms)

    return Config(projects=projects, spool_dir=spool_dir, instances=instances,
                  **options)


def load_config(path):
    """Read, decode and validate the JSON file at ``path``."""
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
