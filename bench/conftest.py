"""Benchmarks are measurements, never pass/fail timing tests: run with `make bench`.

The process is tuned as `arbiter serve` tunes the server's (arbiter.server.app.runtime)."""

from arbiter.server.app.runtime import tune_allocator

tune_allocator()
