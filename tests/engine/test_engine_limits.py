"""The reference's hand-computed cases of tests/reference/test_limits.py, through the engine."""

from tests.reference.test_limits import *  # noqa: F403
