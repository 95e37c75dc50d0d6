"""The plain reference evaluator: the oracle, straight from SPEC sections 3-5 and 11, no numpy."""
