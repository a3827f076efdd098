"""Fresh nodes: boot a throwaway overlay of the base image under systemd-nspawn.

A node is a directory STATE_DIR/nodes/<name>/ holding its overlay (upper,
work, root), node.json and boot.log; a network namespace uwf-n<i> whose veth
uwf-v<i> is on the bridge; and one systemd-nspawn process. `destroy` removes
all of them, and the shared network once the last node is gone.

Two kinds of node:
- init "systemd" (the default): `systemd-nspawn -b`, systemd is PID 1, as on
  production web nodes;
- init "none": no init system; sshd runs under nspawn's stub init, and
  policy-rc.d stops package installs from starting services, as on this
  host and in Debian container images. It keeps the cookbook's init-script
  path tested.
"""
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time

import image
import network
import settings

NODES_DIR = os.path.join(settings.STATE_DIR, "nodes")
NSPAWN_RUNTIME = "/run/systemd/nspawn"
FIRST_INDEX = 10


@contextlib.contextmanager
def locked():
    """One node operation on the shared network at a time (kitchen may run in parallel)."""
    os.makedirs(settings.STATE_DIR, exist_ok=True)
    with open(os.path.join(settings.STATE_DIR, "lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def node_dir(name):
    return os.path.join(NODES_DIR, name)


def load(name):
    with open(os.path.join(node_dir(name), "node.json")) as f:
        return json.load(f)


def names():
    return sorted(os.listdir(NODES_DIR)) if os.path.isdir(NODES_DIR) else []


def all_nodes():
    nodes = []
    for name in names():
        try:
            nodes.append(load(name))
        except (OSError, ValueError):
            nodes.append({"name": name})  # half-made: destroy() can still clean it
    return nodes


def _free_index():
    used = {n.get("index") for n in all_nodes()}
    for index in range(FIRST_INDEX, min(settings.NETWORK.num_addresses - 1, 250)):
        if index not in used:
            return index
    raise RuntimeError("no free node address left on " + str(settings.NETWORK))


def _mtu():
    """The host's uplink MTU: a bigger node MTU black-holes large NATed packets."""
    route = network.run("ip", "-o", "route", "get", "1.1.1.1", check=False).stdout.split()
    dev = route[route.index("dev") + 1] if "dev" in route else "lo"
    with open(f"/sys/class/net/{dev}/mtu") as f:
        return min(int(f.read()), 1500)


def _write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def _prepare_root(node, root):
    """Per-node files, written into the overlay before boot."""
    name = node["name"]
    _write(os.path.join(root, "etc/hostname"), name + "\n")
    _write(os.path.join(root, "etc/hosts"), f"127.0.0.1 localhost\n127.0.1.1 {name}\n{node['address']} {name}\n")
    shutil.copy("/etc/resolv.conf", os.path.join(root, "etc/resolv.conf"))
    # Debian packages through the host's cache; RubyGems and the rest through NAT.
    _write(os.path.join(root, "etc/apt/apt.conf.d/01uwsgi_fleet-nodes-proxy"),
           f'Acquire::http::Proxy "{network.apt_proxy_url()}";\n')
    if node["init"] == "none":
        _write(os.path.join(root, "usr/sbin/policy-rc.d"), "#!/bin/sh\nexit 101\n", 0o755)


def _network_namespace(node):
    netns, veth, index = node["netns"], node["veth"], node["index"]
    address = f"{node['address']}/{settings.NETWORK.prefixlen}"
    mtu = str(_mtu())
    network.run("ip", "netns", "add", netns)
    network.run("ip", "link", "add", veth, "mtu", mtu, "type", "veth", "peer", "name", "host0", "mtu", mtu,
                "netns", netns)
    network.run("ip", "link", "set", veth, "master", settings.BRIDGE, "up")
    for args in (("link", "set", "lo", "up"), ("link", "set", "host0", "up"),
                 ("addr", "add", address, "dev", "host0"),
                 ("route", "add", "default", "via", settings.HOST_ADDRESS)):
        network.run("ip", "-n", netns, *args)
    assert index  # the address and the names derive from it


def _boot_command(node, root):
    command = ["systemd-nspawn", "-D", root, "-M", node["name"], f"--network-namespace-path=/run/netns/{node['netns']}",
               "--register=no", "--keep-unit", "--console=read-only"]
    if node["init"] == "systemd":
        return command + ["-b"]
    return command + ["--as-pid2", "/bin/sh", "-c", "mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e"]


def create(name, init="systemd", release=settings.DEFAULT_RELEASE):
    """Boot a fresh node of `release` (settings.RELEASES); returns its node.json dict once SSH answers."""
    if init not in ("systemd", "none"):
        raise ValueError(f"init must be 'systemd' or 'none', not {init!r}")
    base = image.ensure(release)  # a clear error for an unknown release before anything is made
    with locked():
        if os.path.exists(node_dir(name)):
            raise RuntimeError(f"node {name} exists; destroy it first")
        network.up()
        index = _free_index()
        address = str(settings.NETWORK.network_address + index)
        node = {"name": name, "index": index, "address": address, "init": init, "release": release,
                "netns": f"uwf-n{index}", "veth": f"uwf-v{index}", "image": os.path.dirname(base), "dir": node_dir(name),
                "ssh_key": settings.SSH_KEY, "owner": os.environ.get(settings.OWNER_ENV)}
        paths = {part: os.path.join(node_dir(name), part) for part in ("upper", "work", "root")}
        for path in paths.values():
            os.makedirs(path)
        _save(node)
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={base},upperdir={paths['upper']},workdir={paths['work']}", paths["root"]],
                       check=True)
        node["mounted"] = paths["root"]
        _save(node)
        _prepare_root(node, paths["root"])
        _network_namespace(node)
        os.makedirs(NSPAWN_RUNTIME, exist_ok=True)
        if subprocess.run(["mountpoint", "-q", NSPAWN_RUNTIME]).returncode != 0:
            # nspawn keeps its runtime state here; without systemd on the host nothing mounts it.
            subprocess.run(["mount", "-t", "tmpfs", "tmpfs", NSPAWN_RUNTIME], check=True)
        with open(os.path.join(node_dir(name), "boot.log"), "w") as log:
            process = subprocess.Popen(_boot_command(node, paths["root"]), stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        node["pid"] = process.pid
        _save(node)
    try:
        _wait_until_ready(node)
    except Exception:
        destroy(name)
        raise
    return node


def power_cut(name):
    """Pull the plug: the node's link goes down (packets to it are lost, not
    refused, as with a machine switched off) and every process of the node
    dies at once. Its disk (the overlay) stays; boot() starts it again.

    Returns the monotonic time at which the cut was complete (no process of
    the node left), so that callers measure "after the cut" from what
    happened, not from when they asked. No lock: nothing here touches the
    shared network, and waiting behind another lane's node creation would
    move the cut to an unknown moment."""
    node = load(name)
    network.run("ip", "link", "set", node["veth"], "down")
    _kill(node)
    cut_at = time.monotonic()
    node.pop("pid_namespace", None)  # gone with the node: the kernel may give its number to another
    _save(node)
    return cut_at


def boot(name):
    """Start a node that was switched off again, on the same disk and address."""
    with locked():
        node = load(name)
        if running(node):
            raise RuntimeError(f"node {name} is running")
        network.run("ip", "link", "set", node["veth"], "up")
        with open(os.path.join(node_dir(name), "boot.log"), "a") as log:
            process = subprocess.Popen(_boot_command(node, node["mounted"]), stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        node["pid"] = process.pid
        node.pop("pid_namespace", None)
        _save(node)
    _wait_until_ready(node)
    return node


def running(node_or_name):
    """True while any process of the node lives (its nspawn or anything inside)."""
    node = load(node_or_name) if isinstance(node_or_name, str) else node_or_name
    return _alive(node) or bool(processes(node))


def _save(node):
    _write(os.path.join(node_dir(node["name"]), "node.json"), json.dumps(node, indent=1) + "\n")


def ssh_command(node, *command):
    return ["ssh", "-F", settings.SSH_CONFIG, f"root@{node['address']}", *command]


def write_ssh_config():
    """One ssh_config for every tool that talks to the nodes (ssh, testinfra, scripts)."""
    _write(settings.SSH_CONFIG,
           f"Host {settings.NETWORK.network_address.exploded.rsplit('.', 1)[0]}.*\n"
           f"  User root\n  IdentityFile {settings.SSH_KEY}\n  IdentitiesOnly yes\n"
           "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
           # 20 s: with both lanes and a benchmark running, a node's sshd once took over 5 s
           # to send its banner ("Connection timed out during banner exchange").
           "  ConnectTimeout 20\n  ServerAliveInterval 15\n")


def _wait_until_ready(node, timeout=120):
    write_ssh_config()
    deadline = time.monotonic() + timeout
    ready = "true" if node["init"] == "none" else "systemctl is-system-running --wait >/dev/null; true"
    while True:
        if not _alive(node):
            raise RuntimeError(f"node {node['name']} exited while booting; see {node['dir']}/boot.log")
        if network.port_open(node["address"], 22):
            if subprocess.run(ssh_command(node, ready), capture_output=True, timeout=timeout).returncode == 0:
                node["pid_namespace"] = _namespace_of_init(node)
                _save(node)
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"node {node['name']} did not answer SSH within {timeout}s; see {node['dir']}/boot.log")
        time.sleep(0.2)


def _alive(node):
    pid = node.get("pid")
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # Reaped? A zombie of ours still answers kill 0. (Gone between the two: dead.)
    fields = stat(pid)
    return bool(fields) and fields[0] != "Z"


def pids():
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def pid_namespace(pid):
    """The PID namespace of a process ("pid:[inode]"); None once it is gone (a zombie has none)."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


OWN_PID_NAMESPACE = pid_namespace("self")


def stat(pid):
    """The fields of /proc/PID/stat after the command name (state, ppid, ...; proc(5) numbers
    them from 3); [] once the process is gone."""
    text = _read(f"/proc/{pid}/stat")
    return text.rsplit(")", 1)[1].split() if text else []


def parent(pid):
    fields = stat(pid)
    return int(fields[1]) if fields else None


def _namespace_of_init(node):
    """The node's PID namespace, read from systemd-nspawn's child (the node's own PID 1)."""
    if not _alive(node):
        return None
    for pid in pids():
        namespace = pid_namespace(pid)
        if namespace not in (None, OWN_PID_NAMESPACE) and parent(pid) == node["pid"]:
            return namespace
    return None


def processes(node):
    """Host PIDs of every process of the node: every PID whose /proc/PID/ns/pid is the node's.
    The kernel reuses a dead namespace's number for a new one, so the PIDs count
    only if their root is the node's own overlay (its upper directory)."""
    namespace = node.get("pid_namespace") or _namespace_of_init(node)
    if not namespace or namespace == OWN_PID_NAMESPACE:
        return []
    found = [pid for pid in pids() if pid_namespace(pid) == namespace]
    upper = f"upperdir={os.path.join(node_dir(node['name']), 'upper')},"
    return found if any(upper in _read(f"/proc/{pid}/mountinfo") for pid in found) else []


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _init_pid(node, pids):
    """Which of the node's processes is its PID 1 (the last NSpid is the PID inside)."""
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                nspids = next(line for line in f if line.startswith("NSpid:")).split()[1:]
        except (OSError, StopIteration):
            continue
        if nspids[-1] == "1":
            return pid
    return None


def _kill(node, timeout=10):
    """SIGKILL the node's own PID 1: the kernel then kills every process of its
    PID namespace. (SIGKILL to systemd-nspawn's process group is not enough: the
    node's systemd is not in it, and it kept running with its services,
    re-parented to the host's PID 1.) Returns once no process of the node and
    no nspawn is left; raises if one survives `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = processes(node)
        if not left and not _alive(node):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"node {node['name']}: processes {left} (nspawn {node.get('pid')}) survived SIGKILL")
        init = _init_pid(node, left)
        for pid in ([init] if init else left):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if _alive(node) and not left:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node["pid"], signal.SIGKILL)
        time.sleep(0.02)
    with contextlib.suppress(ChildProcessError, TypeError):
        os.waitpid(node["pid"], os.WNOHANG)


def _stop(node, timeout=30):
    """SIGTERM makes nspawn power a booted node off cleanly; SIGKILL to its PID 1
    if it hangs, or if nspawn is already gone (then nothing would stop the node)."""
    if not running(node):
        return
    if _alive(node):
        os.kill(node["pid"], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while running(node) and time.monotonic() < deadline:
            time.sleep(0.1)
    _kill(node)


def _load_or_name(name):
    try:
        return load(name)
    except FileNotFoundError:
        return {"name": name}


def destroy(name):
    """Stop the node and remove its mount, namespace, veth and files; the network once no node is left."""
    # Powering the node off (up to _stop's 30 s, then SIGKILL) touches only its
    # own processes: outside the lock, or the other lane's create and destroy
    # wait for it (an interrupted run's teardown once waited past its 180 s).
    _stop(_load_or_name(name))
    with locked():
        node = _load_or_name(name)
        _stop(node)
        root = os.path.join(node_dir(name), "root")
        if subprocess.run(["mountpoint", "-q", root]).returncode == 0:
            subprocess.run(["umount", root], check=True)
        if node.get("netns"):
            network.run("ip", "netns", "del", node["netns"], check=False)
        if node.get("veth"):
            # Deleting the namespace takes its veth pair with it, asynchronously.
            deadline = time.monotonic() + 5
            while network.link_exists(node["veth"]) and time.monotonic() < deadline:
                network.run("ip", "link", "del", node["veth"], check=False)
                time.sleep(0.1)
        shutil.rmtree(node_dir(name), ignore_errors=True)
        _tidy_when_idle()


def tidy_when_idle():
    """Once no node is left and nothing holds the network: the network, nspawn's
    runtime mount and old images go. The reaper calls this when its command
    ends: a destroy that found the mount busy (an image build that was then
    killed with its run) would otherwise leave it behind."""
    with locked():
        _tidy_when_idle()


def _tidy_when_idle():
    if names() or _holders():
        return
    network.down()
    if subprocess.run(["mountpoint", "-q", NSPAWN_RUNTIME]).returncode == 0:
        # Busy while an image is being built (nspawn --pipe): that build's last destroy unmounts it.
        subprocess.run(["umount", NSPAWN_RUNTIME], stderr=subprocess.DEVNULL)
    image.prune()


HOLDS_DIR = os.path.join(settings.STATE_DIR, "holds")


def _holders():
    """Live processes holding the network up without a node (see network_up)."""
    live = []
    for entry in os.listdir(HOLDS_DIR) if os.path.isdir(HOLDS_DIR) else []:
        try:
            os.kill(int(entry), 0)
            live.append(entry)
        except (ProcessLookupError, ValueError):
            os.unlink(os.path.join(HOLDS_DIR, entry))
    return live


def network_up():
    """The node network without a node yet (for a server the nodes will reach):
    this process holds it up until network_down_if_unused."""
    with locked():
        network.up()
        os.makedirs(HOLDS_DIR, exist_ok=True)
        open(os.path.join(HOLDS_DIR, str(os.getpid())), "w").close()


def network_down_if_unused():
    with locked():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(HOLDS_DIR, str(os.getpid())))
        if not names() and not _holders():
            network.down()


def leftovers(node):
    """What of a destroyed node is still there (for the destroy test): [] when clean."""
    found = []
    if os.path.exists(node["dir"]):
        found.append(f"directory {node['dir']}")
    if node.get("mounted") and node["mounted"] in open("/proc/mounts").read():
        found.append(f"mount {node['mounted']}")
    if network.link_exists(node["veth"]):
        found.append(f"veth {node['veth']}")
    if node["netns"] in network.run("ip", "netns", "list").stdout.split():
        found.append(f"netns {node['netns']}")
    if node.get("pid") and _alive(node):
        found.append(f"process {node['pid']}")
    found += [f"process {pid} of the node" for pid in processes(node)]
    return found
