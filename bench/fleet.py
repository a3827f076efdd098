"""The converged fleet as the bench reads it, and the one place that knows where
the cookbook renders things: its shape from the manifest (/etc/uwsgi_fleet/
fleet.json, or /etc/uwsgi_fleet/<name>/fleet.json), and only what the manifest
does not hold (the nginx config, each instance's command) from rendered files.
The manifest is read as uwsgi-fleetctl reads it (checked against its schema),
so nothing here stands in for a key it lacks."""
import configparser
import glob
import hashlib
import json
import os
import re
import shlex
import socket
import sys
from dataclasses import dataclass

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "files", "default"))
from uwsgi_fleetctl import manifest as manifests  # noqa: E402

MANIFEST = manifests.MANIFEST
NAMED_MANIFEST = os.path.join(manifests.MANIFEST_DIR, "{name}", "fleet.json")
NGINX_CONF = "/etc/nginx/nginx.conf"


class FleetError(RuntimeError):
    pass


@dataclass
class Fleet:
    manifest: dict      # as rendered: ports, threads, user, listen, bind_address, spool_dir, ...
    nginx_conf: str     # nginx.conf with the fleet's own site inlined and the other sites left out
    instances: list     # [{"port", "argv", "user", "cwd"}], one per instance, by port
    store_app: dict     # the app config the instances read
    sources: dict       # {path: sha256} of every file read

    def __post_init__(self):
        self.ports, self.threads = list(self.manifest["ports"]), int(self.manifest["threads"])
        self.user = self.manifest["user"]


def read_fleet(name=None):
    """The converged fleet (`name`: a named fleet's manifest; without one, the
    node's only fleet); FleetError when the node is not converged."""
    named = sorted(glob.glob(NAMED_MANIFEST.format(name="*")))
    path = NAMED_MANIFEST.format(name=name) if name else MANIFEST if os.path.exists(MANIFEST) or len(named) != 1 \
        else named[0]
    sources = {}

    def read(p):
        try:
            with open(p, "rb") as f:
                data = f.read()
        except OSError as e:
            raise FleetError(f"{p}: {e.strerror}; run `make converge` first") from None
        sources[p] = hashlib.sha256(data).hexdigest()
        return data.decode()

    try:
        manifest = manifests.loads(read(path), path)
    except manifests.ManifestError as e:
        raise FleetError(str(e)) from None
    # The bench parses supervisor program files (the instances' exact commands).
    if manifest["process_manager"] != "supervisor":
        raise FleetError(f"{path}: instances run under {manifest['process_manager']}; bench/fleet.py reads "
                         "supervisor programs only (_supervisor_instance is the function to extend)")
    if not manifest["store_app_config"]:
        raise FleetError(f"{path}: the fleet runs no store app; the bench measures the store app")
    store_app = json.loads(read(manifest["store_app_config"]))
    instances = [_supervisor_instance(read, manifest, port) for port in manifest["ports"]]
    return Fleet(manifest, _nginx_text(read, manifest), instances, store_app, sources)


def _nginx_text(read, manifest, path=NGINX_CONF):
    """nginx.conf, its conf.d / sites-enabled includes replaced by the files that
    proxy to this fleet's ports (the fleet's own site), the others left out."""
    bind = manifest["bind_address"]
    mine = [f"{bind}:{port}" for port in manifest["ports"]]

    def inline(match):
        texts = []
        for f in sorted(glob.glob(match.group(2))):
            with open(f) as site:
                if any(m in site.read() for m in mine):
                    texts.append(read(f))
        return "".join(match.group(1) + line + "\n" for t in texts for line in t.splitlines())
    return re.sub(r"^([ \t]*)include\s+(/\S*/(?:sites-enabled|conf\.d)/[^;]*);[ \t]*\n", inline, read(path), flags=re.M)


def _supervisor_instance(read, manifest, port):
    """The instance's command as supervisor runs it: `%%` is a literal %,
    `%(name)s` an expansion, then shlex-split."""
    path = manifests.at_port(manifest, "instance_file", port)
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";",), strict=False)
    parser.optionxform = str
    parser.read_string(read(path))
    sections = [s for s in parser.sections() if s.startswith("program:")]
    if len(sections) != 1:
        raise FleetError(f"{path}: expected one [program:...] section, found {sections}")
    program = sections[0].split(":", 1)[1]
    names = {"program_name": program, "process_num": 0, "group_name": program, "numprocs": 1,
             "here": os.path.dirname(path), "host_node_name": socket.gethostname(),
             **{"ENV_" + k: v for k, v in os.environ.items()}}
    section = parser[sections[0]]
    try:
        argv = shlex.split(section["command"] % names)
    except (KeyError, ValueError, TypeError) as e:
        raise FleetError(f"{path}: cannot expand command ({e})") from None
    return {"port": port, "argv": argv, "user": section.get("user", manifest["user"]),
            "cwd": section.get("directory", "/")}
