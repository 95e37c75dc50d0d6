"""The reference's hand-computed cases of tests/reference/test_output.py, through the engine."""

from tests.reference.test_output import *  # noqa: F403
