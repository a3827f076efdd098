"""Fresh nodes for tests that drive nodes themselves (not through Kitchen)."""
import contextlib

import machine
import remote


@contextlib.contextmanager
def fresh_node(name, init="systemd"):
    """A freshly booted node as a remote.Node; destroyed (every trace) on exit."""
    info = machine.create(name, init=init)
    try:
        yield remote.Node(info["address"], name)
    finally:
        machine.destroy(name)
