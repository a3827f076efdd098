"""testinfra specs for the shrunk suite."""
from fleet_checks import *  # noqa: F401,F403 (the shared specs run in every suite)
