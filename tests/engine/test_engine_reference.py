"""The reference's hand-computed cases of tests/reference/test_reference.py, through the engine."""

from tests.reference.test_reference import *  # noqa: F403
