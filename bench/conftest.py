"""Benchmarks are measurements, never pass/fail timing tests: run with `make bench`."""
