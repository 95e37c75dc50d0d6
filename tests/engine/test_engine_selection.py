"""The reference's hand-computed cases of tests/reference/test_selection.py, through the engine."""

from tests.reference.test_selection import *  # noqa: F403
