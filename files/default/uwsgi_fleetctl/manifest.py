"""A fleet's manifest (fleet.json), written by Chef: found, loaded and checked
against fleet.schema.json (beside this file), the contract between the two.
Nothing here fills in what a manifest lacks: one that does not match the
schema (an earlier release's included) is refused, and a converge with this
cookbook rewrites it."""
import functools
import glob
import json
import os
import stat
import sys

# The default recipe's fleet ('default') keeps 0.1.0's manifest path; others
# have /etc/uwsgi_fleet/<name>/fleet.json.
MANIFEST_DIR = "/etc/uwsgi_fleet"
MANIFEST = os.path.join(MANIFEST_DIR, "fleet.json")
SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fleet.schema.json")


class ManifestError(SystemExit):
    """A manifest this tool cannot use: the message names the file and what to do.
    (A SystemExit, so that the command ends with the message and nothing else.)"""


def schema():
    with open(SCHEMA) as f:
        return json.load(f)


def version(fleet_schema=None):
    """The manifest version this tool reads: the schema's own."""
    return (fleet_schema or schema())["properties"]["manifest_version"]["const"]


@functools.lru_cache(maxsize=None)
def _validator():
    """The schema's validator, built once per process (find() checks every
    manifest on the node). Imported here, not above: every node with this tool
    has python3-jsonschema (Packages::FLEETCTL in libraries/packages.rb, a
    balancer's included), but nginx-test and nginx-reload read no manifest and
    need not load it."""
    from jsonschema import Draft202012Validator
    return Draft202012Validator(schema())


def check(manifest, source):
    """``manifest`` if it matches the schema; ManifestError naming ``source`` otherwise."""
    validator = _validator()
    wanted = version(validator.schema)
    found = manifest.get("manifest_version") if isinstance(manifest, dict) else None
    if found != wanted:
        # 0.1.0's manifest has no version; a later release's has another.
        raise ManifestError(f"uwsgi-fleetctl: {source} is not a version {wanted} manifest "
                            f"(manifest_version: {'none' if found is None else repr(found)}; "
                            f"an earlier release's has none): converge with this cookbook to rewrite it")
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.path))
    if errors:
        raise ManifestError(f"uwsgi-fleetctl: {source} does not match fleet.schema.json ("
                            + "; ".join(f"{e.json_path}: {e.message}" for e in errors)
                            + "): converge with this cookbook to rewrite it")
    return manifest


def loads(text, source):
    """The checked manifest in ``text`` (read from ``source``, which errors name)."""
    try:
        manifest = json.loads(text)
    except ValueError as e:
        raise ManifestError(f"uwsgi-fleetctl: {source} is not JSON ({e})") from None
    return check(manifest, source)


def load(path=MANIFEST):
    with open(path) as f:
        return loads(f.read(), path)


def at_port(manifest, key, port):
    """One of the manifest's formats with {port} (instance_name, instance_file,
    fifo, log) for the instance on ``port``."""
    return manifest[key].format(port=port)


def claimed_name(path, root=MANIFEST_DIR):
    """The fleet a manifest this tool cannot use is for, as well as can be
    told: its "name" if it has one, else its directory's (Chef's default
    conf_dir: /etc/uwsgi_fleet for 'default', /etc/uwsgi_fleet/<name> else)."""
    try:
        with open(path) as f:
            name = json.load(f).get("name")
        if isinstance(name, str):
            return name
    except (OSError, ValueError, AttributeError):
        pass
    directory = os.path.dirname(path)
    return "default" if os.path.normpath(directory) == os.path.normpath(root) else os.path.basename(directory)


def find(fleet=None, root=MANIFEST_DIR):
    """The manifest of fleet `fleet`, or of the node's only fleet.

    Only in root's directories: the glob reaches every directory under root,
    a fleet's FIFO or log directory (the app user's) may be one of them, and a
    fleet.json planted there would choose what root runs (`tail`).

    A manifest this tool cannot use (an earlier release's, a broken one) is
    skipped, with a warning naming it, so the node's other fleets stay
    reachable; asked for by name, it fails with its own error. It is still one
    of the node's fleets: without --fleet, a node with another one is not a
    node with one fleet, and the command is not guessed onto the readable one."""
    found, unusable = {}, {}
    for path in [os.path.join(root, "fleet.json")] + sorted(glob.glob(os.path.join(root, "*", "fleet.json"))):
        if not os.path.exists(path):
            continue
        st = os.lstat(os.path.dirname(path))
        if st.st_uid != 0 or st.st_mode & 0o022 or not stat.S_ISDIR(st.st_mode):
            print(f"uwsgi-fleetctl: {path} is not in a directory of root's only: not a fleet of this node",
                  file=sys.stderr)
            continue
        try:
            found[load(path)["name"]] = path
        except ManifestError as e:
            unusable[path] = e
        except OSError as e:
            unusable[path] = ManifestError(f"uwsgi-fleetctl: cannot read {path} ({e.strerror})")
    if fleet is not None and fleet not in found:
        for path, error in unusable.items():
            if claimed_name(path, root) == fleet:
                warn_skipped({p: e for p, e in unusable.items() if p != path})
                raise error
    if fleet is None and not found and len(unusable) == 1:
        raise next(iter(unusable.values()))
    warn_skipped(unusable)
    if fleet is not None:
        if fleet not in found:
            raise SystemExit(f"uwsgi-fleetctl: no fleet {fleet!r} on this node (fleets: {', '.join(sorted(found)) or 'none'}"
                             + (f"; unusable: {', '.join(unusable)}" if unusable else "") + ")")
        return found[fleet]
    if len(found) + len(unusable) != 1:
        names = sorted(found) + [f"{path} (unusable)" for path in unusable]
        raise SystemExit(f"uwsgi-fleetctl: {len(names)} fleets on this node ({', '.join(names)}): "
                         + ("name one with --fleet" if found or not unusable
                            else "none usable: converge with this cookbook to rewrite them"))
    return next(iter(found.values()))


def warn_skipped(unusable):
    for error in unusable.values():
        print(f"{error.code} (skipped)", file=sys.stderr)
