"""How an instance runs, at run time: the commands of the manifest's
process_manager_commands, which the process manager's class in Chef
(libraries/process_manager.rb) computed. This file knows no process manager
by name: one that Chef adds needs nothing here."""
import os
import subprocess

from uwsgi_fleetctl.common import log, run, wait_until
from uwsgi_fleetctl.manifest import at_port

# How long `apply` waits for the process manager to answer (its daemon may be
# starting, e.g. just installed).
READY_TIMEOUT = 30


def master_pid(output):
    """The master pid in what the pid command printed; None while the instance
    is not running (it prints nothing, 0, or an error)."""
    output = output.strip()
    return int(output) if output.isdigit() and output != "0" else None


def fill(argv, name):
    """One command of process_manager_commands for the instance called ``name``."""
    return [arg.replace("{name}", name) for arg in argv]


class ProcessManager:
    def __init__(self, manifest):
        self.manifest = manifest
        self.commands = manifest["process_manager_commands"]

    def name(self, port):
        return at_port(self.manifest, "instance_name", port)

    def command(self, operation, port):
        """The argv of a one-command operation (pid) for the instance on ``port``."""
        return fill(self.commands[operation], self.name(port))

    def steps(self, operation, port):
        """The commands of a multi-step operation (start, stop, restart, apply) in order;
        None when the manifest says the process manager has no such step (null)."""
        steps = self.commands[operation]
        return None if steps is None else [fill(argv, self.name(port)) for argv in steps]

    def ready(self):
        """True once the process manager answers (always, when it has no `ready` command)."""
        argv = self.commands["ready"]
        return argv is None or subprocess.run(argv, capture_output=True).returncode == 0

    def master_pid(self, port):
        return master_pid(run(*self.command("pid", port), check=False))

    def perform(self, operation, port):
        """Run the steps of ``operation`` for the instance on ``port``: the last one's output."""
        output = ""
        for argv in self.steps(operation, port):
            output = run(*argv)
        return output

    def restart(self, port):
        self.perform("restart", port)

    def apply(self, port):
        """Make the process manager match the instance's file: add, restart or remove it. True if wanted."""
        if self.commands["apply"] is None:
            raise SystemExit(f"uwsgi-fleetctl: apply is not how {self.manifest['process_manager']} instances change: "
                             "Chef's own resources start and stop them (process_manager_commands.apply is null)")
        wait_until(self.ready, READY_TIMEOUT, f"{self.manifest['process_manager']} to answer")
        wanted = os.path.exists(at_port(self.manifest, "instance_file", port))
        log(f"{'starting' if wanted else 'retiring'} {self.name(port)}: {self.perform('apply', port)}")
        return wanted
