"""testinfra specs for the default suite."""
from default_recipe_checks import *  # noqa: F401,F403 (the shared specs run in every suite)
