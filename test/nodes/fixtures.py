"""Fresh nodes for tests that drive nodes themselves (not through Kitchen)."""
import contextlib
import signal
import threading

import machine
import remote
import settings


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


# SIGTERM (CI's time limit, `kill`) ends Python without running `finally`
# blocks or fixture teardowns; as a KeyboardInterrupt, like Ctrl-C, it runs
# them, so an interrupted scenario destroys its nodes and restores what it
# changed. (reaper.py destroys whatever is left even so.)
if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _interrupt)


@contextlib.contextmanager
def fresh_node(name, init="systemd", release=settings.DEFAULT_RELEASE):
    """A freshly booted node as a remote.Node; destroyed (every trace) on exit."""
    info = machine.create(name, init=init, release=release)
    try:
        yield remote.Node(info["address"], name)
    finally:
        machine.destroy(name)
