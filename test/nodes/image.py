"""The base images of the test nodes: a pristine Debian that boots systemd, one
per release (settings.RELEASES).

Each is built once with debootstrap and cached under STATE_DIR/images/<key>,
where the key hashes everything the image contains (this file, the release,
the package list, the CAs it trusts, the Gemfile and its lock). Nodes boot
throwaway overlays of it.

What is in it, and why:
- minbase Debian with systemd as init, sshd (how Kitchen and the specs
  reach a node), iproute2 and procps (what any real node has);
- the Makefile's build packages (APT_BUILD): a node is "a fresh machine of
  this kind" where those were already installed and nothing else was run;
- Chef from the project's Gemfile, without its test group, in CHEF_DIR
  (Chef's download site is unreachable, so this stands in for an omnibus install),
  with Debian's ruby-shadow through the Gemfile's path gem (gems/);
- the CAs the host trusts (settings.CA_SOURCE);
- root's authorized key for the nodes' SSH key.
What is not: apt lists (emptied, as on a fresh cloud image), nginx,
supervisor, uWSGI, python3 or anything else the cookbook installs.
"""
import contextlib
import fcntl
import glob
import hashlib
import os
import shutil
import subprocess

import settings

BASE_PACKAGES = ["systemd", "systemd-sysv", "dbus", "iproute2", "procps", "openssh-server", "ca-certificates"]
# The Gemfile, its lock and the path gem of its default group (gems/: Debian's ruby-shadow).
GEM_FILES = ["Gemfile", "Gemfile.lock", "gems"]


def gem_files():
    """Every file of GEM_FILES, directories walked: what the image's bundle is made from."""
    files = []
    for name in GEM_FILES:
        path = os.path.join(settings.REPO, name)
        files += sorted(glob.glob(os.path.join(path, "**", "*"), recursive=True)) if os.path.isdir(path) else [path]
    return [f for f in files if os.path.isfile(f)]


def apt_build_packages(release):
    """The Makefile's APT_BUILD list (the one place it is written), for the release's Debian version."""
    return settings.makefile_list("APT_BUILD", DEBIAN_VERSION=release.rsplit("-", 1)[1])


def ca_files():
    if os.path.isdir(settings.CA_SOURCE):
        return sorted(glob.glob(os.path.join(settings.CA_SOURCE, "**", "*.crt"), recursive=True))
    return [settings.CA_SOURCE] if os.path.exists(settings.CA_SOURCE) else []


def image_key(release):
    digest = hashlib.sha256()
    parts = [__file__] + gem_files() + ca_files()
    for path in parts:
        with open(path, "rb") as f:
            digest.update(os.path.relpath(path, settings.REPO).encode() + b"\0" + f.read() + b"\0")
    digest.update(" ".join(BASE_PACKAGES + apt_build_packages(release) + [codename(release), settings.MIRROR]).encode())
    with open(settings.SSH_KEY + ".pub", "rb") as f:
        digest.update(f.read())
    return digest.hexdigest()[:16]


def codename(release):
    """Debian's name for a release ("debian-13" -> "trixie"); a clear error for one we do not build."""
    if release not in settings.RELEASES:
        raise ValueError(f"release must be one of {', '.join(settings.RELEASES)}, not {release!r}")
    return settings.RELEASES[release]


def images_dir():
    return os.path.join(settings.STATE_DIR, "images")


def ensure_ssh_key():
    if not os.path.exists(settings.SSH_KEY):
        os.makedirs(settings.STATE_DIR, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "uwsgi_fleet test nodes",
                        "-f", settings.SSH_KEY], check=True)


def in_root(root, script, log):
    """Run a shell script inside `root` (host network, so RubyGems is reachable)."""
    subprocess.run(["systemd-nspawn", "-q", "-D", root, "--register=no", "--keep-unit", "--pipe",
                    "/bin/sh", "-euxc", script], check=True, stdout=log, stderr=subprocess.STDOUT,
                   stdin=subprocess.DEVNULL)


def build(release, root, log):
    suite = codename(release)
    packages = ",".join(BASE_PACKAGES + apt_build_packages(release))
    subprocess.run(["debootstrap", "--variant=minbase", f"--include={packages}", suite, root,
                    settings.MIRROR], check=True, stdout=log, stderr=subprocess.STDOUT)
    os.chmod(root, 0o755)  # every non-root user in the node must be able to reach any path
    # The full set of Debian sources, as on a cloud image.
    mirror = settings.MIRROR
    security = mirror.rsplit("/", 1)[0] + "/debian-security"
    with open(os.path.join(root, "etc/apt/sources.list"), "w") as f:
        f.write(f"deb {mirror} {suite} main\n"
                f"deb {mirror} {suite}-updates main\n"
                f"deb {security} {suite}-security main\n")
    cas = os.path.join(root, "usr/local/share/ca-certificates/uwsgi_fleet-nodes")
    os.makedirs(cas, exist_ok=True)
    for path in ca_files():
        shutil.copy(path, cas)
    ssh_dir = os.path.join(root, "root/.ssh")
    os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
    shutil.copy(settings.SSH_KEY + ".pub", os.path.join(ssh_dir, "authorized_keys"))
    with open(os.path.join(root, "etc/ssh/sshd_config.d/uwsgi_fleet-nodes.conf"), "w") as f:
        f.write("UseDNS no\nPasswordAuthentication no\n")
    chef = os.path.join(root, settings.CHEF_DIR.lstrip("/"))
    os.makedirs(chef)
    for path in gem_files():
        target = os.path.join(chef, os.path.relpath(path, settings.REPO))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(path, target)
    in_root(root, f"""
        update-ca-certificates
        cd {settings.CHEF_DIR}
        bundle config set --local path vendor/bundle
        bundle config set --local without test
        bundle install --jobs 2 --retry 2
        bundle binstubs chef-bin --path bin
        {settings.CHEF_CLIENT} --version
        apt-get clean
        rm -rf /var/lib/apt/lists/* /root/.bundle/cache /root/.cache
        : > /etc/machine-id
    """, log)


def ensure(release):
    """The root directory of the release's current base image, building it if needed.
    A build holds a lock of its own image only: the other release's nodes, and
    the nodes of an image already built, are created meanwhile."""
    with _lock("ssh-key"):
        ensure_ssh_key()
    key = image_key(release)
    final = os.path.join(images_dir(), key)
    with _lock(key):
        if not os.path.exists(os.path.join(final, ".complete")):
            _build(release, key, final)
    return os.path.join(final, "root")


@contextlib.contextmanager
def _lock(name):
    os.makedirs(images_dir(), exist_ok=True)
    with open(os.path.join(images_dir(), f"{name}.lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _build(release, key, final):
    work = final + ".build"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    log_path = os.path.join(work, "build.log")
    print(f"nodes: building the {release} base image {key} (debootstrap + Chef; log: {log_path})", flush=True)
    try:
        with open(log_path, "w") as log:
            build(release, os.path.join(work, "root"), log)
    except subprocess.CalledProcessError as e:
        with open(log_path) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f"building the {release} node image failed: {e}\n{tail}") from None
    open(os.path.join(work, ".complete"), "w").close()
    os.rename(work, final)


def prune():
    """Remove every image but the current one of each release (call only when no node is running):
    images of an older key (Gemfile.lock or CA changed) are dead weight."""
    if not os.path.isdir(images_dir()):
        return
    keep = {image_key(release) for release in settings.RELEASES}
    for entry in os.listdir(images_dir()):
        # key, key.build and key.lock of a current image stay (one may be building now).
        if entry.split(".")[0] not in keep | {"ssh-key"}:
            path = os.path.join(images_dir(), entry)
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.unlink(path)
