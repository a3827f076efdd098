"""The host side of the node network: one bridge, NAT out, an apt cache.

Nodes sit on a bridge with the host at settings.HOST_ADDRESS. They reach
Debian's mirror through apt-cacher-ng on that address (so a second fresh node
installs from the cache), and everything else (RubyGems) through NAT.
Everything here is undone by `down()` once the last node is gone, so a run
leaves no interface, rule or process behind.
"""
import json
import os
import signal
import socket
import subprocess
import time

import settings

STATE = os.path.join(settings.STATE_DIR, "network.json")
ACNG_DIR = os.path.join(settings.STATE_DIR, "apt-cacher-ng")
ACNG_PID = os.path.join(ACNG_DIR, "run", "pid")
NAT_RULE = ["POSTROUTING", "-s", str(settings.NETWORK), "!", "-d", str(settings.NETWORK), "-j", "MASQUERADE"]


def run(*args, check=True):
    result = subprocess.run(args, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def link_exists(name):
    return run("ip", "link", "show", name, check=False).returncode == 0


def _load_state():
    try:
        with open(STATE) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def _save_state(state):
    with open(STATE, "w") as f:
        json.dump(state, f)


def up():
    """Bridge, forwarding, NAT and the apt cache; idempotent. Call under the nodes lock."""
    os.makedirs(settings.STATE_DIR, exist_ok=True)
    state = _load_state()
    if not link_exists(settings.BRIDGE):
        run("ip", "link", "add", settings.BRIDGE, "type", "bridge")
        run("ip", "addr", "add", f"{settings.HOST_ADDRESS}/{settings.NETWORK.prefixlen}", "dev", settings.BRIDGE)
        run("ip", "link", "set", settings.BRIDGE, "up")
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        forward = f.read().strip()
    if forward != "1":
        state.setdefault("ip_forward", forward)  # restored by down()
        _save_state(state)
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write("1")
    if not nat_rule_present():
        run("iptables", "-t", "nat", "-A", *NAT_RULE)
    _start_apt_cache()


def down():
    """Undo up(): stop the apt cache, drop NAT and the bridge, restore forwarding."""
    _stop_apt_cache()
    while nat_rule_present():
        run("iptables", "-t", "nat", "-D", *NAT_RULE)
    if link_exists(settings.BRIDGE):
        run("ip", "link", "del", settings.BRIDGE)
    state = _load_state()
    if "ip_forward" in state:
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write(state.pop("ip_forward"))
    if os.path.exists(STATE):
        os.unlink(STATE)


def nat_rule_present():
    return run("iptables", "-t", "nat", "-C", *NAT_RULE, check=False).returncode == 0


def port_open(host, port, timeout=1.0):
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def apt_cache_pid():
    try:
        with open(ACNG_PID) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _start_apt_cache():
    """apt-cacher-ng bound to the bridge address only (never the host's public one)."""
    if apt_cache_pid() and port_open(settings.HOST_ADDRESS, settings.APT_PROXY_PORT):
        return
    for sub in ("cache", "log", "run"):
        os.makedirs(os.path.join(ACNG_DIR, sub), exist_ok=True)
        subprocess.run(["chown", "apt-cacher-ng:apt-cacher-ng", os.path.join(ACNG_DIR, sub)], check=True)
    run("runuser", "-u", "apt-cacher-ng", "--", "/usr/sbin/apt-cacher-ng", "-c", "/etc/apt-cacher-ng",
        "ForeGround=0", f"BindAddress={settings.HOST_ADDRESS}", f"Port={settings.APT_PROXY_PORT}",
        f"CacheDir={ACNG_DIR}/cache", f"LogDir={ACNG_DIR}/log", f"PidFile={ACNG_PID}",
        f"SocketPath={ACNG_DIR}/run/socket",
        # Debian's package leaves the backend list empty; acng then answers "503 Host not found".
        f"Remap-debrep=file:deb_mirror*.gz /debian ; {settings.MIRROR}/")
    deadline = time.monotonic() + 30
    while not port_open(settings.HOST_ADDRESS, settings.APT_PROXY_PORT):
        if time.monotonic() > deadline:
            raise RuntimeError(f"apt-cacher-ng did not listen on {settings.HOST_ADDRESS}:{settings.APT_PROXY_PORT}; "
                               f"see {ACNG_DIR}/log")
        time.sleep(0.1)


def _stop_apt_cache():
    pid = apt_cache_pid()
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while apt_cache_pid() and time.monotonic() < deadline:
        time.sleep(0.1)
    if apt_cache_pid():
        os.kill(pid, signal.SIGKILL)


def apt_proxy_url():
    return f"http://{settings.HOST_ADDRESS}:{settings.APT_PROXY_PORT}"
