"""The base image of every test node: a pristine Debian 12 that boots systemd.

Built once with debootstrap and cached under STATE_DIR/images/<key>, where the
key hashes everything the image contains (this file, the package list, the
CAs it trusts, the Gemfile and its lock). Nodes boot throwaway overlays of it.

What is in it, and why:
- minbase Debian 12 with systemd as init, sshd (how Kitchen and the specs
  reach a node), iproute2 and procps (what any real node has);
- the Makefile's build packages (APT_BUILD): a node is "a fresh machine of
  this kind" where those were already installed and nothing else was run;
- Chef from the project's Gemfile, without its test group, in CHEF_DIR
  (Chef's download site is unreachable, so this stands in for an omnibus install);
- the CAs the host trusts (settings.CA_SOURCE);
- root's authorized key for the nodes' SSH key.
What is not: apt lists (emptied, as on a fresh cloud image), nginx,
supervisor, uWSGI, python3 or anything else the cookbook installs.
"""
import glob
import hashlib
import os
import re
import shutil
import subprocess

import settings

BASE_PACKAGES = ["systemd", "systemd-sysv", "dbus", "iproute2", "procps", "openssh-server", "ca-certificates"]
GEM_FILES = ["Gemfile", "Gemfile.lock"]


def apt_build_packages():
    """The Makefile's APT_BUILD list (the one place it is written)."""
    with open(os.path.join(settings.REPO, "Makefile")) as f:
        match = re.search(r"^APT_BUILD\s*:=\s*(.+)$", f.read(), re.M)
    return match.group(1).split()


def ca_files():
    if os.path.isdir(settings.CA_SOURCE):
        return sorted(glob.glob(os.path.join(settings.CA_SOURCE, "**", "*.crt"), recursive=True))
    return [settings.CA_SOURCE] if os.path.exists(settings.CA_SOURCE) else []


def image_key():
    digest = hashlib.sha256()
    parts = [__file__] + [os.path.join(settings.REPO, name) for name in GEM_FILES] + ca_files()
    for path in parts:
        with open(path, "rb") as f:
            digest.update(os.path.basename(path).encode() + b"\0" + f.read() + b"\0")
    digest.update(" ".join(BASE_PACKAGES + apt_build_packages() + [settings.SUITE, settings.MIRROR]).encode())
    with open(settings.SSH_KEY + ".pub", "rb") as f:
        digest.update(f.read())
    return digest.hexdigest()[:16]


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


def build(root, log):
    packages = ",".join(BASE_PACKAGES + apt_build_packages())
    subprocess.run(["debootstrap", "--variant=minbase", f"--include={packages}", settings.SUITE, root,
                    settings.MIRROR], check=True, stdout=log, stderr=subprocess.STDOUT)
    os.chmod(root, 0o755)  # every non-root user in the node must be able to reach any path
    # The full set of Debian sources, as on a cloud image.
    mirror = settings.MIRROR
    security = mirror.rsplit("/", 1)[0] + "/debian-security"
    with open(os.path.join(root, "etc/apt/sources.list"), "w") as f:
        f.write(f"deb {mirror} {settings.SUITE} main\n"
                f"deb {mirror} {settings.SUITE}-updates main\n"
                f"deb {security} {settings.SUITE}-security main\n")
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
    for name in GEM_FILES:
        shutil.copy(os.path.join(settings.REPO, name), chef)
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


def ensure():
    """The root directory of the current base image, building it if needed."""
    ensure_ssh_key()
    key = image_key()
    final = os.path.join(images_dir(), key)
    if os.path.exists(os.path.join(final, ".complete")):
        return os.path.join(final, "root")
    work = final + ".build"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    log_path = os.path.join(work, "build.log")
    print(f"nodes: building the base image {key} (debootstrap + Chef; log: {log_path})", flush=True)
    try:
        with open(log_path, "w") as log:
            build(os.path.join(work, "root"), log)
    except subprocess.CalledProcessError as e:
        with open(log_path) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f"building the node image failed: {e}\n{tail}") from None
    open(os.path.join(work, ".complete"), "w").close()
    os.rename(work, final)
    return os.path.join(final, "root")


def prune(keep):
    """Remove every image but `keep` (call only when no node is running)."""
    if not os.path.isdir(images_dir()):
        return
    for entry in os.listdir(images_dir()):
        if entry != keep:
            shutil.rmtree(os.path.join(images_dir(), entry), ignore_errors=True)
