"""What Chef calls while it converges a fleet's instances: apply, restart,
reload, wait. Each changes one instance at a time and waits until it serves
again before the next, so that nginx always has instances to send to."""
import pwd
import time

from uwsgi_fleetctl.common import children, log, wait_until
from uwsgi_fleetctl.manifest import at_port
from uwsgi_fleetctl.process_manager import ProcessManager
from uwsgi_fleetctl.protocol import port_open, serves
from uwsgi_fleetctl.untrusted import write_master_fifo


def back_in_rotation(manifest):
    """After an instance nginx already listed serves again: wait until nginx may
    send to it again (it left it out for fail_timeout when it refused a
    connection), so that the next instance of a rolling change does not go
    down while this one is still left out."""
    time.sleep(manifest["upstream_fail_timeout"])


def cmd_apply(args, manifest):
    """Apply the file of one instance: add/restart it, or retire it."""
    port, host = args.port, manifest["bind_address"]
    pm = ProcessManager(manifest)
    was_running = pm.master_pid(port) is not None
    if pm.apply(port):
        wait_until(lambda: serves(host, port), args.timeout, f"{pm.name(port)} to serve on {host}:{port}")
        if was_running:
            back_in_rotation(manifest)
        log(f"{pm.name(port)} serves on {host}:{port}")
    else:
        wait_until(lambda: not port_open(host, port), args.timeout, f"{host}:{port} to close")
        log(f"{pm.name(port)} is gone")


def cmd_restart(args, manifest):
    """Rolling restart: each running instance in turn, waiting until it serves again."""
    host = manifest["bind_address"]
    pm = ProcessManager(manifest)
    for port in args.ports:
        if pm.master_pid(port) is None:
            continue  # not started yet: it starts with the new settings
        pm.restart(port)
        wait_until(lambda: serves(host, port), args.timeout, f"{pm.name(port)} to serve again")
        back_in_rotation(manifest)
        log(f"{pm.name(port)} restarted")


def cmd_wait(args, manifest):
    """Wait until every given instance answers (e.g. after the process manager started them)."""
    host = manifest["bind_address"]
    for port in args.ports:
        wait_until(lambda: serves(host, port), args.timeout, f"{host}:{port} to serve")
    log(f"instances {' '.join(map(str, args.ports))} serve")


def cmd_reload(args, manifest):
    """Rolling reload: one instance's worker at a time, via its master FIFO."""
    host = manifest["bind_address"]
    owner = pwd.getpwnam(manifest["user"]).pw_uid
    pm = ProcessManager(manifest)
    for port in args.ports:
        name = pm.name(port)
        master = pm.master_pid(port)
        if master is None:
            log(f"{name} is not running, nothing to reload")
            continue
        old_workers = set(children(master))
        # 'w': graceful reload of the workers only; the master keeps the listen
        # socket, so requests queue instead of being refused.
        write_master_fifo(at_port(manifest, "fifo", port), b"w", owner, args.timeout)
        wait_until(lambda: (set(children(master)) - old_workers) and serves(host, port),
                   args.timeout, f"a new worker of {name}")
        log(f"{name} reloaded")
