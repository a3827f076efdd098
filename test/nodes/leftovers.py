#!/usr/bin/python3
"""leftovers.py: what of the test nodes is still on this host; exits 1 if anything is.

`make test` ends with it, after both lanes: no node directory, no process in
another PID namespace (a node's) and no systemd-nspawn or apt cache, no node
mount, no veth, bridge or network namespace of the nodes, no NAT rule for
their network. (test_nodes.py checks the same for one node, after a run that
failed or was interrupted.)
"""
import os
import sys

sys.dont_write_bytecode = True
import machine  # noqa: E402
import network  # noqa: E402
import settings  # noqa: E402


def _command(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def host_leftovers():
    found = [f"node {name}" for name in machine.names()]
    for pid in machine.pids():
        namespace, command = machine.pid_namespace(pid), _command(pid)
        if namespace not in (None, machine.OWN_PID_NAMESPACE):
            found.append(f"process {pid} in {namespace}: {command}")
        elif namespace and command.split(" ")[0].endswith(("systemd-nspawn", "apt-cacher-ng")):
            found.append(f"process {pid}: {command}")
    with open("/proc/mounts") as f:
        for line in f:
            mountpoint = line.split()[1]
            if mountpoint.startswith((settings.STATE_DIR, machine.NSPAWN_RUNTIME)):
                found.append(f"mount {mountpoint}")
    links = network.run("ip", "-o", "link", "show").stdout
    found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines()
              if line.split(":")[1].strip().startswith("uwf-")]
    found += [f"netns {ns}" for ns in network.run("ip", "netns", "list").stdout.split() if ns.startswith("uwf-")]
    if network.nat_rule_present():
        found.append("NAT rule " + " ".join(network.NAT_RULE))
    return found


if __name__ == "__main__":
    left = host_leftovers()
    for line in left:
        print("leftover:", line, file=sys.stderr)
    print("test nodes: nothing left on this host" if not left else f"test nodes: {len(left)} leftovers")
    sys.exit(1 if left else 0)
