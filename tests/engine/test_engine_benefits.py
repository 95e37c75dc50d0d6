"""The reference's hand-computed cases of tests/reference/test_benefits.py, through the engine."""

from tests.reference.test_benefits import *  # noqa: F403
