"""Tests of the plain reference evaluator (arbiter.server.reference)."""
